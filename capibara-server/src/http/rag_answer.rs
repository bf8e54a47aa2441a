//! `POST /api/v1/query`: the original `{query, context, options}` answered from retrieved sources
//! ([`Capibara::ask`]).

use axum::Json;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::chat::read_json_body;
use super::chat_input::idempotency_key;
use super::error::ApiError;
use crate::app::Capibara;
use crate::rag::{AskOptions, checked_query};

/// `POST /api/v1/query` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryBody {
    query: Option<String>,
    /// Accepted for compatibility; free-form caller context is not sent to the model.
    #[serde(default)]
    #[allow(dead_code)]
    context: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    options: AskOptions,
}

/// `POST /api/v1/query`.
pub(crate) async fn query_route(State(app): State<Capibara>, request: Request) -> Response {
    query_answer(&app, request).await.unwrap_or_else(IntoResponse::into_response)
}

async fn query_answer(app: &Capibara, request: Request) -> Result<Response, ApiError> {
    let key = idempotency_key(request.headers())?;
    let body = read_json_body(app, request).await?;
    let body: QueryBody = super::json::parse(&body)?;
    let query = checked_query(body.query)?;
    let options = AskOptions { idempotency_key: key, ..body.options };
    Ok(Json(app.ask(&query, options).await?).into_response())
}
