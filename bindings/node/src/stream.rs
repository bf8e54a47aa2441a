//! `streamChat`: the answer's typed events, read with `for await`. A task forwards the model's
//! events into a channel as they come; leaving the loop early (`break`, `return()`), calling
//! `close()` or dropping the object stops the task and with it the upstream request. A failure
//! rejects the pending `next()` with the mapped `Error`, then the iteration ends.

use std::future::Future;

use capibara_core::chat::ChatRequest;
use capibara_server::Capibara as App;
use capibara_server::chat_feed::ChatFeed;
use napi::bindgen_prelude::{AsyncGenerator, spawn};
use napi_derive::napi;

use crate::errors::Settled;
use crate::results;

/// What `next()` settles with: an event, or the failure that rejects it. Named `ChatEvent` so the
/// generated types read `AsyncGenerator<ChatEvent>`.
mod yielded {
    pub(super) type ChatEvent = crate::errors::Settled<crate::results::ChatEvent>;
}

/// The events of a streamed answer, read with `for await (const event of events)`: `content`
/// and `reasoning` deltas, `tool_call`s, `usage`, then `done`.
#[napi(async_iterator)]
pub struct ChatEvents {
    feed: ChatFeed,
}

impl ChatEvents {
    /// Starts the answer on the addon's runtime.
    pub(crate) fn start(app: App, request: ChatRequest) -> Self {
        Self { feed: ChatFeed::start(app, request, |task| spawn(task).abort_handle()) }
    }
}

#[napi]
impl AsyncGenerator for ChatEvents {
    type Yield = yielded::ChatEvent;
    type Next = ();
    type Return = ();

    fn next(
        &mut self,
        _value: Option<Self::Next>,
    ) -> impl Future<Output = napi::Result<Option<Self::Yield>>> + Send + 'static {
        let next = self.feed.next();
        async move {
            let received = next.await;
            Ok(received.map(|event| Settled(event.map(results::ChatEvent::from).map_err(Into::into))))
        }
    }

    fn complete(
        &mut self,
        _value: Option<Self::Return>,
    ) -> impl Future<Output = napi::Result<Option<Self::Yield>>> + Send + 'static {
        self.feed.close();
        async { Ok(None) }
    }
}

#[napi]
impl ChatEvents {
    /// Stops the answer: the upstream request is dropped and the iteration ends.
    #[napi]
    pub fn close(&self) {
        self.feed.close();
    }
}
