//! A FAISS `IndexHNSWFlat` (inner product) over a collection's rows.
//!
//! FAISS numbers the vectors of an HNSW index as they are added (nodes) and cannot remove one, so
//! a replaced or deleted record's node stays in the graph, marked [`TOMBSTONE`] here and left out
//! of every search by a bitmap of live nodes; once the dead nodes pass a share of the graph, the
//! owner rebuilds it. Slots move when the collection swap-removes a record; the maps follow with
//! [`HnswGraph::swap_remove`].

use capibara_core::Result;
use faiss::index::IndexImpl;
use faiss::index::autotune::ParameterSpace;
use faiss::{Index, MetricType, index_factory};

use super::super::collection::Collection;
use super::FaissHnsw;
use super::ffi;
use super::flat::faiss_error;

/// The slot of a node whose record is gone.
pub(super) const TOMBSTONE: usize = usize::MAX;
/// The node of a slot whose row is not in the graph yet.
pub(super) const UNINDEXED: u64 = u64::MAX;

/// The graph and the mapping between its nodes and the collection's slots.
pub(super) struct HnswGraph {
    index: IndexImpl,
    dimension: usize,
    /// The slot each node holds, or [`TOMBSTONE`].
    pub(super) slot_of_node: Vec<usize>,
    /// The node of each slot, or [`UNINDEXED`].
    pub(super) node_of_slot: Vec<u64>,
    /// Bit `node` is set when the node holds a live row.
    live: Vec<u8>,
    /// Nodes removed since the graph was built.
    pub(super) removed: usize,
}

impl std::fmt::Debug for HnswGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HnswGraph")
            .field("nodes", &self.slot_of_node.len())
            .field("rows", &self.node_of_slot.len())
            .field("removed", &self.removed)
            .finish_non_exhaustive()
    }
}

/// Sets FAISS's build and search breadth on `index`.
pub(super) fn set_breadth(index: &IndexImpl, params: &FaissHnsw) -> Result<()> {
    let space = ParameterSpace::new().map_err(|e| faiss_error("parameters", e))?;
    space
        .set_index_parameter(index, "efConstruction", params.ef_construction as f64)
        .and_then(|()| space.set_index_parameter(index, "efSearch", params.ef_search as f64))
        .map_err(|e| faiss_error("parameters", e))
}

/// A bitmap with room for `bits` bits, all clear.
pub(super) fn bitmap(bits: usize) -> Vec<u8> {
    vec![0; bits.div_ceil(8)]
}

/// Sets bit `bit` of `bitmap`.
pub(super) fn set_bit(bitmap: &mut [u8], bit: usize) {
    bitmap[bit / 8] |= 1 << (bit % 8);
}

impl HnswGraph {
    /// A graph of every row of `records`.
    pub(super) fn build(records: &Collection, params: &FaissHnsw) -> Result<Self> {
        let started = std::time::Instant::now();
        let dimension = records.dimension();
        let description = format!("HNSW{},Flat", params.m);
        let index = index_factory(dimension as u32, description, MetricType::InnerProduct)
            .map_err(|e| faiss_error("creation", e))?;
        set_breadth(&index, params)?;
        let mut graph = Self::around(index, dimension, Vec::new(), vec![UNINDEXED; records.len()], 0);
        let slots: Vec<usize> = (0..records.len()).collect();
        graph.add(records, &slots)?;
        tracing::info!(
            rows = records.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "vector store: FAISS HNSW graph built"
        );
        Ok(graph)
    }

    /// A graph around a loaded `index` and its node mapping.
    pub(super) fn around(
        index: IndexImpl,
        dimension: usize,
        slot_of_node: Vec<usize>,
        node_of_slot: Vec<u64>,
        removed: usize,
    ) -> Self {
        let mut live = bitmap(slot_of_node.len());
        for (node, slot) in slot_of_node.iter().enumerate() {
            if *slot != TOMBSTONE {
                set_bit(&mut live, node);
            }
        }
        Self { index, dimension, slot_of_node, node_of_slot, live, removed }
    }

    /// The vector length.
    pub(super) fn dimension(&self) -> usize {
        self.dimension
    }

    /// The FAISS index, for saving.
    pub(super) fn index(&self) -> &IndexImpl {
        &self.index
    }

    /// Adds the rows `slots` of `records` (each [`UNINDEXED`] until now) as new nodes, in one
    /// FAISS call (which builds on every OpenMP thread).
    pub(super) fn add(&mut self, records: &Collection, slots: &[usize]) -> Result<()> {
        if slots.is_empty() {
            return Ok(());
        }
        let d = self.dimension;
        let mut rows = Vec::with_capacity(slots.len() * d);
        let first = self.slot_of_node.len();
        for slot in slots {
            rows.extend_from_slice(records.row(*slot));
        }
        self.index.add(&rows).map_err(|e| faiss_error("insertion", e))?;
        self.live.resize((first + slots.len()).div_ceil(8), 0);
        for (i, slot) in slots.iter().enumerate() {
            self.slot_of_node.push(*slot);
            self.node_of_slot[*slot] = (first + i) as u64;
            set_bit(&mut self.live, first + i);
        }
        Ok(())
    }

    /// Takes the row in `slot` out of the graph (its record is being replaced or deleted); the
    /// slot is [`UNINDEXED`] afterwards.
    pub(super) fn remove(&mut self, slot: usize) {
        let node = self.node_of_slot[slot];
        if node == UNINDEXED {
            return;
        }
        let node = node as usize;
        self.slot_of_node[node] = TOMBSTONE;
        self.live[node / 8] &= !(1 << (node % 8));
        self.node_of_slot[slot] = UNINDEXED;
        self.removed += 1;
    }

    /// Follows the collection deleting the record in `slot` by moving its last row there.
    pub(super) fn swap_remove(&mut self, slot: usize) {
        self.remove(slot);
        self.node_of_slot.swap_remove(slot);
        if let Some(&moved) = self.node_of_slot.get(slot)
            && moved != UNINDEXED
        {
            self.slot_of_node[moved as usize] = slot;
        }
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

    /// The bitmap of the nodes holding the slots `allowed` accepts.
    pub(super) fn nodes_of(&self, allowed: &[usize]) -> Vec<u8> {
        let mut nodes = bitmap(self.slot_of_node.len());
        for slot in allowed {
            if let Some(&node) = self.node_of_slot.get(*slot)
                && node != UNINDEXED
            {
                set_bit(&mut nodes, node as usize);
            }
        }
        nodes
    }

    /// The slots of (about) the `count` rows nearest each query stacked in `queries`, best first
    /// by FAISS's estimate, among the nodes set in `allowed` (every live node without it).
    pub(super) fn search(
        &self,
        queries: &[f32],
        count: usize,
        allowed: Option<&[u8]>,
    ) -> Result<Vec<Vec<usize>>> {
        // Without dead nodes there is nothing to leave out: the plain search is cheaper.
        let allowed = allowed.or((self.removed > 0).then_some(self.live.as_slice()));
        let (_, labels) = ffi::search(&self.index, self.dimension, queries, count, allowed)?;
        let slot =
            |label: &i64| usize::try_from(*label).ok().and_then(|node| self.slot_of_node.get(node).copied());
        Ok(labels
            .chunks(count.max(1))
            .map(|row| row.iter().filter_map(slot).filter(|slot| *slot != TOMBSTONE).collect())
            .collect())
    }
}
