//! The [`Consensus`] trait: several models' answers to one prompt combined into one.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// One model's answer, as input to a consensus round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateAnswer {
    /// Model that answered.
    pub model: String,
    /// The answer.
    pub content: String,
    /// Weight of this model in the round.
    pub weight: f32,
    /// How long it took.
    pub latency_ms: u64,
}

/// The combined answer, with where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsensusResult {
    /// The answer chosen or synthesised.
    pub content: String,
    /// Models whose answers support it.
    pub supporting_models: Vec<String>,
    /// Agreement between 0 and 1.
    pub agreement: f32,
    /// The strategy that produced it.
    pub strategy: String,
}

/// A way to combine answers (weighted selection, majority vote, judge …).
#[async_trait]
pub trait Consensus: Send + Sync {
    /// Combines the candidates' answers to `prompt`.
    async fn combine(&self, prompt: &str, candidates: &[CandidateAnswer]) -> Result<ConsensusResult>;
}
