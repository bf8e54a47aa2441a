//! Hybrid fusion: one ranking from a lexical and a dense ranking of the same query.
//!
//! Plain reciprocal rank fusion treats both rankings as equally good. When one side is much
//! weaker (an English-trained embedder on Spanish text, say) its noise drags good lexical hits
//! down, and the fused ranking loses to the lexical one alone. Both methods here therefore take a
//! weight per side: [`Fusion::Rrf`] weights the reciprocal ranks, [`Fusion::Weighted`] combines
//! min-max normalised scores. The default weights were chosen on `xquad_es` (see the README's
//! retrieval section) and are only reported, never tuned, on `xquad_r_es`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// One candidate of a ranking: a document id and the score its method gave it (higher is better).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranked {
    /// Document or chunk id.
    pub id: String,
    /// Method-specific score; only its order (RRF) or its spread within the list (weighted) matters.
    pub score: f32,
}

impl Ranked {
    /// A candidate with `score`.
    pub fn new(id: impl Into<String>, score: f32) -> Self {
        Self { id: id.into(), score }
    }
}

pub use capibara_core::config::{Fusion, FusionWeights};

/// Fusing two rankings with a [`Fusion`] setting.
pub trait Fuse {
    /// Fuses the two rankings (each best first) into one, best first, with at most `limit` entries.
    /// Ties keep the order in which ids first appear (lexical list first), so results are stable.
    fn fuse(&self, lexical: &[Ranked], dense: &[Ranked], limit: usize) -> Vec<Ranked>;
}

impl Fuse for Fusion {
    fn fuse(&self, lexical: &[Ranked], dense: &[Ranked], limit: usize) -> Vec<Ranked> {
        let mut fused = Accumulator::with_capacity(lexical.len() + dense.len());
        match *self {
            Self::Rrf { k, weights } => {
                for (list, weight) in [(lexical, weights.lexical), (dense, weights.dense)] {
                    for (rank, hit) in list.iter().enumerate() {
                        fused.add(&hit.id, weight / (k + rank as f32 + 1.0));
                    }
                }
            }
            Self::Weighted { weights } => {
                let total = weights.lexical + weights.dense;
                let sides = [(lexical, weights.lexical / total), (dense, weights.dense / total)];
                // Every candidate first gets each side's floor (its normalised minimum, 0), then
                // its normalised score on the sides that returned it.
                for (list, weight) in sides {
                    let Some((low, high)) = bounds(list) else { continue };
                    let spread = high - low;
                    for hit in list {
                        let normalised = if spread > 0.0 { (hit.score - low) / spread } else { 1.0 };
                        fused.add(&hit.id, weight * normalised);
                    }
                }
            }
        }
        fused.into_best(limit)
    }
}

/// Summed scores per id, in order of first appearance.
struct Accumulator<'a> {
    slots: HashMap<&'a str, usize>,
    fused: Vec<Ranked>,
}

impl<'a> Accumulator<'a> {
    fn with_capacity(capacity: usize) -> Self {
        Self { slots: HashMap::with_capacity(capacity), fused: Vec::with_capacity(capacity) }
    }

    fn add(&mut self, id: &'a str, score: f32) {
        match self.slots.get(id) {
            Some(&slot) => self.fused[slot].score += score,
            None => {
                self.slots.insert(id, self.fused.len());
                self.fused.push(Ranked::new(id, score));
            }
        }
    }

    fn into_best(mut self, limit: usize) -> Vec<Ranked> {
        // Stable sort: equal scores keep first-appearance order.
        self.fused.sort_by(|a, b| b.score.total_cmp(&a.score));
        self.fused.truncate(limit);
        self.fused
    }
}

fn bounds(list: &[Ranked]) -> Option<(f32, f32)> {
    let mut scores = list.iter().map(|hit| hit.score).filter(|score| score.is_finite());
    let first = scores.next()?;
    Some(scores.fold((first, first), |(low, high), score| (low.min(score), high.max(score))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranking(items: &[(&str, f32)]) -> Vec<Ranked> {
        items.iter().map(|&(id, score)| Ranked::new(id, score)).collect()
    }

    fn ids(ranked: &[Ranked]) -> Vec<&str> {
        ranked.iter().map(|hit| hit.id.as_str()).collect()
    }

    #[test]
    fn plain_rrf_rewards_agreement_between_the_lists() {
        let lexical = ranking(&[("a", 12.0), ("b", 9.0), ("c", 1.0)]);
        let dense = ranking(&[("b", 0.9), ("c", 0.8), ("d", 0.1)]);
        let fused = Fusion::plain_rrf().fuse(&lexical, &dense, 10);
        // "a" leads one list alone; "b" and "c" are in both and overtake it.
        assert_eq!(ids(&fused), ["b", "c", "a", "d"]);
        let b = 1.0 / 62.0 + 1.0 / 61.0;
        assert!((fused[0].score - b).abs() < 1e-7);
    }

    #[test]
    fn weights_decide_which_side_wins_a_disagreement() {
        let lexical = ranking(&[("a", 10.0), ("b", 5.0)]);
        let dense = ranking(&[("b", 0.9), ("a", 0.2)]);
        let lexical_heavy = Fusion::Weighted { weights: FusionWeights { lexical: 0.8, dense: 0.2 } };
        assert_eq!(ids(&lexical_heavy.fuse(&lexical, &dense, 10)), ["a", "b"]);
        let dense_heavy = Fusion::Weighted { weights: FusionWeights { lexical: 0.2, dense: 0.8 } };
        assert_eq!(ids(&dense_heavy.fuse(&lexical, &dense, 10)), ["b", "a"]);
        let rrf_lexical = Fusion::Rrf { k: 60.0, weights: FusionWeights { lexical: 1.0, dense: 0.5 } };
        assert_eq!(ids(&rrf_lexical.fuse(&lexical, &dense, 10)), ["a", "b"]);
    }

    #[test]
    fn weighted_scores_are_normalised_per_list() {
        // Raw BM25 scores are two orders of magnitude above cosine scores; normalisation makes
        // the top of each list worth exactly its weight.
        let lexical = ranking(&[("a", 40.0), ("b", 20.0), ("c", 0.0)]);
        let dense = ranking(&[("c", 0.5), ("a", 0.3)]);
        let fused = Fusion::Weighted { weights: FusionWeights { lexical: 1.0, dense: 1.0 } }
            .fuse(&lexical, &dense, 10);
        let score = |id: &str| fused.iter().find(|hit| hit.id == id).unwrap().score;
        assert!((score("a") - 0.5).abs() < 1e-6);
        assert!((score("b") - 0.25).abs() < 1e-6);
        assert!((score("c") - 0.5).abs() < 1e-6);
        // A tie keeps first appearance: "a" came first in the lexical list.
        assert_eq!(ids(&fused), ["a", "c", "b"]);
    }

    #[test]
    fn a_zero_weight_side_only_breaks_no_ties_and_limit_truncates() {
        let lexical = ranking(&[("a", 3.0), ("b", 2.0), ("c", 1.0)]);
        let dense = ranking(&[("z", 1.0), ("c", 0.5)]);
        let lexical_only = Fusion::Weighted { weights: FusionWeights { lexical: 1.0, dense: 0.0 } };
        assert_eq!(ids(&lexical_only.fuse(&lexical, &dense, 2)), ["a", "b"]);
        assert!(Fusion::default().fuse(&[], &[], 10).is_empty());
        let single = ranking(&[("only", 0.3)]);
        assert_eq!(ids(&Fusion::default().fuse(&[], &single, 10)), ["only"]);
    }

    #[test]
    fn bad_parameters_are_rejected_and_config_reads_both_methods() {
        let bad = [
            Fusion::Weighted { weights: FusionWeights { lexical: -0.1, dense: 1.0 } },
            Fusion::Weighted { weights: FusionWeights { lexical: 0.0, dense: 0.0 } },
            Fusion::Weighted { weights: FusionWeights { lexical: f32::NAN, dense: 1.0 } },
            Fusion::Rrf { k: -1.0, weights: FusionWeights { lexical: 1.0, dense: 1.0 } },
        ];
        for fusion in bad {
            assert_eq!(fusion.validate().unwrap_err().code(), "invalid_input", "{fusion:?}");
        }
        Fusion::default().validate().unwrap();
        let rrf: Fusion = serde_json::from_str(r#"{"method": "rrf"}"#).unwrap();
        assert_eq!(rrf, Fusion::plain_rrf());
        let weighted: Fusion =
            serde_json::from_str(r#"{"method": "weighted", "weights": {"lexical": 0.6, "dense": 0.4}}"#)
                .unwrap();
        assert_eq!(weighted, Fusion::Weighted { weights: FusionWeights { lexical: 0.6, dense: 0.4 } });
        assert!(serde_json::from_str::<Fusion>(r#"{"method": "max"}"#).is_err());
        assert!(serde_json::from_str::<Fusion>(r#"{"method": "rrf", "kk": 1}"#).is_err());
    }
}
