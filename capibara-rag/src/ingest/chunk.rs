//! Splitting documents into chunks that fit the embedder's token budget.
//!
//! The text is cut into pieces, coarsest first: a paragraph that fits the budget is one piece; a
//! longer one is cut into sentences; a sentence still over the budget into words; a word over it
//! (a URL, a base64 blob) into runs of characters. Consecutive pieces are then packed greedily into
//! chunks of at most [`ChunkOptions::max_tokens`]. Every chunk after the first starts with an
//! overlap: the trailing sentences of the previous chunk — or its trailing words, when its last
//! sentence alone is over the overlap — worth at most [`ChunkOptions::overlap_tokens`].
//!
//! A chunk's text is exactly `document.text[start_byte..end_byte]`, it starts and ends on
//! non-whitespace, and its token count, as the [`TokenCounter`] counts the whole chunk, is within
//! the budget (a single character over the budget is the only exception, and cannot happen with a
//! budget of at least [`MIN_MAX_TOKENS`]).
//!
//! Chunk ids hash the document id and the chunk text, so an edit changes the ids of the chunks
//! holding it (and of the next chunk when its overlap repeats edited text). Packing is greedy from
//! the start, so an edit that grows or shrinks a paragraph past the room left in its chunk can
//! move the boundaries of the chunks after it too, until packing falls back into step.

use std::collections::HashMap;
use std::ops::Range;

use capibara_core::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::document::Document;
use super::ids::{chunk_id, normalize_for_id};
use super::segment::{paragraph_spans, sentence_spans, word_spans};
use super::tokens::{ApproxTokenCounter, TokenCounter};

/// The default budget: all-MiniLM-L6-v2 reads at most 256 tokens.
pub const DEFAULT_MAX_TOKENS: usize = 256;
/// The default overlap between consecutive chunks.
pub const DEFAULT_OVERLAP_TOKENS: usize = 32;
/// The smallest budget accepted.
pub const MIN_MAX_TOKENS: usize = 16;

/// How large chunks are and how much consecutive ones share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChunkOptions {
    /// The most tokens a chunk may have (special tokens included), at least [`MIN_MAX_TOKENS`].
    pub max_tokens: usize,
    /// The most tokens a chunk repeats from the end of the previous one; less than half of
    /// `max_tokens`. Zero turns overlap off.
    pub overlap_tokens: usize,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        Self { max_tokens: DEFAULT_MAX_TOKENS, overlap_tokens: DEFAULT_OVERLAP_TOKENS }
    }
}

impl ChunkOptions {
    /// Fails with [`Error::InvalidInput`] unless `max_tokens >= 16` and
    /// `overlap_tokens < max_tokens / 2`.
    pub fn validate(&self) -> Result<()> {
        if self.max_tokens < MIN_MAX_TOKENS {
            return Err(Error::invalid(format!(
                "chunk max_tokens is {}, it must be at least {MIN_MAX_TOKENS}",
                self.max_tokens
            )));
        }
        if self.overlap_tokens * 2 >= self.max_tokens {
            return Err(Error::invalid(format!(
                "chunk overlap_tokens is {}, it must be less than half of max_tokens ({})",
                self.overlap_tokens, self.max_tokens
            )));
        }
        Ok(())
    }
}

/// A piece of a document, ready to embed.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// 32 hex characters of a SHA-256 over the document id and the chunk's text (see
    /// [`chunk_id`]): the same input always gives the same id.
    pub id: String,
    /// The document's id.
    pub doc_id: String,
    /// The chunk's position in its document, from 0.
    pub index: usize,
    /// The text: `document.text[start_byte..end_byte]`.
    pub text: String,
    /// Where the text starts in the document's text.
    pub start_byte: usize,
    /// Where the text ends in the document's text (exclusive).
    pub end_byte: usize,
    /// The chunker's token count of `text`.
    pub token_estimate: usize,
    /// The document's metadata plus `source`, `doc_id`, `chunk_index` and, when the document has
    /// one, `title` (these four win over document fields of the same name).
    pub metadata: Map<String, Value>,
}

/// Splits documents into [`Chunk`]s.
#[derive(Debug, Clone)]
pub struct Chunker<C = ApproxTokenCounter> {
    options: ChunkOptions,
    counter: C,
}

impl Chunker {
    /// A chunker counting tokens with [`ApproxTokenCounter`]; fails when `options` are invalid
    /// (see [`ChunkOptions::validate`]).
    pub fn new(options: ChunkOptions) -> Result<Self> {
        Self::with_counter(options, ApproxTokenCounter)
    }
}

impl<C: TokenCounter> Chunker<C> {
    /// A chunker counting tokens with `counter`; fails when `options` are invalid.
    pub fn with_counter(options: ChunkOptions, counter: C) -> Result<Self> {
        options.validate()?;
        Ok(Self { options, counter })
    }

    /// The options in use.
    pub fn options(&self) -> ChunkOptions {
        self.options
    }

    /// The chunks of `document`, in text order; none when its text is empty or whitespace.
    ///
    /// Identical chunk texts within one document get distinct ids (see
    /// [`chunk_id`]'s `occurrence`).
    pub fn chunk(&self, document: &Document) -> Vec<Chunk> {
        let mut occurrences: HashMap<String, usize> = HashMap::new();
        self.split(&document.text)
            .into_iter()
            .enumerate()
            .map(|(index, span)| {
                let text = document.text[span.clone()].to_string();
                let occurrence = occurrences.entry(normalize_for_id(&text)).or_insert(0);
                let id = chunk_id(&document.doc_id, &text, *occurrence);
                *occurrence += 1;
                let mut metadata = document.metadata.clone();
                metadata.insert("source".into(), document.source.clone().into());
                metadata.insert("doc_id".into(), document.doc_id.clone().into());
                metadata.insert("chunk_index".into(), index.into());
                if let Some(title) = &document.title {
                    metadata.insert("title".into(), title.clone().into());
                }
                Chunk {
                    id,
                    doc_id: document.doc_id.clone(),
                    index,
                    token_estimate: self.counter.count(&text),
                    text,
                    start_byte: span.start,
                    end_byte: span.end,
                    metadata,
                }
            })
            .collect()
    }

    /// The chunks of every document, in order.
    pub fn chunk_all<'a>(&self, documents: impl IntoIterator<Item = &'a Document>) -> Vec<Chunk> {
        documents.into_iter().flat_map(|document| self.chunk(document)).collect()
    }

    /// The byte ranges of the chunks of `text`, in order (the chunking without ids or metadata).
    pub fn split(&self, text: &str) -> Vec<Range<usize>> {
        let pieces = self.pieces(text);
        let mut chunks: Vec<Range<usize>> = Vec::new();
        let mut next = 0;
        while next < pieces.len() {
            let first = &pieces[next];
            let start = match chunks.last() {
                Some(previous) => self.overlap_start(text, previous, first),
                None => first.start,
            };
            next = self.pack(text, start, &pieces, next);
            chunks.push(start..pieces[next - 1].end);
        }
        chunks
    }

    fn fits(&self, text: &str, span: Range<usize>) -> bool {
        self.counter.count(&text[span]) <= self.options.max_tokens
    }

    /// Paragraphs, or the sentences, words or character runs of the ones over the budget.
    fn pieces(&self, text: &str) -> Vec<Range<usize>> {
        let mut pieces = Vec::new();
        for paragraph in paragraph_spans(text) {
            if self.fits(text, paragraph.clone()) {
                pieces.push(paragraph);
                continue;
            }
            for sentence in within(&paragraph, sentence_spans(&text[paragraph.clone()])) {
                if self.fits(text, sentence.clone()) {
                    pieces.push(sentence);
                    continue;
                }
                for word in within(&sentence, word_spans(&text[sentence.clone()])) {
                    if self.fits(text, word.clone()) {
                        pieces.push(word);
                    } else {
                        self.split_word(text, word, &mut pieces);
                    }
                }
            }
        }
        pieces
    }

    /// Cuts a word over the budget into the longest runs of characters that fit.
    fn split_word(&self, text: &str, word: Range<usize>, pieces: &mut Vec<Range<usize>>) {
        let ends: Vec<usize> =
            text[word.clone()].char_indices().map(|(at, c)| word.start + at + c.len_utf8()).collect();
        let mut start = word.start;
        let mut done = 0;
        while done < ends.len() {
            let fitting = fitting_prefix(ends.len() - done, |k| self.fits(text, start..ends[done + k]));
            // At least one character, so a budget smaller than one character cannot loop forever.
            done += fitting.max(1);
            let end = ends[done - 1];
            pieces.push(start..end);
            start = end;
        }
    }

    /// The index after the last piece, from `first` on, that fits in one chunk starting at
    /// `start`; at least `first + 1`.
    fn pack(&self, text: &str, start: usize, pieces: &[Range<usize>], first: usize) -> usize {
        let rest = &pieces[first + 1..];
        first + 1 + fitting_prefix(rest.len(), |k| self.fits(text, start..rest[k].end))
    }

    /// Where the chunk that begins with `next` starts: the earliest sentence start (else word
    /// start) in `previous` such that the overlap fits `overlap_tokens` and the overlap plus `next`
    /// fits the budget; `next.start` when none does.
    fn overlap_start(&self, text: &str, previous: &Range<usize>, next: &Range<usize>) -> usize {
        if self.options.overlap_tokens == 0 {
            return next.start;
        }
        let usable = |start: usize| {
            self.counter.count(&text[start..previous.end]) <= self.options.overlap_tokens
                && self.fits(text, start..next.end)
        };
        let tail = &text[previous.clone()];
        let sentences: Vec<Range<usize>> = within(previous, paragraph_spans(tail))
            .into_iter()
            .flat_map(|paragraph| within(&paragraph, sentence_spans(&text[paragraph.clone()])))
            .collect();
        let earliest =
            |starts: &mut dyn Iterator<Item = usize>| starts.take_while(|&start| usable(start)).last();
        if let Some(start) = earliest(&mut sentences.iter().rev().map(|s| s.start)) {
            return start;
        }
        let Some(last_sentence) = sentences.last() else { return next.start };
        let words = within(last_sentence, word_spans(&text[last_sentence.clone()]));
        earliest(&mut words.iter().rev().map(|w| w.start)).unwrap_or(next.start)
    }
}

/// How many of the indices `0..n` pass `fits`, which holds for a prefix of them. Gallops (1, 2,
/// 4, … ahead) then bisects, so the cost follows the answer rather than `n`: a count costs time in
/// proportion to the text counted, and probing far past the budget would count far too much.
fn fitting_prefix(n: usize, fits: impl Fn(usize) -> bool) -> usize {
    let mut passed = 0;
    let mut failed = n;
    let mut step = 1;
    while passed < failed {
        let probe = (passed + step - 1).min(failed - 1);
        if fits(probe) {
            passed = probe + 1;
            step *= 2;
        } else {
            failed = probe;
            break;
        }
    }
    while passed < failed {
        let middle = passed + (failed - passed) / 2;
        if fits(middle) {
            passed = middle + 1;
        } else {
            failed = middle;
        }
    }
    passed
}

/// `spans` of `&text[outer]`, shifted to be ranges of `text`.
fn within(outer: &Range<usize>, spans: Vec<Range<usize>>) -> Vec<Range<usize>> {
    spans.into_iter().map(|span| outer.start + span.start..outer.start + span.end).collect()
}

#[cfg(test)]
#[path = "chunk_tests.rs"]
mod tests;
