//! Okapi BM25 over an in-memory inverted index.
//!
//! A document's score for a query is the sum over the query's terms `t` (each once per occurrence
//! in the query) of
//!
//! ```text
//! idf(t) · tf · (k1 + 1) / (tf + k1 · (1 − b + b · len / avg_len))
//! idf(t) = ln(1 + (N − df + 0.5) / (df + 0.5))
//! ```
//!
//! where `tf` is the term's count in the document, `len` the document's term count, `avg_len` the
//! mean over the index, `N` the number of documents and `df` how many contain `t`. This `idf` (the
//! one Lucene uses) is positive even for terms in most documents.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, HashSet};

use capibara_core::{Error, Result};
use serde::{Deserialize, Serialize};

use super::analysis::Analyzer;

/// The largest `k` a search accepts: the same limit as vector search.
pub const MAX_K: usize = capibara_core::vector::MAX_K;

/// The two BM25 constants.
///
/// The defaults, `k1 = 0.9` and `b = 0.4`, are the values commonly used for BM25 baselines on
/// BEIR-style question → passage sets. On the Spanish XQuAD sets (Spanish analysis) they give
/// nDCG@10 0.964 (paragraphs) and 0.821 (sentences), against 0.962 and 0.807 with the textbook
/// `k1 = 1.5, b = 0.75` and 0.964 and 0.813 with `k1 = 1.2, b = 0.75`: weaker length normalisation
/// suits collections of similar-length chunks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Bm25Params {
    /// Term-frequency saturation: 0 counts a term once however often it appears; larger values let
    /// repeats weigh more. Finite and ≥ 0. Default 0.9.
    pub k1: f32,
    /// Length normalisation: 0 ignores document length, 1 normalises fully. In `[0, 1]`.
    /// Default 0.4.
    pub b: f32,
}

impl Default for Bm25Params {
    fn default() -> Self {
        Self { k1: 0.9, b: 0.4 }
    }
}

impl Bm25Params {
    /// Checks the ranges documented on the fields.
    pub fn validate(&self) -> Result<()> {
        if !self.k1.is_finite() || self.k1 < 0.0 {
            return Err(Error::invalid(format!("bm25 k1 must be finite and >= 0, got {}", self.k1)));
        }
        if !(0.0..=1.0).contains(&self.b) {
            return Err(Error::invalid(format!("bm25 b must be in [0, 1], got {}", self.b)));
        }
        Ok(())
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bm25Hit {
    /// The document's id.
    pub id: String,
    /// Its BM25 score; higher is better, always > 0.
    pub score: f32,
}

/// A BM25 index of documents identified by string ids.
///
/// ```
/// use capibara_rag::lexical::{Analyzer, Bm25Index, Language};
///
/// # fn demo() -> capibara_core::Result<()> {
/// let mut index = Bm25Index::new(Analyzer::new(Language::Spanish));
/// index.add("a", "El capibara es el roedor más grande del mundo.")?;
/// index.add("b", "La llama vive en los Andes.")?;
/// let hits = index.search("¿Cuál es el roedor más grande?", 5)?;
/// assert_eq!(hits[0].id, "a");
/// # Ok(()) }
/// # demo().unwrap();
/// ```
///
/// It serialises (serde) as its analyzer, its parameters, its vocabulary and each document's term
/// counts; the postings are rebuilt when it is read back, so a stored index is always consistent.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "Snapshot")]
pub struct Bm25Index {
    analyzer: Analyzer,
    params: Bm25Params,
    /// Documents by slot; removed documents leave `None` until the slot is reused.
    docs: Vec<Option<Doc>>,
    /// Each slot's term count (0 for an empty slot), kept apart for the scoring loop.
    doc_lens: Vec<u32>,
    free_slots: Vec<u32>,
    slot_of: HashMap<String, u32>,
    term_ids: HashMap<String, u32>,
    /// Indexed by term id; a term no document holds any more has no postings and an empty text.
    terms: Vec<Term>,
    free_terms: Vec<u32>,
    live_docs: usize,
    total_len: u64,
}

#[derive(Debug, Clone)]
struct Doc {
    id: String,
    /// (term id, count), one entry per distinct term.
    terms: Vec<(u32, u32)>,
}

#[derive(Debug, Clone, Default)]
struct Term {
    text: String,
    /// Sorted by slot.
    postings: Vec<Posting>,
}

#[derive(Debug, Clone, Copy)]
struct Posting {
    slot: u32,
    tf: u32,
}

impl Bm25Index {
    /// An empty index with the default [`Bm25Params`].
    pub fn new(analyzer: Analyzer) -> Self {
        Self {
            analyzer,
            params: Bm25Params::default(),
            docs: Vec::new(),
            doc_lens: Vec::new(),
            free_slots: Vec::new(),
            slot_of: HashMap::new(),
            term_ids: HashMap::new(),
            terms: Vec::new(),
            free_terms: Vec::new(),
            live_docs: 0,
            total_len: 0,
        }
    }

    /// An empty index with `params`; fails when they are out of range.
    pub fn with_params(analyzer: Analyzer, params: Bm25Params) -> Result<Self> {
        params.validate()?;
        let mut index = Self::new(analyzer);
        index.params = params;
        Ok(index)
    }

    /// The analyzer applied to documents and queries.
    pub fn analyzer(&self) -> &Analyzer {
        &self.analyzer
    }

    /// The BM25 constants.
    pub fn params(&self) -> Bm25Params {
        self.params
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.live_docs
    }

    /// Whether the index holds no documents.
    pub fn is_empty(&self) -> bool {
        self.live_docs == 0
    }

    /// Whether a document with this id is indexed.
    pub fn contains(&self, id: &str) -> bool {
        self.slot_of.contains_key(id)
    }

    /// Number of distinct terms in the indexed documents.
    pub fn vocabulary_len(&self) -> usize {
        self.term_ids.len()
    }

    /// Mean number of terms per document (0 when empty).
    pub fn avg_doc_len(&self) -> f64 {
        if self.live_docs == 0 { 0.0 } else { self.total_len as f64 / self.live_docs as f64 }
    }

    /// The indexed document ids, in no particular order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.slot_of.keys().map(String::as_str)
    }

    /// Indexes `text` under `id`, replacing any document with that id. A text without indexable
    /// terms is kept (it counts in the statistics) but no query matches it. Fails on an empty id.
    pub fn add(&mut self, id: impl Into<String>, text: &str) -> Result<()> {
        let id = id.into();
        if id.is_empty() {
            return Err(Error::invalid("bm25 document id is empty"));
        }
        let terms = self.analyzer.terms(text);
        // Distinct terms in order of first appearance, so term numbering (and so the serialised
        // form) depends only on the documents added, not on hashing.
        let mut position: HashMap<&str, usize> = HashMap::with_capacity(terms.len());
        let mut counts: Vec<(&str, u32)> = Vec::with_capacity(terms.len());
        for term in &terms {
            match position.get(term.as_str()) {
                Some(&at) => {
                    if let Some(count) = counts.get_mut(at) {
                        count.1 += 1;
                    }
                }
                None => {
                    position.insert(term, counts.len());
                    counts.push((term, 1));
                }
            }
        }
        self.remove(&id);
        self.insert_counts(id, &counts)
    }

    /// Removes the document `id`; returns whether it was indexed.
    pub fn remove(&mut self, id: &str) -> bool {
        let Some(slot) = self.slot_of.remove(id) else { return false };
        let Some(doc) = self.docs.get_mut(slot as usize).and_then(Option::take) else { return false };
        for &(term_id, _) in &doc.terms {
            let Some(term) = self.terms.get_mut(term_id as usize) else { continue };
            if let Ok(at) = term.postings.binary_search_by_key(&slot, |p| p.slot) {
                term.postings.remove(at);
            }
            if term.postings.is_empty() {
                self.term_ids.remove(&term.text);
                term.text = String::new();
                term.postings = Vec::new();
                self.free_terms.push(term_id);
            }
        }
        if let Some(len) = self.doc_lens.get_mut(slot as usize) {
            self.total_len -= u64::from(*len);
            *len = 0;
        }
        self.free_slots.push(slot);
        self.live_docs -= 1;
        true
    }

    /// The best `k` documents for `query`, best first; equal scores in id order. Only documents
    /// sharing at least one term with the query are returned.
    ///
    /// Fails with [`Error::InvalidInput`] when `k` is 0 or above [`MAX_K`], when the query is blank
    /// and when it has no indexable terms (only stop words or punctuation).
    pub fn search(&self, query: &str, k: usize) -> Result<Vec<Bm25Hit>> {
        self.search_filtered(query, k, |_| true)
    }

    /// Like [`search`](Self::search) over only the documents whose id passes `keep`. The filter
    /// applies before the top `k` are chosen, so up to `k` passing documents are returned.
    pub fn search_filtered(
        &self,
        query: &str,
        k: usize,
        mut keep: impl FnMut(&str) -> bool,
    ) -> Result<Vec<Bm25Hit>> {
        if k == 0 || k > MAX_K {
            return Err(Error::invalid(format!("bm25 k must be between 1 and {MAX_K}, got {k}")));
        }
        if query.trim().is_empty() {
            return Err(Error::invalid("bm25 query is empty"));
        }
        let query_terms = self.analyzer.terms(query);
        if query_terms.is_empty() {
            return Err(Error::invalid(format!(
                "bm25 query has no indexable terms (only stop words or punctuation): {query:?}"
            )));
        }
        if self.live_docs == 0 {
            return Ok(Vec::new());
        }

        let (scores, touched) = self.accumulate(&query_terms);
        let mut best: BinaryHeap<Ranked<'_>> = BinaryHeap::with_capacity(k + 1);
        for slot in touched {
            let Some(Some(doc)) = self.docs.get(slot as usize) else { continue };
            let score = scores.get(slot as usize).copied().unwrap_or(0.0);
            let candidate = Ranked { score, id: &doc.id };
            // The heap's top is the worst kept hit; skip candidates that cannot enter.
            if best.len() == k && best.peek().is_some_and(|worst| candidate >= *worst) {
                continue;
            }
            if !keep(&doc.id) {
                continue;
            }
            best.push(candidate);
            if best.len() > k {
                best.pop();
            }
        }
        Ok(best
            .into_sorted_vec()
            .into_iter()
            .map(|r| Bm25Hit { id: r.id.to_owned(), score: r.score })
            .collect())
    }

    /// Term-at-a-time scoring: every slot's score, and the slots with a non-zero one.
    fn accumulate(&self, query_terms: &[String]) -> (Vec<f32>, Vec<u32>) {
        let n = self.live_docs as f32;
        let avg_len = (self.avg_doc_len() as f32).max(f32::MIN_POSITIVE);
        let Bm25Params { k1, b } = self.params;
        let mut scores = vec![0.0_f32; self.docs.len()];
        let mut touched = Vec::new();
        for text in query_terms {
            let Some(term) = self.term_ids.get(text).and_then(|&id| self.terms.get(id as usize)) else {
                continue;
            };
            let df = term.postings.len() as f32;
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            for posting in &term.postings {
                let slot = posting.slot as usize;
                let len = self.doc_lens.get(slot).copied().unwrap_or(0) as f32;
                let tf = posting.tf as f32;
                let weight = idf * tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * len / avg_len));
                if let Some(score) = scores.get_mut(slot) {
                    if *score == 0.0 {
                        touched.push(posting.slot);
                    }
                    *score += weight;
                }
            }
        }
        (scores, touched)
    }

    /// Indexes distinct terms with their counts under `id`, which must not be indexed.
    fn insert_counts(&mut self, id: String, counts: &[(&str, u32)]) -> Result<()> {
        // Everything that can fail comes before the first change to postings.
        let mut terms = Vec::with_capacity(counts.len());
        for &(text, tf) in counts {
            terms.push((self.intern(text)?, tf));
        }
        let slot = match self.free_slots.pop() {
            Some(slot) => slot,
            None => {
                // Slots and term ids are u32 to keep postings small.
                let slot = u32::try_from(self.docs.len())
                    .map_err(|_| Error::TooLarge("bm25 index is full (2^32 documents)".into()))?;
                self.docs.push(None);
                self.doc_lens.push(0);
                slot
            }
        };
        let mut len = 0_u64;
        for &(term_id, tf) in &terms {
            if let Some(term) = self.terms.get_mut(term_id as usize) {
                let at = match term.postings.last() {
                    Some(last) if last.slot > slot => term.postings.partition_point(|p| p.slot < slot),
                    _ => term.postings.len(),
                };
                term.postings.insert(at, Posting { slot, tf });
            }
            len += u64::from(tf);
        }
        terms.sort_unstable();
        if let Some(doc_len) = self.doc_lens.get_mut(slot as usize) {
            *doc_len = u32::try_from(len).unwrap_or(u32::MAX);
        }
        if let Some(entry) = self.docs.get_mut(slot as usize) {
            *entry = Some(Doc { id: id.clone(), terms });
        }
        self.slot_of.insert(id, slot);
        self.total_len += len;
        self.live_docs += 1;
        Ok(())
    }

    /// The id of `text`, adding it to the vocabulary when new.
    fn intern(&mut self, text: &str) -> Result<u32> {
        if let Some(&id) = self.term_ids.get(text) {
            return Ok(id);
        }
        let id = match self.free_terms.pop() {
            Some(id) => id,
            None => {
                let id = u32::try_from(self.terms.len())
                    .map_err(|_| Error::TooLarge("bm25 vocabulary is full (2^32 terms)".into()))?;
                self.terms.push(Term::default());
                id
            }
        };
        if let Some(term) = self.terms.get_mut(id as usize) {
            text.clone_into(&mut term.text);
        }
        self.term_ids.insert(text.to_owned(), id);
        Ok(id)
    }
}

/// A candidate hit, ordered so that the *worse* hit is the greater: lower score, then larger id.
/// A max-heap of these keeps the worst of the best `k` on top.
#[derive(Debug, PartialEq)]
struct Ranked<'a> {
    score: f32,
    id: &'a str,
}

impl Eq for Ranked<'_> {}

impl Ord for Ranked<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        other.score.total_cmp(&self.score).then_with(|| self.id.cmp(other.id))
    }
}

impl PartialOrd for Ranked<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The serialised form of a [`Bm25Index`], as read back.
#[derive(Deserialize)]
struct Snapshot {
    analyzer: Analyzer,
    params: Bm25Params,
    /// The vocabulary; documents refer to terms by position here.
    terms: Vec<String>,
    documents: Vec<SnapshotDoc>,
}

#[derive(Deserialize)]
struct SnapshotDoc {
    id: String,
    /// (position in `terms`, count).
    terms: Vec<(u32, u32)>,
}

/// The serialised form of a [`Bm25Index`], as written: borrowed, so writing copies no text.
#[derive(Serialize)]
struct SnapshotRef<'a> {
    analyzer: &'a Analyzer,
    params: Bm25Params,
    terms: Vec<&'a str>,
    documents: Vec<SnapshotDocRef<'a>>,
}

#[derive(Serialize)]
struct SnapshotDocRef<'a> {
    id: &'a str,
    terms: Vec<(u32, u32)>,
}

impl Serialize for Bm25Index {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        // Live terms only, renumbered densely in order of first use.
        let mut renumbered: HashMap<u32, u32> = HashMap::with_capacity(self.term_ids.len());
        let mut terms = Vec::with_capacity(self.term_ids.len());
        let mut documents = Vec::with_capacity(self.live_docs);
        for doc in self.docs.iter().flatten() {
            let doc_terms = doc
                .terms
                .iter()
                .map(|&(term_id, tf)| {
                    let position = *renumbered.entry(term_id).or_insert_with(|| {
                        terms.push(self.terms.get(term_id as usize).map_or("", |t| t.text.as_str()));
                        u32::try_from(terms.len() - 1).unwrap_or(u32::MAX)
                    });
                    (position, tf)
                })
                .collect();
            documents.push(SnapshotDocRef { id: &doc.id, terms: doc_terms });
        }
        SnapshotRef { analyzer: &self.analyzer, params: self.params, terms, documents }.serialize(serializer)
    }
}

impl TryFrom<Snapshot> for Bm25Index {
    type Error = Error;

    fn try_from(snapshot: Snapshot) -> Result<Self> {
        let mut index = Self::with_params(snapshot.analyzer, snapshot.params)?;
        for (n, doc) in snapshot.documents.into_iter().enumerate() {
            if doc.id.is_empty() {
                return Err(Error::invalid(format!("bm25 index: document {n} has an empty id")));
            }
            if index.contains(&doc.id) {
                return Err(Error::invalid(format!("bm25 index: document id {:?} appears twice", doc.id)));
            }
            let mut seen = HashSet::with_capacity(doc.terms.len());
            let mut counts = Vec::with_capacity(doc.terms.len());
            for (position, tf) in doc.terms {
                let Some(text) = snapshot.terms.get(position as usize) else {
                    return Err(Error::invalid(format!(
                        "bm25 index: document {:?} refers to term {position} of {}",
                        doc.id,
                        snapshot.terms.len()
                    )));
                };
                if tf == 0 || !seen.insert(text.as_str()) {
                    return Err(Error::invalid(format!(
                        "bm25 index: document {:?} has a zero or repeated count for term {text:?}",
                        doc.id
                    )));
                }
                counts.push((text.as_str(), tf));
            }
            index.insert_counts(doc.id, &counts)?;
        }
        Ok(index)
    }
}

#[cfg(test)]
#[path = "bm25_tests.rs"]
mod tests;
