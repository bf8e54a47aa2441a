//! Inner products of one query with many rows of the collection's matrix.
//!
//! Each row is read start to end before the next one, so a scan of the matrix is one sequential
//! stream that the hardware prefetchers follow at memory bandwidth. Four accumulators per row keep
//! four chains of fused multiply-adds in flight. (An earlier kernel scored four rows at a time,
//! sharing each load of the query between them; on the 2-core EPYC of `benches/vector/run-exact`
//! that interleaving of four streams ran at half the speed of a row-by-row scan over 100,000 × 384,
//! which matches FAISS's.) Compiled for AVX-512F, AVX2+FMA and a portable baseline, picked at run
//! time by [`crate::kernels::isa`]. Rows are summed in a different order than a plain loop, so
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

/// The loop over rows, one at a time, calling `$dot`.
macro_rules! score_loop {
    ($dot:ident, $matrix:expr, $query:expr, $rows:expr, $out:expr) => {{
        let (matrix, query, rows, out): (&[f32], &[f32], Rows<'_>, &mut [f32]) =
            ($matrix, $query, $rows, $out);
        let d = query.len();
        match rows {
            Rows::All if d > 0 => {
                for (score, row) in out.iter_mut().zip(matrix.chunks_exact(d)) {
                    *score = $dot(row, query);
                }
            }
            Rows::All => out.fill(0.0),
            Rows::Selected(slots) => {
                for (score, slot) in out.iter_mut().zip(slots) {
                    *score = $dot(&matrix[slot * d..(slot + 1) * d], query);
                }
            }
        }
    }};
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn score_avx512(matrix: &[f32], query: &[f32], rows: Rows<'_>, out: &mut [f32]) {
    score_loop!(dot_avx512, matrix, query, rows, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn score_avx2(matrix: &[f32], query: &[f32], rows: Rows<'_>, out: &mut [f32]) {
    score_loop!(dot_avx2, matrix, query, rows, out)
}

fn score_baseline(matrix: &[f32], query: &[f32], rows: Rows<'_>, out: &mut [f32]) {
    score_loop!(dot_baseline, matrix, query, rows, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
fn dot_avx512(row: &[f32], query: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = row.len().min(query.len());
    let (r, q) = (row.as_ptr(), query.as_ptr());
    let zero = _mm512_setzero_ps();
    let (mut a, mut b, mut c, mut e) = (zero, zero, zero, zero);
    let mut j = 0;
    while j + 64 <= n {
        // SAFETY: j + 64 ≤ n, and both slices hold at least n values.
        unsafe {
            a = _mm512_fmadd_ps(_mm512_loadu_ps(r.add(j)), _mm512_loadu_ps(q.add(j)), a);
            b = _mm512_fmadd_ps(_mm512_loadu_ps(r.add(j + 16)), _mm512_loadu_ps(q.add(j + 16)), b);
            c = _mm512_fmadd_ps(_mm512_loadu_ps(r.add(j + 32)), _mm512_loadu_ps(q.add(j + 32)), c);
            e = _mm512_fmadd_ps(_mm512_loadu_ps(r.add(j + 48)), _mm512_loadu_ps(q.add(j + 48)), e);
        }
        j += 64;
    }
    while j < n {
        let len = (n - j).min(16);
        let mask: __mmask16 = if len == 16 { u16::MAX } else { (1u16 << len) - 1 };
        // SAFETY: j < n; the masked loads read only the `len` values from j on, all below n
        // (masked-off lanes are not accessed and cannot fault).
        unsafe {
            a = _mm512_fmadd_ps(
                _mm512_maskz_loadu_ps(mask, r.add(j)),
                _mm512_maskz_loadu_ps(mask, q.add(j)),
                a,
            );
        }
        j += len;
    }
    _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a, b), _mm512_add_ps(c, e)))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
fn dot_avx2(row: &[f32], query: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = row.len().min(query.len());
    let (r, q) = (row.as_ptr(), query.as_ptr());
    let zero = _mm256_setzero_ps();
    let (mut a, mut b, mut c, mut e) = (zero, zero, zero, zero);
    let mut j = 0;
    while j + 32 <= n {
        // SAFETY: j + 32 ≤ n, and both slices hold at least n values.
        unsafe {
            a = _mm256_fmadd_ps(_mm256_loadu_ps(r.add(j)), _mm256_loadu_ps(q.add(j)), a);
            b = _mm256_fmadd_ps(_mm256_loadu_ps(r.add(j + 8)), _mm256_loadu_ps(q.add(j + 8)), b);
            c = _mm256_fmadd_ps(_mm256_loadu_ps(r.add(j + 16)), _mm256_loadu_ps(q.add(j + 16)), c);
            e = _mm256_fmadd_ps(_mm256_loadu_ps(r.add(j + 24)), _mm256_loadu_ps(q.add(j + 24)), e);
        }
        j += 32;
    }
    while j + 8 <= n {
        // SAFETY: j + 8 ≤ n, as above.
        unsafe { a = _mm256_fmadd_ps(_mm256_loadu_ps(r.add(j)), _mm256_loadu_ps(q.add(j)), a) };
        j += 8;
    }
    let sum = hsum256(_mm256_add_ps(_mm256_add_ps(a, b), _mm256_add_ps(c, e)));
    sum + row[j..n].iter().zip(&query[j..n]).map(|(x, y)| x * y).sum::<f32>()
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

/// The portable kernel: sixteen independent lanes, which the compiler vectorises without
/// reassociating float adds.
#[inline(always)]
fn dot_baseline(row: &[f32], query: &[f32]) -> f32 {
    const LANES: usize = 16;
    let n = row.len().min(query.len());
    let whole = n / LANES * LANES;
    let mut acc = [0.0f32; LANES];
    for (r, q) in row[..whole].chunks_exact(LANES).zip(query[..whole].chunks_exact(LANES)) {
        for l in 0..LANES {
            acc[l] += r[l] * q[l];
        }
    }
    acc.iter().sum::<f32>() + row[whole..n].iter().zip(&query[whole..n]).map(|(a, b)| a * b).sum::<f32>()
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
            // Dimensions around every step of the kernels (64, 32, 16, 8, masked and scalar tails).
            for d in [1, 2, 7, 8, 15, 16, 17, 31, 32, 33, 48, 63, 64, 65, 96, 100, 127, 129, 384, 385] {
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
