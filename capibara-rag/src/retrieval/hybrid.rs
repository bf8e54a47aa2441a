//! [`HybridIndex`]: one collection searched lexically (BM25), densely (an [`Embedder`] and a
//! [`VectorStore`]) or both fused, with metadata pre-filters and a time budget.
//!
//! The BM25 side lives in memory beside the vector store and mirrors it: [`HybridIndex::add`]
//! writes both, and a process that starts on an existing store reloads the lexical side from the
//! records it kept elsewhere ([`HybridIndex::load_lexical`]), e.g. the chunks table of the
//! relational store.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use capibara_core::embed::Embedder;
use capibara_core::vector::{Filter, MAX_K, Metadata, ScoredRecord, VectorQuery, VectorRecord, VectorStore};
use capibara_core::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::fusion::{Fuse, Fusion, Ranked};
use crate::lexical::{Analyzer, Bm25Index};
use crate::vector::filter::matches;

/// Longest query accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;
/// Texts per embedding call when adding.
const EMBED_BATCH: usize = 64;

/// Which ranking a search uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchMode {
    /// BM25 only.
    Lexical,
    /// Embeddings only.
    Dense,
    /// Both, fused.
    #[default]
    Hybrid,
}

/// One text to index: an id (content hash for chunks), the text and its filterable metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexedText {
    /// Stable id; adding the same id again replaces the entry.
    pub id: String,
    /// The text, embedded and analysed.
    pub text: String,
    /// Metadata for filters and for the caller.
    #[serde(default)]
    pub metadata: Metadata,
}

/// A search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchRequest {
    /// The query text.
    pub query: String,
    /// How many hits (1..=[`MAX_K`]).
    pub k: usize,
    /// Metadata pre-filter, applied before ranking on both sides.
    #[serde(default)]
    pub filter: Option<Filter>,
    /// Which ranking.
    #[serde(default)]
    pub mode: SearchMode,
}

/// One hit, best first in [`SearchOutcome::hits`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    /// The entry's id.
    pub id: String,
    /// Its text.
    pub text: String,
    /// Its metadata.
    pub metadata: Metadata,
    /// The score of the mode's ranking (fused score in hybrid mode); higher is better.
    pub score: f32,
    /// The BM25 score, when the lexical side found it.
    pub lexical_score: Option<f32>,
    /// The inner product with the query, when the dense side found it.
    pub dense_score: Option<f32>,
}

/// The result of a search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchOutcome {
    /// Best first, at most `k`.
    pub hits: Vec<SearchHit>,
    /// The budget ran out before the dense side answered: the hits are the lexical ones only.
    pub partial: bool,
    /// How many candidates the lexical side matched (before `k`), 0 in dense mode.
    pub lexical_matches: usize,
    /// Wall time of the search, in milliseconds.
    pub took_ms: f64,
}

#[derive(Debug)]
struct LexicalSide {
    bm25: Bm25Index,
    docs: HashMap<String, (String, Metadata)>,
    field_counts: HashMap<String, usize>,
    /// XOR of the hashes of the ids in `docs` (see [`HybridIndex::fingerprint`]).
    fingerprint: u64,
}

/// A stable 64-bit hash of an entry id (the first 8 bytes of its SHA-256).
fn id_hash(id: &str) -> u64 {
    let digest = Sha256::digest(id.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(bytes)
}

impl LexicalSide {
    fn insert(&mut self, entry: IndexedText) -> Result<()> {
        self.remove(&entry.id);
        self.bm25.add(entry.id.clone(), &entry.text)?;
        for field in entry.metadata.keys() {
            *self.field_counts.entry(field.clone()).or_default() += 1;
        }
        self.fingerprint ^= id_hash(&entry.id);
        self.docs.insert(entry.id, (entry.text, entry.metadata));
        Ok(())
    }

    fn remove(&mut self, id: &str) -> bool {
        let Some((_, metadata)) = self.docs.remove(id) else { return false };
        self.fingerprint ^= id_hash(id);
        self.bm25.remove(id);
        for field in metadata.keys() {
            if let Some(count) = self.field_counts.get_mut(field) {
                *count -= 1;
                if *count == 0 {
                    self.field_counts.remove(field);
                }
            }
        }
        true
    }
}

/// A collection searchable lexically, densely or both (see the module docs).
pub struct HybridIndex {
    embedder: Arc<dyn Embedder>,
    store: Arc<dyn VectorStore>,
    collection: String,
    lexical: RwLock<LexicalSide>,
    fusion: Fusion,
}

impl std::fmt::Debug for HybridIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HybridIndex")
            .field("embedder", &self.embedder.model_id())
            .field("collection", &self.collection)
            .field("fusion", &self.fusion)
            .finish_non_exhaustive()
    }
}

impl HybridIndex {
    /// An index over `collection` of `store` (created with the embedder's dimension when
    /// missing), analysing text with `analyzer` and fusing with `fusion`.
    pub async fn open(
        embedder: Arc<dyn Embedder>,
        store: Arc<dyn VectorStore>,
        collection: impl Into<String>,
        analyzer: Analyzer,
        fusion: Fusion,
    ) -> Result<Self> {
        fusion.validate()?;
        let collection = collection.into();
        store.ensure_collection(&collection, embedder.dimension()).await?;
        let lexical = LexicalSide {
            bm25: Bm25Index::new(analyzer),
            docs: HashMap::new(),
            field_counts: HashMap::new(),
            fingerprint: 0,
        };
        Ok(Self { embedder, store, collection, lexical: RwLock::new(lexical), fusion })
    }

    /// The collection's name.
    pub fn collection(&self) -> &str {
        &self.collection
    }

    /// The embedder.
    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.embedder
    }

    /// The vector store.
    pub fn store(&self) -> &Arc<dyn VectorStore> {
        &self.store
    }

    /// A fingerprint of the indexed entries (their ids, which are content hashes): equal
    /// whenever two indexes hold the same entries, in any process, and different after any
    /// change. Caches key results with it, so a cached result never outlives the data it came from.
    pub fn fingerprint(&self) -> u64 {
        self.read_lexical().fingerprint
    }

    /// The lexical analyzer.
    pub fn analyzer(&self) -> Analyzer {
        self.read_lexical().bm25.analyzer().clone()
    }

    /// Fills the lexical side from entries already in the vector store (no embedding).
    pub fn load_lexical(&self, entries: impl IntoIterator<Item = IndexedText>) -> Result<usize> {
        let mut lexical = self.write_lexical();
        let mut loaded = 0;
        for entry in entries {
            lexical.insert(entry)?;
            loaded += 1;
        }
        Ok(loaded)
    }

    /// Number of entries on the lexical side.
    pub fn len(&self) -> usize {
        self.read_lexical().docs.len()
    }

    /// Whether the index holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Embeds `entries` (in batches) and writes them to both sides; an existing id is replaced.
    pub async fn add(&self, entries: Vec<IndexedText>) -> Result<()> {
        for batch in entries.chunks(EMBED_BATCH) {
            let texts: Vec<String> = batch.iter().map(|entry| entry.text.clone()).collect();
            let vectors = self.embedder.embed(&texts).await?;
            if vectors.len() != batch.len() {
                return Err(Error::internal(format!(
                    "the embedder returned {} vectors for {} texts",
                    vectors.len(),
                    batch.len()
                )));
            }
            let records = batch
                .iter()
                .zip(vectors)
                .map(|(entry, vector)| VectorRecord {
                    id: entry.id.clone(),
                    vector,
                    text: entry.text.clone(),
                    metadata: entry.metadata.clone(),
                })
                .collect();
            // The vector store first: a lexical entry without its vector would be served by
            // lexical search while dense search cannot see it.
            self.store.upsert(&self.collection, records).await?;
            let mut lexical = self.write_lexical();
            for entry in batch {
                lexical.insert(entry.clone())?;
            }
        }
        Ok(())
    }

    /// Removes entries from both sides; returns how many the vector store held.
    pub async fn remove(&self, ids: &[String]) -> Result<u64> {
        {
            let mut lexical = self.write_lexical();
            for id in ids {
                lexical.remove(id);
            }
        }
        self.store.delete(&self.collection, ids).await
    }

    /// Searches within `budget` (none = wait for both sides). When the budget runs out before
    /// the dense side answers, hybrid mode returns the lexical ranking flagged `partial`, and
    /// dense mode fails with [`Error::Timeout`].
    pub async fn search(&self, request: &SearchRequest, budget: Option<Duration>) -> Result<SearchOutcome> {
        let started = Instant::now();
        validate(request)?;
        let lexical = match request.mode {
            SearchMode::Dense => Vec::new(),
            SearchMode::Lexical | SearchMode::Hybrid => self.lexical_ranking(request)?,
        };
        let lexical_matches = lexical.len();
        let (dense, partial) = match request.mode {
            SearchMode::Lexical => (Vec::new(), false),
            SearchMode::Dense | SearchMode::Hybrid => {
                let remaining = budget.map(|budget| budget.saturating_sub(started.elapsed()));
                let search = self.dense_ranking(request);
                match remaining {
                    None => (search.await?, false),
                    Some(remaining) => match tokio::time::timeout(remaining, search).await {
                        Ok(ranking) => (ranking?, false),
                        Err(_) if request.mode == SearchMode::Hybrid => (Vec::new(), true),
                        Err(_) => {
                            return Err(Error::Timeout(format!(
                                "dense search did not answer within {} ms",
                                budget.unwrap_or_default().as_millis()
                            )));
                        }
                    },
                }
            }
        };
        let hits = self.assemble(request, &lexical, &dense, partial);
        Ok(SearchOutcome { hits, partial, lexical_matches, took_ms: started.elapsed().as_secs_f64() * 1e3 })
    }

    fn lexical_ranking(&self, request: &SearchRequest) -> Result<Vec<Ranked>> {
        let lexical = self.read_lexical();
        if let Some(filter) = &request.filter
            && let Some(unknown) =
                filter.fields().into_iter().find(|f| !lexical.field_counts.contains_key(*f))
        {
            return Err(Error::invalid(format!(
                "unknown filter field '{unknown}' in collection '{}'",
                self.collection
            )));
        }
        if lexical.docs.is_empty() {
            return Ok(Vec::new());
        }
        let hits = match &request.filter {
            None => lexical.bm25.search(&request.query, request.k)?,
            Some(filter) => lexical.bm25.search_filtered(&request.query, request.k, |id| {
                lexical.docs.get(id).is_some_and(|(_, metadata)| matches(filter, metadata))
            })?,
        };
        Ok(hits.into_iter().map(|hit| Ranked::new(hit.id, hit.score)).collect())
    }

    async fn dense_ranking(&self, request: &SearchRequest) -> Result<Vec<ScoredRecord>> {
        let vector = self
            .embedder
            .embed(std::slice::from_ref(&request.query))
            .await?
            .pop()
            .ok_or_else(|| Error::internal("the embedder returned no vector for the query"))?;
        let query = VectorQuery { vector, k: request.k, filter: request.filter.clone() };
        self.store.search(&self.collection, &query).await
    }

    fn assemble(
        &self,
        request: &SearchRequest,
        lexical: &[Ranked],
        records: &[ScoredRecord],
        partial: bool,
    ) -> Vec<SearchHit> {
        let dense: Vec<Ranked> =
            records.iter().map(|hit| Ranked::new(hit.record.id.clone(), hit.score)).collect();
        let ranking = match request.mode {
            SearchMode::Lexical => lexical.to_vec(),
            SearchMode::Dense => dense.clone(),
            SearchMode::Hybrid if partial => lexical.to_vec(),
            SearchMode::Hybrid => self.fusion.fuse(lexical, &dense, request.k),
        };
        let score_in = |list: &[Ranked], id: &str| list.iter().find(|hit| hit.id == id).map(|hit| hit.score);
        let side = self.read_lexical();
        ranking
            .into_iter()
            .take(request.k)
            .filter_map(|ranked| {
                // Text and metadata from the lexical side, or from the vector store's record; an
                // entry removed between ranking and assembly is left out.
                let (text, metadata) = match side.docs.get(&ranked.id) {
                    Some(doc) => doc.clone(),
                    None => records
                        .iter()
                        .find(|hit| hit.record.id == ranked.id)
                        .map(|hit| (hit.record.text.clone(), hit.record.metadata.clone()))?,
                };
                Some(SearchHit {
                    lexical_score: score_in(lexical, &ranked.id),
                    dense_score: score_in(&dense, &ranked.id),
                    id: ranked.id,
                    text,
                    metadata,
                    score: ranked.score,
                })
            })
            .collect()
    }

    fn read_lexical(&self) -> std::sync::RwLockReadGuard<'_, LexicalSide> {
        // Every mutation is a complete insert or remove, so a poisoned lock still holds
        // consistent data.
        self.lexical.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write_lexical(&self) -> std::sync::RwLockWriteGuard<'_, LexicalSide> {
        self.lexical.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn validate(request: &SearchRequest) -> Result<()> {
    if request.query.trim().is_empty() {
        return Err(Error::invalid("query is empty"));
    }
    if request.query.len() > MAX_QUERY_BYTES {
        return Err(Error::TooLarge(format!(
            "query has {} bytes; at most {MAX_QUERY_BYTES}",
            request.query.len()
        )));
    }
    if request.k == 0 || request.k > MAX_K {
        return Err(Error::invalid(format!("k must be between 1 and {MAX_K}, got {}", request.k)));
    }
    if let Some(filter) = &request.filter {
        filter.validate()?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "hybrid_tests.rs"]
mod tests;
