//! The [`TtsEngine`] trait: text to speech.

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// A voice an engine offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Voice {
    /// Voice id used in requests.
    pub id: String,
    /// Display name.
    pub name: String,
    /// BCP-47 language (`es`, `es-419`, …).
    pub language: String,
}

/// What to say and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeechRequest {
    /// Text to speak.
    pub text: String,
    /// Voice id; `None` for the engine's default for the language.
    #[serde(default)]
    pub voice: Option<String>,
    /// Language of the text.
    pub language: String,
    /// Speaking rate, 1.0 = normal.
    #[serde(default = "one")]
    pub speed: f32,
}

fn one() -> f32 {
    1.0
}

/// Synthesised audio.
#[derive(Debug, Clone, PartialEq)]
pub struct Speech {
    /// A complete WAV file (PCM 16-bit mono).
    pub wav: Bytes,
    /// Sample rate of the audio.
    pub sample_rate: u32,
    /// Length of the audio.
    pub duration_ms: u64,
}

/// Speaks text.
#[async_trait]
pub trait TtsEngine: Send + Sync {
    /// Engine id (`espeak-ng`, `kyutai@http://…`).
    fn id(&self) -> &str;
    /// Voices on offer.
    async fn voices(&self) -> Result<Vec<Voice>>;
    /// Speaks the request into a WAV file.
    async fn synthesize(&self, request: &SpeechRequest) -> Result<Speech>;
    /// Loads a voice ahead of its first use.
    async fn preload(&self, voice: &str) -> Result<()>;
}
