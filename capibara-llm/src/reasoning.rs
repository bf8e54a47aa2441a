//! Separating model reasoning (and tool calls) from the answer when they arrive as markup inside
//! generated text.
//!
//! GPT-OSS writes Harmony channels (`<|channel|>analysis<|message|>…<|end|><|start|>assistant
//! <|channel|>final<|message|>…<|return|>`), other reasoning models write `<think>…</think>`, and
//! Hermes-style models call tools with `<tool_call>{"name":…,"arguments":…}</tool_call>`. Servers
//! that do not parse the markup (llama.cpp's `/completion`, Ollama's `/api/generate`, some
//! OpenAI-compatible servers) pass it through as text.
//!
//! [`ReasoningSplitter`] is a small state machine fed with text pieces as they stream. It emits
//! answer and reasoning text as soon as it is known and holds back only a trailing fragment that
//! could begin a marker (such as `<|chan`), so a marker split across network chunks is still
//! recognised. Tool calls are emitted whole once their closing marker (or the end of the text)
//! arrives: Harmony messages addressed `to=functions.name`, and Hermes `<tool_call>` blocks.
//!
//! Harmony's `commentary` channel without a recipient (tool-call preambles) counts as reasoning:
//! only the `final` channel, or text outside any channel, is the answer.

use std::collections::VecDeque;

use capibara_core::chat::{StreamEvent, ToolCall};
use memchr::memchr;
use serde::Deserialize;

/// One piece of split output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Visible answer text.
    Answer(&'a str),
    /// Reasoning text, never shown as the answer.
    Reasoning(&'a str),
    /// A complete tool call found in the markup (ids are `call_0`, `call_1`, … per answer).
    ToolCall(ToolCall),
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
    /// `<tool_call>`.
    ToolOpen,
    /// `</tool_call>`.
    ToolClose,
}

const MARKERS: [(&str, Marker); 11] = [
    ("<|start|>", Marker::Start),
    ("<|channel|>", Marker::Channel),
    ("<|constrain|>", Marker::Constrain),
    ("<|message|>", Marker::Message),
    ("<|end|>", Marker::End),
    ("<|return|>", Marker::End),
    ("<|call|>", Marker::End),
    ("<think>", Marker::ThinkOpen),
    ("</think>", Marker::ThinkClose),
    ("<tool_call>", Marker::ToolOpen),
    ("</tool_call>", Marker::ToolClose),
];

/// Longest Harmony header kept (`assistant to=functions.x<|channel|>commentary json`).
const MAX_HEADER: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Text is answer (also the state before any markup).
    Answer,
    /// Inside a Harmony message header: text names role, channel and recipient; not emitted.
    Header,
    /// Inside a Harmony analysis or commentary message.
    HarmonyReasoning,
    /// Inside a Harmony message addressed to a tool: the text is the call's arguments.
    HarmonyCall,
    /// Inside `<think>…</think>`.
    Thinking,
    /// Inside `<tool_call>…</tool_call>`.
    HermesCall,
}

enum Match {
    Marker(Marker, usize),
    /// The rest of the input is a proper prefix of a marker: wait for more text.
    Partial,
    None,
}

/// Streaming splitter of answer, reasoning and tool calls; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct ReasoningSplitter {
    mode: Mode,
    /// A trailing fragment that may begin a marker.
    held: String,
    /// Header text of the current Harmony message.
    header: String,
    /// Where the channel name starts in `header`, once `<|channel|>` was seen.
    channel_at: Option<usize>,
    /// Function a Harmony message is addressed to.
    recipient: String,
    /// Body of the tool call being read.
    call_body: String,
    calls: u32,
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
        Self {
            mode: Mode::Answer,
            held: String::new(),
            header: String::new(),
            channel_at: None,
            recipient: String::new(),
            call_body: String::new(),
            calls: 0,
            scratch: String::new(),
        }
    }

    /// Feeds the next piece of generated text; `emit` receives each non-empty piece.
    pub fn push(&mut self, text: &str, mut emit: impl FnMut(Piece<'_>)) {
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

    /// Ends the text: a held-back fragment that never became a marker is emitted as text, and a
    /// tool call cut off by a stop string (llama.cpp drops the matched `<|call|>`) is completed.
    pub fn finish(&mut self, mut emit: impl FnMut(Piece<'_>)) {
        let held = std::mem::take(&mut self.held);
        self.text(&held, &mut emit);
        match self.mode {
            Mode::HarmonyCall => self.harmony_call(&mut emit),
            Mode::HermesCall => self.hermes_call(&mut emit),
            _ => {}
        }
        self.mode = Mode::Answer;
    }

    /// Whether text pushed now would be reasoning.
    pub fn in_reasoning(&self) -> bool {
        matches!(self.mode, Mode::HarmonyReasoning | Mode::Thinking)
    }

    fn scan(&mut self, text: &str, emit: &mut impl FnMut(Piece<'_>)) {
        let bytes = text.as_bytes();
        let mut segment = 0;
        let mut at = 0;
        while let Some(offset) = memchr(b'<', &bytes[at..]) {
            let open = at + offset;
            match find_marker(&text[open..]) {
                Match::Marker(marker, len) => {
                    self.text(&text[segment..open], emit);
                    self.apply(marker, emit);
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

    fn text(&mut self, text: &str, emit: &mut impl FnMut(Piece<'_>)) {
        if text.is_empty() {
            return;
        }
        match self.mode {
            Mode::Answer => emit(Piece::Answer(text)),
            Mode::HarmonyReasoning | Mode::Thinking => emit(Piece::Reasoning(text)),
            Mode::HarmonyCall | Mode::HermesCall => self.call_body.push_str(text),
            Mode::Header => {
                let mut cut = MAX_HEADER.saturating_sub(self.header.len()).min(text.len());
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                self.header.push_str(&text[..cut]);
            }
        }
    }

    fn apply(&mut self, marker: Marker, emit: &mut impl FnMut(Piece<'_>)) {
        self.mode = match (marker, self.mode) {
            // Inside <think> or <tool_call>, only the closing tag matters.
            (Marker::ThinkClose, Mode::Thinking) => Mode::Answer,
            (_, Mode::Thinking) => Mode::Thinking,
            (Marker::ToolClose, Mode::HermesCall) => {
                self.hermes_call(emit);
                Mode::Answer
            }
            (_, Mode::HermesCall) => Mode::HermesCall,
            (Marker::Start, mode) => {
                if mode == Mode::HarmonyCall {
                    self.harmony_call(emit);
                }
                self.header.clear();
                self.channel_at = None;
                Mode::Header
            }
            (Marker::Channel, mode) => {
                if mode != Mode::Header {
                    if mode == Mode::HarmonyCall {
                        self.harmony_call(emit);
                    }
                    self.header.clear();
                }
                self.header.push(' ');
                self.channel_at = Some(self.header.len());
                Mode::Header
            }
            (Marker::Constrain, Mode::Header) => {
                self.header.push(' ');
                Mode::Header
            }
            (Marker::Message, Mode::Header) => self.open_message(),
            (Marker::End, Mode::HarmonyCall) => {
                self.harmony_call(emit);
                Mode::Answer
            }
            (Marker::End, _) => Mode::Answer,
            (Marker::ThinkOpen, Mode::Answer) => Mode::Thinking,
            (Marker::ToolOpen, Mode::Answer) => {
                self.call_body.clear();
                Mode::HermesCall
            }
            // Stray tokens (a `<|message|>` outside a header, `</think>` without `<think>`) are dropped.
            (_, mode) => mode,
        };
    }

    /// The header is complete: a recipient makes the body a tool call, the `final` channel (or
    /// no channel) makes it the answer, any other channel reasoning.
    fn open_message(&mut self) -> Mode {
        let recipient = self
            .header
            .split_whitespace()
            .find_map(|word| word.strip_prefix("to="))
            .map(|to| to.strip_prefix("functions.").unwrap_or(to));
        if let Some(recipient) = recipient {
            self.recipient.clear();
            self.recipient.push_str(recipient);
            self.call_body.clear();
            return Mode::HarmonyCall;
        }
        let channel = self.channel_at.map(|at| self.header[at..].split_whitespace().next().unwrap_or(""));
        match channel {
            None | Some("final") => Mode::Answer,
            Some(_) => Mode::HarmonyReasoning,
        }
    }

    fn harmony_call(&mut self, emit: &mut impl FnMut(Piece<'_>)) {
        let call = ToolCall {
            id: self.next_call_id(),
            name: std::mem::take(&mut self.recipient),
            arguments: self.call_body.trim().to_owned(),
        };
        self.call_body.clear();
        emit(Piece::ToolCall(call));
    }

    /// A Hermes block holds `{"name": …, "arguments": {…}}`; a block that is not such JSON is
    /// shown as answer text rather than lost.
    fn hermes_call(&mut self, emit: &mut impl FnMut(Piece<'_>)) {
        #[derive(Deserialize)]
        struct HermesCall {
            name: String,
            #[serde(default)]
            arguments: serde_json::Value,
        }
        let body = std::mem::take(&mut self.call_body);
        match serde_json::from_str::<HermesCall>(body.trim()) {
            Ok(call) => {
                let arguments = match call.arguments {
                    serde_json::Value::String(text) => text,
                    serde_json::Value::Null => "{}".to_owned(),
                    other => other.to_string(),
                };
                emit(Piece::ToolCall(ToolCall { id: self.next_call_id(), name: call.name, arguments }));
            }
            Err(_) if body.trim().is_empty() => {}
            Err(_) => emit(Piece::Answer(&body)),
        }
    }

    fn next_call_id(&mut self) -> String {
        let id = format!("call_{}", self.calls);
        self.calls += 1;
        id
    }
}

/// Queues a piece as the stream event it is.
pub(crate) fn queue_piece(piece: Piece<'_>, out: &mut VecDeque<StreamEvent>) {
    out.push_back(match piece {
        Piece::Answer(text) => StreamEvent::content(text),
        Piece::Reasoning(text) => StreamEvent::reasoning(text),
        Piece::ToolCall(call) => StreamEvent::ToolCall { call },
    });
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

    #[derive(Debug, Default, PartialEq)]
    struct Split {
        answer: String,
        reasoning: String,
        calls: Vec<(String, String)>,
    }

    fn run(pieces: &[&str]) -> Split {
        let mut splitter = ReasoningSplitter::new();
        let mut split = Split::default();
        let mut sink = |piece: Piece<'_>| match piece {
            Piece::Answer(text) => split.answer.push_str(text),
            Piece::Reasoning(text) => split.reasoning.push_str(text),
            Piece::ToolCall(call) => split.calls.push((call.name, call.arguments)),
        };
        for piece in pieces {
            splitter.push(piece, &mut sink);
        }
        splitter.finish(&mut sink);
        split
    }

    fn boundaries(text: &str) -> Vec<usize> {
        (0..=text.len()).filter(|&i| text.is_char_boundary(i)).collect()
    }

    /// Feeds `input` whole, split at every position, split at every pair of positions, and one
    /// character at a time; every way must give the same result.
    fn check(input: &str, answer: &str, reasoning: &str, calls: &[(&str, &str)]) {
        let expected = Split {
            answer: answer.to_owned(),
            reasoning: reasoning.to_owned(),
            calls: calls.iter().map(|(n, a)| ((*n).to_owned(), (*a).to_owned())).collect(),
        };
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
            &[],
        );
    }

    #[test]
    fn harmony_commentary_without_recipient_is_reasoning() {
        check("<|channel|>commentary<|message|>Voy a buscar.<|end|>", "", "Voy a buscar.", &[]);
    }

    #[test]
    fn harmony_tool_calls_with_recipient_in_either_place() {
        check(
            "<|channel|>analysis<|message|>Necesito el clima.<|end|><|start|>assistant<|channel|>commentary to=functions.clima <|constrain|>json<|message|>{\"ciudad\":\"Lima\"}<|call|>",
            "",
            "Necesito el clima.",
            &[("clima", "{\"ciudad\":\"Lima\"}")],
        );
        // llama.cpp drops the matched stop string `<|call|>`: the call ends with the text.
        check(
            "<|start|>assistant to=functions.buscar<|channel|>commentary json<|message|>{\"q\":\"x\"}",
            "",
            "",
            &[("buscar", "{\"q\":\"x\"}")],
        );
    }

    #[test]
    fn harmony_message_without_channel_is_answer() {
        check("<|start|>assistant<|message|>Hola<|end|>", "Hola", "", &[]);
    }

    #[test]
    fn think_tags() {
        check(
            "<think>Pienso en <b>HTML</b> y 3 < 4.</think>La respuesta: a <= b, <|x|>.",
            "La respuesta: a <= b, <|x|>.",
            "Pienso en <b>HTML</b> y 3 < 4.",
            &[],
        );
    }

    #[test]
    fn hermes_tool_calls() {
        check(
            "<think>Uso la herramienta.</think><tool_call>\n{\"name\": \"buscar\", \"arguments\": {\"q\":\"x\"}}\n</tool_call>",
            "",
            "Uso la herramienta.",
            &[("buscar", "{\"q\":\"x\"}")],
        );
        check("<tool_call>no es json</tool_call>", "no es json", "", &[]);
    }

    #[test]
    fn plain_text_passes_through_and_a_trailing_marker_prefix_is_flushed() {
        check("Sin marcas: a < b, c <= d, ñandú <thin", "Sin marcas: a < b, c <= d, ñandú <thin", "", &[]);
        check("termina en <|chan", "termina en <|chan", "", &[]);
    }

    #[test]
    fn text_without_markup_is_emitted_whole_and_at_once() {
        let mut splitter = ReasoningSplitter::new();
        let mut pieces: Vec<String> = Vec::new();
        let mut sink = |piece: Piece<'_>| {
            if let Piece::Answer(text) = piece {
                pieces.push(text.to_owned());
            }
        };
        splitter.push("Hola mundo", &mut sink);
        splitter.push("dos <", &mut sink);
        splitter.push("b>", &mut sink);
        assert_eq!(pieces, vec!["Hola mundo", "dos ", "<b>"], "only a possible marker is held back");
    }

    #[test]
    fn reasoning_state_is_visible() {
        let mut splitter = ReasoningSplitter::new();
        splitter.push("<|channel|>analysis<|message|>x", |_| {});
        assert!(splitter.in_reasoning());
        splitter.push("<|end|>", |_| {});
        assert!(!splitter.in_reasoning());
    }
}
