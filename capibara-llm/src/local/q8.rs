//! Q8_0 matrix products for decoding: one activation row (or a few) against a whole matrix.
//!
//! Decoding one token reads every weight once, so its speed is the speed of the int8 dot
//! products. Candle's Q8_0 path converts each block's f16 scale through a function call and
//! walks one weight row per dot product. Here a matrix is unpacked once at load into int8
//! quants and f32 scales, the activation is quantized once per product (GGML's `Q8_0`
//! rounding, so results match candle's), and an AVX2 kernel reads four weight rows per pass
//! over the activation. Rows are split over candle's barrier pool, which spins between calls
//! instead of parking, and several matrices that read the same activation (Q, K, V; gate and
//! up) share one trip through the pool.
//!
//! This module and `kernels` hold the crate's `unsafe` code: SIMD intrinsics behind run-time
//! feature checks, and writes to disjoint output ranges from the pool's threads.

#![allow(unsafe_code)]

use candle_core::quantized::{GgmlDType, QTensor};
use capibara_core::{Error, Result};
use half::f16;

/// Values per Q8_0 block.
pub(crate) const BLOCK: usize = 32;
/// Bytes per Q8_0 block in GGUF: an f16 scale and 32 quants.
const BLOCK_BYTES: usize = 2 + BLOCK;
/// Weight rows one work item of the pool covers; a multiple of the kernel's four.
const ROWS_PER_ITEM: usize = 16;

/// A Q8_0 matrix, `rows × cols`, unpacked: `quants` row-major, one scale per 32 values.
#[derive(Debug)]
pub(crate) struct Q8Matrix {
    rows: usize,
    cols: usize,
    quants: Vec<i8>,
    scales: Vec<f32>,
}

impl Q8Matrix {
    /// Unpacks a two-dimensional Q8_0 tensor; `None` for other types.
    pub(crate) fn from_qtensor(tensor: &QTensor) -> Result<Option<Self>> {
        if tensor.dtype() != GgmlDType::Q8_0 {
            return Ok(None);
        }
        let (rows, cols) = tensor.shape().dims2().map_err(|e| Error::internal(e.to_string()))?;
        let data = tensor.data().map_err(|e| Error::internal(e.to_string()))?;
        Self::from_blocks(rows, cols, &data).map(Some)
    }

    /// Unpacks GGUF Q8_0 blocks (little-endian f16 scale, then 32 quants).
    pub(crate) fn from_blocks(rows: usize, cols: usize, data: &[u8]) -> Result<Self> {
        if !cols.is_multiple_of(BLOCK) || data.len() != rows * cols / BLOCK * BLOCK_BYTES {
            return Err(Error::invalid(format!(
                "a {rows}×{cols} Q8_0 matrix needs {} bytes, found {}",
                rows * (cols / BLOCK) * BLOCK_BYTES,
                data.len()
            )));
        }
        let mut quants = Vec::with_capacity(rows * cols);
        let mut scales = Vec::with_capacity(rows * cols / BLOCK);
        for block in data.chunks_exact(BLOCK_BYTES) {
            scales.push(f16::from_le_bytes([block[0], block[1]]).to_f32());
            quants.extend(block[2..].iter().map(|&b| b as i8));
        }
        Ok(Self { rows, cols, quants, scales })
    }

    /// `out[r] = row r · x` for rows `range` (a multiple of 4 long, except at the end).
    fn rows_times(&self, range: std::ops::Range<usize>, x: &Q8Vector, out: &mut [f32]) {
        let blocks = self.cols / BLOCK;
        let mut row = range.start;
        while row < range.end {
            let take = (range.end - row).min(4);
            let mut sums = [0.0f32; 4];
            let rows: [usize; 4] = std::array::from_fn(|i| row + i.min(take - 1));
            let quants = rows.map(|r| &self.quants[r * self.cols..(r + 1) * self.cols]);
            let scales = rows.map(|r| &self.scales[r * blocks..(r + 1) * blocks]);
            dot4(quants, scales, x, &mut sums);
            out[row - range.start..row - range.start + take].copy_from_slice(&sums[..take]);
            row += take;
        }
    }
}

/// An activation row quantized to Q8_0.
#[derive(Debug, Default)]
pub(crate) struct Q8Vector {
    quants: Vec<i8>,
    scales: Vec<f32>,
}

impl Q8Vector {
    /// Quantizes `x` (a multiple of 32 long) as GGML does: per block, the scale is the largest
    /// magnitude over 127, rounded to f16, and each value rounds half away from zero.
    pub(crate) fn quantize(&mut self, x: &[f32]) {
        self.quants.clear();
        self.scales.clear();
        for block in x.chunks_exact(BLOCK) {
            let amax = block.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let d = amax / 127.0;
            let inverse = if d == 0.0 { 0.0 } else { 1.0 / d };
            self.scales.push(f16::from_f32(d).to_f32());
            self.quants.extend(block.iter().map(|v| (v * inverse).round() as i8));
        }
    }

    fn len(&self) -> usize {
        self.quants.len()
    }
}

/// One product of a batch: `out = matrix · x`.
pub(crate) struct Product<'a> {
    pub(crate) matrix: &'a Q8Matrix,
    pub(crate) out: &'a mut [f32],
}

/// A pointer to an output slice that pool threads write at disjoint ranges.
struct SharedOut {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: every work item writes a range no other item writes, and the pool joins before the
// slices are used again.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

/// Runs every product of `products` with the same activation `x`, split over candle's pool.
pub(crate) fn multiply(products: &mut [Product<'_>], x: &Q8Vector) -> Result<()> {
    for product in products.iter() {
        if product.matrix.cols != x.len() || product.out.len() != product.matrix.rows {
            return Err(Error::internal(format!(
                "Q8_0 product shapes: {}×{} matrix, {} inputs, {} outputs",
                product.matrix.rows,
                product.matrix.cols,
                x.len(),
                product.out.len()
            )));
        }
    }
    // Work items: (product, first row), ROWS_PER_ITEM rows each.
    let mut items = Vec::new();
    for (index, product) in products.iter().enumerate() {
        items.extend((0..product.matrix.rows).step_by(ROWS_PER_ITEM).map(|row| (index, row)));
    }
    let outputs: Vec<(SharedOut, &Q8Matrix)> = products
        .iter_mut()
        .map(|p| (SharedOut { ptr: p.out.as_mut_ptr(), len: p.out.len() }, p.matrix))
        .collect();
    candle_core::utils::barrier_pool().execute_chunked(items.len(), |range| {
        for &(index, row) in &items[range] {
            let (out, matrix) = &outputs[index];
            let end = (row + ROWS_PER_ITEM).min(matrix.rows);
            debug_assert!(end <= out.len);
            // SAFETY: `row..end` lies inside the output (checked above) and belongs to this
            // work item alone; the slice outlives the pool call, which joins before returning.
            let out = unsafe { std::slice::from_raw_parts_mut(out.ptr.add(row), end - row) };
            matrix.rows_times(row..end, x, out);
        }
    });
    Ok(())
}

/// Four dot products of weight rows with `x`, into `sums`.
fn dot4(quants: [&[i8]; 4], scales: [&[f32]; 4], x: &Q8Vector, sums: &mut [f32; 4]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512bw") && std::arch::is_x86_feature_detected!("avx512vnni") {
        // SAFETY: as below.
        unsafe { avx512::dot4(quants, scales, x, sums) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports the features the function is compiled for; lengths agree
        // (checked by `multiply`).
        unsafe { avx2::dot4(quants, scales, x, sums) };
        return;
    }
    for (r, sum) in sums.iter_mut().enumerate() {
        *sum = scalar_dot(quants[r], scales[r], &x.quants, &x.scales);
    }
}

fn scalar_dot(quants: &[i8], scales: &[f32], xq: &[i8], xs: &[f32]) -> f32 {
    quants
        .chunks_exact(BLOCK)
        .zip(xq.chunks_exact(BLOCK))
        .zip(scales.iter().zip(xs))
        .map(|((w, x), (ws, xs))| {
            let dot: i32 = w.iter().zip(x).map(|(&a, &b)| i32::from(a) * i32::from(b)).sum();
            dot as f32 * ws * xs
        })
        .sum()
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{BLOCK, Q8Vector};

    /// Per block: |w| × sign(x, w) in unsigned×signed int8 pairs (`maddubs`), pairs summed to
    /// int32, converted and scaled by both blocks' scales into eight float lanes per row.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot4(quants: [&[i8]; 4], scales: [&[f32]; 4], x: &Q8Vector, sums: &mut [f32; 4]) {
        let ones = _mm256_set1_epi16(1);
        let mut acc = [_mm256_setzero_ps(); 4];
        for (b, &xs) in x.scales.iter().enumerate() {
            // SAFETY (whole loop): every row and `x` hold as many blocks of 32 as `x` has scales.
            let xv = unsafe { _mm256_loadu_si256(x.quants.as_ptr().add(b * BLOCK).cast()) };
            for r in 0..4 {
                let wv = unsafe { _mm256_loadu_si256(quants[r].as_ptr().add(b * BLOCK).cast()) };
                let magnitude = _mm256_sign_epi8(wv, wv);
                let signed = _mm256_sign_epi8(xv, wv);
                let pairs = _mm256_maddubs_epi16(magnitude, signed);
                let quads = _mm256_madd_epi16(pairs, ones);
                let scale = _mm256_set1_ps(scales[r][b] * xs);
                acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(quads), scale, acc[r]);
            }
        }
        for (sum, acc) in sums.iter_mut().zip(acc) {
            let halves = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
            let pairs = _mm_add_ps(halves, _mm_movehl_ps(halves, halves));
            let single = _mm_add_ss(pairs, _mm_shuffle_ps(pairs, pairs, 1));
            *sum = _mm_cvtss_f32(single);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{BLOCK, Q8Vector, scalar_dot};

    /// Two blocks per step: |w| × (x with w's sign) summed four at a time into int32 by VNNI
    /// (`dpbusd`, no saturation), the low eight lanes scaled by the first block's scales and the
    /// high eight by the second's. An odd last block goes through the scalar dot product.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn dot4(quants: [&[i8]; 4], scales: [&[f32]; 4], x: &Q8Vector, sums: &mut [f32; 4]) {
        let mut acc = [_mm512_setzero_ps(); 4];
        let blocks = x.scales.len();
        let zero = _mm512_setzero_si512();
        for pair in 0..blocks / 2 {
            let at = pair * 2 * BLOCK;
            // SAFETY (whole loop): every row and `x` hold as many blocks of 32 as `x` has scales.
            let xv = unsafe { _mm512_loadu_si512(x.quants.as_ptr().add(at).cast()) };
            let (x_low, x_high) = (x.scales[2 * pair], x.scales[2 * pair + 1]);
            for r in 0..4 {
                let wv = unsafe { _mm512_loadu_si512(quants[r].as_ptr().add(at).cast()) };
                let negative = _mm512_movepi8_mask(wv);
                let signed = _mm512_mask_sub_epi8(xv, negative, zero, xv);
                let dots = _mm512_dpbusd_epi32(zero, _mm512_abs_epi8(wv), signed);
                let scale = _mm512_mask_blend_ps(
                    0xFF00,
                    _mm512_set1_ps(scales[r][2 * pair] * x_low),
                    _mm512_set1_ps(scales[r][2 * pair + 1] * x_high),
                );
                acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dots), scale, acc[r]);
            }
        }
        for (r, (sum, acc)) in sums.iter_mut().zip(acc).enumerate() {
            *sum = _mm512_reduce_add_ps(acc);
            if blocks % 2 == 1 {
                let last = blocks - 1;
                *sum += scalar_dot(
                    &quants[r][last * BLOCK..],
                    &scales[r][last..],
                    &x.quants[last * BLOCK..],
                    &x.scales[last..],
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::quantized::QMatMul;
    use candle_core::{Device, Module, Tensor};

    use super::*;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    fn quantized(rows: usize, cols: usize) -> QTensor {
        let weights = Tensor::from_vec(values(rows * cols, 7), (rows, cols), &Device::Cpu).unwrap();
        QTensor::quantize(&weights, GgmlDType::Q8_0).unwrap()
    }

    #[test]
    fn products_match_candles_q8_0_matmul() {
        // 70 rows: four-row passes, a short last pass and a short last work item.
        let (rows, cols) = (70, 96);
        let tensor = quantized(rows, cols);
        let matrix = Q8Matrix::from_qtensor(&tensor).unwrap().unwrap();
        let input = values(cols, 3);
        let expected = QMatMul::from_qtensor(tensor)
            .unwrap()
            .forward(&Tensor::from_vec(input.clone(), (1, cols), &Device::Cpu).unwrap())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let mut x = Q8Vector::default();
        x.quantize(&input);
        let mut out = vec![0.0; rows];
        let mut twice = vec![0.0; rows];
        multiply(
            &mut [Product { matrix: &matrix, out: &mut out }, Product { matrix: &matrix, out: &mut twice }],
            &x,
        )
        .unwrap();
        for (a, b) in out.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
        assert_eq!(out, twice);
    }

    #[test]
    fn the_simd_kernels_agree_with_the_scalar_one() {
        // Nine blocks: the AVX-512 kernel's pairs and its odd last block.
        let cols = 9 * BLOCK;
        let matrix = Q8Matrix::from_qtensor(&quantized(4, cols)).unwrap().unwrap();
        let mut x = Q8Vector::default();
        x.quantize(&values(cols, 11));
        let rows: [usize; 4] = [0, 1, 2, 3];
        let quants = rows.map(|r| &matrix.quants[r * cols..(r + 1) * cols]);
        let scales = rows.map(|r| &matrix.scales[r * 9..(r + 1) * 9]);
        let expected = rows.map(|r| scalar_dot(quants[r], scales[r], &x.quants, &x.scales));
        let mut kernels: Vec<(&str, [f32; 4])> = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            let mut sums = [0.0; 4];
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                unsafe { avx2::dot4(quants, scales, &x, &mut sums) };
                kernels.push(("avx2", sums));
            }
            if is_x86_feature_detected!("avx512bw") && is_x86_feature_detected!("avx512vnni") {
                unsafe { avx512::dot4(quants, scales, &x, &mut sums) };
                kernels.push(("avx512", sums));
            }
        }
        for (name, sums) in kernels {
            for (sum, expected) in sums.iter().zip(expected) {
                assert!((sum - expected).abs() < 1e-4, "{name}: {sum} vs {expected}");
            }
        }
    }

    #[test]
    fn mismatched_shapes_and_truncated_data_are_errors() {
        let matrix = Q8Matrix::from_qtensor(&quantized(4, 64)).unwrap().unwrap();
        let mut x = Q8Vector::default();
        x.quantize(&values(32, 1));
        let mut out = vec![0.0; 4];
        assert!(multiply(&mut [Product { matrix: &matrix, out: &mut out }], &x).is_err());
        assert!(Q8Matrix::from_blocks(2, 64, &[0; 10]).is_err());
        assert!(Q8Matrix::from_blocks(2, 48, &[0; 102]).is_err());
    }
}
