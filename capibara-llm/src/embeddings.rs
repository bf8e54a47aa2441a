//! [`OpenAiEmbedder`]: an [`Embedder`] for any OpenAI-compatible `/v1/embeddings` server
//! (Hugging Face TEI, vLLM, Ollama `/v1`, llama.cpp server, OpenAI).

use async_trait::async_trait;
use capibara_core::Result;
use capibara_core::config::{RemoteEmbeddingsConfig, RetryConfig};
use capibara_core::embed::{Embedder, validate_inputs};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};

use crate::transport::{self, Transport, errors, json_body};
use crate::wire::openai::{EmbeddingInput, EmbeddingRequest, EmbeddingResponse, EncodingFormat};

/// Embeddings from a remote OpenAI-compatible server.
///
/// Inputs are checked like every embedder's ([`validate_inputs`]), sent in batches of
/// `batch_size`, reassembled in input order whatever order the server answers in, and
/// L2-normalised here (servers differ on whether they normalise). The vector length is the
/// configured `dimension` or, when unset, the one the server answered with on [`connect`]'s probe;
/// an answer of another length is an error, never silently passed on.
///
/// [`connect`]: OpenAiEmbedder::connect
#[derive(Debug)]
pub struct OpenAiEmbedder {
    id: String,
    model: String,
    url: String,
    headers: HeaderMap,
    transport: Transport,
    batch_size: usize,
    dimension: usize,
}

impl OpenAiEmbedder {
    /// Connects to the server; when `dimension` is not configured, embeds one probe text to learn it.
    pub async fn connect(config: RemoteEmbeddingsConfig) -> Result<Self> {
        let base = config.base_url.trim_end_matches('/').to_owned();
        let id = format!("embeddings@{base}");
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(variable) = &config.api_key_env {
            headers.insert(AUTHORIZATION, transport::bearer_from_env(&id, variable)?);
        }
        let transport = Transport::new(&id, config.timeouts, RetryConfig::default())?;
        let mut embedder = Self {
            url: format!("{base}/embeddings"),
            model: config.model,
            id,
            headers,
            transport,
            batch_size: config.batch_size,
            dimension: config.dimension.unwrap_or(0),
        };
        if embedder.dimension == 0 {
            let probe = embedder.request(&["dimension probe".to_owned()]).await?;
            embedder.dimension = probe.first().map_or(0, Vec::len);
            if embedder.dimension == 0 {
                return Err(errors::protocol(
                    &embedder.id,
                    "the server answered the probe with an empty vector",
                ));
            }
        }
        Ok(embedder)
    }

    /// Id used in logs and errors (`embeddings@<base_url>`).
    pub fn id(&self) -> &str {
        &self.id
    }

    async fn request(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let body = EmbeddingRequest {
            model: self.model.clone(),
            input: EmbeddingInput::Texts(texts.to_vec()),
            encoding_format: Some(EncodingFormat::Float),
            dimensions: None,
            user: None,
        };
        let answer: EmbeddingResponse =
            self.transport.post_json(&self.url, &self.headers, json_body(&body)?).await?;
        if answer.data.len() != texts.len() {
            return Err(errors::protocol(
                &self.id,
                format_args!("{} vectors for {} inputs", answer.data.len(), texts.len()),
            ));
        }
        let mut vectors = vec![Vec::new(); texts.len()];
        for item in answer.data {
            let slot = vectors.get_mut(item.index).ok_or_else(|| {
                errors::protocol(&self.id, format_args!("vector index {} out of range", item.index))
            })?;
            if !slot.is_empty() {
                return Err(errors::protocol(
                    &self.id,
                    format_args!("vector index {} appears twice", item.index),
                ));
            }
            *slot = item
                .embedding
                .to_f32()
                .ok_or_else(|| errors::protocol(&self.id, "a vector is not valid base64"))?;
        }
        Ok(vectors)
    }
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    fn model_id(&self) -> &str {
        &self.model
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        validate_inputs(texts)?;
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.batch_size) {
            for mut vector in self.request(batch).await? {
                if vector.len() != self.dimension {
                    return Err(errors::protocol(
                        &self.id,
                        format_args!(
                            "a {}-dimensional vector where {} were expected",
                            vector.len(),
                            self.dimension
                        ),
                    ));
                }
                normalize(&mut vector).map_err(|why| errors::protocol(&self.id, why))?;
                out.push(vector);
            }
        }
        Ok(out)
    }
}

/// Scales `vector` to unit length; a zero or non-finite vector cannot be and is refused.
fn normalize(vector: &mut [f32]) -> std::result::Result<(), &'static str> {
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
    if !norm.is_finite() || norm == 0.0 {
        return Err("the server answered with a zero or non-finite vector");
    }
    vector.iter_mut().for_each(|v| *v /= norm);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_scaled_to_unit_length() {
        let mut v = vec![3.0, 4.0];
        normalize(&mut v).unwrap();
        assert_eq!(v, vec![0.6, 0.8]);
        assert!(normalize(&mut [0.0, 0.0]).is_err());
        assert!(normalize(&mut [f32::NAN, 1.0]).is_err());
    }
}
