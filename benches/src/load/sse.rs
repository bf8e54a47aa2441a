//! Reading an OpenAI chat stream incrementally: server-sent events split at any byte, each event's
//! data classified as a content chunk, another chunk, an error, or the closing `[DONE]`.

use std::borrow::Cow;

use serde::Deserialize;

/// What one event of a chat completion stream says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamItem {
    /// A chunk with a non-empty `delta.content`: one token of the answer.
    Content,
    /// A chunk without content: the role, the finish reason, the usage.
    Other,
    /// `data: [DONE]`, the last event of a complete answer.
    Done,
    /// A chunk carrying an `error` object (the answer broke off).
    Error(String),
    /// Data that is not a chat completion chunk.
    Malformed(String),
}

/// The parts of a chunk the benchmark looks at; everything else is skipped unparsed.
#[derive(Deserialize)]
struct ChunkView<'a> {
    #[serde(borrow, default)]
    choices: Vec<ChoiceView<'a>>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ChoiceView<'a> {
    #[serde(borrow, default)]
    delta: Option<DeltaView<'a>>,
}

#[derive(Deserialize)]
struct DeltaView<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
}

/// Classifies the data of one event.
pub fn classify(data: &[u8]) -> StreamItem {
    if data == b"[DONE]" {
        return StreamItem::Done;
    }
    match serde_json::from_slice::<ChunkView<'_>>(data) {
        Ok(chunk) => {
            if let Some(error) = chunk.error {
                let message = error.get("message").and_then(|m| m.as_str()).map(str::to_owned);
                return StreamItem::Error(message.unwrap_or_else(|| error.to_string()));
            }
            let has_content = chunk.choices.iter().any(|choice| {
                choice.delta.as_ref().and_then(|d| d.content.as_ref()).is_some_and(|c| !c.is_empty())
            });
            if has_content { StreamItem::Content } else { StreamItem::Other }
        }
        Err(error) => {
            let shown = String::from_utf8_lossy(&data[..data.len().min(120)]).into_owned();
            StreamItem::Malformed(format!("{error}: {shown}"))
        }
    }
}

/// An incremental server-sent-events reader: bytes in, classified events out.
///
/// Follows the SSE rules the OpenAI-compatible servers rely on: lines end in `\n` or `\r\n`, `data:`
/// lines of one event are joined with `\n`, a blank line dispatches the event, comment lines (`:`)
/// and other fields are ignored.
#[derive(Debug, Default)]
pub struct SseReader {
    /// Bytes of a line not yet complete.
    pending: Vec<u8>,
    /// Data of the event being read.
    data: Vec<u8>,
    /// Whether the event being read has a `data` field (an empty one counts).
    has_data: bool,
}

impl SseReader {
    /// Feeds the next bytes of the body, calling `on_item` for every event they complete.
    pub fn feed(&mut self, bytes: &[u8], mut on_item: impl FnMut(StreamItem)) {
        let mut rest = bytes;
        while let Some(end) = memchr::memchr(b'\n', rest) {
            let (line, after) = rest.split_at(end);
            rest = &after[1..];
            if self.pending.is_empty() {
                self.line(line, &mut on_item);
            } else {
                let mut joined = std::mem::take(&mut self.pending);
                joined.extend_from_slice(line);
                self.line(&joined, &mut on_item);
            }
        }
        self.pending.extend_from_slice(rest);
    }

    fn line(&mut self, line: &[u8], on_item: &mut impl FnMut(StreamItem)) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            if self.has_data {
                on_item(classify(&self.data));
                self.data.clear();
                self.has_data = false;
            }
            return;
        }
        if let Some(value) = line.strip_prefix(b"data:") {
            let value = value.strip_prefix(b" ").unwrap_or(value);
            if self.has_data {
                self.data.push(b'\n');
            }
            self.data.extend_from_slice(value);
            self.has_data = true;
        }
        // Comments (`: keep-alive`), `event:`, `id:` and `retry:` lines carry no chunk.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(parts: &[&[u8]]) -> Vec<StreamItem> {
        let mut reader = SseReader::default();
        let mut items = Vec::new();
        for part in parts {
            reader.feed(part, |item| items.push(item));
        }
        items
    }

    const CONTENT: &[u8] =
        br#"data: {"id":"c","choices":[{"index":0,"delta":{"content":"Hola "},"finish_reason":null}]}"#;
    const ROLE_ONLY: &[u8] = br#"data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#;

    #[test]
    fn events_split_anywhere_are_read_whole() {
        let mut stream = Vec::new();
        for frame in [ROLE_ONLY, CONTENT, CONTENT, b"data: [DONE]"] {
            stream.extend_from_slice(frame);
            stream.extend_from_slice(b"\n\n");
        }
        let expected = vec![StreamItem::Other, StreamItem::Content, StreamItem::Content, StreamItem::Done];
        for split in 0..stream.len() {
            let (a, b) = stream.split_at(split);
            assert_eq!(read_all(&[a, b]), expected, "split at {split}");
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(read_all(&bytes), expected);
    }

    #[test]
    fn crlf_lines_comments_and_multi_line_data() {
        let items = read_all(&[
            b": keep-alive\r\n\r\n",
            b"event: message\r\ndata: {\"choices\":[{\"delta\":\r\n",
            b"data: {\"content\":\"x\"}}]}\r\n\r\n",
            b"data: [DONE]\r\n\r\n",
        ]);
        assert_eq!(items, vec![StreamItem::Content, StreamItem::Done]);
    }

    #[test]
    fn usage_finish_and_escaped_content_are_told_apart() {
        assert_eq!(classify(br#"{"choices":[],"usage":{"prompt_tokens":3}}"#), StreamItem::Other);
        assert_eq!(classify(br#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#), StreamItem::Other);
        assert_eq!(classify(br#"{"choices":[{"delta":{"content":"a\"b\u00e9"}}]}"#), StreamItem::Content);
        assert_eq!(classify(br#"{"choices":[{"delta":{"content":null}}]}"#), StreamItem::Other);
    }

    #[test]
    fn error_frames_and_garbage_are_reported() {
        assert_eq!(
            classify(br#"{"error":{"message":"upstream broke","code":502}}"#),
            StreamItem::Error("upstream broke".to_owned())
        );
        assert!(matches!(classify(b"not json"), StreamItem::Malformed(_)));
    }

    #[test]
    fn an_event_without_its_blank_line_is_not_dispatched() {
        assert_eq!(read_all(&[CONTENT, b"\n"]), vec![]);
    }
}
