//! The [`Sandbox`] trait: running untrusted code under a template's limits.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// Code to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    /// Source code.
    pub code: String,
    /// Language (`python`, `javascript`, …).
    pub language: String,
    /// Template naming the limits (CPU, memory, time).
    pub template: String,
}

/// What the code did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionResult {
    /// Whether it exited successfully.
    pub success: bool,
    /// Standard output lines.
    pub stdout: Vec<String>,
    /// Standard error lines.
    pub stderr: Vec<String>,
    /// Wall time.
    pub duration_ms: u64,
}

/// Runs code in isolation.
#[async_trait]
pub trait Sandbox: Send + Sync {
    /// Runs the code and waits for it.
    async fn run(&self, execution: &Execution) -> Result<ExecutionResult>;
}
