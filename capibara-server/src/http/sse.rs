//! Server-sent events: frames written directly as bytes (cheap per token) and keep-alive comments
//! when the upstream is silent (a reasoning model may think for a long time before answering).

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use futures::{Stream, StreamExt};
use serde::Serialize;

/// Silence after which a keep-alive comment is sent, so proxies do not close the connection.
pub(crate) const KEEP_ALIVE_AFTER: Duration = Duration::from_secs(15);

/// `data: <json>\n\n`.
pub(crate) fn json_frame<T: Serialize>(value: &T) -> Bytes {
    let mut frame = BytesMut::with_capacity(128).writer();
    let _ = std::io::Write::write_all(&mut frame, b"data: ");
    // Serialising plain data structures into memory cannot fail.
    let _ = serde_json::to_writer(&mut frame, value);
    let _ = std::io::Write::write_all(&mut frame, b"\n\n");
    frame.into_inner().freeze()
}

/// An SSE comment frame, ignored by every client.
pub(crate) fn keep_alive_frame() -> Bytes {
    Bytes::from_static(b": keep-alive\n\n")
}

/// Wraps frames so a keep-alive comment is sent after each [`KEEP_ALIVE_AFTER`] of silence.
pub(crate) fn with_keep_alive(
    frames: impl Stream<Item = Bytes> + Send + 'static,
) -> impl Stream<Item = Result<Bytes, std::convert::Infallible>> + Send + 'static {
    let frames = Box::pin(frames);
    futures::stream::unfold(frames, |mut frames| async move {
        match tokio::time::timeout(KEEP_ALIVE_AFTER, frames.next()).await {
            Ok(Some(frame)) => Some((Ok(frame), frames)),
            Ok(None) => None,
            Err(_) => Some((Ok(keep_alive_frame()), frames)),
        }
    })
}

/// A `text/event-stream` response that proxies must not buffer.
pub(crate) fn response(body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_data_lines() {
        let frame = json_frame(&serde_json::json!({"content": "hola\nmundo", "done": false}));
        assert_eq!(&frame[..], b"data: {\"content\":\"hola\\nmundo\",\"done\":false}\n\n");
    }

    #[tokio::test(start_paused = true)]
    async fn silence_is_filled_with_keep_alives() {
        let slow = futures::stream::once(async {
            tokio::time::sleep(KEEP_ALIVE_AFTER * 2 + Duration::from_secs(1)).await;
            Bytes::from_static(b"data: x\n\n")
        });
        let frames: Vec<Bytes> = with_keep_alive(slow).map(|f| f.unwrap()).collect().await;
        assert_eq!(frames, vec![keep_alive_frame(), keep_alive_frame(), Bytes::from_static(b"data: x\n\n")]);
    }
}
