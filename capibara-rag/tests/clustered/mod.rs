//! Clustered unit vectors imitating sentence embeddings (Gaussian noise around centres on the
//! sphere), shared by the tests of the approximate vector stores.

#![allow(dead_code, clippy::unwrap_used, unreachable_pub)]

use capibara_core::vector::VectorRecord;
use serde_json::json;

/// A deterministic generator (splitmix64) with Gaussian values (Box–Muller).
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A standard normal value.
    pub fn gaussian(&mut self) -> f32 {
        let uniform = |x: u64| ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let (u, v) = (uniform(self.next()), uniform(self.next()));
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
}

/// `v` scaled to unit length.
pub fn normalised(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

/// Clustered unit vectors, like sentence embeddings: Gaussian noise around centres on the sphere.
pub struct Clusters {
    rng: Rng,
    /// The centres, unit vectors.
    pub centres: Vec<Vec<f32>>,
    /// The vector length.
    pub dimension: usize,
}

impl Clusters {
    /// `count` centres of `dimension` floats.
    pub fn new(count: usize, dimension: usize, seed: u64) -> Self {
        let mut rng = Rng(seed);
        let centres =
            (0..count).map(|_| normalised((0..dimension).map(|_| rng.gaussian()).collect())).collect();
        Self { rng, centres, dimension }
    }

    /// A point of a random cluster, and the cluster.
    pub fn point(&mut self) -> (Vec<f32>, usize) {
        let cluster = (self.rng.next() % self.centres.len() as u64) as usize;
        let sigma = 1.2 / (self.dimension as f32).sqrt();
        let centre = &self.centres[cluster];
        let v = centre.iter().map(|c| c + sigma * self.rng.gaussian()).collect();
        (normalised(v), cluster)
    }
}

/// Record `r{i}` with metadata `cluster`, `i` and `third` (`i % 3`).
pub fn record(i: usize, vector: Vec<f32>, cluster: usize) -> VectorRecord {
    let metadata = json!({ "cluster": cluster, "i": i, "third": i % 3 }).as_object().cloned().unwrap();
    VectorRecord { id: format!("r{i}"), vector, text: format!("registro {i}"), metadata }
}
