//! The packed forward pass against candle's `BertModel` on a small random BERT: padded batches with
//! an attention mask there, packed sequences here, the same hidden states.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config as CandleConfig};

use super::*;

const CONFIG: &str = r#"{"architectures":["BertModel"],"model_type":"bert","vocab_size":97,"hidden_size":48,
    "num_hidden_layers":3,"num_attention_heads":4,"intermediate_size":80,"hidden_act":"gelu",
    "hidden_dropout_prob":0.0,"max_position_embeddings":40,"type_vocab_size":2,"initializer_range":0.02,
    "layer_norm_eps":1e-12,"pad_token_id":0,"position_embedding_type":"absolute"}"#;

/// Deterministic values in [-scale, scale).
fn random(len: usize, seed: &mut u64, scale: f32) -> Vec<f32> {
    (0..len)
        .map(|_| {
            *seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((*seed >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

/// Every tensor of a BERT with this config, Hugging Face names, random values.
fn random_tensors(config: &BertConfig, prefix: &str) -> HashMap<String, Tensor> {
    let (h, i) = (config.hidden_size, config.intermediate_size);
    let mut shapes: Vec<(String, Vec<usize>)> = vec![
        ("embeddings.word_embeddings.weight".into(), vec![config.vocab_size, h]),
        ("embeddings.position_embeddings.weight".into(), vec![config.max_position_embeddings, h]),
        ("embeddings.token_type_embeddings.weight".into(), vec![config.type_vocab_size, h]),
        ("embeddings.LayerNorm.weight".into(), vec![h]),
        ("embeddings.LayerNorm.bias".into(), vec![h]),
    ];
    for n in 0..config.num_hidden_layers {
        let at = |name: &str| format!("encoder.layer.{n}.{name}");
        for (name, outputs, inputs) in [
            ("attention.self.query", h, h),
            ("attention.self.key", h, h),
            ("attention.self.value", h, h),
            ("attention.output.dense", h, h),
            ("intermediate.dense", i, h),
            ("output.dense", h, i),
        ] {
            shapes.push((at(&format!("{name}.weight")), vec![outputs, inputs]));
            shapes.push((at(&format!("{name}.bias")), vec![outputs]));
        }
        for name in ["attention.output.LayerNorm", "output.LayerNorm"] {
            shapes.push((at(&format!("{name}.weight")), vec![h]));
            shapes.push((at(&format!("{name}.bias")), vec![h]));
        }
    }
    let mut seed = 7;
    shapes
        .into_iter()
        .map(|(name, shape)| {
            let len = shape.iter().product();
            let values = if name.contains("LayerNorm.weight") {
                random(len, &mut seed, 0.2).into_iter().map(|v| 1.0 + v).collect()
            } else {
                random(len, &mut seed, 0.5)
            };
            (format!("{prefix}{name}"), Tensor::from_vec(values, shape, &Device::Cpu).unwrap())
        })
        .collect()
}

fn sequences() -> Vec<Vec<u32>> {
    let mut seed = 11;
    [1usize, 2, 5, 17, 40, 9]
        .iter()
        .map(|&n| random(n, &mut seed, 1.0).into_iter().map(|v| ((v + 1.0) * 48.0) as u32 % 97).collect())
        .collect()
}

/// candle's hidden states for a padded batch, valid tokens only, packed end to end.
fn candle_hidden(tensors: &HashMap<String, Tensor>, sequences: &[Vec<u32>]) -> Vec<f32> {
    let config: CandleConfig = serde_json::from_str(CONFIG).unwrap();
    let vb = VarBuilder::from_tensors(tensors.clone(), DType::F32, &Device::Cpu);
    let model = BertModel::load(vb, &config).unwrap();
    let longest = sequences.iter().map(Vec::len).max().unwrap();
    let (mut ids, mut mask) = (Vec::new(), Vec::new());
    for sequence in sequences {
        ids.extend(sequence.iter().copied().chain(std::iter::repeat(0)).take(longest));
        mask.extend((0..longest).map(|i| u32::from(i < sequence.len())));
    }
    let shape = (sequences.len(), longest);
    let ids = Tensor::from_vec(ids, shape, &Device::Cpu).unwrap();
    let mask = Tensor::from_vec(mask, shape, &Device::Cpu).unwrap();
    let types = ids.zeros_like().unwrap();
    let out = model.forward(&ids, &types, Some(&mask)).unwrap();
    let out: Vec<Vec<Vec<f32>>> = out.to_vec3().unwrap();
    sequences.iter().zip(out).flat_map(|(s, rows)| rows.into_iter().take(s.len()).flatten()).collect()
}

fn model(tensors: &HashMap<String, Tensor>) -> Bert {
    let config: BertConfig = serde_json::from_str(CONFIG).unwrap();
    config.validate().unwrap();
    let weights = BertWeights::from_tensors(tensors, &config).unwrap();
    Bert::new(config, weights)
}

#[test]
fn hidden_states_match_candle_bert_model() {
    let config: BertConfig = serde_json::from_str(CONFIG).unwrap();
    let tensors = random_tensors(&config, "");
    let sequences = sequences();
    let expected = candle_hidden(&tensors, &sequences);

    let bert = model(&tensors);
    let refs: Vec<&[u32]> = sequences.iter().map(Vec::as_slice).collect();
    let mut scratch = Scratch::default();
    let ours = bert.encode(&refs, &mut scratch).unwrap();
    assert_eq!(ours.len(), expected.len());
    let worst = ours.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst < 2e-5, "largest difference from candle's BertModel: {worst}");
}

#[test]
fn results_do_not_depend_on_the_batch() {
    let config: BertConfig = serde_json::from_str(CONFIG).unwrap();
    let bert = model(&random_tensors(&config, "bert."));
    let sequences = sequences();
    let refs: Vec<&[u32]> = sequences.iter().map(Vec::as_slice).collect();
    let mut scratch = Scratch::default();
    let together = bert.embed(&refs, &mut scratch).unwrap();
    for (i, sequence) in refs.iter().enumerate() {
        let alone = bert.embed(&[sequence], &mut scratch).unwrap();
        let worst = alone[0].iter().zip(&together[i]).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-6, "sequence {i} differs by {worst} alone");
        let norm: f32 = alone[0].iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-6);
    }
}

#[test]
fn bad_token_ids_and_lengths_are_errors() {
    let config: BertConfig = serde_json::from_str(CONFIG).unwrap();
    let bert = model(&random_tensors(&config, ""));
    let mut scratch = Scratch::default();
    assert_eq!(bert.embed(&[&[1, 97, 2]], &mut scratch).unwrap_err().code(), "internal");
    assert_eq!(bert.embed(&[&[]], &mut scratch).unwrap_err().code(), "internal");
    assert_eq!(bert.embed(&[&[1; 41]], &mut scratch).unwrap_err().code(), "internal");
    assert!(bert.embed(&[], &mut scratch).unwrap().is_empty());
}

#[test]
fn weights_with_a_wrong_shape_or_missing_are_refused() {
    let config: BertConfig = serde_json::from_str(CONFIG).unwrap();
    let mut tensors = random_tensors(&config, "");
    tensors.insert(
        "encoder.layer.1.intermediate.dense.weight".into(),
        Tensor::zeros((3, 3), DType::F32, &Device::Cpu).unwrap(),
    );
    let error = BertWeights::from_tensors(&tensors, &config).unwrap_err();
    assert!(error.to_string().contains("encoder.layer.1.intermediate.dense.weight has shape"), "{error}");
    tensors.remove("embeddings.word_embeddings.weight");
    let error = BertWeights::from_tensors(&tensors, &config).unwrap_err();
    assert!(error.to_string().contains("no BERT weights"), "{error}");
}
