//! Status routes: `GET /api/health` and `GET /api/models` (the Capibara6 shapes) and `GET /health`.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use capibara_core::llm::{BackendHealth, HealthStatus};
use serde::Serialize;
use serde_json::{Value, json};

use crate::app::Capibara;

/// Longest a health or model probe may take (the original used 5 s).
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The `/api/health` body: the original fields (`ollama_*` describe the chat backend, whatever its
/// kind) plus the backend and database detail.
#[derive(Debug, Serialize)]
pub(crate) struct Health {
    status: &'static str,
    timestamp: String,
    ollama_status: &'static str,
    ollama_url: Option<String>,
    ollama_model: Option<String>,
    backend: Option<BackendHealth>,
    database: &'static str,
    version: &'static str,
    uptime_seconds: u64,
}

/// `GET /api/health`: always 200 (as the original), `status` says `ok` or `degraded`.
pub(crate) async fn api_health(State(app): State<Capibara>) -> Json<Health> {
    let backend = match app.llm() {
        Ok(llm) => {
            Some(tokio::time::timeout(PROBE_TIMEOUT, llm.health()).await.unwrap_or_else(|_| BackendHealth {
                backend: llm.id().to_owned(),
                status: HealthStatus::Down,
                location: String::new(),
                model: llm.default_model().to_owned(),
                latency_ms: PROBE_TIMEOUT.as_millis() as u64,
                detail: Some(format!("no answer within {PROBE_TIMEOUT:?}")),
            }))
        }
        Err(_) => None,
    };
    let database_ok = matches!(tokio::time::timeout(PROBE_TIMEOUT, app.store().ping()).await, Ok(Ok(())));
    let backend_ok = backend.as_ref().is_some_and(|b| b.status == HealthStatus::Ok);
    Json(Health {
        status: if backend_ok && database_ok { "ok" } else { "degraded" },
        timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ollama_status: if backend_ok { "ok" } else { "error" },
        ollama_url: backend.as_ref().map(|b| b.location.clone()),
        ollama_model: backend.as_ref().map(|b| b.model.clone()),
        backend,
        database: if database_ok { "ok" } else { "error" },
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: app.uptime().as_secs(),
    })
}

/// `GET /health`: liveness for load balancers and the original scripts that probe it.
pub(crate) async fn health(State(app): State<Capibara>) -> Json<Value> {
    Json(json!({
        "status": "healthy",
        "version": env!("CARGO_PKG_VERSION"),
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "chat_configured": app.has_llm(),
    }))
}

/// `GET /api/models`: the backend's models (`source` names where the list came from); when the
/// backend cannot be asked, the configured model (`source: "config"`), as the original did.
pub(crate) async fn api_models(State(app): State<Capibara>) -> Json<Value> {
    let Ok(llm) = app.llm() else {
        return Json(json!({ "models": [], "current_model": null, "source": "config" }));
    };
    let current = llm.default_model().to_owned();
    match tokio::time::timeout(PROBE_TIMEOUT, llm.models()).await {
        Ok(Ok(models)) => {
            let models: Vec<Value> = models
                .into_iter()
                .map(|m| {
                    m.details.unwrap_or_else(|| json!({ "name": m.id, "context_length": m.context_length }))
                })
                .collect();
            Json(json!({ "models": models, "current_model": current, "source": llm.id() }))
        }
        _ => Json(json!({
            "models": [{ "name": current, "description": "configured chat model", "source": "config" }],
            "current_model": current,
            "source": "config",
        })),
    }
}
