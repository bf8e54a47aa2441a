//! Every upstream failure becomes a [`capibara_core::Error`] here, and only here, so each backend
//! reports the same failure the same way and the retry and fallback logic is one `match`.

use std::time::Duration;

use capibara_core::Error;

use crate::wire::openai::ErrorBody;

/// Phrases upstreams use when a prompt does not fit the context window (vLLM, OpenAI,
/// llama.cpp, Ollama, TGI), matched in lower case.
const CONTEXT_TOO_LONG: &[&str] = &[
    "context length",
    "context_length",
    "context window",
    "context size",
    "maximum context",
    "prompt is too long",
    "input is too long",
    "too many tokens",
    "exceeds the available context",
    "exceed_context_size",
];

/// The request never got an HTTP answer.
pub(crate) fn request(backend: &str, url: &str, error: &reqwest::Error, connect_timeout: Duration) -> Error {
    let cause = causes(error);
    if error.is_connect() && error.is_timeout() {
        Error::Timeout(format!("{backend}: connect timeout of {connect_timeout:?} elapsed reaching {url}"))
    } else if error.is_connect() {
        Error::unavailable(format!("{backend}: cannot connect to {url}: {cause}"))
    } else {
        Error::unavailable(format!("{backend}: request to {url} failed: {cause}"))
    }
}

/// The upstream answered with an error status before streaming anything.
pub(crate) fn status(
    backend: &str,
    url: &str,
    model: &str,
    status: u16,
    body: &str,
    retry_after: Option<Duration>,
) -> Error {
    let message = upstream_message(body);
    match status {
        429 => Error::RateLimited { message: format!("{backend}: {message}"), retry_after },
        404 => Error::NotFound(format!("{backend}: model `{model}` not found at {url}: {message}")),
        400 if says_context_too_long(&message) => Error::ContextTooLong(format!("{backend}: {message}")),
        _ => Error::upstream(status, format!("{backend}: {message}")),
    }
}

/// A timeout elapsed; `which` names it (`first-token`, `idle`, `total`, `health probe`).
pub(crate) fn timeout(backend: &str, which: &str, value: Duration) -> Error {
    Error::Timeout(format!("{backend}: {which} timeout of {value:?} elapsed"))
}

/// The stream broke its protocol: `what` says how.
pub(crate) fn protocol(backend: &str, what: impl std::fmt::Display) -> Error {
    Error::upstream(502, format!("{backend}: {what}"))
}

/// The upstream sent an error frame in the middle of the stream.
pub(crate) fn error_frame(backend: &str, message: &str) -> Error {
    protocol(backend, format_args!("error frame mid-stream: {message}"))
}

/// A frame could not be decoded.
pub(crate) fn malformed(backend: &str, error: &serde_json::Error, frame: &[u8]) -> Error {
    let shown = String::from_utf8_lossy(&frame[..frame.len().min(200)]);
    protocol(backend, format_args!("malformed frame ({error}): {shown}"))
}

/// The body ended (cleanly or not) before the protocol's final frame.
pub(crate) fn ended_early(backend: &str, cause: Option<&reqwest::Error>) -> Error {
    match cause {
        Some(error) => {
            protocol(backend, format_args!("stream ended before its final frame: {}", causes(error)))
        }
        None => protocol(backend, "stream ended before its final frame"),
    }
}

/// The error text of an upstream body: the `error` message of an OpenAI, llama.cpp or Ollama
/// error body, or the body itself.
pub(crate) fn upstream_message(body: &str) -> String {
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(parsed) => parsed.error.message().to_owned(),
        Err(_) if body.trim().is_empty() => "(empty body)".to_owned(),
        Err(_) => body.trim().to_owned(),
    }
}

fn says_context_too_long(message: &str) -> bool {
    let lower = message.to_lowercase();
    CONTEXT_TOO_LONG.iter().any(|phrase| lower.contains(phrase))
}

/// The error and its sources, which is where reqwest keeps the useful part ("connection refused").
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://h/v1/chat/completions";

    #[test]
    fn statuses_map_to_what_the_caller_can_do() {
        let limited =
            status("b", URL, "m", 429, r#"{"error":{"message":"slow down"}}"#, Some(Duration::from_secs(2)));
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(2)));
        assert!(limited.to_string().contains("slow down"));
        let missing =
            status("b", URL, "gpt-oss:20b", 404, r#"{"error":"model 'gpt-oss:20b' not found"}"#, None);
        assert_eq!(missing.code(), "not_found");
        assert!(missing.to_string().contains("gpt-oss:20b"));
        let long = status(
            "b",
            URL,
            "m",
            400,
            r#"{"error":{"message":"This model's maximum context length is 8192 tokens"}}"#,
            None,
        );
        assert_eq!(long.code(), "context_too_long");
        let llama = status(
            "b",
            URL,
            "m",
            400,
            r#"{"error":{"code":400,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error"}}"#,
            None,
        );
        assert_eq!(llama.code(), "context_too_long");
        let bad = status("b", URL, "m", 400, "bad temperature", None);
        assert_eq!(bad, Error::Upstream { status: 400, body: "b: bad temperature".into() });
        let busy = status("b", URL, "m", 503, "", None);
        assert!(busy.is_retryable());
        assert_eq!(status("b", URL, "m", 401, "no key", None).code(), "upstream_error");
    }

    #[test]
    fn stream_failures_are_bad_gateway_and_say_which() {
        assert!(ended_early("b", None).to_string().contains("ended before its final frame"));
        assert!(error_frame("b", "boom").to_string().contains("error frame mid-stream: boom"));
        let json_error = serde_json::from_slice::<serde_json::Value>(b"{nope").unwrap_err();
        let error = malformed("b", &json_error, b"{nope");
        assert!(matches!(error, Error::Upstream { status: 502, .. }));
        assert!(error.to_string().contains("malformed frame"));
    }

    #[test]
    fn timeouts_name_themselves() {
        let error = timeout("ollama@x", "first-token", Duration::from_millis(1500));
        assert_eq!(error.to_string(), "timed out: ollama@x: first-token timeout of 1.5s elapsed");
    }
}
