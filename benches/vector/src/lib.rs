//! What the vector benchmarks share: the data generator. Clustered unit vectors imitate sentence
//! embeddings rather than iid noise (on which every HNSW has near-zero recall): `clusters` centres
//! drawn uniformly on the unit sphere, each point a centre plus Gaussian noise of norm about
//! `noise`, normalised. Queries are drawn the same way.

/// splitmix64 plus Box–Muller: deterministic Gaussian values.
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
    /// Uniform in (0, 1).
    pub fn uniform(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    /// A standard normal value.
    pub fn gaussian(&mut self) -> f32 {
        let (u, v) = (self.uniform(), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
}

/// Scales `v` to unit length.
pub fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
}

/// `count` clustered unit vectors, row-major.
pub fn clustered(rng: &mut Rng, centres: &[f32], d: usize, noise: f32, count: usize) -> Vec<f32> {
    let clusters = centres.len() / d;
    let sigma = noise / (d as f32).sqrt();
    let mut out = Vec::with_capacity(count * d);
    for _ in 0..count {
        let c = (rng.next() % clusters as u64) as usize;
        let start = out.len();
        out.extend(centres[c * d..(c + 1) * d].iter().map(|x| x + sigma * rng.gaussian()));
        normalise(&mut out[start..]);
    }
    out
}

/// `clusters` unit centres of `d` floats, row-major.
pub fn centres(rng: &mut Rng, clusters: usize, d: usize) -> Vec<f32> {
    let mut centres: Vec<f32> = (0..clusters * d).map(|_| rng.gaussian()).collect();
    centres.chunks_mut(d).for_each(normalise);
    centres
}
