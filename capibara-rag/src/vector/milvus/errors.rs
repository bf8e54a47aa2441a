//! Milvus SDK errors as [`capibara_core::Error`] variants, keeping the cause, and the deadline every
//! call runs under.

use std::future::Future;
use std::time::Duration;

use capibara_core::Error;
use milvus::v2::error::Error as SdkError;
use tonic::Code;
use tracing::Instrument;

/// Milvus' error code for a collection that does not exist (2.3 and later).
const COLLECTION_NOT_FOUND: i32 = 100;
/// Milvus' error code for a rate limit (2.3 and later).
const RATE_LIMITED: i32 = 8;

/// Runs `call` (what it does named by `what`, for messages) under `timeout`, mapping its error.
/// The SDK's futures are large (about 20 KB): `call` is moved to the heap at once, so that the
/// futures awaiting it stay small. Each call is a `milvus` debug span, inside the caller's.
pub(super) fn timed<'a, T: 'a>(
    timeout: Duration,
    what: &'a str,
    call: impl Future<Output = Result<T, SdkError>> + 'a,
) -> impl Future<Output = capibara_core::Result<T>> + 'a {
    let call = Box::pin(call);
    let span = tracing::debug_span!("milvus", call = what);
    async move {
        let result = match tokio::time::timeout(timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(map(error).context(&format!("Milvus {what}"))),
            Err(_) => Err(Error::Timeout(format!("Milvus {what} took longer than {timeout:?}"))),
        };
        if let Err(error) = &result {
            tracing::debug!(%error, "Milvus call failed");
        }
        result
    }
    .instrument(span)
}

/// What the caller can do about `error`.
pub(super) fn map(error: SdkError) -> Error {
    match error {
        SdkError::RetryExhausted { source, attempts } => {
            map(*source).context(&format!("after {attempts} attempts"))
        }
        SdkError::Grpc(status) => match status.code() {
            Code::Unavailable | Code::Cancelled | Code::Unknown => {
                Error::unavailable(format!("the server cannot be reached: {status}"))
            }
            Code::DeadlineExceeded => Error::Timeout(status.to_string()),
            // The client refuses answers over 4 MiB with this code; callers split the request.
            Code::OutOfRange => Error::TooLarge(format!("the answer is too large: {status}")),
            Code::Unauthenticated => Error::Unauthorized(status.to_string()),
            Code::PermissionDenied => Error::Forbidden(status.to_string()),
            Code::ResourceExhausted => Error::RateLimited { message: status.to_string(), retry_after: None },
            _ => Error::upstream(502, status.to_string()),
        },
        SdkError::Server(server) => {
            let reason = server.reason();
            if server.code() == COLLECTION_NOT_FOUND || reason.contains("can't find collection") {
                Error::NotFound(format!("collection: {reason}"))
            } else if server.code() == RATE_LIMITED {
                Error::RateLimited { message: reason.to_owned(), retry_after: None }
            } else {
                Error::upstream(500, format!("code {}: {reason}", server.code()))
            }
        }
        SdkError::Timeout(message) => Error::Timeout(message),
        SdkError::Cancelled(message) => Error::unavailable(message),
        SdkError::Validation(error) => Error::invalid(error.to_string()),
        SdkError::MalformedResponse(message) => Error::upstream(502, format!("malformed answer: {message}")),
        other => Error::internal(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_call_past_its_deadline_is_a_timeout_naming_it() {
        let slow = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<(), SdkError>(())
        };
        let error = timed(Duration::from_millis(20), "search", slow).await.unwrap_err();
        assert_eq!(error.code(), "timeout");
        assert!(error.to_string().contains("Milvus search"), "{error}");
    }

    #[test]
    fn transport_failures_are_retryable_and_keep_their_cause() {
        let refused = tonic::Status::unavailable("tcp connect error: Connection refused");
        let error = map(SdkError::RetryExhausted { attempts: 3, source: Box::new(SdkError::Grpc(refused)) });
        assert_eq!(error.code(), "unavailable");
        assert!(error.is_retryable());
        assert!(error.to_string().contains("Connection refused"), "{error}");
        let too_large = tonic::Status::out_of_range("decoded message length too large");
        assert_eq!(map(SdkError::Grpc(too_large)).code(), "too_large");
    }
}
