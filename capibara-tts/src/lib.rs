//! # capibara-tts
//!
//! Speech for Capibara. This crate will hold the implementations of
//! [`TtsEngine`](capibara_core::tts::TtsEngine): espeak-ng (Spanish voices, loaded at run time when
//! installed), Piper (local ONNX voices), Kyutai TTS and generic HTTP TTS servers; a voice registry
//! with cloning where the engine supports it; and 24 kHz WAV encoding.
//!
//! Nothing is implemented here yet; the trait it implements is in `capibara-core`.

#![forbid(unsafe_code)]

pub use capibara_core::tts::TtsEngine;
