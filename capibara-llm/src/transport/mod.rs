//! What every HTTP backend shares: the connection pool, starting a streamed answer with retries
//! and the first-token timeout, the live event stream with idle and total timeouts, error
//! mapping, and backoff.

mod backoff;
pub(crate) mod errors;
mod events;
pub(crate) mod framed;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use capibara_core::config::{RetryConfig, TimeoutConfig};
use capibara_core::{Error, Result};
use futures::StreamExt;
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;
use tokio::time::{Instant, sleep, timeout_at};

use events::StreamLimits;
pub(crate) use events::{Decoder, EventStream};

/// Largest error body read from an upstream; the rest is not needed to say what went wrong.
const MAX_ERROR_BODY: usize = 16 * 1024;
/// Longest a health probe or model listing may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// One backend's HTTP side: a keep-alive connection pool and its timeout and retry settings.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    client: reqwest::Client,
    backend: Arc<str>,
    timeouts: TimeoutConfig,
    retry: RetryConfig,
}

/// A failed attempt, whether trying again may help, and when the upstream asked us to.
struct Failure {
    error: Error,
    retryable: bool,
    /// `Retry-After` of the answer (429, but also 503 while a model loads).
    retry_after: Option<Duration>,
}

impl Failure {
    fn fatal(error: Error) -> Self {
        Self { error, retryable: false, retry_after: None }
    }
}

impl Transport {
    /// Builds the connection pool (HTTP/1.1 keep-alive, `TCP_NODELAY`, the connect timeout).
    pub(crate) fn new(backend: &str, timeouts: TimeoutConfig, retry: RetryConfig) -> Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .tcp_nodelay(true)
            .http1_only()
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("capibara/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::internal(format!("{backend}: cannot build the HTTP client: {e}")))?;
        Ok(Self { client, backend: Arc::from(backend), timeouts, retry })
    }

    /// Sends a streaming request and returns once the first event has arrived.
    ///
    /// Failures before the first event that may pass (connection refused, 429, 5xx, the
    /// first-token timeout) are retried with backoff up to `retry.max_retries` times, within the
    /// total deadline. Failures inside the stream (an error frame, a malformed frame, a cut
    /// connection) are not: the upstream did answer, and the caller (or a fallback chain) decides.
    pub(crate) async fn open<D: Decoder>(
        &self,
        url: &str,
        headers: &HeaderMap,
        body: Bytes,
        model: &str,
        decoder: impl Fn() -> D,
    ) -> Result<Pin<Box<EventStream<D>>>> {
        let started = Instant::now();
        let deadline = started + self.timeouts.total;
        let limits = StreamLimits { idle: self.timeouts.idle, total: self.timeouts.total, started };
        self.retrying(deadline, "first-token", || {
            self.attempt(url, headers, body.clone(), model, decoder(), limits)
        })
        .await
    }

    /// Runs `attempt` until it succeeds or fails for good, retrying retryable failures with
    /// backoff up to `retry.max_retries` times; each attempt is bounded by the first-token timeout
    /// (named `phase` in its error) and all of them by `deadline`.
    async fn retrying<T, Fut>(
        &self,
        deadline: Instant,
        phase: &str,
        mut attempt: impl FnMut() -> Fut,
    ) -> Result<T>
    where
        Fut: std::future::Future<Output = std::result::Result<T, Failure>>,
    {
        let mut tries = 0;
        loop {
            let due = (Instant::now() + self.timeouts.first_token).min(deadline);
            let (error, retry_after) = match timeout_at(due, attempt()).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(Failure { error, retryable: false, .. })) => return Err(error),
                Ok(Err(Failure { error, retryable: true, retry_after })) => (error, retry_after),
                Err(_) if due == deadline => {
                    return Err(errors::timeout(&self.backend, "total", self.timeouts.total));
                }
                Err(_) => (errors::timeout(&self.backend, phase, self.timeouts.first_token), None),
            };
            let delay = backoff::delay(&self.retry, tries, retry_after);
            if tries >= self.retry.max_retries || Instant::now() + delay >= deadline {
                return Err(error);
            }
            tries += 1;
            tracing::debug!(backend = %self.backend, attempt = tries, ?delay, %error, "retrying before the first token");
            sleep(delay).await;
        }
    }

    /// Sends `POST url` and turns a connection failure or an error status into a [`Failure`]
    /// (retryable when it may pass, with the upstream's `Retry-After`).
    async fn send(
        &self,
        url: &str,
        headers: &HeaderMap,
        body: Bytes,
        model: &str,
    ) -> std::result::Result<reqwest::Response, Failure> {
        let response =
            self.client.post(url).headers(headers.clone()).body(body).send().await.map_err(|e| Failure {
                error: errors::request(&self.backend, url, &e, self.timeouts.connect),
                retryable: true,
                retry_after: None,
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry_after = backoff::retry_after(response.headers());
        let text = read_error_body(response).await;
        let error = errors::status(&self.backend, url, model, status.as_u16(), &text, retry_after);
        let retryable = error.is_retryable();
        Err(Failure { error, retryable, retry_after })
    }

    async fn attempt<D: Decoder>(
        &self,
        url: &str,
        headers: &HeaderMap,
        body: Bytes,
        model: &str,
        decoder: D,
        limits: StreamLimits,
    ) -> std::result::Result<Pin<Box<EventStream<D>>>, Failure> {
        let response = self.send(url, headers, body, model).await?;
        let mut stream = Box::pin(EventStream::new(
            response.bytes_stream().boxed(),
            decoder,
            self.backend.clone(),
            limits,
        ));
        match stream.next().await {
            Some(Ok(first)) => {
                stream.as_mut().resume_with(first);
                Ok(stream)
            }
            Some(Err(error)) => Err(Failure::fatal(error)),
            None => Err(Failure::fatal(errors::ended_early(&self.backend, None))),
        }
    }

    /// `POST url` with a JSON body and decode the JSON answer, retrying failures that may pass
    /// (connection refused, 429, 5xx) like [`Transport::open`]; each attempt is bounded by the
    /// first-token timeout and all of them by the total deadline.
    pub(crate) async fn post_json<T: DeserializeOwned>(
        &self,
        url: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<T> {
        let deadline = Instant::now() + self.timeouts.total;
        self.retrying(deadline, "request", || self.post_once(url, headers, body.clone())).await
    }

    async fn post_once<T: DeserializeOwned>(
        &self,
        url: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> std::result::Result<T, Failure> {
        let response = self.send(url, headers, body, "").await?;
        let body = response
            .bytes()
            .await
            .map_err(|e| Failure::fatal(errors::ended_early(&self.backend, Some(&e))))?;
        serde_json::from_slice(&body).map_err(|e| Failure::fatal(errors::malformed(&self.backend, &e, &body)))
    }

    /// `GET url` and decode the JSON answer (model lists, health), within the probe timeout.
    pub(crate) async fn get_json<T: DeserializeOwned>(&self, url: &str, headers: &HeaderMap) -> Result<T> {
        let probe = PROBE_TIMEOUT.min(self.timeouts.total);
        let request = async {
            let response = self
                .client
                .get(url)
                .headers(headers.clone())
                .send()
                .await
                .map_err(|e| errors::request(&self.backend, url, &e, self.timeouts.connect))?;
            let status = response.status();
            if !status.is_success() {
                let retry_after = backoff::retry_after(response.headers());
                let text = read_error_body(response).await;
                return Err(errors::status(&self.backend, url, "", status.as_u16(), &text, retry_after));
            }
            let body = response.bytes().await.map_err(|e| errors::ended_early(&self.backend, Some(&e)))?;
            serde_json::from_slice(&body).map_err(|e| errors::malformed(&self.backend, &e, &body))
        };
        tokio::time::timeout(probe, request)
            .await
            .map_err(|_| errors::timeout(&self.backend, "probe", probe))?
    }
}

/// The `Authorization: Bearer …` header for the key in environment variable `variable`, marked
/// sensitive so it never shows in logs; `id` names the backend in errors.
pub(crate) fn bearer_from_env(id: &str, variable: &str) -> Result<reqwest::header::HeaderValue> {
    let key = std::env::var(variable).map_err(|_| {
        Error::invalid(format!("{id}: environment variable `{variable}` (api_key_env) is not set"))
    })?;
    let mut value =
        reqwest::header::HeaderValue::from_str(&format!("Bearer {}", key.trim())).map_err(|_| {
            Error::invalid(format!("{id}: the API key in `{variable}` is not a valid header value"))
        })?;
    value.set_sensitive(true);
    Ok(value)
}

/// A request body as JSON bytes.
pub(crate) fn json_body(value: &impl serde::Serialize) -> Result<Bytes> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| Error::internal(format!("cannot encode a request: {e}")))
}

/// Reads at most [`MAX_ERROR_BODY`] bytes of an error answer, as text.
async fn read_error_body(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() < MAX_ERROR_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk[..chunk.len().min(MAX_ERROR_BODY - body.len())]),
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

/// A health report from a probe's verdict.
pub(crate) fn health_report(
    backend: &str,
    location: &str,
    model: &str,
    started: Instant,
    (status, detail): (capibara_core::llm::HealthStatus, Option<String>),
) -> capibara_core::llm::BackendHealth {
    capibara_core::llm::BackendHealth {
        backend: backend.to_owned(),
        status,
        location: location.to_owned(),
        model: model.to_owned(),
        latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        detail,
    }
}
