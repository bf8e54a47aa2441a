//! The one decoder shape every protocol shares: body bytes are cut into frames (SSE events or NDJSON
//! lines), each frame is read into events until the protocol's final frame, and a body that ends
//! before it is an error (unless the protocol's reader can close the answer itself).

use std::collections::VecDeque;

use capibara_core::Result;
use capibara_core::chat::StreamEvent;

use super::Decoder;
use crate::wire::ndjson::LineSplitter;
use crate::wire::sse::{SseEvent, SseParser};

/// Cuts a byte stream into frames.
pub(crate) trait Framing: Default + Send + 'static {
    /// One frame, borrowed from the framing's buffer.
    type Frame<'a>;
    /// Adds bytes as they arrive.
    fn push(&mut self, bytes: &[u8]);
    /// The next complete frame, if any.
    fn next_frame(&mut self) -> Option<Self::Frame<'_>>;
    /// What is left once the body has ended (a last frame without its terminator).
    fn finish(&mut self) -> Option<Self::Frame<'_>>;
}

impl Framing for SseParser {
    type Frame<'a> = SseEvent<'a>;
    fn push(&mut self, bytes: &[u8]) {
        SseParser::push(self, bytes);
    }
    fn next_frame(&mut self) -> Option<SseEvent<'_>> {
        self.next_event()
    }
    fn finish(&mut self) -> Option<SseEvent<'_>> {
        SseParser::finish(self)
    }
}

impl Framing for LineSplitter {
    type Frame<'a> = &'a [u8];
    fn push(&mut self, bytes: &[u8]) {
        LineSplitter::push(self, bytes);
    }
    fn next_frame(&mut self) -> Option<&[u8]> {
        self.next_line()
    }
    fn finish(&mut self) -> Option<&[u8]> {
        LineSplitter::finish(self)
    }
}

/// Reads one protocol's frames into events.
pub(crate) trait FrameReader<F: Framing>: Send + 'static {
    /// Reads one frame.
    fn read(&mut self, frame: F::Frame<'_>, out: &mut VecDeque<StreamEvent>) -> Result<()>;
    /// Whether the protocol's final frame was read.
    fn is_complete(&self) -> bool;
    /// The body ended before the final frame: close the answer if enough arrived, or say it broke off.
    fn ended_early(&mut self, out: &mut VecDeque<StreamEvent>) -> Result<()>;
}

/// A [`Decoder`] from a framing and a reader.
pub(crate) struct Framed<F, R> {
    framing: F,
    reader: R,
}

impl<F: Framing, R> Framed<F, R> {
    /// A decoder that reads frames with `reader`.
    pub(crate) fn new(reader: R) -> Self {
        Self { framing: F::default(), reader }
    }
}

impl<F: Framing, R: FrameReader<F>> Decoder for Framed<F, R> {
    fn decode(&mut self, bytes: &[u8], out: &mut VecDeque<StreamEvent>) -> Result<()> {
        self.framing.push(bytes);
        while !self.reader.is_complete() {
            let Some(frame) = self.framing.next_frame() else { break };
            self.reader.read(frame, out)?;
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut VecDeque<StreamEvent>) -> Result<()> {
        if let Some(frame) = self.framing.finish() {
            self.reader.read(frame, out)?;
        }
        if self.reader.is_complete() { Ok(()) } else { self.reader.ended_early(out) }
    }

    fn is_complete(&self) -> bool {
        self.reader.is_complete()
    }
}
