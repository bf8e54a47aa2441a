//! Choosing the next token from the logits: penalties, then greedy or temperature sampling with
//! top-k and top-p, from a seeded generator so a seed reproduces an answer.
//!
//! Defaults for unset options are llama.cpp's: temperature 0.8, top-k 40, top-p 0.95, no repeat
//! penalty. Penalties look at the last [`PENALTY_WINDOW`] tokens of the context, prompt included,
//! as llama.cpp's do.

use std::collections::HashMap;

use capibara_core::chat::SamplingOptions;

/// Tokens the repeat, presence and frequency penalties look back over.
pub(crate) const PENALTY_WINDOW: usize = 64;

const DEFAULT_TEMPERATURE: f32 = 0.8;
const DEFAULT_TOP_K: u32 = 40;
const DEFAULT_TOP_P: f32 = 0.95;

/// Sampling settings of one generation, with defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SamplerConfig {
    temperature: f32,
    /// 0 keeps every token.
    top_k: usize,
    top_p: f32,
    repeat_penalty: f32,
    presence_penalty: f32,
    frequency_penalty: f32,
    seed: u64,
}

impl SamplerConfig {
    pub(crate) fn from_options(options: &SamplingOptions) -> Self {
        Self {
            temperature: options.temperature.unwrap_or(DEFAULT_TEMPERATURE),
            top_k: options.top_k.unwrap_or(DEFAULT_TOP_K) as usize,
            top_p: options.top_p.unwrap_or(DEFAULT_TOP_P),
            repeat_penalty: options.repeat_penalty.unwrap_or(1.0),
            presence_penalty: options.presence_penalty.unwrap_or(0.0),
            frequency_penalty: options.frequency_penalty.unwrap_or(0.0),
            seed: options.seed.unwrap_or_else(|| fastrand::u64(..)),
        }
    }

    fn greedy(&self) -> bool {
        self.temperature <= 0.0 || self.top_k == 1
    }

    fn penalised(&self) -> bool {
        self.repeat_penalty != 1.0 || self.presence_penalty != 0.0 || self.frequency_penalty != 0.0
    }
}

/// Picks tokens for one generation; reuses its buffers from token to token.
#[derive(Debug)]
pub(crate) struct Sampler {
    config: SamplerConfig,
    rng: fastrand::Rng,
    candidates: Vec<(u32, f32)>,
    counts: HashMap<u32, u32>,
}

impl Sampler {
    pub(crate) fn new(config: SamplerConfig) -> Self {
        let rng = fastrand::Rng::with_seed(config.seed);
        Self { config, rng, candidates: Vec::new(), counts: HashMap::new() }
    }

    /// The next token given the logits and the context so far (prompt and answer).
    pub(crate) fn sample(&mut self, logits: &mut [f32], context: &[u32]) -> u32 {
        if self.config.penalised() {
            self.penalise(logits, context);
        }
        if self.config.greedy() {
            return argmax(logits);
        }
        self.candidates.clear();
        self.candidates.extend((0u32..).zip(logits.iter().copied()));
        let by_logit = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1);
        let k = self.config.top_k;
        if k > 0 && k < self.candidates.len() {
            self.candidates.select_nth_unstable_by(k - 1, by_logit);
            self.candidates.truncate(k);
        }
        self.candidates.sort_unstable_by(by_logit);
        // Softmax with temperature over the survivors (the first is the largest logit).
        let max = self.candidates.first().map_or(0.0, |c| c.1);
        let mut total = 0.0f32;
        for candidate in &mut self.candidates {
            candidate.1 = ((candidate.1 - max) / self.config.temperature).exp();
            total += candidate.1;
        }
        // Nucleus: the smallest prefix whose mass reaches top_p.
        let mut kept = self.candidates.len();
        if self.config.top_p < 1.0 {
            let mut mass = 0.0f32;
            for (index, candidate) in self.candidates.iter().enumerate() {
                mass += candidate.1 / total;
                if mass >= self.config.top_p {
                    kept = index + 1;
                    break;
                }
            }
        }
        let kept = &self.candidates[..kept.max(1)];
        let kept_total: f32 = kept.iter().map(|c| c.1).sum();
        let mut target = self.rng.f32() * kept_total;
        for candidate in kept {
            target -= candidate.1;
            if target <= 0.0 {
                return candidate.0;
            }
        }
        kept.last().map_or(0, |c| c.0)
    }

    /// llama.cpp's penalties: repeated tokens' logits are divided (positive) or multiplied
    /// (negative) by `repeat_penalty`; presence and frequency penalties are subtracted.
    fn penalise(&mut self, logits: &mut [f32], context: &[u32]) {
        self.counts.clear();
        for &token in &context[context.len().saturating_sub(PENALTY_WINDOW)..] {
            *self.counts.entry(token).or_insert(0) += 1;
        }
        for (&token, &count) in &self.counts {
            let Some(logit) = logits.get_mut(token as usize) else { continue };
            if *logit > 0.0 {
                *logit /= self.config.repeat_penalty;
            } else {
                *logit *= self.config.repeat_penalty;
            }
            *logit -= count as f32 * self.config.frequency_penalty + self.config.presence_penalty;
        }
    }
}

/// Index of the largest logit (the first one on ties).
pub(crate) fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    let mut best_value = f32::NEG_INFINITY;
    for (index, &value) in logits.iter().enumerate() {
        if value > best_value {
            best = index;
            best_value = value;
        }
    }
    u32::try_from(best).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(temperature: f32, top_k: u32, top_p: f32, seed: u64) -> SamplerConfig {
        SamplerConfig::from_options(&SamplingOptions {
            temperature: Some(temperature),
            top_k: Some(top_k),
            top_p: Some(top_p),
            seed: Some(seed),
            ..SamplingOptions::default()
        })
    }

    fn logits() -> Vec<f32> {
        (0..100).map(|i| (i as f32 * 0.37).sin() * 3.0).collect()
    }

    #[test]
    fn greedy_and_top_k_one_take_the_largest_logit() {
        let expected = argmax(&logits());
        assert_eq!(Sampler::new(config(0.0, 40, 0.95, 1)).sample(&mut logits(), &[]), expected);
        assert_eq!(Sampler::new(config(1.0, 1, 1.0, 7)).sample(&mut logits(), &[]), expected);
    }

    #[test]
    fn a_seed_reproduces_and_different_seeds_differ() {
        let run = |seed| {
            let mut sampler = Sampler::new(config(1.5, 0, 1.0, seed));
            (0..50).map(|_| sampler.sample(&mut logits(), &[])).collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }

    #[test]
    fn top_k_limits_the_choice() {
        let mut sorted: Vec<(u32, f32)> = (0u32..).zip(logits()).collect();
        sorted.sort_by(|a, b| b.1.total_cmp(&a.1));
        let top3: Vec<u32> = sorted[..3].iter().map(|c| c.0).collect();
        let mut sampler = Sampler::new(config(2.0, 3, 1.0, 9));
        for _ in 0..200 {
            assert!(top3.contains(&sampler.sample(&mut logits(), &[])));
        }
    }

    #[test]
    fn repeat_penalty_moves_greedy_off_a_repeated_token() {
        let mut logits = vec![1.0, 0.9, 0.1];
        let mut options =
            SamplingOptions { temperature: Some(0.0), repeat_penalty: Some(2.0), ..Default::default() };
        assert_eq!(Sampler::new(SamplerConfig::from_options(&options)).sample(&mut logits.clone(), &[]), 0);
        assert_eq!(Sampler::new(SamplerConfig::from_options(&options)).sample(&mut logits, &[0]), 1);
        options.repeat_penalty = None;
        options.presence_penalty = Some(1.0);
        assert_eq!(Sampler::new(SamplerConfig::from_options(&options)).sample(&mut [1.0, 0.9], &[0]), 1);
    }
}
