//! `POST /v1/embeddings`: requests and answers.

use serde::{Deserialize, Serialize};

/// What to embed: one text or several (token-id inputs are read so they can be refused clearly).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingInput {
    /// One text.
    Text(String),
    /// Several texts.
    Texts(Vec<String>),
    /// Token ids of some other tokenizer (one list or several).
    Tokens(serde_json::Value),
}

/// How vectors are written in the answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncodingFormat {
    /// JSON numbers.
    #[default]
    Float,
    /// Base64 of little-endian `f32`s (what the official Python client asks for by default).
    Base64,
}

/// An embeddings request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingRequest {
    /// The model.
    pub model: String,
    /// The text(s).
    pub input: EmbeddingInput,
    /// Number format of the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_format: Option<EncodingFormat>,
    /// Shorter vectors (models trained for it only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    /// End-user id, passed through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// One vector as written on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingVector {
    /// JSON numbers.
    Float(Vec<f32>),
    /// Base64 of little-endian `f32`s.
    Base64(String),
}

/// One vector of the answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingData {
    /// Always `embedding`.
    #[serde(default = "embedding_object")]
    pub object: String,
    /// Position of the input it belongs to.
    pub index: usize,
    /// The vector.
    pub embedding: EmbeddingVector,
}

/// Token counts of an embeddings answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddingUsage {
    /// Tokens read.
    #[serde(default)]
    pub prompt_tokens: u32,
    /// The same number (no tokens are generated).
    #[serde(default)]
    pub total_tokens: u32,
}

/// An embeddings answer (`object: "list"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingResponse {
    /// Always `list`.
    #[serde(default = "list_object")]
    pub object: String,
    /// One entry per input.
    pub data: Vec<EmbeddingData>,
    /// The model that answered.
    #[serde(default)]
    pub model: String,
    /// Token counts.
    #[serde(default)]
    pub usage: EmbeddingUsage,
}

impl EmbeddingVector {
    /// The numbers, decoding base64 when needed; `None` for malformed base64.
    pub fn to_f32(&self) -> Option<Vec<f32>> {
        match self {
            Self::Float(values) => Some(values.clone()),
            Self::Base64(text) => {
                let bytes = base64_decode(text)?;
                (bytes.len() % 4 == 0).then(|| {
                    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
                })
            }
        }
    }

    /// A vector in the requested format.
    pub fn encode(values: &[f32], format: EncodingFormat) -> Self {
        match format {
            EncodingFormat::Float => Self::Float(values.to_vec()),
            EncodingFormat::Base64 => {
                let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                Self::Base64(base64_encode(&bytes))
            }
        }
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for byte in text.bytes() {
        let value = ALPHABET.iter().position(|&a| a == byte)? as u32;
        acc = (acc << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn embedding_object() -> String {
    "embedding".to_owned()
}
fn list_object() -> String {
    "list".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_matches_the_standard_alphabet() {
        assert_eq!(base64_encode(b"Man"), "TWFu");
        assert_eq!(base64_encode(b"Ma"), "TWE=");
        assert_eq!(base64_encode(b"M"), "TQ==");
        assert_eq!(base64_decode("TWE=").unwrap(), b"Ma");
        let values = [0.5f32, -1.25, 3.0e-7, 1.0];
        let encoded = EmbeddingVector::encode(&values, EncodingFormat::Base64);
        assert_eq!(encoded.to_f32().unwrap(), values);
        assert!(EmbeddingVector::Base64("!!".into()).to_f32().is_none());
    }

    #[test]
    fn inputs_read_as_one_text_many_or_tokens() {
        let one: EmbeddingRequest = serde_json::from_str(r#"{"model":"m","input":"hola"}"#).unwrap();
        assert_eq!(one.input, EmbeddingInput::Text("hola".into()));
        let many: EmbeddingRequest =
            serde_json::from_str(r#"{"model":"m","input":["a","b"],"encoding_format":"base64"}"#).unwrap();
        assert_eq!(many.input, EmbeddingInput::Texts(vec!["a".into(), "b".into()]));
        assert_eq!(many.encoding_format, Some(EncodingFormat::Base64));
        let tokens: EmbeddingRequest = serde_json::from_str(r#"{"model":"m","input":[1,2,3]}"#).unwrap();
        assert!(matches!(tokens.input, EmbeddingInput::Tokens(_)));
    }
}
