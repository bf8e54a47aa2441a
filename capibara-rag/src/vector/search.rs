//! Exact search over one [`Collection`]: every (matching) row is scored, nothing is approximated.
//!
//! - One query: SIMD dot products over the matrix in blocks of [`BLOCK_ROWS`] rows, each block's
//!   scores offered to a bounded top-k.
//! - With a filter: the filter runs over every record's metadata first, giving the ascending list
//!   of matching slots; only those rows are scored. So the result is the best `k` among the
//!   matching records, however rare they are.
//! - Several unfiltered queries: on AVX-512, the fused product and top-k kernel of `batch`, each
//!   row read from memory once per [`FUSED_QUERY_GROUP`] queries; elsewhere one matrix product,
//!   queries × (a tile of [`BLOCK_ROWS`] rows)ᵀ, per tile, so each row is read once per
//!   [`QUERY_GROUP`] queries instead of once per query, and the scores buffer stays at
//!   `QUERY_GROUP × BLOCK_ROWS` floats.

use capibara_core::Result;
use capibara_core::vector::VectorQuery;

use super::collection::Collection;
use super::filter;
use super::kernels;
use super::topk::{Hit, TopK};
use crate::kernels::{MatRef, matmul};

/// Rows scored per block (and per tile of the batched product): 4,096 rows of 384 floats are
/// 6 MiB, and the block's scores stay in L1/L2.
pub(crate) const BLOCK_ROWS: usize = 4096;

/// Queries per matrix product in [`search_many`].
pub(crate) const QUERY_GROUP: usize = 64;

/// Queries per pass of the fused AVX-512 kernel (`batch`): their packed vectors (192 KiB at 384
/// dimensions) stay in L2 while each row is read from memory once per pass.
pub(crate) const FUSED_QUERY_GROUP: usize = 128;

/// The best `query.k` rows for an already validated query, best first.
pub(crate) fn search(collection: &Collection, query: &VectorQuery) -> Vec<Hit> {
    if let Some(filter) = &query.filter {
        let slots = filter::select(filter, collection.metadata());
        return search_slots(collection, &query.vector, query.k, &slots);
    }
    let mut top = TopK::new(query.k);
    let mut scores = vec![0.0f32; BLOCK_ROWS.min(collection.len())];
    let d = collection.dimension();
    for (block, rows) in collection.matrix().chunks(BLOCK_ROWS * d).enumerate() {
        let out = &mut scores[..rows.len() / d];
        kernels::dot_rows(rows, &query.vector, out);
        let base = block * BLOCK_ROWS;
        top.extend(out, collection.seqs(), |i| base + i);
    }
    top.into_sorted()
}

/// The best `k` rows among `slots` for `vector`, best first: the exact answer over a subset (the
/// records a filter selected, or candidates an index proposed).
pub(crate) fn search_slots(collection: &Collection, vector: &[f32], k: usize, slots: &[usize]) -> Vec<Hit> {
    let mut top = TopK::new(k);
    let mut scores = vec![0.0f32; BLOCK_ROWS.min(slots.len())];
    for block in slots.chunks(BLOCK_ROWS) {
        let out = &mut scores[..block.len()];
        kernels::dot_selected(collection.matrix(), vector, block, out);
        top.extend(out, collection.seqs(), |i| block[i]);
    }
    top.into_sorted()
}

/// [`search`] for every query (already validated), answered in order. Unfiltered queries share
/// matrix products; filtered ones are answered one by one (each has its own matching rows).
pub(crate) fn search_many(collection: &Collection, queries: &[VectorQuery]) -> Result<Vec<Vec<Hit>>> {
    let mut results: Vec<Option<Vec<Hit>>> = vec![None; queries.len()];
    let unfiltered: Vec<usize> = (0..queries.len()).filter(|i| queries[*i].filter.is_none()).collect();
    let fused = fused_kernel();
    for group in unfiltered.chunks(if fused { FUSED_QUERY_GROUP } else { QUERY_GROUP }) {
        if group.len() == 1 {
            // A one-row product gains nothing over the dot-product kernel.
            results[group[0]] = Some(search(collection, &queries[group[0]]));
            continue;
        }
        let hits = if fused {
            fused_group(collection, queries, group)?
        } else {
            search_group(collection, queries, group)?
        };
        for (i, hits) in group.iter().zip(hits) {
            results[*i] = Some(hits);
        }
    }
    Ok(results
        .into_iter()
        .zip(queries)
        .map(|(hits, query)| hits.unwrap_or_else(|| search(collection, query)))
        .collect())
}

/// Whether this CPU runs the fused product and top-k kernel of `batch` (AVX-512).
fn fused_kernel() -> bool {
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::isa() == crate::kernels::Isa::Avx512 {
        return true;
    }
    false
}

/// [`batch::search_group`](super::batch::search_group) where it is compiled ([`search_group`]
/// elsewhere).
fn fused_group(collection: &Collection, queries: &[VectorQuery], group: &[usize]) -> Result<Vec<Vec<Hit>>> {
    #[cfg(target_arch = "x86_64")]
    return Ok(super::batch::search_group(collection, queries, group));
    #[cfg(not(target_arch = "x86_64"))]
    search_group(collection, queries, group)
}

/// The unfiltered queries `group` (indexes into `queries`) answered with one product per tile.
fn search_group(collection: &Collection, queries: &[VectorQuery], group: &[usize]) -> Result<Vec<Vec<Hit>>> {
    let d = collection.dimension();
    let m = group.len();
    let mut stacked = Vec::with_capacity(m * d);
    for i in group {
        stacked.extend_from_slice(&queries[*i].vector);
    }
    let mut tops: Vec<TopK> = group.iter().map(|i| TopK::new(queries[*i].k)).collect();
    let tile_rows = BLOCK_ROWS.min(collection.len());
    let mut scores = vec![0.0f32; m * tile_rows];
    let seqs = collection.seqs();
    for (tile, rows) in collection.matrix().chunks(BLOCK_ROWS * d).enumerate() {
        let n = rows.len() / d;
        let a = MatRef::rows(&stacked, m, d, d);
        let b = MatRef::transposed(rows, n, d, d);
        matmul(&mut scores, n, false, a, b, 1.0)?;
        let base = tile * BLOCK_ROWS;
        for (top, row_scores) in tops.iter_mut().zip(scores.chunks(n)) {
            top.extend(row_scores, seqs, |j| base + j);
        }
    }
    Ok(tops.into_iter().map(TopK::into_sorted).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use capibara_core::vector::{Filter, VectorRecord};
    use serde_json::json;

    use super::*;

    /// A deterministic pseudo-random value in [-1, 1).
    fn noise(i: u64) -> f32 {
        let mut x = i.wrapping_add(0x9e37_79b9_7f4a_7c15).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x ^= x >> 31;
        (x % 20_000) as f32 / 10_000.0 - 1.0
    }

    fn collection(n: usize, d: usize) -> Collection {
        let mut collection = Collection::new(d);
        for i in 0..n {
            let vector = (0..d).map(|j| noise((i * d + j) as u64)).collect();
            let metadata = json!({ "group": i % 97 }).as_object().cloned().unwrap();
            collection.upsert(VectorRecord { id: format!("r{i}"), vector, text: String::new(), metadata });
        }
        collection
    }

    fn brute_force(
        collection: &Collection,
        query: &[f32],
        keep: impl Fn(usize) -> bool,
    ) -> Vec<(usize, f64)> {
        let mut scored: Vec<(usize, f64)> = (0..collection.len())
            .filter(|slot| keep(*slot))
            .map(|slot| (slot, collection.row(slot).iter().zip(query).map(|(a, b)| f64::from(a * b)).sum()))
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        scored
    }

    fn query(d: usize, seed: u64, k: usize, filter: Option<Filter>) -> VectorQuery {
        VectorQuery { vector: (0..d).map(|j| noise(seed * 1000 + j as u64)).collect(), k, filter }
    }

    #[test]
    fn single_and_filtered_searches_span_several_blocks() {
        let (n, d) = (BLOCK_ROWS * 2 + 123, 24);
        let collection = collection(n, d);
        for seed in 1..4 {
            let q = query(d, seed, 10, None);
            let hits = search(&collection, &q);
            let expected = brute_force(&collection, &q.vector, |_| true);
            let slots: Vec<usize> = hits.iter().map(|hit| hit.slot).collect();
            let want: Vec<usize> = expected[..10].iter().map(|(slot, _)| *slot).collect();
            assert_eq!(slots, want);

            // 1 record in 97 matches: still 10 hits, the best 10 of the matching ones.
            let filtered = query(d, seed, 10, Some(Filter::Eq { field: "group".into(), value: json!(5) }));
            let hits = search(&collection, &filtered);
            let expected = brute_force(&collection, &filtered.vector, |slot| slot % 97 == 5);
            let slots: Vec<usize> = hits.iter().map(|hit| hit.slot).collect();
            let want: Vec<usize> = expected[..10].iter().map(|(slot, _)| *slot).collect();
            assert_eq!(slots, want);
        }
    }

    #[test]
    fn search_many_matches_one_search_per_query() {
        let (n, d) = (BLOCK_ROWS + 700, 40);
        let collection = collection(n, d);
        let mut queries: Vec<VectorQuery> =
            (0..QUERY_GROUP as u64 + 5).map(|seed| query(d, seed, 7, None)).collect();
        queries[3].filter = Some(Filter::Range { field: "group".into(), gte: Some(90.0), lte: None });
        queries[3].k = 30;
        let batched = search_many(&collection, &queries).unwrap();
        assert_eq!(batched.len(), queries.len());
        for (query, hits) in queries.iter().zip(&batched) {
            let single = search(&collection, query);
            let slots = |hits: &[Hit]| hits.iter().map(|hit| hit.slot).collect::<Vec<_>>();
            assert_eq!(slots(hits), slots(&single));
            for (a, b) in hits.iter().zip(&single) {
                assert!((a.score - b.score).abs() < 1e-5, "{} vs {}", a.score, b.score);
            }
        }
    }

    #[test]
    fn both_batch_kernels_match_single_searches_for_every_shape() {
        // Rows around the fused kernel's step of 8, dimensions around its vectors of 16, groups
        // around its blocks of 32 queries, k above the row count.
        for (n, d) in [(5, 7), (8, 16), (37, 33), (300, 40)] {
            let collection = collection(n, d);
            for m in [2, 31, 32, 33, 70] {
                let queries: Vec<VectorQuery> = (0..m as u64)
                    .map(|seed| query(d, seed + 100, 1 + (seed as usize * 7) % (n + 3), None))
                    .collect();
                let group: Vec<usize> = (0..m).collect();
                let mut answers = vec![search_group(&collection, &queries, &group).unwrap()];
                if fused_kernel() {
                    answers.push(fused_group(&collection, &queries, &group).unwrap());
                }
                for batched in answers {
                    for (query, hits) in queries.iter().zip(&batched) {
                        let single = search(&collection, query);
                        let slots = |hits: &[Hit]| hits.iter().map(|hit| hit.slot).collect::<Vec<_>>();
                        assert_eq!(slots(hits), slots(&single), "n {n}, d {d}, m {m}, k {}", query.k);
                        for (a, b) in hits.iter().zip(&single) {
                            assert!((a.score - b.score).abs() < 1e-4, "{} vs {}", a.score, b.score);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn empty_collections_and_empty_matches_give_no_hits() {
        let empty = Collection::new(3);
        assert!(search(&empty, &query(3, 1, 5, None)).is_empty());
        let queries = vec![query(3, 1, 5, None), query(3, 2, 5, None)];
        assert_eq!(search_many(&empty, &queries).unwrap(), vec![vec![], vec![]]);
        let collection = collection(50, 3);
        let none = Filter::Eq { field: "group".into(), value: json!(-1) };
        assert!(search(&collection, &query(3, 1, 5, Some(none))).is_empty());
    }
}
