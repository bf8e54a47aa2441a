//! Separating model reasoning from the answer when it arrives as markup inside generated text.
//!
//! GPT-OSS writes Harmony channels (`<|channel|>analysis<|message|>…<|end|><|start|>assistant
//! <|channel|>final<|message|>…<|return|>`) and other reasoning models write `<think>…</think>`.
//! Servers that do not parse the markup (llama.cpp's `/completion`, some OpenAI-compatible
//! servers) pass it through as text. [`ReasoningSplitter`] is a small state machine fed with text
//! pieces as they stream: it emits answer and reasoning pieces as soon as they are known and holds
//! back only a trailing fragment that could be the start of a marker (such as `<|chan`), so a
//! marker split across network chunks is still recognised.
//!
//! Harmony's `commentary` channel (tool-call preambles) counts as reasoning: only the `final`
//! channel, or text outside any channel, is the answer.

use memchr::memchr;

/// Which part of the output a piece belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// The visible answer.
    Answer,
    /// The model's reasoning, never shown as the answer.
    Reasoning,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    /// `<|start|>`: a Harmony message header begins (role name follows).
    Start,
    /// `<|channel|>`: the channel name follows.
    Channel,
    /// `<|constrain|>`: a content-type hint inside a header.
    Constrain,
    /// `<|message|>`: the header ends, the message body begins.
    Message,
    /// `<|end|>`, `<|return|>`, `<|call|>`: the message ends.
    End,
    /// `<think>`.
    ThinkOpen,
    /// `</think>`.
    ThinkClose,
}

const MARKERS: [(&str, Marker); 9] = [
    ("<|start|>", Marker::Start),
    ("<|channel|>", Marker::Channel),
    ("<|constrain|>", Marker::Constrain),
    ("<|message|>", Marker::Message),
    ("<|end|>", Marker::End),
    ("<|return|>", Marker::End),
    ("<|call|>", Marker::End),
    ("<think>", Marker::ThinkOpen),
    ("</think>", Marker::ThinkClose),
];

/// Longest header text kept to learn a Harmony channel name (`commentary to=functions.x`).
const MAX_HEADER: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Text is answer (also the state before any markup).
    Answer,
    /// Inside a Harmony message header: text names the role or channel and is not emitted.
    Header { has_channel: bool },
    /// Inside a Harmony analysis or commentary message.
    HarmonyReasoning,
    /// Inside `<think>…</think>`.
    Thinking,
}

enum Match {
    Marker(Marker, usize),
    /// The rest of the input is a proper prefix of a marker: wait for more text.
    Partial,
    None,
}

/// Streaming splitter of answer and reasoning; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct ReasoningSplitter {
    mode: Mode,
    /// A trailing fragment that may begin a marker.
    held: String,
    /// Header text of the current Harmony message.
    header: String,
    scratch: String,
}

impl Default for ReasoningSplitter {
    fn default() -> Self {
        Self::new()
    }
}

impl ReasoningSplitter {
    /// A splitter at the start of an answer.
    pub fn new() -> Self {
        Self { mode: Mode::Answer, held: String::new(), header: String::new(), scratch: String::new() }
    }

    /// Feeds the next piece of generated text; `emit` receives each non-empty piece with its channel.
    pub fn push(&mut self, text: &str, mut emit: impl FnMut(Channel, &str)) {
        if self.held.is_empty() {
            self.scan(text, &mut emit);
        } else {
            let mut joined = std::mem::take(&mut self.scratch);
            joined.clear();
            joined.push_str(&self.held);
            joined.push_str(text);
            self.held.clear();
            self.scan(&joined, &mut emit);
            self.scratch = joined;
        }
    }

    /// Ends the text: a held-back fragment that never became a marker is emitted as text.
    pub fn finish(&mut self, mut emit: impl FnMut(Channel, &str)) {
        let held = std::mem::take(&mut self.held);
        self.text(&held, &mut emit);
    }

    /// Whether text pushed now would be reasoning.
    pub fn in_reasoning(&self) -> bool {
        matches!(self.mode, Mode::HarmonyReasoning | Mode::Thinking)
    }

    fn scan(&mut self, text: &str, emit: &mut impl FnMut(Channel, &str)) {
        let bytes = text.as_bytes();
        let mut segment = 0;
        let mut at = 0;
        while let Some(offset) = memchr(b'<', &bytes[at..]) {
            let open = at + offset;
            match find_marker(&text[open..]) {
                Match::Marker(marker, len) => {
                    self.text(&text[segment..open], emit);
                    self.apply(marker);
                    at = open + len;
                    segment = at;
                }
                Match::Partial => {
                    self.text(&text[segment..open], emit);
                    self.held.push_str(&text[open..]);
                    return;
                }
                Match::None => at = open + 1,
            }
        }
        self.text(&text[segment..], emit);
    }

    fn text(&mut self, text: &str, emit: &mut impl FnMut(Channel, &str)) {
        if text.is_empty() {
            return;
        }
        match self.mode {
            Mode::Answer => emit(Channel::Answer, text),
            Mode::HarmonyReasoning | Mode::Thinking => emit(Channel::Reasoning, text),
            Mode::Header { .. } => {
                let room = MAX_HEADER.saturating_sub(self.header.len());
                let mut cut = room.min(text.len());
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                self.header.push_str(&text[..cut]);
            }
        }
    }

    fn apply(&mut self, marker: Marker) {
        self.mode = match (marker, self.mode) {
            // Inside <think>, only its closing tag matters; Harmony tokens there are dropped.
            (Marker::ThinkClose, Mode::Thinking) => Mode::Answer,
            (_, Mode::Thinking) => Mode::Thinking,
            (Marker::Start, _) => {
                self.header.clear();
                Mode::Header { has_channel: false }
            }
            (Marker::Channel, _) => {
                self.header.clear();
                Mode::Header { has_channel: true }
            }
            (Marker::Constrain, Mode::Header { has_channel }) => {
                self.header.push(' ');
                Mode::Header { has_channel }
            }
            (Marker::Message, Mode::Header { has_channel }) => {
                let channel = self.header.split_whitespace().next().unwrap_or("");
                if !has_channel || channel == "final" { Mode::Answer } else { Mode::HarmonyReasoning }
            }
            (Marker::End, _) => Mode::Answer,
            (Marker::ThinkOpen, Mode::Answer) => Mode::Thinking,
            // Stray tokens (a `<|message|>` outside a header, `</think>` without `<think>`) are dropped.
            (_, mode) => mode,
        };
    }
}

fn find_marker(rest: &str) -> Match {
    let mut partial = false;
    for (text, marker) in MARKERS {
        if rest.starts_with(text) {
            return Match::Marker(marker, text.len());
        }
        partial |= rest.len() < text.len() && text.starts_with(rest);
    }
    if partial { Match::Partial } else { Match::None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pieces: &[&str]) -> (String, String) {
        let mut splitter = ReasoningSplitter::new();
        let (mut answer, mut reasoning) = (String::new(), String::new());
        let mut sink = |channel: Channel, text: &str| match channel {
            Channel::Answer => answer.push_str(text),
            Channel::Reasoning => reasoning.push_str(text),
        };
        for piece in pieces {
            splitter.push(piece, &mut sink);
        }
        splitter.finish(&mut sink);
        (answer, reasoning)
    }

    fn boundaries(text: &str) -> Vec<usize> {
        (0..=text.len()).filter(|&i| text.is_char_boundary(i)).collect()
    }

    /// Feeds `input` whole, split at every position, split at every pair of positions, and one
    /// character at a time; every way must give the same answer and reasoning.
    fn check(input: &str, answer: &str, reasoning: &str) {
        let expected = (answer.to_owned(), reasoning.to_owned());
        assert_eq!(run(&[input]), expected, "whole input");
        let cuts = boundaries(input);
        for &a in &cuts {
            assert_eq!(run(&[&input[..a], &input[a..]]), expected, "split at {a}");
            for &b in cuts.iter().filter(|&&b| b >= a) {
                assert_eq!(run(&[&input[..a], &input[a..b], &input[b..]]), expected, "split at {a} and {b}");
            }
        }
        let chars: Vec<String> = input.chars().map(String::from).collect();
        let pieces: Vec<&str> = chars.iter().map(String::as_str).collect();
        assert_eq!(run(&pieces), expected, "one character at a time");
    }

    #[test]
    fn harmony_channels() {
        check(
            "<|channel|>analysis<|message|>El usuario saluda; respondo.<|end|><|start|>assistant<|channel|>final<|message|>¡Hola! ¿Qué tal?<|return|>",
            "¡Hola! ¿Qué tal?",
            "El usuario saluda; respondo.",
        );
    }

    #[test]
    fn harmony_commentary_with_constraint_is_reasoning() {
        check(
            "<|channel|>commentary to=functions.clima <|constrain|>json<|message|>{\"ciudad\":\"Lima\"}<|call|>",
            "",
            "{\"ciudad\":\"Lima\"}",
        );
    }

    #[test]
    fn harmony_message_without_channel_is_answer() {
        check("<|start|>assistant<|message|>Hola<|end|>", "Hola", "");
    }

    #[test]
    fn think_tags() {
        check(
            "<think>Pienso en <b>HTML</b> y 3 < 4.</think>La respuesta: a <= b, <|x|>.",
            "La respuesta: a <= b, <|x|>.",
            "Pienso en <b>HTML</b> y 3 < 4.",
        );
    }

    #[test]
    fn plain_text_passes_through_and_a_trailing_marker_prefix_is_flushed() {
        check("Sin marcas: a < b, c <= d, ñandú <thin", "Sin marcas: a < b, c <= d, ñandú <thin", "");
        check("termina en <|chan", "termina en <|chan", "");
    }

    #[test]
    fn text_without_markup_is_emitted_whole_and_at_once() {
        let mut splitter = ReasoningSplitter::new();
        let mut pieces = Vec::new();
        splitter.push("Hola mundo", |channel, text| pieces.push((channel, text.to_owned())));
        assert_eq!(pieces, vec![(Channel::Answer, "Hola mundo".to_owned())]);
        pieces.clear();
        splitter.push("dos <", |channel, text| pieces.push((channel, text.to_owned())));
        assert_eq!(pieces, vec![(Channel::Answer, "dos ".to_owned())], "only the possible marker is held");
        splitter.push("b>", |channel, text| pieces.push((channel, text.to_owned())));
        assert_eq!(pieces[1], (Channel::Answer, "<b>".to_owned()));
    }

    #[test]
    fn reasoning_state_is_visible() {
        let mut splitter = ReasoningSplitter::new();
        splitter.push("<|channel|>analysis<|message|>x", |_, _| {});
        assert!(splitter.in_reasoning());
        splitter.push("<|end|>", |_, _| {});
        assert!(!splitter.in_reasoning());
    }
}
