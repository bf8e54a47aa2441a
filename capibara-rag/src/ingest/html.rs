//! HTML to its visible text, with html5ever's tokenizer.
//!
//! The tokenizer is the WHATWG one browsers use: entities are decoded, comments and doctypes are
//! skipped, and `<script>`, `<style>`, `<title>` and `<textarea>` contents are read in their raw
//! text states (a `<` inside a script does not start a tag). No tree is built, since visible text
//! needs none:
//! - `<title>` gives the title; everything else in `<head>`, and the contents of `script`, `style`,
//!   `noscript`, `template`, `svg`, `math`, `iframe`, `object` and `canvas`, is dropped;
//! - block elements (`p`, `div`, headings, `li`, `tr`, …) become paragraph breaks, `<br>` a line
//!   break;
//! - whitespace runs collapse to one space, except inside `<pre>`.

use std::cell::RefCell;

use html5ever::TokenizerResult;
use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, CharacterTokens, EndTag, StartTag, Tag, TagToken, Token, TokenSink, TokenSinkResult,
    Tokenizer, TokenizerOpts,
};

use super::normalize::normalize_text;

/// The text and title of an HTML page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HtmlText {
    /// `<title>`, else the first `<h1>`.
    pub(crate) title: Option<String>,
    /// The visible text.
    pub(crate) text: String,
}

/// Elements whose contents are never shown as text.
const HIDDEN: &[&str] =
    &["script", "style", "noscript", "template", "svg", "math", "iframe", "object", "canvas"];

/// Elements that may appear in `<head>`; any other start tag ends it, as in a browser.
const HEAD_ELEMENTS: &[&str] = &["base", "link", "meta", "noscript", "script", "style", "template", "title"];

/// Elements that start and end a paragraph.
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "caption",
    "dd",
    "details",
    "dialog",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "td",
    "th",
    "tr",
    "ul",
];

/// Extracts the visible text of an HTML page.
pub(crate) fn html_to_text(source: &str) -> HtmlText {
    let tokenizer = Tokenizer::new(TextSink::default(), TokenizerOpts::default());
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(source));
    // The sink never asks to run a script or switch encodings, so one feed consumes the input;
    // the loop only guards against a pause.
    while !matches!(tokenizer.feed(&input), TokenizerResult::Done) {}
    tokenizer.end();
    let state = tokenizer.sink.state.into_inner();
    let title = state.title.map(|t| collapse(&t)).filter(|t| !t.is_empty()).or(state.first_h1);
    HtmlText { title, text: normalize_text(&state.out) }
}

#[derive(Default)]
struct TextSink {
    state: RefCell<TextState>,
}

#[derive(Default)]
struct TextState {
    out: String,
    /// The hidden element being skipped and how deep inside nested ones of its name we are.
    hidden: Option<(String, usize)>,
    in_head: bool,
    pre_depth: usize,
    title: Option<String>,
    in_title: bool,
    h1: Option<String>,
    first_h1: Option<String>,
}

impl TokenSink for TextSink {
    type Handle = ();

    fn process_token(&self, token: Token, _line_number: u64) -> TokenSinkResult<()> {
        let mut state = self.state.borrow_mut();
        match token {
            TagToken(tag) => return state.tag(&tag),
            CharacterTokens(text) => state.text(&text),
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

impl TextState {
    fn tag(&mut self, tag: &Tag) -> TokenSinkResult<()> {
        let name = &*tag.name;
        if let Some((hidden, depth)) = self.hidden.as_mut() {
            if name == hidden.as_str() {
                match tag.kind {
                    StartTag if !tag.self_closing => *depth += 1,
                    EndTag if *depth > 1 => *depth -= 1,
                    EndTag => self.hidden = None,
                    StartTag => {}
                }
            }
            return TokenSinkResult::Continue;
        }
        if self.in_head && tag.kind == StartTag && !HEAD_ELEMENTS.contains(&name) {
            self.in_head = false;
        }
        match (tag.kind, name) {
            (StartTag, "head") => self.in_head = true,
            (EndTag, "head") => self.in_head = false,
            (StartTag, "br") => self.line_break(),
            (StartTag, "title") => {
                self.in_title = true;
                return TokenSinkResult::RawData(RawKind::Rcdata);
            }
            (EndTag, "title") => self.in_title = false,
            (StartTag, "h1") => self.h1 = Some(String::new()),
            (EndTag, "h1") => {
                if let Some(h1) = self.h1.take().map(|h| collapse(&h)).filter(|h| !h.is_empty()) {
                    self.first_h1.get_or_insert(h1);
                }
            }
            (StartTag, "pre") => self.pre_depth += 1,
            (EndTag, "pre") => self.pre_depth = self.pre_depth.saturating_sub(1),
            _ => {}
        }
        if tag.kind == StartTag && !tag.self_closing && HIDDEN.contains(&name) {
            self.hidden = Some((name.to_string(), 1));
            return match name {
                "script" => TokenSinkResult::RawData(RawKind::ScriptData),
                "style" | "noscript" | "iframe" => TokenSinkResult::RawData(RawKind::Rawtext),
                _ => TokenSinkResult::Continue,
            };
        }
        if tag.kind == StartTag && name == "textarea" {
            return TokenSinkResult::RawData(RawKind::Rcdata);
        }
        if BLOCKS.contains(&name) {
            self.paragraph_break();
        }
        TokenSinkResult::Continue
    }

    fn text(&mut self, text: &str) {
        if self.hidden.is_some() {
            return;
        }
        if self.in_title {
            self.title.get_or_insert_with(String::new).push_str(text);
            return;
        }
        if self.in_head {
            if text.trim().is_empty() {
                return;
            }
            // Text cannot be in `<head>`: a browser ends the head here and shows it.
            self.in_head = false;
        }
        if let Some(h1) = self.h1.as_mut() {
            h1.push_str(text);
        }
        if self.pre_depth > 0 {
            self.out.push_str(text);
            return;
        }
        // Collapse whitespace as a browser renders it; a run at a paragraph start is dropped.
        for (index, word) in text.split(|c: char| c.is_ascii_whitespace()).enumerate() {
            if index > 0 && !self.out.is_empty() && !self.out.ends_with([' ', '\n']) {
                self.out.push(' ');
            }
            self.out.push_str(word);
        }
    }

    fn line_break(&mut self) {
        let trimmed = self.out.trim_end_matches(' ').len();
        self.out.truncate(trimmed);
        if !self.out.is_empty() && !self.out.ends_with('\n') {
            self.out.push('\n');
        }
    }

    fn paragraph_break(&mut self) {
        let trimmed = self.out.trim_end_matches(' ').len();
        self.out.truncate(trimmed);
        if !self.out.is_empty() && !self.out.ends_with("\n\n") {
            self.out.push_str(if self.out.ends_with('\n') { "\n" } else { "\n\n" });
        }
    }
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_text_only_with_entities_decoded() {
        let page = r#"<!DOCTYPE html><html><head><meta charset="utf-8"><title> Capibaras &amp; compañía </title>
            <style>body { color: red; }</style><script>var x = "<p>no</p>"; if (a < b) {}</script></head>
            <body><!-- comentario --><h1>La capibara</h1><p>Es el roedor m&aacute;s   grande
            del mundo.</p><div>Vive en <b>Sudam&eacute;rica</b>&nbsp;&mdash; cerca del agua.</div>
            <script>document.write("oculto")</script><ul><li>Uno</li><li>Dos</li></ul></body></html>"#;
        let html = html_to_text(page);
        assert_eq!(html.title.as_deref(), Some("Capibaras & compañía"));
        assert_eq!(
            html.text,
            "La capibara\n\nEs el roedor más grande del mundo.\n\nVive en Sudamérica — cerca del agua.\n\nUno\n\nDos"
        );
    }

    #[test]
    fn title_falls_back_to_the_first_h1_and_pre_keeps_lines() {
        let html =
            html_to_text("<h1>  Guía\n rápida </h1><pre>línea 1\n  línea 2</pre><p>fin<br>de verdad</p>");
        assert_eq!(html.title.as_deref(), Some("Guía rápida"));
        assert_eq!(html.text, "Guía rápida\n\nlínea 1\n  línea 2\n\nfin\nde verdad");
    }

    #[test]
    fn a_head_left_open_ends_at_the_first_body_element() {
        let html = html_to_text("<html><head><title>T</title><meta x=1><p>visible<p>también");
        assert_eq!(html.title.as_deref(), Some("T"));
        assert_eq!(html.text, "visible\n\ntambién");
    }

    #[test]
    fn nested_hidden_elements_and_unclosed_markup() {
        let html = html_to_text("<p>antes<svg><g><svg></svg><text>x</text></g></svg>después<p>sin cerrar");
        assert_eq!(html.text, "antesdespués\n\nsin cerrar");
    }
}
