//! Streamed responses (server-sent events, NDJSON): frames written directly as bytes (cheap per token),
//! ready frames merged into one write, and keep-alive comments
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

/// Most bytes merged into one write.
const MAX_BATCH_BYTES: usize = 16 * 1024;

/// Frames closer together than this come from an upstream faster than its reader: worth batching.
const BURST_GAP: Duration = Duration::from_millis(1);

/// Merges frames that arrive in a burst into one write.
///
/// The upstream connection is driven by a task of its own that hands over one chunk at a time, so a
/// fast upstream's frames would each leave in a write (and a client read) of their own. When frames
/// follow each other within [`BURST_GAP`], the stream yields once after a frame to let that task
/// decode what is already buffered, then sends everything ready as one buffer. Paced frames (a model
/// generating token by token) and the first frame go out at once, with no extra work.
pub(crate) fn coalesce(
    frames: impl Stream<Item = Bytes> + Send + 'static,
) -> impl Stream<Item = Bytes> + Send + 'static {
    Coalesce {
        frames: Box::pin(frames),
        batch: BytesMut::new(),
        yielded: false,
        ended: false,
        last_frame: None,
        burst: false,
    }
}

struct Coalesce<S> {
    frames: Pin<Box<S>>,
    batch: BytesMut,
    yielded: bool,
    ended: bool,
    last_frame: Option<std::time::Instant>,
    burst: bool,
}

impl<S: Stream<Item = Bytes>> Stream for Coalesce<S> {
    type Item = Bytes;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        while !self.ended {
            match self.frames.as_mut().poll_next(cx) {
                Poll::Ready(Some(frame)) => {
                    if self.batch.is_empty() {
                        let now = std::time::Instant::now();
                        self.burst = self.last_frame.is_some_and(|last| now.duration_since(last) < BURST_GAP);
                        self.last_frame = Some(now);
                    }
                    self.batch.extend_from_slice(&frame);
                    self.yielded = false;
                    if self.batch.len() >= MAX_BATCH_BYTES {
                        return Poll::Ready(Some(self.batch.split().freeze()));
                    }
                }
                Poll::Ready(None) => self.ended = true,
                Poll::Pending if self.batch.is_empty() => return Poll::Pending,
                Poll::Pending if self.burst && !self.yielded => {
                    // Let the task feeding us run before sending what we have.
                    self.yielded = true;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Poll::Pending => {
                    self.yielded = false;
                    return Poll::Ready(Some(self.batch.split().freeze()));
                }
            }
        }
        if self.batch.is_empty() { Poll::Ready(None) } else { Poll::Ready(Some(self.batch.split().freeze())) }
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

    #[tokio::test]
    async fn ready_frames_leave_together_and_paced_ones_alone() {
        let ready = futures::stream::iter((0..5).map(|i| Bytes::from(format!("data: {i}\n\n"))));
        let batches: Vec<Bytes> = coalesce(ready).collect().await;
        assert_eq!(batches, vec![Bytes::from("data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4\n\n")]);

        // A burst handed over one frame per task switch (as an upstream connection task does) is
        // merged after the first frame, which leaves alone.
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
        tokio::spawn(async move {
            for i in 0..6 {
                tx.send(Bytes::from(format!("data: {i}\n\n"))).await.unwrap();
            }
        });
        let batches: Vec<Bytes> = coalesce(tokio_stream::wrappers::ReceiverStream::new(rx)).collect().await;
        assert!(batches.len() < 6, "{batches:?}");
        assert_eq!(batches[0], Bytes::from("data: 0\n\n"));
        assert_eq!(batches.concat(), b"data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4\n\ndata: 5\n\n");

        let paced = futures::stream::iter(0..3).then(|i| async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Bytes::from(format!("data: {i}\n\n"))
        });
        let batches: Vec<Bytes> = coalesce(paced).collect().await;
        assert_eq!(batches.len(), 3, "a frame is not held back waiting for the next one");
    }

    #[tokio::test]
    async fn a_produced_frame_is_not_held_when_nothing_follows() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        let mut batches = Box::pin(coalesce(tokio_stream::wrappers::ReceiverStream::new(rx)));
        tx.send(Bytes::from_static(b"data: first\n\n")).await.unwrap();
        let first = tokio::time::timeout(Duration::from_secs(1), batches.next()).await.unwrap().unwrap();
        assert_eq!(first, Bytes::from_static(b"data: first\n\n"));
    }

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
