//! Batched exact search on AVX-512: a group of queries against every row, the matrix product and
//! the top-k selection fused into one pass.
//!
//! The queries are packed 32 to a block (the last block 16 when at most 16 are left, so that a
//! group of 100 costs 3.5 blocks rather than 4), dimension by dimension, so that one dimension of
//! a block is one or two vector loads. The rows are read in place, eight at a time (sixteen for a
//! block of 16): each value of a row is broadcast and multiplied with the block's values of that
//! dimension, sixteen accumulators in flight, so the fused multiply-adds, not the loads, set the
//! pace. Each finished score vector is compared with its queries' current top-k thresholds at
//! once; only scores that could enter a query's top k leave the registers. No scores buffer, no
//! packing of the rows: each row is read from memory once per group.
//!
//! Why not the `gemm` crate (the path of the other instruction sets): in a test build with optimised
//! dependencies on the 2-core EPYC, its product plus a separate top-k pass answered 150–350 batched
//! queries/s (100 × 384 against 100,000 rows) where OpenBLAS, through FAISS, answered 480–800 in
//! the same runs; this kernel answered within 10 % of OpenBLAS there, and above it in release
//! builds (`benches/results/vector-exact-2026-11-24.md`).
//!
//! `unsafe` here: SIMD loads through raw pointers, each bounded by the slice it reads, in
//! functions compiled for AVX-512F that are only called once the CPU was found to support it.

#![allow(unsafe_code)]

use capibara_core::vector::VectorQuery;

use super::collection::Collection;
use super::topk::{Hit, TopK};

/// Lanes of one vector.
const LANES: usize = 16;

/// A block of queries: lanes `first..first + 16 · V` of the group, packed dimension by dimension
/// at `packed[start..start + d · 16 · V]`.
#[derive(Debug, Clone, Copy)]
struct Block {
    first: usize,
    vectors: usize,
    start: usize,
}

/// The best `queries[i].k` rows for each query `i` of `group` (indexes into `queries`, unfiltered
/// and validated), best first. Call only when [`crate::kernels::isa`] is AVX-512.
pub(crate) fn search_group(
    collection: &Collection,
    queries: &[VectorQuery],
    group: &[usize],
) -> Vec<Vec<Hit>> {
    let d = collection.dimension();
    let mut blocks = Vec::new();
    let (mut first, mut start) = (0, 0);
    while first < group.len() {
        let vectors = if group.len() - first > LANES { 2 } else { 1 };
        blocks.push(Block { first, vectors, start });
        first += vectors * LANES;
        start += vectors * LANES * d;
    }
    // packed[start + k · width + lane] = dimension k of query first + lane (0 past the end).
    let mut packed = vec![0.0f32; start];
    for block in &blocks {
        let width = block.vectors * LANES;
        for (lane, i) in group.iter().skip(block.first).take(width).enumerate() {
            for (k, value) in queries[*i].vector.iter().enumerate().take(d) {
                packed[block.start + k * width + lane] = *value;
            }
        }
    }
    let mut tops: Vec<TopK> = group.iter().map(|i| TopK::new(queries[*i].k)).collect();
    // Past the last query the threshold is +∞: padded lanes (score 0) never pass it.
    let mut thresholds = vec![f32::INFINITY; first];
    for (threshold, top) in thresholds.iter_mut().zip(&tops) {
        *threshold = top.threshold();
    }
    if d > 0 {
        let mut scan =
            Scan { matrix: collection.matrix(), seqs: collection.seqs(), d, tops: &mut tops, thresholds };
        // SAFETY: the caller checked that the CPU supports AVX-512F.
        unsafe { scan.run(&packed, &blocks) };
    }
    tops.into_iter().map(TopK::into_sorted).collect()
}

/// One pass of a group over the rows.
struct Scan<'a> {
    matrix: &'a [f32],
    seqs: &'a [u64],
    d: usize,
    tops: &'a mut [TopK],
    /// Per query lane: scores below it cannot enter the query's top k.
    thresholds: Vec<f32>,
}

/// Rows `row..row + R` against `block` with `V` vectors, for the row counts a step can have.
macro_rules! step {
    ($scan:expr, $rows:expr, $row:expr, $block:expr, $panel:expr, $v:literal, [$($r:literal),*]) => {
        match $rows {
            $($r => $scan.rows::<$r, $v>($row, $block, $panel),)*
            _ => {}
        }
    };
}

impl Scan<'_> {
    #[target_feature(enable = "avx512f")]
    fn run(&mut self, packed: &[f32], blocks: &[Block]) {
        let d = self.d;
        let n = self.matrix.len() / d;
        // Sixteen rows at a time, each block's step keeping 16 accumulators: two steps of 8 rows
        // × 2 vectors, or one of 16 rows × 1 vector.
        let mut row = 0;
        while row < n {
            let chunk = 16.min(n - row);
            for block in blocks {
                let panel = &packed[block.start..block.start + block.vectors * LANES * d];
                if block.vectors == 2 {
                    step!(self, chunk.min(8), row, block, panel, 2, [1, 2, 3, 4, 5, 6, 7, 8]);
                    if chunk > 8 {
                        step!(self, chunk - 8, row + 8, block, panel, 2, [1, 2, 3, 4, 5, 6, 7, 8]);
                    }
                } else {
                    step!(
                        self,
                        chunk,
                        row,
                        block,
                        panel,
                        1,
                        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
                    );
                }
            }
            row += 16;
        }
    }

    /// Scores rows `row..row + R` against `block` (`panel`, d × 16·V values) and offers the
    /// scores that pass their query's threshold.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn rows<const R: usize, const V: usize>(&mut self, row: usize, block: &Block, panel: &[f32]) {
        use std::arch::x86_64::*;
        let d = self.d;
        let rows = &self.matrix[row * d..(row + R) * d];
        let width = V * LANES;
        let steps = d.min(panel.len() / width);
        let mut acc = [[_mm512_setzero_ps(); V]; R];
        // One pointer per row and one into the panel, advanced as the dimensions go by.
        let mut r: [*const f32; R] = std::array::from_fn(|i| rows[i * d..].as_ptr());
        let mut q = panel.as_ptr();
        for _ in 0..steps {
            // SAFETY: `steps` ≤ d, and each row pointer starts a row of d values; the panel holds
            // `steps` × 16·V values from `q` on.
            unsafe {
                let qs: [__m512; V] = std::array::from_fn(|v| _mm512_loadu_ps(q.add(v * LANES)));
                for (acc, r) in acc.iter_mut().zip(r.iter_mut()) {
                    let x = _mm512_set1_ps(**r);
                    for (acc, q) in acc.iter_mut().zip(&qs) {
                        *acc = _mm512_fmadd_ps(x, *q, *acc);
                    }
                    *r = r.add(1);
                }
                q = q.add(width);
            }
        }
        let lanes = &mut self.thresholds[block.first..block.first + width];
        // SAFETY: `lanes` holds 16·V values.
        let mut limits: [__m512; V] =
            std::array::from_fn(|v| unsafe { _mm512_loadu_ps(lanes.as_ptr().add(v * LANES)) });
        for (i, acc) in acc.iter().enumerate() {
            // "Not less than", true for NaN too: a NaN is offered and ranks last (as `TopK` does).
            let mut passed = 0u32;
            for (v, (acc, limit)) in acc.iter().zip(&limits).enumerate() {
                passed |= u32::from(_mm512_cmp_ps_mask::<_CMP_NLT_UQ>(*acc, *limit)) << (v * LANES);
            }
            if passed == 0 {
                continue;
            }
            let mut scores = [0.0f32; 2 * LANES];
            for (v, acc) in acc.iter().enumerate() {
                // SAFETY: `scores` holds 32 values, V ≤ 2.
                unsafe { _mm512_storeu_ps(scores.as_mut_ptr().add(v * LANES), *acc) };
            }
            let slot = row + i;
            while passed != 0 {
                let lane = passed.trailing_zeros() as usize;
                passed &= passed - 1;
                let Some(top) = self.tops.get_mut(block.first + lane) else { continue };
                top.push(Hit { score: scores[lane], seq: self.seqs[slot], slot });
                lanes[lane] = top.threshold();
            }
            // SAFETY: as above.
            limits = std::array::from_fn(|v| unsafe { _mm512_loadu_ps(lanes.as_ptr().add(v * LANES)) });
        }
    }
}
