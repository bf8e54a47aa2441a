//! [`FallbackChain`]: several backends tried in order, the next taking over when one fails before
//! its first token.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use capibara_core::chat::ChatRequest;
use capibara_core::llm::{BackendHealth, Capabilities, ChatStream, HealthStatus, LlmBackend, ModelInfo};
use capibara_core::{Error, Result};
use futures::future::join_all;

/// An ordered list of backends behaving as one.
///
/// A request goes to the first backend; when it fails *before its first event* with a transient
/// error ([`Error::is_retryable`]: unreachable, timed out, rate limited, 5xx, broken stream) or
/// [`Error::NotFound`] (the model is not served there), the next backend is tried with the same
/// request. Invalid requests and prompts too long for the context are the caller's to fix and
/// are returned at once. Once a backend is streaming, its errors reach the caller: switching
/// backends mid-answer would splice two different answers.
///
/// [`ChatStream::backend`] says which backend answered. [`LlmBackend::capabilities`] and
/// [`LlmBackend::default_model`] are those of the first backend, the one that answers whenever
/// the chain is healthy; callers that plan a context budget from them plan for the primary model.
pub struct FallbackChain {
    id: String,
    backends: Vec<Arc<dyn LlmBackend>>,
}

impl std::fmt::Debug for FallbackChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FallbackChain").field("id", &self.id).finish_non_exhaustive()
    }
}

impl FallbackChain {
    /// A chain over `backends`, in fallback order; its id is `chain(<id>, <id>, …)`.
    pub fn new(backends: Vec<Arc<dyn LlmBackend>>) -> Result<Self> {
        if backends.is_empty() {
            return Err(Error::invalid("a fallback chain needs at least one backend"));
        }
        let ids: Vec<&str> = backends.iter().map(|backend| backend.id()).collect();
        Ok(Self { id: format!("chain({})", ids.join(", ")), backends })
    }

    /// Renames the chain.
    #[must_use]
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// The backends, in fallback order.
    pub fn backends(&self) -> &[Arc<dyn LlmBackend>] {
        &self.backends
    }
}

/// Whether a failure before the first event sends the request to the next backend.
fn falls_through(error: &Error) -> bool {
    error.is_retryable() || matches!(error, Error::NotFound(_))
}

#[async_trait]
impl LlmBackend for FallbackChain {
    fn id(&self) -> &str {
        &self.id
    }

    fn default_model(&self) -> &str {
        self.backends[0].default_model()
    }

    fn capabilities(&self) -> Capabilities {
        self.backends[0].capabilities()
    }

    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream> {
        let mut skipped: Vec<String> = Vec::new();
        let last = self.backends.len() - 1;
        for (position, backend) in self.backends.iter().enumerate() {
            match backend.chat_stream(request.clone()).await {
                Ok(stream) => {
                    if !skipped.is_empty() {
                        tracing::info!(chain = %self.id, backend = backend.id(), skipped = skipped.len(), "answered by a fallback backend");
                    }
                    return Ok(stream);
                }
                Err(error) if position < last && falls_through(&error) => {
                    tracing::warn!(chain = %self.id, backend = backend.id(), %error, "backend failed before its first token; trying the next");
                    skipped.push(error.to_string());
                }
                Err(error) if skipped.is_empty() => return Err(error),
                Err(error) => {
                    return Err(error.context(&format!(
                        "{}: every backend failed ({})",
                        self.id,
                        skipped.join("; ")
                    )));
                }
            }
        }
        Err(Error::internal(format!("{}: no backend was tried", self.id)))
    }

    /// The models of every backend that answers; an error only when none does.
    async fn models(&self) -> Result<Vec<ModelInfo>> {
        let answers = join_all(self.backends.iter().map(|backend| backend.models())).await;
        let mut seen = HashSet::new();
        let mut models = Vec::new();
        let mut first_error = None;
        for answer in answers {
            match answer {
                Ok(list) => {
                    models.extend(list.into_iter().filter(|m| seen.insert((m.backend.clone(), m.id.clone()))))
                }
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            Some(error) if models.is_empty() => Err(error),
            _ => Ok(models),
        }
    }

    /// `Ok` when every backend is, `Down` when none answers, `Degraded` otherwise; the detail
    /// lists the backends that are not fine.
    async fn health(&self) -> BackendHealth {
        let reports = join_all(self.backends.iter().map(|backend| backend.health())).await;
        let fine = reports.iter().filter(|r| r.status == HealthStatus::Ok).count();
        let answering = reports.iter().filter(|r| r.status != HealthStatus::Down).count();
        let status = if fine == reports.len() {
            HealthStatus::Ok
        } else if answering > 0 {
            HealthStatus::Degraded
        } else {
            HealthStatus::Down
        };
        let problems: Vec<String> = reports
            .iter()
            .filter(|r| r.status != HealthStatus::Ok)
            .map(|r| {
                let status = serde_json::to_value(r.status).ok().and_then(|v| v.as_str().map(str::to_owned));
                let status = status.unwrap_or_default();
                match &r.detail {
                    Some(detail) => format!("{} is {status}: {detail}", r.backend),
                    None => format!("{} is {status}", r.backend),
                }
            })
            .collect();
        BackendHealth {
            backend: self.id.clone(),
            status,
            location: reports.iter().map(|r| r.location.as_str()).collect::<Vec<_>>().join(", "),
            model: self.default_model().to_owned(),
            latency_ms: reports.iter().map(|r| r.latency_ms).max().unwrap_or(0),
            detail: (!problems.is_empty()).then(|| problems.join("; ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capibara_core::chat::Message;
    use capibara_core::testing::{Reply, ScriptedBackend};

    fn request() -> ChatRequest {
        ChatRequest::new(vec![Message::user("Hola")])
    }

    fn chain(first: &Arc<ScriptedBackend>, second: &Arc<ScriptedBackend>) -> FallbackChain {
        FallbackChain::new(vec![first.clone() as Arc<dyn LlmBackend>, second.clone() as Arc<dyn LlmBackend>])
            .unwrap()
    }

    #[tokio::test]
    async fn transient_failures_and_missing_models_fall_through() {
        for error in [
            Error::unavailable("down"),
            Error::Timeout("slow".into()),
            Error::upstream(503, "busy"),
            Error::NotFound("model".into()),
        ] {
            let first = Arc::new(ScriptedBackend::replying("uno").with_id("a"));
            let second = Arc::new(ScriptedBackend::replying("dos").with_id("b"));
            first.push(Reply::Refuse(error.clone()));
            let answer = chain(&first, &second).chat(request()).await.unwrap();
            assert_eq!((answer.backend.as_str(), answer.content.as_str()), ("b", "dos"), "{error}");
        }
    }

    #[tokio::test]
    async fn caller_errors_do_not_fall_through() {
        for error in [Error::invalid("bad"), Error::ContextTooLong("big".into())] {
            let first = Arc::new(ScriptedBackend::replying("uno").with_id("a"));
            let second = Arc::new(ScriptedBackend::replying("dos").with_id("b"));
            first.push(Reply::Refuse(error.clone()));
            assert_eq!(chain(&first, &second).chat(request()).await.unwrap_err(), error);
            assert!(second.requests().is_empty());
        }
    }

    #[tokio::test]
    async fn when_every_backend_fails_the_last_error_says_so() {
        let first = Arc::new(ScriptedBackend::replying("uno").with_id("a"));
        let second = Arc::new(ScriptedBackend::replying("dos").with_id("b"));
        first.push(Reply::Refuse(Error::unavailable("a is down")));
        second.push(Reply::Refuse(Error::unavailable("b is down")));
        let error = chain(&first, &second).chat(request()).await.unwrap_err();
        assert_eq!(error.code(), "unavailable");
        assert!(
            error.to_string().contains("a is down") && error.to_string().contains("b is down"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn id_capabilities_models_and_health() {
        let first = Arc::new(ScriptedBackend::replying("uno").with_id("a").with_context(4096));
        let second = Arc::new(ScriptedBackend::replying("dos").with_id("b"));
        let chain = chain(&first, &second);
        assert_eq!(chain.id(), "chain(a, b)");
        assert_eq!(chain.capabilities().max_context_tokens, 4096);
        assert_eq!(chain.models().await.unwrap().len(), 2);
        assert_eq!(chain.health().await.status, HealthStatus::Ok);
        assert!(FallbackChain::new(Vec::new()).is_err());
    }
}
