//! Synthetic records for the store examples: unit vectors clustered around `TOPICS` centres, like
//! sentence embeddings, with `topic` and `lang` metadata. Deterministic, so runs compare.

use capibara_core::vector::VectorRecord;
use serde_json::json;

/// Number of topic centres.
pub(crate) const TOPICS: usize = 100;

/// A deterministic pseudo-random value in [-1, 1) (splitmix64).
fn noise(seed: u64) -> f32 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 23) as f32 - 1.0
}

/// A unit vector of `dimension` near the centre of `topic`.
pub(crate) fn embedding(topic: usize, seed: u64, dimension: usize) -> Vec<f32> {
    let v: Vec<f32> = (0..dimension)
        .map(|j| noise((topic * dimension + j) as u64) + 0.9 * noise(seed * 7919 + j as u64 + 1_000_000))
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / norm).collect()
}

/// Record `i`: topic `i % TOPICS`, a quarter of them in English.
pub(crate) fn record(i: usize, dimension: usize) -> VectorRecord {
    let topic = i % TOPICS;
    VectorRecord {
        id: format!("doc-{i}"),
        vector: embedding(topic, i as u64, dimension),
        text: format!("documento {i} sobre el tema {topic}"),
        metadata: json!({ "topic": topic, "lang": if (i / TOPICS).is_multiple_of(4) { "en" } else { "es" } })
            .as_object()
            .cloned()
            .unwrap_or_default(),
    }
}
