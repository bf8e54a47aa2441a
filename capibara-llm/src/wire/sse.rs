//! Incremental Server-Sent Events parser (and a small frame writer).
//!
//! Bytes arrive in whatever pieces the network delivers; [`SseParser::push`] appends them and
//! [`SseParser::next_event`] returns each complete event, borrowing its data from the parser's
//! buffer. It handles `data:` lines (joined with `\n` when a frame has several), `event:` and `id:`
//! fields, `:` comments (keep-alives), LF, CRLF and lone CR line ends, and frames or line ends split
//! across pieces. Lines are found with `memchr`, never byte by byte.

use std::ops::Range;

use memchr::{memchr, memchr2};

/// One dispatched event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The `event:` field, when the frame had one.
    pub event: Option<&'a str>,
    /// The `data:` lines joined with `\n`.
    pub data: &'a [u8],
    /// The `id:` field, when the frame had one.
    pub id: Option<&'a str>,
}

impl<'a> SseEvent<'a> {
    /// The data as text.
    pub fn text(&self) -> Result<&'a str, std::str::Utf8Error> {
        std::str::from_utf8(self.data)
    }
}

/// Where the current frame's data lives.
#[derive(Debug, Clone, Default)]
enum Data {
    /// No `data:` line yet.
    #[default]
    Empty,
    /// One `data:` line: its value is a range of the buffer, so nothing is copied.
    Line(Range<usize>),
    /// Several lines, joined in `joined`.
    Joined,
}

/// Incremental SSE parser; see the [module docs](self).
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    /// Start of the frame being assembled; bytes before it are consumed.
    frame_start: usize,
    /// First byte not yet split into lines.
    pos: usize,
    /// The last line ended with `\r` at the very end of the buffer: a `\n` that follows belongs to it.
    skip_lf: bool,
    data: Data,
    joined: Vec<u8>,
    event: Option<Range<usize>>,
    id: Option<Range<usize>>,
}

impl SseParser {
    /// An empty parser.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes received from the network.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.frame_start == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
            self.frame_start = 0;
        } else if self.frame_start > 0 {
            let shift = self.frame_start;
            self.buf.drain(..shift);
            self.pos -= shift;
            self.frame_start = 0;
            let rebase = |range: &mut Range<usize>| *range = range.start - shift..range.end - shift;
            if let Data::Line(range) = &mut self.data {
                rebase(range);
            }
            self.event.as_mut().map(rebase);
            self.id.as_mut().map(rebase);
        }
        self.buf.extend_from_slice(chunk);
    }

    /// Bytes received but not yet returned as events (part of an unfinished frame).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.frame_start
    }

    /// The next complete event, if the bytes pushed so far finish one.
    pub fn next_event(&mut self) -> Option<SseEvent<'_>> {
        loop {
            if self.skip_lf && self.pos < self.buf.len() {
                self.skip_lf = false;
                if self.buf[self.pos] == b'\n' {
                    self.pos += 1;
                }
            }
            let offset = memchr2(b'\n', b'\r', &self.buf[self.pos..])?;
            let line = self.pos..self.pos + offset;
            self.pos = line.end + 1;
            if self.buf[line.end] == b'\r' {
                match self.buf.get(self.pos) {
                    Some(b'\n') => self.pos += 1,
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
            if line.is_empty() {
                if self.dispatch_ready() {
                    return Some(self.take_event());
                }
                continue;
            }
            self.read_line(line);
        }
    }

    /// Ends the input: returns the last frame if the stream stopped without its closing blank line.
    pub fn finish(&mut self) -> Option<SseEvent<'_>> {
        if self.pos < self.buf.len() {
            let line = self.pos..self.buf.len();
            self.pos = self.buf.len();
            self.read_line(line);
        }
        self.skip_lf = false;
        if self.dispatch_ready() { Some(self.take_event()) } else { None }
    }

    /// Whether the frame just ended has data; a frame without data is dropped, as the spec says.
    fn dispatch_ready(&mut self) -> bool {
        if matches!(self.data, Data::Empty) {
            self.event = None;
            self.id = None;
            self.frame_start = self.pos;
            return false;
        }
        true
    }

    fn take_event(&mut self) -> SseEvent<'_> {
        self.frame_start = self.pos;
        let data = std::mem::take(&mut self.data);
        let event = self.event.take();
        let id = self.id.take();
        let text = |range: Option<Range<usize>>| range.and_then(|r| std::str::from_utf8(&self.buf[r]).ok());
        SseEvent {
            event: text(event),
            id: text(id),
            data: match data {
                Data::Line(range) => &self.buf[range],
                Data::Joined => &self.joined,
                Data::Empty => &[],
            },
        }
    }

    fn read_line(&mut self, line: Range<usize>) {
        let bytes = &self.buf[line.clone()];
        if bytes.first() == Some(&b':') {
            return; // comment, e.g. a keep-alive
        }
        let (name, value) = match memchr(b':', bytes) {
            Some(colon) => {
                let mut start = line.start + colon + 1;
                if self.buf.get(start) == Some(&b' ') && start < line.end {
                    start += 1;
                }
                (line.start..line.start + colon, start..line.end)
            }
            None => (line.clone(), line.end..line.end),
        };
        match &self.buf[name] {
            b"data" => match std::mem::take(&mut self.data) {
                Data::Empty => self.data = Data::Line(value),
                Data::Line(first) => {
                    self.joined.clear();
                    self.joined.extend_from_slice(&self.buf[first]);
                    self.joined.push(b'\n');
                    self.joined.extend_from_slice(&self.buf[value]);
                    self.data = Data::Joined;
                }
                Data::Joined => {
                    self.joined.push(b'\n');
                    self.joined.extend_from_slice(&self.buf[value]);
                    self.data = Data::Joined;
                }
            },
            b"event" => self.event = Some(value),
            b"id" if memchr(0, &self.buf[value.clone()]).is_none() => self.id = Some(value),
            _ => {} // `retry:` and unknown fields are ignored
        }
    }
}

/// Appends one event frame to `out`: `event:` when given, one `data:` line per line of `data`, and
/// the closing blank line.
pub fn write_event(out: &mut Vec<u8>, event: Option<&str>, data: &[u8]) {
    if let Some(event) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(event.as_bytes());
        out.push(b'\n');
    }
    for line in data.split(|&b| b == b'\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.push(b'\n');
}

/// Appends a comment line (`: text`), used as a keep-alive.
pub fn write_comment(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b": ");
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Owned {
        event: Option<String>,
        data: String,
        id: Option<String>,
    }

    fn drain(parser: &mut SseParser, out: &mut Vec<Owned>) {
        while let Some(e) = parser.next_event() {
            out.push(Owned {
                event: e.event.map(str::to_owned),
                data: e.text().unwrap().to_owned(),
                id: e.id.map(str::to_owned),
            });
        }
    }

    fn parse_in_pieces(input: &[u8], cuts: &[usize]) -> Vec<Owned> {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            parser.push(&input[start..cut]);
            drain(&mut parser, &mut out);
            start = cut;
        }
        if let Some(e) = parser.finish() {
            out.push(Owned {
                event: e.event.map(str::to_owned),
                data: e.text().unwrap().to_owned(),
                id: e.id.map(str::to_owned),
            });
        }
        out
    }

    fn ev(event: Option<&str>, data: &str) -> Owned {
        Owned { event: event.map(str::to_owned), data: data.to_owned(), id: None }
    }

    const STREAM: &str = ": keep-alive\n\n\
        data: {\"a\":1}\n\n\
        data:{\"b\":2}\r\n\r\n\
        event: error\ndata: first\ndata: second\n\n\
        : comment inside\r\ndata: x\rdata: y\r\r\
        id: 7\ndata: [DONE]\n\n";

    fn expected() -> Vec<Owned> {
        vec![
            ev(None, "{\"a\":1}"),
            ev(None, "{\"b\":2}"),
            ev(Some("error"), "first\nsecond"),
            ev(None, "x\ny"),
            Owned { event: None, data: "[DONE]".into(), id: Some("7".into()) },
        ]
    }

    #[test]
    fn whole_input_parses() {
        assert_eq!(parse_in_pieces(STREAM.as_bytes(), &[]), expected());
    }

    #[test]
    fn every_single_split_position_gives_the_same_events() {
        let input = STREAM.as_bytes();
        for cut in 0..=input.len() {
            assert_eq!(parse_in_pieces(input, &[cut]), expected(), "split at {cut}");
        }
    }

    #[test]
    fn every_pair_of_split_positions_gives_the_same_events() {
        let input = STREAM.as_bytes();
        for a in 0..=input.len() {
            for b in a..=input.len() {
                assert_eq!(parse_in_pieces(input, &[a, b]), expected(), "split at {a} and {b}");
            }
        }
    }

    #[test]
    fn byte_by_byte_gives_the_same_events() {
        let input = STREAM.as_bytes();
        let cuts: Vec<usize> = (1..input.len()).collect();
        assert_eq!(parse_in_pieces(input, &cuts), expected());
    }

    #[test]
    fn frames_without_data_are_not_dispatched() {
        assert!(parse_in_pieces(b"event: ping\n\n: c\n\nretry: 10\n\n", &[]).is_empty());
    }

    #[test]
    fn a_last_frame_without_blank_line_is_flushed_at_the_end() {
        assert_eq!(parse_in_pieces(b"data: a\n\ndata: tail", &[]), vec![ev(None, "a"), ev(None, "tail")]);
    }

    #[test]
    fn empty_data_and_fields_without_colon() {
        assert_eq!(
            parse_in_pieces(b"data\n\ndata:\n\ndata:  two\n\n", &[]),
            vec![ev(None, ""), ev(None, ""), ev(None, " two")]
        );
    }

    #[test]
    fn written_frames_read_back() {
        let mut out = Vec::new();
        write_comment(&mut out, "keep-alive");
        write_event(&mut out, None, b"{\"x\":1}");
        write_event(&mut out, Some("error"), b"one\ntwo");
        assert_eq!(parse_in_pieces(&out, &[]), vec![ev(None, "{\"x\":1}"), ev(Some("error"), "one\ntwo")]);
    }
}
