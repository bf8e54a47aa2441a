//! Numeric kernels shared by the local embedder and the vector store: a bounds-checked matrix
//! product over the `gemm` crate, and the detection of the instruction set that the hand-dispatched
//! kernels (`local_embed`'s elementwise ops, `vector`'s dot products) pick at run time.
//!
//! `unsafe` here: the raw-pointer `gemm` call, guarded by bounds checks on every operand.

#![allow(unsafe_code)]

use capibara_core::{Error, Result};

/// A read-only strided matrix over a slice: element `(i, j)` is `data[i * row_stride + j * col_stride]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A row-major `rows × cols` matrix whose rows are `row_stride` apart (columns adjacent).
    pub(crate) fn rows(data: &'a [f32], rows: usize, cols: usize, row_stride: usize) -> Self {
        Self { data, rows, cols, row_stride, col_stride: 1 }
    }

    /// The transpose of [`MatRef::rows`]: a `cols × rows` view of the same elements.
    pub(crate) fn transposed(data: &'a [f32], rows: usize, cols: usize, row_stride: usize) -> Self {
        Self { data, rows: cols, cols: rows, row_stride: 1, col_stride: row_stride }
    }

    /// One past the largest index the view reads.
    fn extent(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride + 1
        }
    }
}

/// `dst = scale · a·b` (or `dst += scale · a·b` when `accumulate`), `dst` row-major with rows
/// `dst_row_stride` apart, single-threaded (the embedder parallelises across sequences, the vector
/// store runs on one blocking thread per search).
pub(crate) fn matmul(
    dst: &mut [f32],
    dst_row_stride: usize,
    accumulate: bool,
    a: MatRef<'_>,
    b: MatRef<'_>,
    scale: f32,
) -> Result<()> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let dst_extent = if m == 0 || n == 0 { 0 } else { (m - 1) * dst_row_stride + n };
    let shapes_agree = b.rows == k && (m <= 1 || dst_row_stride >= n);
    if !shapes_agree || a.extent() > a.data.len() || b.extent() > b.data.len() || dst_extent > dst.len() {
        return Err(Error::internal(format!(
            "matmul operands do not fit: {m}×{k} by {}×{n} into {} values (row stride {dst_row_stride})",
            b.rows,
            dst.len()
        )));
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if !accumulate {
            for row in dst.chunks_mut(dst_row_stride.max(1)).take(m) {
                row[..n].fill(0.0);
            }
        }
        return Ok(());
    }
    let stride = |s: usize| isize::try_from(s).map_err(|_| Error::internal("matmul stride overflows"));
    let (dst_rs, a_rs, a_cs, b_rs, b_cs) = (
        stride(dst_row_stride)?,
        stride(a.row_stride)?,
        stride(a.col_stride)?,
        stride(b.row_stride)?,
        stride(b.col_stride)?,
    );
    // SAFETY: every index gemm touches is below the extents checked above: dst (i, j) at
    // i·dst_rs + j for i < m, j < n; a (i, l) at i·a_rs + l·a_cs for l < k; b (l, j) likewise. `dst`
    // is a unique borrow, so it cannot overlap `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs,
            accumulate,
            a.data.as_ptr(),
            a_cs,
            a_rs,
            b.data.as_ptr(),
            b_cs,
            b_rs,
            1.0,
            scale,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    Ok(())
}

/// The instruction sets the hand-dispatched kernels of this crate are compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isa {
    /// AVX-512 F and VL (with AVX2 and FMA).
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// Whatever the compilation target guarantees (SSE2 on x86-64).
    Baseline,
}

/// The best instruction set this CPU supports (`std` caches the detection, so this is cheap).
pub(crate) fn isa() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512vl") {
            return Isa::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return Isa::Avx2;
        }
    }
    Isa::Baseline
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn matmul_handles_strides_transposes_and_accumulation() {
        // a: 3×4 inside rows of 6; b: 4×2 given as the transpose of a 2×4 row-major matrix.
        let a: Vec<f32> = (0..18).map(|v| v as f32).collect();
        let bt: Vec<f32> = (0..8).map(|v| (v as f32) - 3.0).collect();
        let mut dst = vec![1.0f32; 3 * 5];
        let a_view = MatRef::rows(&a, 3, 4, 6);
        let b_view = MatRef::transposed(&bt, 2, 4, 4);
        matmul(&mut dst, 5, true, a_view, b_view, 0.5).unwrap();
        for i in 0..3 {
            for j in 0..2 {
                let dot: f32 = (0..4).map(|l| a[i * 6 + l] * bt[j * 4 + l]).sum();
                assert_eq!(dst[i * 5 + j], 1.0 + 0.5 * dot);
            }
            assert_eq!(dst[i * 5 + 2], 1.0, "columns past n are untouched");
        }
        let too_small = matmul(&mut dst[..4], 5, false, a_view, b_view, 1.0).unwrap_err();
        assert_eq!(too_small.code(), "internal");
        let mismatched = matmul(&mut dst, 5, false, a_view, MatRef::rows(&bt, 3, 2, 2), 1.0).unwrap_err();
        assert_eq!(mismatched.code(), "internal");
    }
}
