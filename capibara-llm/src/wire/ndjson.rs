//! Incremental newline-delimited JSON splitter (Ollama streams).
//!
//! [`LineSplitter::push`] appends bytes as they arrive; [`LineSplitter::next_line`] returns each
//! complete line without its `\n` (or `\r\n`), borrowing it from the splitter's buffer. Blank lines
//! are returned too (Ollama-compatible servers may send them as keep-alives); callers skip them.

use memchr::memchr;

/// Incremental line splitter; see the [module docs](self).
#[derive(Debug, Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
    /// First byte not yet returned.
    start: usize,
    /// Bytes before this offset (from `start`) are known to hold no `\n`.
    scanned: usize,
}

impl LineSplitter {
    /// An empty splitter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes received from the network.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.scanned = 0;
        } else if self.start > 0 {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
        }
        self.start = 0;
        self.buf.extend_from_slice(chunk);
    }

    /// Bytes received but not yet returned (an unfinished line).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete line, if the bytes pushed so far finish one.
    pub fn next_line(&mut self) -> Option<&[u8]> {
        let from = self.scanned.max(self.start);
        let Some(offset) = memchr(b'\n', &self.buf[from..]) else {
            self.scanned = self.buf.len();
            return None;
        };
        let end = from + offset;
        let line = self.start..end;
        self.start = end + 1;
        self.scanned = self.start;
        Some(trim_cr(&self.buf[line]))
    }

    /// Ends the input: returns the last line if the stream stopped without a final `\n`.
    pub fn finish(&mut self) -> Option<&[u8]> {
        if self.start == self.buf.len() {
            return None;
        }
        let line = self.start..self.buf.len();
        self.start = self.buf.len();
        self.scanned = self.start;
        Some(trim_cr(&self.buf[line]))
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(input: &[u8], cuts: &[usize]) -> Vec<String> {
        let mut splitter = LineSplitter::new();
        let mut out = Vec::new();
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            splitter.push(&input[start..cut]);
            while let Some(line) = splitter.next_line() {
                out.push(String::from_utf8(line.to_vec()).unwrap());
            }
            start = cut;
        }
        if let Some(line) = splitter.finish() {
            out.push(String::from_utf8(line.to_vec()).unwrap());
        }
        out
    }

    const INPUT: &str = "{\"a\":\"ñ\"}\n\n{\"b\":2}\r\n{\"done\":true}";

    fn expected() -> Vec<String> {
        vec!["{\"a\":\"ñ\"}".into(), String::new(), "{\"b\":2}".into(), "{\"done\":true}".into()]
    }

    #[test]
    fn every_split_position_gives_the_same_lines() {
        let input = INPUT.as_bytes();
        for a in 0..=input.len() {
            for b in a..=input.len() {
                assert_eq!(split(input, &[a, b]), expected(), "split at {a} and {b}");
            }
        }
    }

    #[test]
    fn byte_by_byte_gives_the_same_lines() {
        let input = INPUT.as_bytes();
        let cuts: Vec<usize> = (1..input.len()).collect();
        assert_eq!(split(input, &cuts), expected());
    }

    #[test]
    fn a_final_newline_leaves_nothing_to_finish() {
        assert_eq!(split(b"x\n", &[]), vec!["x".to_owned()]);
    }
}
