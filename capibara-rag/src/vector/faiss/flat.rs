//! A FAISS `IndexFlatIP` that mirrors a collection row for row: FAISS id `i` is slot `i`, always.
//! Replacements overwrite the row in place, new records are appended, and deletes follow the
//! collection's swap-remove (the last row moves into the hole, the tail is cut), so the index never
//! holds a dead row and needs no id map.

use capibara_core::{Error, Result};
use faiss::index::flat::FlatIndexImpl;
use faiss::selector::IdSelector;
use faiss::{Idx, Index};

use super::super::collection::Collection;
use super::ffi;

pub(super) fn faiss_error(doing: &str, error: impl std::fmt::Display) -> Error {
    Error::internal(format!("vector store: FAISS {doing}: {error}"))
}

/// The flat index over a collection's rows.
pub(super) struct FlatRows {
    index: FlatIndexImpl,
    dimension: usize,
}

impl std::fmt::Debug for FlatRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlatRows").field("rows", &self.index.ntotal()).finish_non_exhaustive()
    }
}

impl FlatRows {
    /// An index of every row of `records`.
    pub(super) fn build(records: &Collection) -> Result<Self> {
        let dimension = records.dimension();
        let index = FlatIndexImpl::new_ip(dimension as u32).map_err(|e| faiss_error("creation", e))?;
        let mut rows = Self { index, dimension };
        rows.append(records.matrix())?;
        Ok(rows)
    }

    /// Rows held (equal to the collection's records).
    pub(super) fn len(&self) -> usize {
        self.index.ntotal() as usize
    }

    /// The stored rows, for checking that they mirror the collection.
    #[cfg(test)]
    pub(super) fn stored(&self) -> &[f32] {
        self.index.xb()
    }

    fn append(&mut self, rows: &[f32]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.index.add(rows).map_err(|e| faiss_error("insertion", e))
    }

    /// Follows `records` after an upsert (already applied to it): the rows in `replaced` are
    /// overwritten, the rows from `old_len` (the collection's length before) appended.
    pub(super) fn upserted(
        &mut self,
        records: &Collection,
        replaced: &[usize],
        old_len: usize,
    ) -> Result<()> {
        let d = self.dimension;
        if !replaced.is_empty() {
            let stored = ffi::flat_rows_mut(&mut self.index)?;
            for slot in replaced {
                stored[slot * d..(slot + 1) * d].copy_from_slice(records.row(*slot));
            }
        }
        self.append(&records.matrix()[old_len * d..])
    }

    /// Follows the collection deleting the record in `slot` of a collection of `len` rows: its
    /// last row moves into `slot`. The tail is cut by [`FlatRows::truncate`] once per batch.
    pub(super) fn swap_remove(&mut self, slot: usize, len: usize) -> Result<()> {
        let last = len - 1;
        if slot == last {
            return Ok(());
        }
        let d = self.dimension;
        let stored = ffi::flat_rows_mut(&mut self.index)?;
        stored.copy_within(last * d..(last + 1) * d, slot * d);
        Ok(())
    }

    /// Drops every row from `len` on.
    pub(super) fn truncate(&mut self, len: usize) -> Result<()> {
        let total = self.len();
        if len >= total {
            return Ok(());
        }
        let tail = IdSelector::range(Idx::new(len as u64), Idx::new(total as u64))
            .map_err(|e| faiss_error("selector", e))?;
        self.index.remove_ids(&tail).map_err(|e| faiss_error("removal", e))?;
        Ok(())
    }

    /// The slots of the `k` best rows for each of the queries stacked in `queries`, best first
    /// by FAISS's scores (fewer when the index holds fewer rows).
    pub(super) fn search(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<usize>>> {
        let (_, labels) = ffi::search(&self.index, self.dimension, queries, k, None)?;
        Ok(labels
            .chunks(k.max(1))
            .map(|row| row.iter().filter_map(|label| usize::try_from(*label).ok()).collect())
            .collect())
    }
}
