//! One collection of an [`HnswStore`](super::HnswStore): its records (the source of truth, the
//! same [`Collection`] `ExactStore` keeps) and, once it is large enough, an HNSW graph over them
//! that follows every write.
//!
//! How a query is answered:
//! - fewer than [`HnswStoreOptions::exact_below_rows`] records: the exact scan of `ExactStore`;
//! - a filter: it is evaluated over every record first. When few match (fewer than
//!   [`HnswStoreOptions::filter_exact_rows`], or `m` matches with `m² <`
//!   [`HnswStoreOptions::filter_scan_factor`] `× n`, where scanning them costs less than a
//!   filtered graph search) those rows are scanned exactly; otherwise the graph is searched with
//!   the matching rows as a predicate;
//! - the graph proposes candidates, which are scored exactly (the returned score is the true
//!   inner product) and ranked like `ExactStore` ranks. When it proposes fewer than `k` rows
//!   while at least `k` match, it is asked again for four times as many, and as a last resort
//!   the matching rows are scanned exactly: a search never returns fewer than `min(k, matches)`.

use std::path::Path;

use capibara_core::Result;
use capibara_core::vector::{VectorQuery, VectorRecord};

use super::super::collection::Collection;
use super::super::store::Engine;
use super::super::topk::Hit;
use super::super::wal::Apply;
use super::super::{filter, search};
use super::graph::Graph;
use super::{HnswStoreOptions, file};

/// Requests for more candidates after the first before scanning exactly.
const MAX_RETRIES: usize = 3;

/// A collection with its graph.
#[derive(Debug)]
pub(crate) struct Indexed {
    records: Collection,
    /// `None` while the collection is small (or after the graph failed, until the next write).
    graph: Option<Graph>,
    options: HnswStoreOptions,
}

impl Indexed {
    /// Builds the graph when there is none and the collection has grown enough, and rebuilds it
    /// when too many of its nodes were removed. A failure drops the graph (searches scan exactly
    /// until a later write builds it again).
    fn maintain(&mut self) {
        let worn = self.graph.as_ref().is_some_and(|graph| graph.worn(self.options.rebuild_removed_share));
        if !worn && (self.graph.is_some() || self.records.len() < self.options.exact_below_rows) {
            return;
        }
        self.graph = None;
        match Graph::build(&self.records, &self.options) {
            Ok(graph) => self.graph = Some(graph),
            Err(error) => tracing::warn!(%error, "vector store: HNSW graph build failed; scanning exactly"),
        }
    }

    /// Drops the graph after a failed update.
    fn drop_graph(&mut self, error: &capibara_core::Error) {
        tracing::warn!(%error, "vector store: HNSW graph update failed; it is rebuilt on the next write");
        self.graph = None;
    }

    /// The graph, when searches use it.
    fn active_graph(&self) -> Option<&Graph> {
        self.graph.as_ref().filter(|_| self.records.len() >= self.options.exact_below_rows)
    }

    /// Whether `matching` rows selected by a filter are scanned instead of searched in the graph.
    fn scan_matches(&self, matching: usize, k: usize) -> bool {
        let (m, n) = (matching as f64, self.records.len() as f64);
        matching <= k
            || matching < self.options.filter_exact_rows
            || m * m < self.options.filter_scan_factor * n
    }

    fn search_graph(&self, graph: &Graph, query: &VectorQuery) -> Result<Vec<Hit>> {
        let (allowed, matching) = match &query.filter {
            None => (None, self.records.len()),
            Some(filter) => {
                let slots = filter::select(filter, self.records.metadata());
                if self.scan_matches(slots.len(), query.k) {
                    return Ok(search::search_slots(&self.records, &query.vector, query.k, &slots));
                }
                let mut allowed = vec![false; self.records.len()];
                slots.iter().for_each(|slot| allowed[*slot] = true);
                (Some(allowed), slots.len())
            }
        };
        let wanted = query.k.min(matching);
        let mut count = query.k;
        for _ in 0..=MAX_RETRIES {
            let candidates = graph.search(&query.vector, count, allowed.as_deref())?;
            if candidates.len() >= wanted {
                return Ok(search::search_slots(&self.records, &query.vector, query.k, &candidates));
            }
            if count >= matching {
                break;
            }
            count = count.saturating_mul(4).min(matching);
        }
        tracing::debug!(k = query.k, matching, "vector store: HNSW search fell short; scanning exactly");
        Ok(search::search(&self.records, query))
    }
}

impl Apply for Indexed {
    fn dimension(&self) -> usize {
        self.records.dimension()
    }

    fn upsert(&mut self, records: Vec<VectorRecord>) {
        let Some(graph) = &mut self.graph else {
            Apply::upsert(&mut self.records, records);
            return self.maintain();
        };
        let mut failed = None;
        for record in records {
            match self.records.slot(&record.id) {
                // A replaced record's old node goes; the slot is added again below.
                Some(slot) => {
                    if let Err(error) = graph.remove(slot) {
                        failed = Some(error);
                    }
                }
                None => graph.push_slot(),
            }
            self.records.upsert(record);
        }
        if failed.is_none() {
            let fresh = graph.unindexed();
            if let Err(error) = graph.add(&self.records, &fresh) {
                failed = Some(error);
            }
        }
        if let Some(error) = failed {
            self.drop_graph(&error);
        }
        self.maintain();
    }

    fn delete(&mut self, ids: &[String]) -> u64 {
        let mut deleted = 0;
        for id in ids {
            let Some(slot) = self.records.slot(id) else { continue };
            // The graph mirrors the collection's swap-remove, so it goes first.
            let followed = self.graph.as_mut().map_or(Ok(()), |graph| graph.swap_remove(slot));
            if let Err(error) = followed {
                self.drop_graph(&error);
            }
            self.records.delete(id);
            deleted += 1;
        }
        self.maintain();
        deleted
    }
}

impl Engine for Indexed {
    type Settings = HnswStoreOptions;
    // Graph insertions cost about a millisecond each.
    const BLOCKING_WRITES: bool = true;

    fn load(records: Collection, options: &HnswStoreOptions, files: Option<(&Path, u64)>) -> Result<Self> {
        let mut indexed = Self { records, graph: None, options: options.clone() };
        if let Some((dir, generation)) = files
            && indexed.records.len() >= options.exact_below_rows
        {
            indexed.graph = file::read(dir, generation, &indexed.records, options);
        }
        indexed.maintain();
        Ok(indexed)
    }

    fn records(&self) -> &Collection {
        &self.records
    }

    fn search(&self, query: &VectorQuery) -> Result<Vec<Hit>> {
        match self.active_graph() {
            Some(graph) => self.search_graph(graph, query),
            None => Ok(search::search(&self.records, query)),
        }
    }

    fn search_many(&self, queries: &[VectorQuery]) -> Result<Vec<Vec<Hit>>> {
        match self.active_graph() {
            Some(graph) => queries.iter().map(|query| self.search_graph(graph, query)).collect(),
            // Small collections share matrix products as `ExactStore` does.
            None => search::search_many(&self.records, queries),
        }
    }

    fn scan_rows(&self) -> usize {
        match self.active_graph() {
            // A graph search scores a few thousand rows; a filtered one may scan up to
            // √(filter_scan_factor × n) rows, or `filter_exact_rows`.
            Some(_) => {
                let scanned = (self.options.filter_scan_factor * self.records.len() as f64).sqrt() as usize;
                scanned.max(self.options.filter_exact_rows)
            }
            None => self.records.len(),
        }
    }

    fn compacted(&self, dir: &Path, generation: u64) -> Result<()> {
        match &self.graph {
            Some(graph) => file::write(dir, generation, graph, &self.options),
            None => file::remove(dir),
        }
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
