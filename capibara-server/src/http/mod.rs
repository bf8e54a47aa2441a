//! The HTTP face: one router serving the Capibara6 routes, the OpenAI- and Ollama-compatible APIs
//! and the status routes. Handlers are thin: decode, call the library, encode.

mod chat;
mod chat_input;
mod conversations;
mod embeddings;
pub mod error;
mod ingest_upload;
mod json;
mod milvus;
mod ollama;
mod openai;
mod rag;
mod rag_answer;
pub mod request_id;
mod sse;
mod status;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use capibara_core::config::CorsConfig;
use tower::limit::ConcurrencyLimitLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::app::Capibara;
use error::ApiError;

/// Builds the router over a composed [`Capibara`].
pub fn router(app: Capibara) -> Router {
    let server = &app.config().server;
    let json_limit = server.max_json_bytes;
    let upload_limit = app.config().uploads.max_request_bytes().max(json_limit);
    let ingest_limit =
        ingest_upload::body_limit(app.config().retrieval.ingest.max_file_bytes).max(json_limit);
    let routes = Router::new()
        // Capibara6 (and Ollama, for `POST /api/chat` bodies with `messages`).
        .route("/api/chat", post(chat::chat_or_ollama).layer(DefaultBodyLimit::max(upload_limit)))
        .route("/api/chat/stream", post(chat::chat_stream).layer(DefaultBodyLimit::max(upload_limit)))
        .route("/api/health", get(status::api_health))
        .route("/api/models", get(status::api_models))
        .route("/api/save-conversation", post(conversations::save))
        .route("/api/conversations/{id}", get(conversations::show))
        // OpenAI-compatible.
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/models", get(openai::models))
        .route("/v1/embeddings", post(embeddings::openai))
        .route("/api/v1/embeddings", post(embeddings::capibara))
        // Retrieval and RAG answers.
        .route("/api/v1/rag/search", post(rag::search_route))
        .route("/api/v1/rag/ingest", post(rag::ingest_route).layer(DefaultBodyLimit::max(ingest_limit)))
        .route("/api/v1/rag/stats", get(rag::stats_route))
        .route("/api/v1/query", post(rag_answer::query_route))
        // The Milvus bridge, over the configured vector store.
        .route("/api/v1/milvus/search", post(milvus::search_route))
        .route("/api/v1/milvus/insert", post(milvus::insert_route))
        .route("/api/v1/milvus/collection/{name}", get(milvus::collection_route))
        // Ollama-compatible.
        .route("/api/generate", post(ollama::generate))
        .route("/api/tags", get(ollama::tags))
        .route("/api/version", get(ollama::version))
        .route("/health", get(status::health))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(json_limit));
    routes
        .layer(cors(&server.cors))
        .layer(ConcurrencyLimitLayer::new(server.max_concurrent_requests))
        .layer(middleware::from_fn(request_id::assign))
        .with_state(app)
}

async fn not_found(uri: axum::http::Uri) -> impl IntoResponse {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no route for {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> impl IntoResponse {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

fn cors(config: &CorsConfig) -> CorsLayer {
    let origin = if config.allowed_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(config.allowed_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    CorsLayer::new()
        .allow_origin(origin)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::ACCEPT,
            HeaderName::from_static("x-requested-with"),
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([HeaderName::from_static("x-request-id")])
        .allow_credentials(config.allow_credentials)
        .max_age(Duration::from_secs(config.max_age.as_secs()))
}
