//! Inner products of one query with many rows of the collection's matrix.
//!
//! Four rows at a time share each load of the query, with two accumulators per row (eight chains
//! of fused multiply-adds in flight), so one core runs at memory bandwidth rather than at the
//! latency of one add chain. Compiled for AVX-512F, AVX2+FMA and a portable baseline, picked at
//! run time by [`crate::kernels::isa`]. Rows are summed in a different order than a plain loop, so
//! scores agree with it to float rounding (about 1e-6 relative), not bit for bit.
//!
//! `unsafe` here: SIMD loads through raw pointers (each bounded by the shortest slice) and calls
//! into functions compiled for CPU features that were detected first.

#![allow(unsafe_code)]

use crate::kernels::{Isa, isa};

/// Which rows of the matrix to score.
#[derive(Debug, Clone, Copy)]
enum Rows<'a> {
    /// Rows `0..out.len()`.
    All,
    /// Rows `slots[i]` for `i in 0..out.len()`.
    Selected(&'a [usize]),
}

/// `out[i] = row i · query` for the first `out.len()` rows of `matrix` (rows `query.len()` long).
pub(crate) fn dot_rows(matrix: &[f32], query: &[f32], out: &mut [f32]) {
    // SAFETY: `isa()` is what this CPU supports.
    unsafe { score_with(isa(), matrix, query, Rows::All, out) }
}

/// `out[i] = row slots[i] · query` (rows of `matrix` are `query.len()` long); `slots` at least as
/// long as `out`.
pub(crate) fn dot_selected(matrix: &[f32], query: &[f32], slots: &[usize], out: &mut [f32]) {
    // SAFETY: as above.
    unsafe { score_with(isa(), matrix, query, Rows::Selected(slots), out) }
}

/// Runs the kernel compiled for `isa`.
///
/// # Safety
/// The CPU supports `isa`.
unsafe fn score_with(isa: Isa, matrix: &[f32], query: &[f32], rows: Rows<'_>, out: &mut [f32]) {
    match isa {
        // SAFETY: the caller promises the CPU supports the ISA.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { score_avx512(matrix, query, rows, out) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { score_avx2(matrix, query, rows, out) },
        Isa::Baseline => score_baseline(matrix, query, rows, out),
    }
}

/// The loop over rows, four at a time, calling `$dot4` (the last group repeats its last row).
macro_rules! score_loop {
    ($dot4:ident, $matrix:expr, $query:expr, $rows:expr, $out:expr) => {{
        let (matrix, query, rows, out): (&[f32], &[f32], Rows<'_>, &mut [f32]) =
            ($matrix, $query, $rows, $out);
        let d = query.len();
        let row = |i: usize| {
            let slot = match rows {
                Rows::All => i,
                Rows::Selected(slots) => slots[i],
            };
            &matrix[slot * d..(slot + 1) * d]
        };
        let n = out.len();
        let mut i = 0;
        while i < n {
            let last = n - 1;
            let group = [row(i), row((i + 1).min(last)), row((i + 2).min(last)), row((i + 3).min(last))];
            let scores = $dot4(group, query);
            let take = (n - i).min(4);
            out[i..i + take].copy_from_slice(&scores[..take]);
            i += 4;
        }
    }};
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn score_avx512(matrix: &[f32], query: &[f32], rows: Rows<'_>, out: &mut [f32]) {
    score_loop!(dot4_avx512, matrix, query, rows, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn score_avx2(matrix: &[f32], query: &[f32], rows: Rows<'_>, out: &mut [f32]) {
    score_loop!(dot4_avx2, matrix, query, rows, out)
}

fn score_baseline(matrix: &[f32], query: &[f32], rows: Rows<'_>, out: &mut [f32]) {
    score_loop!(dot4_baseline, matrix, query, rows, out)
}

/// The length every slice of a `dot4` call has at least.
#[inline(always)]
fn common_len(rows: &[&[f32]; 4], query: &[f32]) -> usize {
    rows.iter().fold(query.len(), |n, row| n.min(row.len()))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
fn dot4_avx512(rows: [&[f32]; 4], query: &[f32]) -> [f32; 4] {
    use std::arch::x86_64::*;
    let n = common_len(&rows, query);
    let [r0, r1, r2, r3] = rows.map(<[f32]>::as_ptr);
    let q = query.as_ptr();
    let zero = _mm512_setzero_ps();
    let (mut a0, mut b0, mut a1, mut b1, mut a2, mut b2, mut a3, mut b3) =
        (zero, zero, zero, zero, zero, zero, zero, zero);
    let mut j = 0;
    while j + 32 <= n {
        // SAFETY: j + 32 ≤ n, and every slice holds at least n values.
        unsafe {
            let q0 = _mm512_loadu_ps(q.add(j));
            let q1 = _mm512_loadu_ps(q.add(j + 16));
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(r0.add(j)), q0, a0);
            b0 = _mm512_fmadd_ps(_mm512_loadu_ps(r0.add(j + 16)), q1, b0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(r1.add(j)), q0, a1);
            b1 = _mm512_fmadd_ps(_mm512_loadu_ps(r1.add(j + 16)), q1, b1);
            a2 = _mm512_fmadd_ps(_mm512_loadu_ps(r2.add(j)), q0, a2);
            b2 = _mm512_fmadd_ps(_mm512_loadu_ps(r2.add(j + 16)), q1, b2);
            a3 = _mm512_fmadd_ps(_mm512_loadu_ps(r3.add(j)), q0, a3);
            b3 = _mm512_fmadd_ps(_mm512_loadu_ps(r3.add(j + 16)), q1, b3);
        }
        j += 32;
    }
    while j < n {
        let len = (n - j).min(16);
        let mask: __mmask16 = if len == 16 { u16::MAX } else { (1u16 << len) - 1 };
        // SAFETY: j < n; the masked loads read only the `len` values from j on, all below n
        // (masked-off lanes are not accessed and cannot fault).
        unsafe {
            let qv = _mm512_maskz_loadu_ps(mask, q.add(j));
            a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, r0.add(j)), qv, a0);
            a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, r1.add(j)), qv, a1);
            a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, r2.add(j)), qv, a2);
            a3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, r3.add(j)), qv, a3);
        }
        j += len;
    }
    [
        _mm512_reduce_add_ps(_mm512_add_ps(a0, b0)),
        _mm512_reduce_add_ps(_mm512_add_ps(a1, b1)),
        _mm512_reduce_add_ps(_mm512_add_ps(a2, b2)),
        _mm512_reduce_add_ps(_mm512_add_ps(a3, b3)),
    ]
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
fn dot4_avx2(rows: [&[f32]; 4], query: &[f32]) -> [f32; 4] {
    use std::arch::x86_64::*;
    let n = common_len(&rows, query);
    let [r0, r1, r2, r3] = rows.map(<[f32]>::as_ptr);
    let q = query.as_ptr();
    let zero = _mm256_setzero_ps();
    let (mut a0, mut b0, mut a1, mut b1, mut a2, mut b2, mut a3, mut b3) =
        (zero, zero, zero, zero, zero, zero, zero, zero);
    let mut j = 0;
    while j + 16 <= n {
        // SAFETY: j + 16 ≤ n, and every slice holds at least n values.
        unsafe {
            let q0 = _mm256_loadu_ps(q.add(j));
            let q1 = _mm256_loadu_ps(q.add(j + 8));
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(r0.add(j)), q0, a0);
            b0 = _mm256_fmadd_ps(_mm256_loadu_ps(r0.add(j + 8)), q1, b0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(r1.add(j)), q0, a1);
            b1 = _mm256_fmadd_ps(_mm256_loadu_ps(r1.add(j + 8)), q1, b1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(r2.add(j)), q0, a2);
            b2 = _mm256_fmadd_ps(_mm256_loadu_ps(r2.add(j + 8)), q1, b2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(r3.add(j)), q0, a3);
            b3 = _mm256_fmadd_ps(_mm256_loadu_ps(r3.add(j + 8)), q1, b3);
        }
        j += 16;
    }
    if j + 8 <= n {
        // SAFETY: j + 8 ≤ n, as above.
        unsafe {
            let q0 = _mm256_loadu_ps(q.add(j));
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(r0.add(j)), q0, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(r1.add(j)), q0, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(r2.add(j)), q0, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(r3.add(j)), q0, a3);
        }
        j += 8;
    }
    let mut sums = [
        hsum256(_mm256_add_ps(a0, b0)),
        hsum256(_mm256_add_ps(a1, b1)),
        hsum256(_mm256_add_ps(a2, b2)),
        hsum256(_mm256_add_ps(a3, b3)),
    ];
    for (sum, row) in sums.iter_mut().zip(rows) {
        *sum += row[j..n].iter().zip(&query[j..n]).map(|(a, b)| a * b).sum::<f32>();
    }
    sums
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
fn hsum256(v: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::*;
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s)))
}

/// The portable kernel: eight independent lanes per row, which the compiler vectorises without
/// reassociating float adds.
#[inline(always)]
fn dot4_baseline(rows: [&[f32]; 4], query: &[f32]) -> [f32; 4] {
    const LANES: usize = 8;
    let n = common_len(&rows, query);
    let whole = n / LANES * LANES;
    fn chunks(row: &[f32], whole: usize) -> std::slice::ChunksExact<'_, f32> {
        row[..whole].chunks_exact(LANES)
    }
    let (mut a0, mut a1, mut a2, mut a3) =
        ([0.0f32; LANES], [0.0f32; LANES], [0.0f32; LANES], [0.0f32; LANES]);
    let [r0, r1, r2, r3] = rows;
    let groups = chunks(query, whole)
        .zip(chunks(r0, whole))
        .zip(chunks(r1, whole))
        .zip(chunks(r2, whole))
        .zip(chunks(r3, whole));
    for ((((q, c0), c1), c2), c3) in groups {
        for l in 0..LANES {
            a0[l] += c0[l] * q[l];
            a1[l] += c1[l] * q[l];
            a2[l] += c2[l] * q[l];
            a3[l] += c3[l] * q[l];
        }
    }
    let acc = [a0, a1, a2, a3];
    let mut sums = [0.0f32; 4];
    for ((sum, acc), row) in sums.iter_mut().zip(&acc).zip(&rows) {
        *sum = acc.iter().sum::<f32>()
            + row[whole..n].iter().zip(&query[whole..n]).map(|(a, b)| a * b).sum::<f32>();
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The instruction sets this CPU can run, best first.
    fn available() -> Vec<Isa> {
        let mut isas = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if isa() == Isa::Avx512 {
                isas.push(Isa::Avx512);
            }
            if matches!(isa(), Isa::Avx512 | Isa::Avx2) {
                isas.push(Isa::Avx2);
            }
        }
        isas.push(Isa::Baseline);
        isas
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n as u32).map(|i| ((i.wrapping_mul(2_654_435_761) ^ seed) % 1000) as f32 / 500.0 - 1.0).collect()
    }

    fn reference(row: &[f32], query: &[f32]) -> f64 {
        row.iter().zip(query).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum()
    }

    #[test]
    fn every_isa_matches_a_plain_dot_product_for_every_shape() {
        for isa in available() {
            // Dimensions around every step of the kernels (32, 16, 8, masked and scalar tails).
            for d in [1, 2, 7, 8, 15, 16, 17, 31, 32, 33, 48, 63, 64, 100, 384, 385] {
                for n in [0, 1, 3, 4, 5, 9] {
                    let matrix = values(n * d, 7);
                    let query = values(d, 99);
                    let mut out = vec![f32::NAN; n];
                    // SAFETY: `available` lists only supported ISAs.
                    unsafe { score_with(isa, &matrix, &query, Rows::All, &mut out) };
                    for (i, score) in out.iter().enumerate() {
                        let expected = reference(&matrix[i * d..(i + 1) * d], &query);
                        assert!(
                            (f64::from(*score) - expected).abs() < 1e-4 * (1.0 + expected.abs()),
                            "{isa:?} d={d} n={n} row {i}: {score} vs {expected}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn selected_rows_are_scored_in_the_order_given() {
        let d = 37;
        let matrix = values(20 * d, 3);
        let query = values(d, 5);
        let slots = [19, 0, 7, 7, 3];
        for isa in available() {
            let mut out = vec![0.0; slots.len()];
            // SAFETY: as above.
            unsafe { score_with(isa, &matrix, &query, Rows::Selected(&slots), &mut out) };
            for (score, slot) in out.iter().zip(slots) {
                let expected = reference(&matrix[slot * d..(slot + 1) * d], &query);
                assert!((f64::from(*score) - expected).abs() < 1e-4, "{isa:?}");
            }
        }
        let mut out = vec![0.0; 2];
        dot_selected(&matrix, &query, &slots[..2], &mut out);
        let mut all = vec![0.0; 20];
        dot_rows(&matrix, &query, &mut all);
        assert_eq!(out, [all[19], all[0]], "the same kernel scores a row the same way in both paths");
    }
}
