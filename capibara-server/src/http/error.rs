//! The one error envelope, and the one mapping from [`capibara_core::Error`] to an HTTP status.
//!
//! Every failure a Capibara route reports is an HTTP error status with a JSON body
//! `{"error": "<message>", "code": "<variant>", "status": <status>, "request_id": "<id>"}` —
//! `error` stays a string so the original Capibara6 clients, which read `data.error`, keep working.
//! The OpenAI-compatible routes wrap the same facts in OpenAI's own shape (see [`OpenAiError`]).

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use capibara_core::Error;
use serde::Serialize;

use super::request_id;

/// HTTP status for each error variant: the single place where this is decided.
pub fn status_of(error: &Error) -> StatusCode {
    match error {
        Error::InvalidInput(_) | Error::ContextTooLong(_) => StatusCode::BAD_REQUEST,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        Error::Upstream { .. } => StatusCode::BAD_GATEWAY,
        Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error on its way to the client: a status, a machine-readable code and a message.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code (`invalid_input`, `unavailable`, …).
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
    /// Seconds the client should wait before retrying (429).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with an explicit status and code, for failures that exist only at the HTTP layer.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: None }
    }

    /// The body clients receive.
    pub fn envelope(&self) -> ErrorEnvelope<'_> {
        ErrorEnvelope {
            error: &self.message,
            code: self.code,
            status: self.status.as_u16(),
            request_id: request_id::current(),
        }
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        let status = status_of(&error);
        if status.is_server_error() {
            tracing::warn!(code = error.code(), %error, "request failed");
        }
        Self {
            status,
            code: error.code(),
            retry_after: error.retry_after().map(|d| d.as_secs().max(1)),
            message: error.to_string(),
        }
    }
}

/// The JSON error body of every Capibara route.
#[derive(Debug, Serialize)]
pub struct ErrorEnvelope<'a> {
    /// Human-readable message.
    pub error: &'a str,
    /// Machine-readable code.
    pub code: &'a str,
    /// HTTP status, repeated for clients that only see the body.
    pub status: u16,
    /// The request id, also in the `x-request-id` response header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.envelope())).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected a JSON body with `Content-Type: application/json`",
            ),
            JsonRejection::JsonSyntaxError(e) => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_json", format!("invalid JSON: {}", e.body_text()))
            }
            JsonRejection::JsonDataError(e) => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_input",
                format!("invalid request: {}", e.body_text()),
            ),
            JsonRejection::BytesRejection(e) => Self::from(e),
            other => Self::new(StatusCode::BAD_REQUEST, "invalid_input", other.body_text()),
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "request body is larger than the server accepts",
            )
        } else {
            Self::new(rejection.status(), "invalid_input", rejection.body_text())
        }
    }
}

/// The same error in the shape OpenAI clients parse: `{"error": {"message", "type", "code"}}`.
#[derive(Debug)]
pub struct OpenAiError(pub ApiError);

impl<E: Into<ApiError>> From<E> for OpenAiError {
    fn from(error: E) -> Self {
        Self(error.into())
    }
}

/// OpenAI's error body.
#[derive(Debug, Serialize)]
pub struct OpenAiErrorBody<'a> {
    /// The error.
    pub error: OpenAiErrorDetail<'a>,
}

/// The inner object of [`OpenAiErrorBody`].
#[derive(Debug, Serialize)]
pub struct OpenAiErrorDetail<'a> {
    /// Human-readable message.
    pub message: &'a str,
    /// OpenAI's error type (`invalid_request_error`, `server_error`, …).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Capibara's code.
    pub code: &'a str,
    /// Always null; kept for clients that read it.
    pub param: Option<&'a str>,
}

impl OpenAiErrorBody<'_> {
    /// Builds the body for an error.
    pub fn of(error: &ApiError) -> OpenAiErrorBody<'_> {
        let kind = match error.status.as_u16() {
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            429 => "rate_limit_error",
            400..=499 => "invalid_request_error",
            _ => "server_error",
        };
        OpenAiErrorBody {
            error: OpenAiErrorDetail { message: &error.message, kind, code: error.code, param: None },
        }
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let mut response = (self.0.status, Json(OpenAiErrorBody::of(&self.0))).into_response();
        if let Some(seconds) = self.0.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_a_fitting_status() {
        assert_eq!(status_of(&Error::invalid("x")), StatusCode::BAD_REQUEST);
        assert_eq!(status_of(&Error::NotFound("x".into())), StatusCode::NOT_FOUND);
        assert_eq!(status_of(&Error::unavailable("x")), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status_of(&Error::Timeout("x".into())), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(status_of(&Error::upstream(500, "x")), StatusCode::BAD_GATEWAY);
        assert_eq!(status_of(&Error::TooLarge("x".into())), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(status_of(&Error::internal("x")), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn rate_limits_carry_retry_after() {
        let error = ApiError::from(Error::RateLimited {
            message: "slow".into(),
            retry_after: Some(std::time::Duration::from_millis(2500)),
        });
        assert_eq!(error.retry_after, Some(2));
        let response = error.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
    }
}
