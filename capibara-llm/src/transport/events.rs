//! The live event stream of one upstream answer: body bytes in, typed events out, with the idle
//! and total timeouts applied and the final event held until the body is fully read.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use capibara_core::Result;
use capibara_core::chat::StreamEvent;
use futures::stream::{BoxStream, Stream, StreamExt};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep, sleep_until};

use super::errors;

/// Turns one protocol's body bytes into events.
///
/// A decoder queues any number of events per call and, once it has read the protocol's final
/// frame, exactly one [`StreamEvent::Done`] as the last; after that it ignores further input.
pub(crate) trait Decoder: Send + 'static {
    /// Decodes the next piece of the body.
    fn decode(&mut self, bytes: &[u8], out: &mut VecDeque<StreamEvent>) -> Result<()>;

    /// The body ended cleanly: flush what is left, or fail if the final frame never came.
    fn finish(&mut self, out: &mut VecDeque<StreamEvent>) -> Result<()>;

    /// Whether the final frame has been decoded.
    fn is_complete(&self) -> bool;
}

/// Timeouts applied while streaming.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamLimits {
    /// Longest silence between events once the first has arrived.
    pub(crate) idle: Duration,
    /// The whole answer, from the first request attempt.
    pub(crate) total: Duration,
    /// When the first attempt started.
    pub(crate) started: Instant,
}

pin_project! {
    /// Events of one answer; dropping it drops the connection, which cancels the upstream request.
    pub(crate) struct EventStream<D> {
        body: Option<BoxStream<'static, reqwest::Result<Bytes>>>,
        decoder: D,
        pending: VecDeque<StreamEvent>,
        failure: Option<capibara_core::Error>,
        ended: bool,
        backend: Arc<str>,
        limits: StreamLimits,
        // When the decoder last produced an event; `None` until the first one is handed out by
        // the opener, so the first-token timeout (applied outside) governs until then.
        last_event: Option<Instant>,
        #[pin]
        idle: Sleep,
        #[pin]
        deadline: Sleep,
    }
}

impl<D: Decoder> EventStream<D> {
    pub(crate) fn new(
        body: BoxStream<'static, reqwest::Result<Bytes>>,
        decoder: D,
        backend: Arc<str>,
        limits: StreamLimits,
    ) -> Self {
        Self {
            body: Some(body),
            decoder,
            pending: VecDeque::new(),
            failure: None,
            ended: false,
            backend,
            last_event: None,
            idle: sleep_until(limits.started + limits.idle),
            deadline: sleep_until(limits.started + limits.total),
            limits,
        }
    }

    /// Puts the first event back in front and starts the idle timeout; the opener takes the
    /// first event out to know the upstream has started answering.
    pub(crate) fn resume_with(self: Pin<&mut Self>, first: StreamEvent) {
        let this = self.project();
        this.pending.push_front(first);
        *this.last_event = Some(Instant::now());
    }
}

impl<D: Decoder> Stream for EventStream<D> {
    type Item = Result<StreamEvent>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        loop {
            // The final event waits until the body is fully read, so the connection goes back to
            // the pool instead of being cut (which the upstream would see as an abandoned stream).
            if let Some(front) = this.pending.front()
                && !(matches!(front, StreamEvent::Done { .. }) && this.body.is_some())
            {
                let event = this.pending.pop_front();
                if matches!(event, Some(StreamEvent::Done { .. })) {
                    *this.ended = true;
                    this.pending.clear();
                }
                return Poll::Ready(event.map(Ok));
            }
            if let Some(error) = this.failure.take() {
                *this.ended = true;
                *this.body = None;
                return Poll::Ready(Some(Err(error)));
            }
            if *this.ended {
                return Poll::Ready(None);
            }
            if this.deadline.as_mut().poll(cx).is_ready() {
                *this.body = None;
                *this.failure = Some(errors::timeout(this.backend, "total", this.limits.total));
                continue;
            }
            let Some(body) = this.body.as_mut() else {
                // The body is gone and nothing is queued: a decoder that finished without a final
                // event or an error would be a bug; end as a broken stream rather than hang.
                *this.failure = Some(errors::ended_early(this.backend, None));
                continue;
            };
            match body.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(bytes))) => {
                    if this.decoder.is_complete() {
                        continue; // bytes after the final frame (e.g. OpenAI's `[DONE]` already seen)
                    }
                    let before = this.pending.len();
                    if let Err(error) = this.decoder.decode(&bytes, this.pending) {
                        *this.body = None;
                        *this.failure = Some(error);
                    }
                    if this.pending.len() > before && this.last_event.is_some() {
                        *this.last_event = Some(Instant::now());
                    }
                }
                Poll::Ready(Some(Err(error))) => {
                    *this.body = None;
                    if !this.decoder.is_complete() {
                        *this.failure = Some(errors::ended_early(this.backend, Some(&error)));
                    }
                }
                Poll::Ready(None) => {
                    *this.body = None;
                    if !this.decoder.is_complete()
                        && let Err(error) = this.decoder.finish(this.pending)
                    {
                        *this.failure = Some(error);
                    }
                }
                Poll::Pending => {
                    let Some(last) = *this.last_event else { return Poll::Pending };
                    // The timer is re-armed only when it fires early, not on every event.
                    while this.idle.as_mut().poll(cx).is_ready() {
                        let due = last + this.limits.idle;
                        if Instant::now() < due {
                            this.idle.as_mut().reset(due);
                            continue;
                        }
                        *this.body = None;
                        if !this.decoder.is_complete() {
                            *this.failure = Some(errors::timeout(this.backend, "idle", this.limits.idle));
                        }
                        break;
                    }
                    if this.body.is_some() {
                        return Poll::Pending;
                    }
                }
            }
        }
    }
}
