//! One decoding step (a single new token) on plain buffers.
//!
//! A step is a few hundred small operations on vectors of a few hundred floats. Through candle
//! each would allocate a tensor and dispatch through its op machinery, which costs as much as
//! the arithmetic at this size; here the step reuses the buffers of a [`Scratch`], runs the
//! matrix products through [`project`] (Q8_0 kernels, one pool trip per group of matrices that
//! read the same input) and does norms, rotary embeddings and attention in place.

use capibara_core::Result;

use super::linear::project;
use super::model::{KvCache, Weights};
use super::q8::Q8Vector;

/// The buffers one generation reuses at every step.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    x: Vec<f32>,
    h: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    attention: Vec<f32>,
    projected: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    scores: Vec<f32>,
    logits: Vec<f32>,
    quantized: Q8Vector,
}

fn sized(buffer: &mut Vec<f32>, len: usize) -> &mut [f32] {
    buffer.resize(len, 0.0);
    &mut buffer[..]
}

/// Runs `token` at `position` (the cache holds the positions before it) and returns the logits.
pub(crate) fn step(
    weights: &Weights,
    cache: &mut [KvCache],
    position: usize,
    token: u32,
    s: &mut Scratch,
) -> Result<Vec<f32>> {
    let c = weights.config;
    let kv_width = c.kv_heads * c.head_dim;
    weights.embed(token, sized(&mut s.x, c.embedding))?;
    let (cos, sin) = weights.rotary(position);
    for (layer, cache) in weights.layers.iter().zip(cache.iter_mut()) {
        rms_norm(&s.x, &layer.attention_norm, c.rms_eps, sized(&mut s.h, c.embedding));
        project(
            &mut [
                (&layer.wq, sized(&mut s.q, c.heads * c.head_dim)),
                (&layer.wk, sized(&mut s.k, kv_width)),
                (&layer.wv, sized(&mut s.v, kv_width)),
            ],
            &s.h,
            &mut s.quantized,
        )?;
        rotate(&mut s.q, c.head_dim, cos, sin);
        rotate(&mut s.k, c.head_dim, cos, sin);
        cache.store(position, &s.k, &s.v);
        attend(
            &s.q,
            cache,
            position + 1,
            c.heads / c.kv_heads,
            &mut s.scores,
            sized(&mut s.attention, s.q.len()),
        );
        project(&mut [(&layer.wo, sized(&mut s.projected, c.embedding))], &s.attention, &mut s.quantized)?;
        add(&mut s.x, &s.projected);
        rms_norm(&s.x, &layer.ffn_norm, c.rms_eps, &mut s.h);
        let width = layer.gate.rows();
        project(
            &mut [(&layer.gate, sized(&mut s.gate, width)), (&layer.up, sized(&mut s.up, width))],
            &s.h,
            &mut s.quantized,
        )?;
        for (g, u) in s.gate.iter_mut().zip(&s.up) {
            *g = *g / (1.0 + (-*g).exp()) * u;
        }
        project(&mut [(&layer.down, &mut s.projected[..])], &s.gate, &mut s.quantized)?;
        add(&mut s.x, &s.projected);
    }
    rms_norm(&s.x, &weights.norm, c.rms_eps, &mut s.h);
    let vocabulary = weights.output.rows();
    project(&mut [(&weights.output, sized(&mut s.logits, vocabulary))], &s.h, &mut s.quantized)?;
    Ok(s.logits.clone())
}

/// `out = x / rms(x) · weight`.
pub(crate) fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let mean_square = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let scale = 1.0 / (mean_square + eps).sqrt();
    for ((o, v), w) in out.iter_mut().zip(x).zip(weight) {
        *o = v * scale * w;
    }
}

/// Rotary embedding of every head of `x` (GGML's "normal" mode: adjacent pairs rotate).
fn rotate(x: &mut [f32], head_dim: usize, cos: &[f32], sin: &[f32]) {
    for head in x.chunks_exact_mut(head_dim) {
        for ((pair, cos), sin) in head.chunks_exact_mut(2).zip(cos).zip(sin) {
            let (a, b) = (pair[0], pair[1]);
            pair[0] = a * cos - b * sin;
            pair[1] = a * sin + b * cos;
        }
    }
}

fn add(x: &mut [f32], y: &[f32]) {
    for (x, y) in x.iter_mut().zip(y) {
        *x += y;
    }
}

/// Attention of one query position over the first `positions` cached ones; `group` query
/// heads share each KV head.
fn attend(
    q: &[f32],
    cache: &KvCache,
    positions: usize,
    group: usize,
    scores: &mut Vec<f32>,
    out: &mut [f32],
) {
    let head_dim = cache.head_dim();
    let scale = 1.0 / (head_dim as f32).sqrt();
    scores.resize(positions, 0.0);
    for (head, (query, out)) in q.chunks_exact(head_dim).zip(out.chunks_exact_mut(head_dim)).enumerate() {
        let (keys, values) = cache.head(head / group, positions);
        let mut max = f32::NEG_INFINITY;
        for (score, key) in scores.iter_mut().zip(keys.chunks_exact(head_dim)) {
            *score = dot(query, key) * scale;
            max = max.max(*score);
        }
        let mut total = 0.0;
        for score in scores.iter_mut() {
            *score = (*score - max).exp();
            total += *score;
        }
        out.fill(0.0);
        for (score, value) in scores.iter().zip(values.chunks_exact(head_dim)) {
            let weight = score / total;
            for (o, v) in out.iter_mut().zip(value) {
                *o += weight * v;
            }
        }
    }
}

/// A dot product in eight independent lanes, so it vectorises without reassociation.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let mut a_chunks = a.chunks_exact(8);
    let mut b_chunks = b.chunks_exact(8);
    for (a, b) in (&mut a_chunks).zip(&mut b_chunks) {
        for i in 0..8 {
            lanes[i] += a[i] * b[i];
        }
    }
    let tail: f32 = a_chunks.remainder().iter().zip(b_chunks.remainder()).map(|(a, b)| a * b).sum();
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_turns_adjacent_pairs() {
        let mut x = vec![1.0, 0.0, 0.0, 2.0];
        rotate(&mut x, 4, &[0.0, 1.0], &[1.0, 0.0]);
        assert_eq!(x, vec![0.0, 1.0, 0.0, 2.0]);
    }

    #[test]
    fn rms_norm_scales_to_unit_root_mean_square() {
        let mut out = vec![0.0; 2];
        rms_norm(&[3.0, 4.0], &[1.0, 2.0], 0.0, &mut out);
        let rms = (12.5f32).sqrt();
        assert!((out[0] - 3.0 / rms).abs() < 1e-6 && (out[1] - 8.0 / rms).abs() < 1e-6);
    }

    #[test]
    fn dot_covers_the_tail() {
        let a: Vec<f32> = (0..11).map(|i| i as f32).collect();
        assert_eq!(dot(&a, &a), (0..11).map(|i| (i * i) as f32).sum::<f32>());
    }
}
