//! Embeddings: `POST /v1/embeddings` (OpenAI's shape, so the official clients work) and
//! `POST /api/v1/embeddings` (Capibara's shape and error envelope).
//!
//! Texts longer than the model reads (256 tokens for all-MiniLM-L6-v2) are truncated, as
//! sentence-transformers does; split long documents first (ingestion does). Empty texts, token-id
//! inputs, more than 2,048 texts or a text over 1 MB are refused with the offending index.

use axum::Json;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use capibara_core::Error;
use capibara_llm::wire::openai::{
    EmbeddingData, EmbeddingInput, EmbeddingRequest, EmbeddingResponse, EmbeddingUsage, EmbeddingVector,
    EncodingFormat,
};
use serde::{Deserialize, Serialize};

use super::chat::read_json_body;
use super::error::{ApiError, OpenAiError};
use crate::app::Capibara;

/// `POST /v1/embeddings`.
pub(crate) async fn openai(State(app): State<Capibara>, request: Request) -> Response {
    match openai_answer(&app, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn openai_answer(app: &Capibara, request: Request) -> Result<Response, OpenAiError> {
    let body = read_json_body(app, request).await?;
    let request: EmbeddingRequest = super::json::parse(&body)?;
    let texts = match request.input {
        EmbeddingInput::Text(text) => vec![text],
        EmbeddingInput::Texts(texts) => texts,
        EmbeddingInput::Tokens(_) => {
            return Err(Error::invalid("input: token-id inputs are not supported; send text").into());
        }
    };
    let embedder = app.embedder()?;
    if let Some(dimensions) = request.dimensions
        && dimensions as usize != embedder.dimension()
    {
        return Err(Error::invalid(format!(
            "dimensions: this model returns {} dimensions and cannot shorten them",
            embedder.dimension()
        ))
        .into());
    }
    check_model(&request.model, embedder.model_id())?;
    let vectors = app.embed(&texts).await?;
    let format = request.encoding_format.unwrap_or(EncodingFormat::Float);
    let data = vectors
        .iter()
        .enumerate()
        .map(|(index, vector)| EmbeddingData {
            object: "embedding".to_owned(),
            index,
            embedding: EmbeddingVector::encode(vector, format),
        })
        .collect();
    Ok(Json(EmbeddingResponse {
        object: "list".to_owned(),
        data,
        model: embedder.model_id().to_owned(),
        // Embedders do not report token counts; zero rather than a guess.
        usage: EmbeddingUsage::default(),
    })
    .into_response())
}

/// The model name may be left out or name the configured model (its full id or last part).
fn check_model(requested: &str, served: &str) -> Result<(), Error> {
    let short = served.rsplit('/').next().unwrap_or(served);
    let fine = ["", "default", "capibara", served, short].iter().any(|m| requested.eq_ignore_ascii_case(m));
    if fine {
        Ok(())
    } else {
        Err(Error::NotFound(format!(
            "model `{requested}` is not served here; the embedding model is `{served}`"
        )))
    }
}

/// `POST /api/v1/embeddings` body: `texts` (or one `text`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CapibaraRequest {
    #[serde(default)]
    texts: Option<Vec<String>>,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Debug, Serialize)]
struct CapibaraResponse {
    model: String,
    dimension: usize,
    count: usize,
    embeddings: Vec<Vec<f32>>,
}

/// `POST /api/v1/embeddings`.
pub(crate) async fn capibara(State(app): State<Capibara>, request: Request) -> Response {
    match capibara_answer(&app, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn capibara_answer(app: &Capibara, request: Request) -> Result<Response, ApiError> {
    let body = read_json_body(app, request).await?;
    let request: CapibaraRequest = super::json::parse(&body)?;
    let texts = match (request.texts, request.text) {
        (Some(texts), None) => texts,
        (None, Some(text)) => vec![text],
        _ => return Err(Error::invalid("send either `texts` (a list) or `text`").into()),
    };
    let embedder = app.embedder()?;
    let embeddings = app.embed(&texts).await?;
    Ok(Json(CapibaraResponse {
        model: embedder.model_id().to_owned(),
        dimension: embedder.dimension(),
        count: embeddings.len(),
        embeddings,
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_match_the_configured_one_or_a_default_alias() {
        let served = "sentence-transformers/all-MiniLM-L6-v2";
        for fine in ["", "default", "all-minilm-l6-v2", served] {
            check_model(fine, served).unwrap();
        }
        assert!(matches!(check_model("text-embedding-3-large", served), Err(Error::NotFound(_))));
    }
}
