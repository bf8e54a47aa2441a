//! One collection of a [`FaissStore`](super::FaissStore): its records (the source of truth, the
//! same [`Collection`] `ExactStore` keeps) and a FAISS index over them that follows every write.
//!
//! How a query is answered:
//! - `Flat`: an unfiltered query is searched in the `IndexFlatIP`; a filtered one scans the
//!   matching rows exactly (FAISS's flat search with a selector still visits every row, the scan
//!   of the matches only those).
//! - `Hnsw`: as `HnswStore` answers: fewer than [`FaissStoreOptions::exact_below_rows`] records
//!   are scanned exactly; a filter is evaluated over every record first, and few matches
//!   ([`FaissStoreOptions::filter_exact_rows`], [`FaissStoreOptions::filter_scan_factor`]) are
//!   scanned exactly, many searched in the graph with a bitmap of their nodes as FAISS's
//!   `IDSelector`. When the graph proposes fewer than `k` rows while at least `k` match, it is
//!   asked for four times as many (up to three times), then the matches are scanned exactly.
//!
//! Either way FAISS only proposes rows: they are scored again by the exact kernels and ranked as
//! `ExactStore` ranks (ties among them to the earlier insertion), so scores are true inner
//! products.

use std::path::Path;

use capibara_core::Result;
use capibara_core::vector::{VectorQuery, VectorRecord};

use super::super::collection::Collection;
use super::super::store::Engine;
use super::super::topk::Hit;
use super::super::wal::Apply;
use super::super::{filter, search};
use super::flat::FlatRows;
use super::hnsw::HnswGraph;
use super::{FaissIndex, FaissStoreOptions, file};

/// Requests for more candidates after the first before scanning exactly.
const MAX_RETRIES: usize = 3;

/// Unfiltered queries sent to FAISS in one call by `search_many` (bounds the result buffers).
const QUERY_CHUNK: usize = 1_024;

/// The FAISS index of a collection.
#[derive(Debug)]
enum Vectors {
    Flat(FlatRows),
    Hnsw(HnswGraph),
}

/// A collection with its FAISS index.
#[derive(Debug)]
pub(crate) struct FaissCollection {
    records: Collection,
    /// `None` while an HNSW collection is small, or after FAISS failed (until the next write).
    vectors: Option<Vectors>,
    options: FaissStoreOptions,
}

impl FaissCollection {
    /// Builds the index when there is none and it is due (always for `Flat`, from
    /// `exact_below_rows` records for `Hnsw`), and rebuilds a worn HNSW graph. A failure leaves no
    /// index: searches scan exactly until a later write builds it again.
    fn maintain(&mut self) {
        let built = match (&self.options.index, &self.vectors) {
            (FaissIndex::Flat, Some(_)) => return,
            (FaissIndex::Flat, None) => FlatRows::build(&self.records).map(Vectors::Flat),
            (FaissIndex::Hnsw(params), vectors) => {
                let worn = matches!(vectors, Some(Vectors::Hnsw(graph)) if graph.worn(self.options.rebuild_removed_share));
                if !worn && (vectors.is_some() || self.records.len() < self.options.exact_below_rows) {
                    return;
                }
                self.vectors = None;
                HnswGraph::build(&self.records, params).map(Vectors::Hnsw)
            }
        };
        match built {
            Ok(vectors) => self.vectors = Some(vectors),
            Err(error) => tracing::warn!(%error, "vector store: FAISS index build failed; scanning exactly"),
        }
    }

    /// Drops the index after a failed update (the next write rebuilds it).
    fn drop_index(&mut self, error: &capibara_core::Error) {
        tracing::warn!(%error, "vector store: FAISS index update failed; it is rebuilt on the next write");
        self.vectors = None;
    }

    /// The index, when searches use it.
    fn active(&self) -> Option<&Vectors> {
        match &self.vectors {
            Some(Vectors::Hnsw(_)) if self.records.len() < self.options.exact_below_rows => None,
            vectors => vectors.as_ref(),
        }
    }

    /// Whether `matching` rows selected by a filter are scanned instead of searched in the graph.
    fn scan_matches(&self, matching: usize, k: usize) -> bool {
        let (m, n) = (matching as f64, self.records.len() as f64);
        matching <= k
            || matching < self.options.filter_exact_rows
            || m * m < self.options.filter_scan_factor * n
    }

    /// The exact ranking of `candidates` when they are enough for `k` among `matching` rows.
    fn ranked(&self, query: &VectorQuery, candidates: &[usize], matching: usize) -> Option<Vec<Hit>> {
        (candidates.len() >= query.k.min(matching))
            .then(|| search::search_slots(&self.records, &query.vector, query.k, candidates))
    }

    fn search_flat(&self, flat: &FlatRows, query: &VectorQuery) -> Result<Vec<Hit>> {
        if query.filter.is_some() {
            return Ok(search::search(&self.records, query));
        }
        let candidates = flat.search(&query.vector, query.k)?.pop().unwrap_or_default();
        Ok(self
            .ranked(query, &candidates, flat.len())
            .unwrap_or_else(|| search::search(&self.records, query)))
    }

    fn search_graph(&self, graph: &HnswGraph, query: &VectorQuery) -> Result<Vec<Hit>> {
        let (allowed, matching) = match &query.filter {
            None => (None, self.records.len()),
            Some(filter) => {
                let slots = filter::select(filter, self.records.metadata());
                if self.scan_matches(slots.len(), query.k) {
                    return Ok(search::search_slots(&self.records, &query.vector, query.k, &slots));
                }
                (Some(graph.nodes_of(&slots)), slots.len())
            }
        };
        let mut count = query.k;
        for _ in 0..=MAX_RETRIES {
            let candidates =
                graph.search(&query.vector, count, allowed.as_deref())?.pop().unwrap_or_default();
            if let Some(hits) = self.ranked(query, &candidates, matching) {
                return Ok(hits);
            }
            if count >= matching {
                break;
            }
            count = count.saturating_mul(4).min(matching);
        }
        tracing::debug!(
            k = query.k,
            matching,
            "vector store: FAISS HNSW search fell short; scanning exactly"
        );
        Ok(search::search(&self.records, query))
    }

    /// The unfiltered `queries` (indexes into `all`) answered by one FAISS call per chunk, `None`
    /// for those whose candidates fell short (answered one by one).
    fn search_batch(
        &self,
        vectors: &Vectors,
        all: &[VectorQuery],
        queries: &[usize],
    ) -> Result<Vec<Option<Vec<Hit>>>> {
        let mut answers = Vec::with_capacity(queries.len());
        for chunk in queries.chunks(QUERY_CHUNK) {
            let k = chunk.iter().map(|i| all[*i].k).max().unwrap_or(1);
            let stacked: Vec<f32> = chunk.iter().flat_map(|i| all[*i].vector.iter().copied()).collect();
            let candidates = match vectors {
                Vectors::Flat(flat) => flat.search(&stacked, k)?,
                Vectors::Hnsw(graph) => graph.search(&stacked, k, None)?,
            };
            for (i, candidates) in chunk.iter().zip(candidates) {
                answers.push(self.ranked(&all[*i], &candidates, self.records.len()));
            }
        }
        Ok(answers)
    }

    fn search_one(&self, vectors: &Vectors, query: &VectorQuery) -> Result<Vec<Hit>> {
        match vectors {
            Vectors::Flat(flat) => self.search_flat(flat, query),
            Vectors::Hnsw(graph) => self.search_graph(graph, query),
        }
    }
}

impl Apply for FaissCollection {
    fn dimension(&self) -> usize {
        self.records.dimension()
    }

    fn upsert(&mut self, records: Vec<VectorRecord>) {
        let old_len = self.records.len();
        let mut replaced = Vec::new();
        let mut graph = match &mut self.vectors {
            Some(Vectors::Hnsw(graph)) => Some(graph),
            _ => None,
        };
        for record in records {
            match self.records.slot(&record.id) {
                Some(slot) => {
                    // A replaced record's old node goes; its slot is added again below.
                    if let Some(graph) = graph.as_mut() {
                        graph.remove(slot);
                    }
                    replaced.push(slot);
                }
                None => {
                    if let Some(graph) = graph.as_mut() {
                        graph.push_slot();
                    }
                }
            }
            self.records.upsert(record);
        }
        let followed = match &mut self.vectors {
            Some(Vectors::Flat(flat)) => flat.upserted(&self.records, &replaced, old_len),
            Some(Vectors::Hnsw(graph)) => {
                let fresh = graph.unindexed();
                graph.add(&self.records, &fresh)
            }
            None => Ok(()),
        };
        if let Err(error) = followed {
            self.drop_index(&error);
        }
        self.maintain();
    }

    fn delete(&mut self, ids: &[String]) -> u64 {
        let mut deleted = 0;
        let mut followed = Ok(());
        for id in ids {
            let Some(slot) = self.records.slot(id) else { continue };
            // The index mirrors the collection's swap-remove, so it goes first.
            match &mut self.vectors {
                Some(Vectors::Flat(flat)) => {
                    followed = followed.and_then(|()| flat.swap_remove(slot, self.records.len()));
                }
                Some(Vectors::Hnsw(graph)) => graph.swap_remove(slot),
                None => {}
            }
            self.records.delete(id);
            deleted += 1;
        }
        if let Some(Vectors::Flat(flat)) = &mut self.vectors {
            followed = followed.and_then(|()| flat.truncate(self.records.len()));
        }
        if let Err(error) = followed {
            self.drop_index(&error);
        }
        self.maintain();
        deleted
    }
}

impl Engine for FaissCollection {
    type Settings = FaissStoreOptions;
    // HNSW insertions cost about a millisecond each; flat ones copy rows.
    const BLOCKING_WRITES: bool = true;

    fn load(records: Collection, options: &FaissStoreOptions, files: Option<(&Path, u64)>) -> Result<Self> {
        let mut collection = Self { records, vectors: None, options: options.clone() };
        if let (FaissIndex::Hnsw(params), Some((dir, generation))) = (&options.index, files)
            && collection.records.len() >= options.exact_below_rows
        {
            collection.vectors = file::read(dir, generation, &collection.records, params).map(Vectors::Hnsw);
        }
        collection.maintain();
        Ok(collection)
    }

    fn records(&self) -> &Collection {
        &self.records
    }

    fn search(&self, query: &VectorQuery) -> Result<Vec<Hit>> {
        match self.active() {
            Some(vectors) => self.search_one(vectors, query),
            None => Ok(search::search(&self.records, query)),
        }
    }

    fn search_many(&self, queries: &[VectorQuery]) -> Result<Vec<Vec<Hit>>> {
        let Some(vectors) = self.active() else {
            return search::search_many(&self.records, queries);
        };
        let unfiltered: Vec<usize> = (0..queries.len()).filter(|i| queries[*i].filter.is_none()).collect();
        let mut answers: Vec<Option<Vec<Hit>>> = vec![None; queries.len()];
        for (i, hits) in unfiltered.iter().zip(self.search_batch(vectors, queries, &unfiltered)?) {
            answers[*i] = hits;
        }
        answers
            .into_iter()
            .zip(queries)
            .map(|(hits, query)| hits.map_or_else(|| self.search_one(vectors, query), Ok))
            .collect()
    }

    fn scan_rows(&self) -> usize {
        match self.active() {
            // A graph search scores a few thousand rows; a filtered one may scan up to
            // √(filter_scan_factor × n) rows, or `filter_exact_rows`.
            Some(Vectors::Hnsw(_)) => {
                let scanned = (self.options.filter_scan_factor * self.records.len() as f64).sqrt() as usize;
                scanned.max(self.options.filter_exact_rows)
            }
            _ => self.records.len(),
        }
    }

    fn compacted(&self, dir: &Path, generation: u64) -> Result<()> {
        match (&self.vectors, &self.options.index) {
            (Some(Vectors::Hnsw(graph)), FaissIndex::Hnsw(params)) => {
                file::write(dir, generation, graph, params)
            }
            _ => file::remove(dir),
        }
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
