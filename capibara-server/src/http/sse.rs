//! Server-sent events: frames written directly as bytes (cheap per token) and keep-alive comments
//! when the upstream is silent (a reasoning model may think for a long time before answering).

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
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
///
/// One timer per stream, re-armed only when it fires: frames just record when they passed, so a
/// busy stream pays no timer cost per frame.
pub(crate) fn with_keep_alive(
    frames: impl Stream<Item = Bytes> + Send + 'static,
) -> impl Stream<Item = Result<Bytes, std::convert::Infallible>> + Send + 'static {
    KeepAlive {
        frames: Box::pin(frames),
        timer: Box::pin(tokio::time::sleep(KEEP_ALIVE_AFTER)),
        last_frame: tokio::time::Instant::now(),
    }
}

struct KeepAlive<S> {
    frames: Pin<Box<S>>,
    timer: Pin<Box<tokio::time::Sleep>>,
    last_frame: tokio::time::Instant,
}

impl<S: Stream<Item = Bytes>> Stream for KeepAlive<S> {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.frames.as_mut().poll_next(cx) {
            Poll::Ready(Some(frame)) => {
                self.last_frame = tokio::time::Instant::now();
                return Poll::Ready(Some(Ok(frame)));
            }
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        while self.timer.as_mut().poll(cx).is_ready() {
            let now = tokio::time::Instant::now();
            let due = self.last_frame + KEEP_ALIVE_AFTER;
            if due <= now {
                self.last_frame = now;
                self.timer.as_mut().reset(now + KEEP_ALIVE_AFTER);
                return Poll::Ready(Some(Ok(keep_alive_frame())));
            }
            self.timer.as_mut().reset(due);
        }
        Poll::Pending
    }
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

    use futures::StreamExt;

    #[tokio::test(start_paused = true)]
    async fn a_busy_stream_gets_no_keep_alives() {
        let busy = futures::stream::iter(0..40).then(|i| async move {
            tokio::time::sleep(KEEP_ALIVE_AFTER / 2).await;
            Bytes::from(format!("data: {i}\n\n"))
        });
        let frames: Vec<Bytes> = with_keep_alive(busy).map(|f| f.unwrap()).collect().await;
        assert_eq!(frames.len(), 40);
        assert!(!frames.contains(&keep_alive_frame()));
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
