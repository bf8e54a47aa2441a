//! Reasoning and tool calls written as model markup inside the answer text, the way a server that does
//! not parse them passes the model's raw output through.

/// Which markup the model uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Markup {
    /// GPT-OSS Harmony channels.
    Harmony,
    /// `<think>…</think>` (DeepSeek-R1, Qwen 3), with Hermes-style `<tool_call>` blocks.
    ThinkTags,
}

/// Harmony header of the reasoning channel, token by token.
const HARMONY_ANALYSIS: &[&str] = &["<|channel|>", "analysis", "<|message|>"];
/// Harmony end of a message and header of the answer channel, token by token.
const HARMONY_TO_FINAL: &[&str] =
    &["<|end|>", "<|start|>", "assistant", "<|channel|>", "final", "<|message|>"];
/// Harmony end of a message and start of the next assistant message.
const HARMONY_NEXT_MESSAGE: &[&str] = &["<|end|>", "<|start|>", "assistant"];

/// Turns content, reasoning and tool-call beats into text pieces with markers, each marker its own piece
/// (models emit markers as single special tokens, so clients must handle them split across frames).
#[derive(Debug)]
pub(crate) struct MarkupWriter {
    markup: Markup,
    in_reasoning: bool,
    wrote_anything: bool,
}

impl MarkupWriter {
    pub(crate) fn new(markup: Markup) -> Self {
        Self { markup, in_reasoning: false, wrote_anything: false }
    }

    /// Pieces for a reasoning delta: the opening markers when reasoning starts, then the text.
    pub(crate) fn reasoning(&mut self, text: &str, out: &mut Vec<String>) {
        if !self.in_reasoning {
            match self.markup {
                Markup::Harmony => {
                    if self.wrote_anything {
                        push_all(out, HARMONY_NEXT_MESSAGE);
                    }
                    push_all(out, HARMONY_ANALYSIS);
                }
                Markup::ThinkTags => out.push("<think>".to_owned()),
            }
            self.in_reasoning = true;
        }
        self.push_text(text, out);
    }

    /// Pieces for a content delta: the markers closing the reasoning when it was open, then the text.
    pub(crate) fn content(&mut self, text: &str, out: &mut Vec<String>) {
        if self.in_reasoning {
            match self.markup {
                Markup::Harmony => push_all(out, HARMONY_TO_FINAL),
                Markup::ThinkTags => out.push("</think>".to_owned()),
            }
            self.in_reasoning = false;
        }
        self.push_text(text, out);
    }

    /// Pieces for a tool call: Harmony's commentary channel, or a Hermes `<tool_call>` block.
    pub(crate) fn tool_call(&mut self, name: &str, arguments: &str, out: &mut Vec<String>) {
        self.close(out);
        match self.markup {
            Markup::Harmony => {
                if self.wrote_anything {
                    push_all(out, HARMONY_NEXT_MESSAGE);
                } else {
                    push_all(out, &["<|start|>", "assistant"]);
                }
                out.push("<|channel|>".to_owned());
                out.push(format!("commentary to=functions.{name} "));
                push_all(out, &["<|constrain|>", "json", "<|message|>"]);
                out.push(arguments.to_owned());
                out.push("<|call|>".to_owned());
            }
            Markup::ThinkTags => {
                let arguments = serde_json::from_str::<serde_json::Value>(arguments)
                    .unwrap_or_else(|_| serde_json::Value::String(arguments.to_owned()));
                let name = serde_json::Value::String(name.to_owned());
                out.push("<tool_call>".to_owned());
                out.push(format!("\n{{\"name\": {name}, \"arguments\": {arguments}}}\n"));
                out.push("</tool_call>".to_owned());
            }
        }
        self.wrote_anything = true;
    }

    /// Pieces that close an open reasoning block before the answer ends.
    pub(crate) fn close(&mut self, out: &mut Vec<String>) {
        if self.in_reasoning {
            match self.markup {
                Markup::Harmony => out.push("<|end|>".to_owned()),
                Markup::ThinkTags => out.push("</think>".to_owned()),
            }
            self.in_reasoning = false;
        }
    }

    fn push_text(&mut self, text: &str, out: &mut Vec<String>) {
        out.push(text.to_owned());
        self.wrote_anything = true;
    }
}

fn push_all(out: &mut Vec<String>, pieces: &[&str]) {
    out.extend(pieces.iter().map(|piece| (*piece).to_owned()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(markup: Markup, steps: &[(&str, &str)]) -> String {
        let mut writer = MarkupWriter::new(markup);
        let mut out = Vec::new();
        for (kind, text) in steps {
            match *kind {
                "r" => writer.reasoning(text, &mut out),
                "c" => writer.content(text, &mut out),
                _ => writer.tool_call("buscar", text, &mut out),
            }
        }
        writer.close(&mut out);
        out.concat()
    }

    #[test]
    fn harmony_wraps_reasoning_in_the_analysis_channel() {
        let text = render(Markup::Harmony, &[("r", "Pienso "), ("r", "algo."), ("c", "Hola")]);
        assert_eq!(
            text,
            "<|channel|>analysis<|message|>Pienso algo.<|end|><|start|>assistant<|channel|>final<|message|>Hola"
        );
    }

    #[test]
    fn think_tags_wrap_reasoning_and_close_at_the_end() {
        assert_eq!(render(Markup::ThinkTags, &[("r", "a"), ("c", "b")]), "<think>a</think>b");
        assert_eq!(render(Markup::ThinkTags, &[("r", "solo")]), "<think>solo</think>");
        assert_eq!(render(Markup::ThinkTags, &[("c", "sin razonar")]), "sin razonar");
    }

    #[test]
    fn tool_calls_use_each_models_markup() {
        assert_eq!(
            render(Markup::Harmony, &[("t", r#"{"q":"x"}"#)]),
            r#"<|start|>assistant<|channel|>commentary to=functions.buscar <|constrain|>json<|message|>{"q":"x"}<|call|>"#
        );
        assert_eq!(
            render(Markup::ThinkTags, &[("t", r#"{"q":"x"}"#)]),
            "<tool_call>\n{\"name\": \"buscar\", \"arguments\": {\"q\":\"x\"}}\n</tool_call>"
        );
    }
}
