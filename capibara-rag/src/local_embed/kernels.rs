//! The numeric kernels of the forward pass: vectorised GELU (erf), softmax and layer
//! normalisation (the checked matrix product over the `gemm` crate is in [`crate::kernels`]).
//!
//! Why not candle's ops: candle evaluates `erf` and `exp` one scalar at a time through libm, which cost
//! about as much as the matrix products for this model. Here they are branch-free polynomials in loops
//! that the compiler vectorises, compiled three times (AVX-512, AVX2+FMA, baseline) and picked at run
//! time. Float sums are kept in 16 independent lanes so they vectorise without fast-math.
//!
//! `unsafe` here: calls into functions compiled for CPU features that were detected first.

#![allow(unsafe_code)]

use crate::kernels::{Isa, isa};

/// Defines `pub(crate) fn $name(args)` that runs `$generic` compiled for the best detected ISA.
macro_rules! dispatch {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) => $generic:ident) => {
        $(#[$doc])*
        pub(crate) fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                fn avx512($($arg: $ty),*) { $generic($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) { $generic($($arg),*) }
                match isa() {
                    // SAFETY: `isa()` detected these features on this CPU.
                    Isa::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: as above.
                    Isa::Avx2 => return unsafe { avx2($($arg),*) },
                    Isa::Baseline => {}
                }
            }
            $generic($($arg),*)
        }
    };
}

dispatch! {
    /// `x ← x·½·(1 + erf(x/√2))`, the exact (erf) GELU BERT uses.
    fn gelu(x: &mut [f32]) => gelu_generic
}

dispatch! {
    /// Softmax of every `cols`-long row of `x`, in place.
    fn softmax_rows(x: &mut [f32], cols: usize) => softmax_rows_generic
}

dispatch! {
    /// Layer normalisation of every row of `x` (rows as long as `gamma`), in place:
    /// `(x − mean) / √(var + eps) · gamma + beta`.
    fn layer_norm_rows(x: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) => layer_norm_rows_generic
}

dispatch! {
    /// `x ← x + y` elementwise over the common length.
    fn add_assign(x: &mut [f32], y: &[f32]) => add_assign_generic
}

#[inline(always)]
fn gelu_generic(x: &mut [f32]) {
    for v in x {
        *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// erf for f32: a rational approximation on [−4, 4] (outside it erf is ±1 in f32), odd numerator of
/// degree 13 over an even denominator of degree 8; absolute error under 4e-7, a few ulp of the
/// f32 values near ±1 where it peaks (tested below).
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2.mul_add(-2.726_142_3e-10, 2.770_681_4e-8);
    p = x2.mul_add(p, -2.101_024e-6);
    p = x2.mul_add(p, -5.692_506_4e-5);
    p = x2.mul_add(p, -7.349_906_3e-4);
    p = x2.mul_add(p, -2.954_6e-3);
    p = x2.mul_add(p, -1.609_603_3e-2);
    let mut q = x2.mul_add(-1.456_607_2e-5, -2.133_740_6e-4);
    q = x2.mul_add(q, -1.682_827e-3);
    q = x2.mul_add(q, -7.373_329_2e-3);
    q = x2.mul_add(q, -1.426_474e-2);
    x * p / q
}

/// e^x for x ≤ 0 (softmax after subtracting the row maximum): Cephes' range reduction and degree-5
/// polynomial, relative error about 1e-7; inputs below −87 give the smallest normal number's scale.
#[inline(always)]
pub(crate) fn exp_nonpositive(x: f32) -> f32 {
    let x = x.clamp(-87.0, 0.0);
    let n = x.mul_add(std::f32::consts::LOG2_E, 0.5).floor();
    // ln 2 split in two so that n·ln2 is exact to f32 precision.
    let r = n.mul_add(2.121_944_4e-4, n.mul_add(-0.693_359_4, x));
    let mut y = r.mul_add(1.987_569_1e-4, 1.398_2e-3);
    y = r.mul_add(y, 8.333_452e-3);
    y = r.mul_add(y, 4.166_579_6e-2);
    y = r.mul_add(y, 1.666_666_5e-1);
    y = r.mul_add(y, 0.5);
    y = (r * r).mul_add(y, r) + 1.0;
    // 2^n by building the exponent bits; n is in [−126, 0], so the biased exponent stays normal.
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    y * scale
}

const LANES: usize = 16;

/// Sum of `x` in 16 independent lanes (vectorises without reassociation flags).
#[inline(always)]
fn sum(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (a, v) in acc.iter_mut().zip(chunk) {
            *a += *v;
        }
    }
    acc.iter().sum::<f32>() + tail.iter().sum::<f32>()
}

/// Maximum of a non-empty `x` in 16 lanes.
#[inline(always)]
fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (a, v) in acc.iter_mut().zip(chunk) {
            *a = a.max(*v);
        }
    }
    acc.iter().chain(tail).fold(f32::NEG_INFINITY, |m, v| m.max(*v))
}

#[inline(always)]
fn softmax_rows_generic(x: &mut [f32], cols: usize) {
    if cols == 0 {
        return;
    }
    for row in x.chunks_exact_mut(cols) {
        let top = max(row);
        for v in row.iter_mut() {
            *v = exp_nonpositive(*v - top);
        }
        let inverse = 1.0 / sum(row);
        for v in row.iter_mut() {
            *v *= inverse;
        }
    }
}

#[inline(always)]
fn layer_norm_rows_generic(x: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let width = gamma.len();
    if width == 0 {
        return;
    }
    let n = width as f32;
    for row in x.chunks_exact_mut(width) {
        let mean = sum(row) / n;
        let mut acc = [0.0f32; LANES];
        let chunks = row.chunks_exact(LANES);
        let tail: f32 = chunks.remainder().iter().map(|v| (v - mean) * (v - mean)).sum();
        for chunk in chunks {
            for (a, v) in acc.iter_mut().zip(chunk) {
                *a += (v - mean) * (v - mean);
            }
        }
        let variance = (acc.iter().sum::<f32>() + tail) / n;
        let inverse = 1.0 / (variance + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = (*v - mean) * inverse * g + b;
        }
    }
}

#[inline(always)]
fn add_assign_generic(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += *b;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// erf by its Taylor series in f64 (exact to ~1e-10 on [−4, 4]), the reference for the f32 kernel.
    fn erf_reference(x: f64) -> f64 {
        let (mut term, mut total) = (x, x);
        for n in 1..200 {
            term *= -x * x / f64::from(n);
            total += term / f64::from(2 * n + 1);
        }
        total * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn erf_is_accurate_over_its_range() {
        let mut worst = 0.0f64;
        for i in -6000..=6000 {
            let x = i as f32 / 1000.0;
            // Past ±4, erf differs from ±1 by under 1.6e-8.
            let expected = if x.abs() > 4.0 { f64::from(x.signum()) } else { erf_reference(f64::from(x)) };
            worst = worst.max((f64::from(erf(x)) - expected).abs());
        }
        assert!(worst < 4e-7, "worst erf error {worst}");
    }

    #[test]
    fn exp_is_accurate_for_softmax_inputs() {
        let mut worst = 0.0f64;
        for i in 0..=90_000 {
            let x = -(i as f32) / 1000.0;
            let expected = f64::from(x).exp();
            let relative = (f64::from(exp_nonpositive(x)) - expected).abs() / expected;
            if x > -87.0 {
                worst = worst.max(relative);
            }
        }
        assert!(worst < 3e-7, "worst relative exp error {worst}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert!(exp_nonpositive(-1e30) >= 0.0);
    }

    #[test]
    fn gelu_softmax_and_layer_norm_match_plain_formulas() {
        let values: Vec<f32> = (0..1000).map(|i| ((i * 37 % 101) as f32 - 50.0) / 9.0).collect();
        let mut g = values.clone();
        gelu(&mut g);
        for (v, out) in values.iter().zip(&g) {
            let expected = 0.5 * f64::from(*v) * (1.0 + erf_reference(f64::from(*v) / 2f64.sqrt()));
            assert!((f64::from(*out) - expected).abs() < 1e-6, "gelu({v}) = {out}, expected {expected}");
        }

        let cols = 37;
        let mut s = values[..cols * 20].to_vec();
        softmax_rows(&mut s, cols);
        for (row, input) in s.chunks(cols).zip(values.chunks(cols)) {
            let top = input.iter().fold(f64::NEG_INFINITY, |m, v| m.max(f64::from(*v)));
            let total: f64 = input.iter().map(|v| (f64::from(*v) - top).exp()).sum();
            for (out, v) in row.iter().zip(input) {
                let expected = (f64::from(*v) - top).exp() / total;
                assert!((f64::from(*out) - expected).abs() < 1e-7);
            }
        }

        let width = 45;
        let gamma: Vec<f32> = (0..width).map(|i| 1.0 + i as f32 / 100.0).collect();
        let beta: Vec<f32> = (0..width).map(|i| i as f32 / 50.0 - 0.3).collect();
        let mut n = values[..width * 10].to_vec();
        layer_norm_rows(&mut n, &gamma, &beta, 1e-12);
        for (row, input) in n.chunks(width).zip(values.chunks(width)) {
            let mean = input.iter().map(|v| f64::from(*v)).sum::<f64>() / width as f64;
            let var = input.iter().map(|v| (f64::from(*v) - mean).powi(2)).sum::<f64>() / width as f64;
            for (i, (out, v)) in row.iter().zip(input).enumerate() {
                let expected =
                    (f64::from(*v) - mean) / (var + 1e-12).sqrt() * f64::from(gamma[i]) + f64::from(beta[i]);
                assert!((f64::from(*out) - expected).abs() < 1e-5, "{out} vs {expected}");
            }
        }
    }
}
