//! A streamed answer read one event at a time by a caller outside async Rust (the Python and
//! Node bindings): a task forwards the model's events into a bounded channel, and closing or
//! dropping the feed stops the task and with it the upstream request.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use capibara_core::Result;
use capibara_core::chat::{ChatRequest, StreamEvent};
use futures::StreamExt;
use futures::future::BoxFuture;
use tokio::sync::{Mutex, mpsc};
use tokio::task::AbortHandle;

use crate::app::Capibara;

/// Events buffered between the model and a slow reader.
const BUFFER: usize = 64;

/// The events of one streamed answer: deltas, tool calls, usage, then `Done` — or an error.
pub struct ChatFeed {
    events: Arc<Mutex<mpsc::Receiver<Result<StreamEvent>>>>,
    task: AbortHandle,
    closed: Arc<AtomicBool>,
}

impl std::fmt::Debug for ChatFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatFeed").field("closed", &self.is_closed()).finish_non_exhaustive()
    }
}

impl ChatFeed {
    /// Starts the answer: `spawn` runs the forwarding task on the caller's runtime and returns
    /// its abort handle. The request is checked like [`Capibara::chat_stream`] checks it; a
    /// failure arrives as the feed's first item.
    pub fn start(
        app: Capibara,
        request: ChatRequest,
        spawn: impl FnOnce(BoxFuture<'static, ()>) -> AbortHandle,
    ) -> Self {
        let (sender, receiver) = mpsc::channel(BUFFER);
        let task = spawn(Box::pin(async move {
            let mut stream = match app.chat_stream(request).await {
                Ok(stream) => stream,
                Err(error) => {
                    let _ = sender.send(Err(error)).await;
                    return;
                }
            };
            while let Some(event) = stream.next().await {
                let last = matches!(event, Err(_) | Ok(StreamEvent::Done { .. }));
                if sender.send(event).await.is_err() || last {
                    return;
                }
            }
        }));
        Self { events: Arc::new(Mutex::new(receiver)), task, closed: Arc::new(AtomicBool::new(false)) }
    }

    /// The next event, `None` once the answer is complete or the feed closed. The future owns
    /// what it needs, so it can be handed to another runtime or an awaitable.
    pub fn next(&self) -> impl Future<Output = Option<Result<StreamEvent>>> + Send + 'static {
        let events = Arc::clone(&self.events);
        let closed = Arc::clone(&self.closed);
        async move {
            if closed.load(Ordering::Acquire) {
                return None;
            }
            let event = events.lock().await.recv().await;
            // Events still buffered when the feed was closed are not handed out.
            if closed.load(Ordering::Acquire) { None } else { event }
        }
    }

    /// Stops the answer; the upstream request is dropped.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.task.abort();
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

impl Drop for ChatFeed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use capibara_core::chat::{FinishReason, Message};
    use capibara_core::testing::{InMemoryConversationStore, Reply, ScriptedBackend, Step};

    use super::*;
    use capibara_core::Error;

    fn app(reply: Reply) -> Capibara {
        let llm = ScriptedBackend::replying("sin guion");
        llm.push(reply);
        let store = Arc::new(InMemoryConversationStore::new());
        Capibara::with_components(capibara_core::config::Config::default(), Some(Arc::new(llm)), store)
    }

    fn spawn(task: BoxFuture<'static, ()>) -> AbortHandle {
        tokio::spawn(task).abort_handle()
    }

    fn hello() -> ChatRequest {
        ChatRequest::new(vec![Message::user("hola")])
    }

    #[tokio::test]
    async fn events_arrive_in_order_and_end_after_done() {
        let script = vec![
            StreamEvent::reasoning("pienso"),
            StreamEvent::content("Hola"),
            StreamEvent::done(FinishReason::Stop),
        ];
        let reply = Reply::Stream(script.iter().cloned().map(Step::Event).collect());
        let feed = ChatFeed::start(app(reply), hello(), spawn);
        let mut seen = Vec::new();
        while let Some(event) = feed.next().await {
            seen.push(event.unwrap());
        }
        assert_eq!(seen, script);
    }

    #[tokio::test]
    async fn a_refused_request_is_the_first_item() {
        let feed = ChatFeed::start(app(Reply::text("hola")), ChatRequest::new(Vec::new()), spawn);
        assert!(matches!(feed.next().await, Some(Err(Error::InvalidInput(_)))));
        assert!(feed.next().await.is_none());
        let feed = ChatFeed::start(app(Reply::Refuse(Error::unavailable("caído"))), hello(), spawn);
        assert!(matches!(feed.next().await, Some(Err(Error::Unavailable(_)))));
    }

    #[tokio::test]
    async fn a_closed_feed_hands_out_nothing_more() {
        let slow = Reply::Stream(vec![
            Step::Event(StreamEvent::content("a")),
            Step::Sleep(std::time::Duration::from_secs(30)),
            Step::Event(StreamEvent::done(FinishReason::Stop)),
        ]);
        let feed = ChatFeed::start(app(slow), hello(), spawn);
        assert!(matches!(feed.next().await, Some(Ok(StreamEvent::Content { .. }))));
        feed.close();
        assert!(feed.is_closed());
        let next = tokio::time::timeout(std::time::Duration::from_secs(5), feed.next()).await;
        assert!(matches!(next, Ok(None)), "closing ends the feed at once");
    }
}
