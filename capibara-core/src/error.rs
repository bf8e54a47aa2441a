//! The one error type every Capibara API returns.
//!
//! Each variant says what a caller can do about it. HTTP status codes, Python exceptions and
//! JavaScript error codes are derived from the variant in exactly one place per face
//! (see [`Error::code`] for the stable machine-readable name).

use std::time::Duration;

/// Result alias used across Capibara.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Longest upstream body kept in [`Error::Upstream`]; the rest is cut so errors stay loggable.
const MAX_UPSTREAM_BODY: usize = 2048;

/// Everything that can go wrong, classified by what the caller can do about it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request itself is wrong; sending it again unchanged will fail again.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The named thing does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// Credentials are missing or invalid.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// Credentials are valid but do not allow this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Too many requests; retry after the given delay when known.
    #[error("rate limited: {message}")]
    RateLimited {
        /// What was limited.
        message: String,
        /// How long the limiter asked us to wait, when it said.
        retry_after: Option<Duration>,
    },
    /// A dependency cannot be reached or is not configured; retrying later may succeed.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// An operation ran out of time; retrying may succeed.
    #[error("timed out: {0}")]
    Timeout(String),
    /// An upstream service answered with an error status.
    #[error("upstream answered {status}: {body}")]
    Upstream {
        /// The upstream's HTTP status (or 502 for a broken protocol exchange).
        status: u16,
        /// The upstream's error text, cut to a loggable length.
        body: String,
    },
    /// The prompt does not fit the model's context window, even after trimming history.
    #[error("context too long: {0}")]
    ContextTooLong(String),
    /// A payload is larger than the configured limit.
    #[error("too large: {0}")]
    TooLarge(String),
    /// A bug or an unexpected failure inside Capibara.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Builds [`Error::InvalidInput`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }

    /// Builds [`Error::Unavailable`].
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Unavailable(message.into())
    }

    /// Builds [`Error::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal(message.into())
    }

    /// Builds [`Error::Upstream`], cutting the body to a loggable length on a character boundary.
    pub fn upstream(status: u16, body: impl Into<String>) -> Self {
        let mut body = body.into();
        if body.len() > MAX_UPSTREAM_BODY {
            let mut cut = MAX_UPSTREAM_BODY;
            while !body.is_char_boundary(cut) {
                cut -= 1;
            }
            body.truncate(cut);
            body.push('…');
        }
        Self::Upstream { status, body }
    }

    /// Stable, machine-readable name of the variant (`invalid_input`, `unavailable`, …).
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidInput(_) => "invalid_input",
            Self::NotFound(_) => "not_found",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable(_) => "unavailable",
            Self::Timeout(_) => "timeout",
            Self::Upstream { .. } => "upstream_error",
            Self::ContextTooLong(_) => "context_too_long",
            Self::TooLarge(_) => "too_large",
            Self::Internal(_) => "internal",
        }
    }

    /// Whether the same request may succeed if sent again later (transient failure).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::RateLimited { .. } | Self::Unavailable(_) | Self::Timeout(_) => true,
            Self::Upstream { status, .. } => matches!(status, 408 | 409 | 425 | 429 | 500 | 502 | 503 | 504),
            _ => false,
        }
    }

    /// The delay an upstream asked for before retrying, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Prefixes the message with context, keeping the variant (and so what the caller can do).
    #[must_use]
    pub fn context(self, context: &str) -> Self {
        let wrap = |m: String| format!("{context}: {m}");
        match self {
            Self::InvalidInput(m) => Self::InvalidInput(wrap(m)),
            Self::NotFound(m) => Self::NotFound(wrap(m)),
            Self::Unauthorized(m) => Self::Unauthorized(wrap(m)),
            Self::Forbidden(m) => Self::Forbidden(wrap(m)),
            Self::RateLimited { message, retry_after } => {
                Self::RateLimited { message: wrap(message), retry_after }
            }
            Self::Unavailable(m) => Self::Unavailable(wrap(m)),
            Self::Timeout(m) => Self::Timeout(wrap(m)),
            Self::Upstream { status, body } => Self::Upstream { status, body: wrap(body) },
            Self::ContextTooLong(m) => Self::ContextTooLong(wrap(m)),
            Self::TooLarge(m) => Self::TooLarge(wrap(m)),
            Self::Internal(m) => Self::Internal(wrap(m)),
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(error: serde_json::Error) -> Self {
        Self::InvalidInput(format!("invalid JSON: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_variants_are_the_transient_ones() {
        assert!(Error::unavailable("down").is_retryable());
        assert!(Error::Timeout("slow".into()).is_retryable());
        assert!(Error::upstream(503, "busy").is_retryable());
        assert!(Error::upstream(429, "slow down").is_retryable());
        assert!(!Error::upstream(400, "bad").is_retryable());
        assert!(!Error::invalid("empty").is_retryable());
        assert!(!Error::ContextTooLong("big".into()).is_retryable());
    }

    #[test]
    fn upstream_body_is_cut_on_a_char_boundary() {
        let body = "ñ".repeat(3000);
        let Error::Upstream { body, .. } = Error::upstream(500, body) else { unreachable!() };
        assert!(body.len() <= MAX_UPSTREAM_BODY + '…'.len_utf8());
        assert!(body.ends_with('…'));
    }

    #[test]
    fn context_keeps_the_variant() {
        let error = Error::NotFound("conversation x".into()).context("loading history");
        assert_eq!(error.code(), "not_found");
        assert_eq!(error.to_string(), "not found: loading history: conversation x");
    }
}
