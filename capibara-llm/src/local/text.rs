//! From generated token bytes to stream events: whole UTF-8 characters only, stop strings cut
//! (never emitted, partial matches held back), reasoning markup split off by
//! [`ReasoningSplitter`].

use std::collections::VecDeque;

use capibara_core::chat::StreamEvent;

use crate::reasoning::{ReasoningSplitter, queue_piece};

/// Turns a stream of token bytes into answer and reasoning events.
#[derive(Debug)]
pub(crate) struct TextPipeline {
    /// Bytes of an incomplete UTF-8 character at the end of the output so far.
    partial: Vec<u8>,
    stops: Vec<String>,
    /// Text that may be the beginning of a stop string.
    held: String,
    scratch: String,
    splitter: ReasoningSplitter,
    stopped: bool,
}

impl TextPipeline {
    pub(crate) fn new(stops: Vec<String>) -> Self {
        Self {
            partial: Vec::new(),
            stops,
            held: String::new(),
            scratch: String::new(),
            splitter: ReasoningSplitter::new(),
            stopped: false,
        }
    }

    /// Adds one token's bytes, queueing the events that are now certain. Returns `true` once a
    /// stop string has been produced (the answer is over; nothing after it is emitted).
    pub(crate) fn push(&mut self, bytes: &[u8], out: &mut VecDeque<StreamEvent>) -> bool {
        if self.stopped || bytes.is_empty() {
            return self.stopped;
        }
        self.partial.extend_from_slice(bytes);
        let mut text = std::mem::take(&mut self.scratch);
        text.clear();
        let used = decode_utf8(&self.partial, &mut text);
        self.partial.drain(..used);
        self.push_text(&text, out);
        self.scratch = text;
        self.stopped
    }

    /// Ends the answer: held-back text that never became a stop string, and an incomplete
    /// character (as U+FFFD), are emitted.
    pub(crate) fn finish(&mut self, out: &mut VecDeque<StreamEvent>) {
        if !self.stopped && !self.partial.is_empty() {
            let tail = String::from_utf8_lossy(&self.partial).into_owned();
            self.partial.clear();
            self.push_text(&tail, out);
        }
        if !self.stopped {
            let held = std::mem::take(&mut self.held);
            self.splitter.push(&held, |piece| queue_piece(piece, out));
        }
        self.splitter.finish(|piece| queue_piece(piece, out));
    }

    fn push_text(&mut self, text: &str, out: &mut VecDeque<StreamEvent>) {
        if self.stops.is_empty() {
            self.splitter.push(text, |piece| queue_piece(piece, out));
            return;
        }
        self.held.push_str(text);
        let found = self.stops.iter().filter_map(|stop| self.held.find(stop.as_str())).min();
        let emit_up_to = match found {
            Some(at) => {
                self.stopped = true;
                at
            }
            None => self.held.len() - self.longest_stop_prefix_suffix(),
        };
        self.splitter.push(&self.held[..emit_up_to], |piece| queue_piece(piece, out));
        if self.stopped {
            self.held.clear();
        } else {
            self.held.drain(..emit_up_to);
        }
    }

    /// Length of the longest suffix of `held` that is a proper prefix of some stop string.
    fn longest_stop_prefix_suffix(&self) -> usize {
        let held = &self.held;
        let mut best = 0;
        for stop in &self.stops {
            let longest = (stop.len() - 1).min(held.len());
            for len in (best + 1..=longest).rev() {
                let start = held.len() - len;
                if held.is_char_boundary(start) && stop.as_bytes().starts_with(&held.as_bytes()[start..]) {
                    best = len;
                    break;
                }
            }
        }
        best
    }
}

/// Appends the complete characters at the start of `bytes` to `out` (invalid sequences become
/// U+FFFD) and returns how many bytes were used; an incomplete character at the end is left.
fn decode_utf8(bytes: &[u8], out: &mut String) -> usize {
    let mut at = 0;
    loop {
        match std::str::from_utf8(&bytes[at..]) {
            Ok(text) => {
                out.push_str(text);
                return bytes.len();
            }
            Err(error) => {
                let valid = at + error.valid_up_to();
                out.push_str(std::str::from_utf8(&bytes[at..valid]).unwrap_or_default());
                match error.error_len() {
                    Some(invalid) => {
                        out.push(char::REPLACEMENT_CHARACTER);
                        at = valid + invalid;
                    }
                    None => return valid,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], tokens: &[&[u8]]) -> (Vec<StreamEvent>, bool) {
        let mut pipeline = TextPipeline::new(stops.iter().map(|s| (*s).to_owned()).collect());
        let mut out = VecDeque::new();
        let mut stopped = false;
        for token in tokens {
            stopped = pipeline.push(token, &mut out);
            if stopped {
                break;
            }
        }
        pipeline.finish(&mut out);
        (out.into_iter().collect(), stopped)
    }

    fn content(events: &[StreamEvent]) -> String {
        events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::Content { delta } => Some(delta.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn split_characters_are_held_until_complete() {
        let ñ = "ñ".as_bytes();
        let (events, _) = run(&[], &[b"a", &ñ[..1], &ñ[1..], b"o"]);
        assert_eq!(
            events,
            vec![StreamEvent::content("a"), StreamEvent::content("ñ"), StreamEvent::content("o")]
        );
        let (events, _) = run(&[], &[b"x", &[0xF0, 0x9F]]);
        assert_eq!(content(&events), "x\u{FFFD}");
    }

    #[test]
    fn stop_strings_are_cut_and_never_emitted() {
        let (events, stopped) = run(&["Usuario:"], &[b"Hola", b" Usu", b"ario:", b" nunca"]);
        assert!(stopped);
        assert_eq!(content(&events), "Hola ");
        // A partial match that turns out not to be the stop string is emitted.
        let (events, stopped) = run(&["Usuario:"], &[b"Hola", b" Usu", b"al"]);
        assert!(!stopped);
        assert_eq!(content(&events), "Hola Usual");
        let (events, _) = run(&["fin"], &[b"al fi"]);
        assert_eq!(content(&events), "al fi");
    }

    #[test]
    fn reasoning_markup_is_split_off() {
        let (events, _) = run(&[], &[b"<think>", b"pienso", b"</think>", b"Hola"]);
        assert!(events.contains(&StreamEvent::reasoning("pienso")));
        assert_eq!(content(&events), "Hola");
    }
}
