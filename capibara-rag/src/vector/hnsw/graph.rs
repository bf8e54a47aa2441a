//! The HNSW graph over a collection's rows, held by usearch (inner-product metric).
//!
//! Graph nodes are numbered as they are added and never renumbered until the graph is rebuilt;
//! each node holds one row (slot) of the collection. A replaced or deleted record's node is
//! removed from usearch (which then never returns it, and reuses its place for a later node) and
//! marked [`TOMBSTONE`] here; once the removals since the last build pass a share of the nodes,
//! the owner rebuilds the graph. Slots move when the collection swap-removes a record; the
//! graph follows with [`Graph::swap_remove`].

use std::sync::{Condvar, Mutex};

use capibara_core::{Error, Result};
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

use super::super::collection::Collection;
use super::HnswStoreOptions;

/// The slot of a node whose record is gone.
pub(super) const TOMBSTONE: usize = usize::MAX;
/// The node of a slot whose row is not in the graph yet.
pub(super) const UNINDEXED: u64 = u64::MAX;
/// Rows added per thread below which adding in parallel is not worth starting threads.
const PARALLEL_MIN_ROWS: usize = 256;

fn graph_error(doing: &str, error: impl std::fmt::Display) -> Error {
    Error::internal(format!("vector store: HNSW graph {doing}: {error}"))
}

/// Threads that add rows at once, and the least number of search contexts usearch keeps.
fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

/// A counting semaphore: usearch fails a search when every one of its per-thread contexts is in
/// use, so at most `contexts` searches call into it at once and the rest wait here.
#[derive(Debug)]
struct Tickets {
    free: Mutex<usize>,
    returned: Condvar,
}

impl Tickets {
    fn take(&self) -> Result<TicketGuard<'_>> {
        let poisoned = || Error::internal("vector store: HNSW search slots poisoned by an earlier panic");
        let mut free = self.free.lock().map_err(|_| poisoned())?;
        while *free == 0 {
            free = self.returned.wait(free).map_err(|_| poisoned())?;
        }
        *free -= 1;
        Ok(TicketGuard(self))
    }
}

struct TicketGuard<'a>(&'a Tickets);

impl Drop for TicketGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut free) = self.0.free.lock() {
            *free += 1;
        }
        self.0.returned.notify_one();
    }
}

/// The graph and the mapping between its nodes and the collection's slots.
pub(super) struct Graph {
    index: Index,
    /// The slot each node holds, or [`TOMBSTONE`].
    pub(super) slot_of_node: Vec<usize>,
    /// The node of each slot, or [`UNINDEXED`].
    pub(super) node_of_slot: Vec<u64>,
    /// Nodes removed since the graph was built.
    pub(super) removed: usize,
    tickets: Tickets,
    contexts: usize,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("nodes", &self.slot_of_node.len())
            .field("rows", &self.node_of_slot.len())
            .field("removed", &self.removed)
            .finish_non_exhaustive()
    }
}

/// usearch's options for `options` over `dimension`-long vectors.
pub(super) fn index_options(dimension: usize, options: &HnswStoreOptions) -> IndexOptions {
    IndexOptions {
        dimensions: dimension,
        metric: MetricKind::IP,
        quantization: ScalarKind::F32,
        connectivity: options.m,
        expansion_add: options.ef_construction,
        expansion_search: options.ef_search,
        multi: false,
    }
}

impl Graph {
    /// An empty graph for `dimension`-long vectors.
    fn empty(dimension: usize, options: &HnswStoreOptions) -> Result<Self> {
        let index = Index::new(&index_options(dimension, options)).map_err(|e| graph_error("creation", e))?;
        Self::around(index, Vec::new(), Vec::new(), 0)
    }

    /// A graph around a loaded `index` and its node mapping; reserves search contexts.
    pub(super) fn around(
        index: Index,
        slot_of_node: Vec<usize>,
        node_of_slot: Vec<u64>,
        removed: usize,
    ) -> Result<Self> {
        let contexts = (threads() * 4).max(8);
        let capacity = index.capacity().max(node_of_slot.len()).max(1024);
        index.reserve_capacity_and_threads(capacity, contexts).map_err(|e| graph_error("reserving", e))?;
        let tickets = Tickets { free: Mutex::new(contexts), returned: Condvar::new() };
        Ok(Self { index, slot_of_node, node_of_slot, removed, tickets, contexts })
    }

    /// A graph of every row of `records`, built on every core.
    pub(super) fn build(records: &Collection, options: &HnswStoreOptions) -> Result<Self> {
        let started = std::time::Instant::now();
        let mut graph = Self::empty(records.dimension(), options)?;
        graph.node_of_slot = vec![UNINDEXED; records.len()];
        let slots: Vec<usize> = (0..records.len()).collect();
        graph.add(records, &slots)?;
        tracing::info!(
            rows = records.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "vector store: HNSW graph built"
        );
        Ok(graph)
    }

    /// The usearch index, for saving.
    pub(super) fn index(&self) -> &Index {
        &self.index
    }

    /// Adds the rows `slots` of `records` (each [`UNINDEXED`] until now) as new nodes, in parallel
    /// when there are many.
    pub(super) fn add(&mut self, records: &Collection, slots: &[usize]) -> Result<()> {
        if slots.is_empty() {
            return Ok(());
        }
        let needed = self.index.size() + slots.len();
        if needed > self.index.capacity() {
            let capacity = needed.max(self.index.capacity() * 2);
            self.index
                .reserve_capacity_and_threads(capacity, self.contexts)
                .map_err(|e| graph_error("reserving", e))?;
        }
        let first = self.slot_of_node.len();
        for (i, slot) in slots.iter().enumerate() {
            self.slot_of_node.push(*slot);
            self.node_of_slot[*slot] = (first + i) as u64;
        }
        let index = &self.index;
        let add_chunk = |offset: usize, chunk: &[usize]| -> Result<()> {
            for (i, slot) in chunk.iter().enumerate() {
                let node = (first + offset + i) as u64;
                index.add(node, records.row(*slot)).map_err(|e| graph_error("insertion", e))?;
            }
            Ok(())
        };
        let workers = threads().min(self.contexts).min(slots.len() / PARALLEL_MIN_ROWS).max(1);
        if workers == 1 {
            return add_chunk(0, slots);
        }
        let per = slots.len().div_ceil(workers);
        std::thread::scope(|scope| {
            let handles: Vec<_> = slots
                .chunks(per)
                .enumerate()
                .map(|(i, chunk)| scope.spawn(move || add_chunk(i * per, chunk)))
                .collect();
            handles.into_iter().try_for_each(|handle| {
                handle
                    .join()
                    .map_err(|_| Error::internal("vector store: an HNSW insertion thread panicked"))?
            })
        })
    }

    /// Takes the row in `slot` out of the graph (its record is being replaced); the slot is
    /// [`UNINDEXED`] afterwards.
    pub(super) fn remove(&mut self, slot: usize) -> Result<()> {
        let node = self.node_of_slot[slot];
        if node == UNINDEXED {
            return Ok(());
        }
        self.index.remove(node).map_err(|e| graph_error("removal", e))?;
        self.slot_of_node[node as usize] = TOMBSTONE;
        self.node_of_slot[slot] = UNINDEXED;
        self.removed += 1;
        Ok(())
    }

    /// Follows the collection deleting the record in `slot` by moving its last row there.
    pub(super) fn swap_remove(&mut self, slot: usize) -> Result<()> {
        self.remove(slot)?;
        self.node_of_slot.swap_remove(slot);
        if let Some(&moved) = self.node_of_slot.get(slot)
            && moved != UNINDEXED
        {
            self.slot_of_node[moved as usize] = slot;
        }
        Ok(())
    }

    /// The slots not in the graph, ascending.
    pub(super) fn unindexed(&self) -> Vec<usize> {
        let slots = self.node_of_slot.iter().enumerate();
        slots.filter(|(_, node)| **node == UNINDEXED).map(|(slot, _)| slot).collect()
    }

    /// Appends an [`UNINDEXED`] slot (the collection appended a record).
    pub(super) fn push_slot(&mut self) {
        self.node_of_slot.push(UNINDEXED);
    }

    /// Whether more than `share` of the nodes were removed since the build.
    pub(super) fn worn(&self, share: f64) -> bool {
        self.removed as f64 > share * self.slot_of_node.len().max(1) as f64
    }

    /// The slots of (about) the `count` rows nearest `vector` that `allowed` accepts (every row
    /// without it), best first by the graph's estimate.
    pub(super) fn search(
        &self,
        vector: &[f32],
        count: usize,
        allowed: Option<&[bool]>,
    ) -> Result<Vec<usize>> {
        let _ticket = self.tickets.take()?;
        let matches = match allowed {
            None => self.index.search(vector, count),
            Some(allowed) => self.index.filtered_search(vector, count, |node| {
                let slot = self.slot_of_node.get(node as usize).copied().unwrap_or(TOMBSTONE);
                slot != TOMBSTONE && allowed.get(slot).copied().unwrap_or(false)
            }),
        }
        .map_err(|e| graph_error("search", e))?;
        Ok(matches
            .keys
            .iter()
            .filter_map(|node| self.slot_of_node.get(*node as usize).copied())
            .filter(|slot| *slot != TOMBSTONE)
            .collect())
    }
}
