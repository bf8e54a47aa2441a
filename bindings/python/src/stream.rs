//! `stream_chat`: the answer's typed events (`{"type": "content" | "reasoning" | "tool_call" |
//! "usage" | "done", …}`), as a sync iterator and as an async iterator. Content and reasoning
//! arrive as separate events and are never mixed.

use capibara_core::chat::ChatRequest;
use capibara_server::Capibara;
use capibara_server::chat_feed::ChatFeed;
use pyo3::exceptions::PyStopAsyncIteration;
use pyo3::prelude::*;

use crate::errors;
use crate::runtime::{awaitable, runtime, wait};
use crate::to_python::Plain;

/// A feed whose events arrive as Python dicts.
pub(crate) struct EventFeed {
    feed: ChatFeed,
}

impl EventFeed {
    pub(crate) fn start(app: Capibara, request: ChatRequest) -> Self {
        Self { feed: ChatFeed::start(app, request, |task| runtime().spawn(task).abort_handle()) }
    }

    /// The next event; `None` once the answer is complete.
    fn next(&self) -> impl std::future::Future<Output = PyResult<Option<Plain>>> + Send + 'static {
        let next = self.feed.next();
        async move {
            match next.await {
                None => Ok(None),
                Some(Ok(event)) => Ok(Some(Plain::of(event))),
                Some(Err(error)) => Err(errors::to_py(error)),
            }
        }
    }

    fn close(&self) {
        self.feed.close();
    }
}

/// The events of a streamed answer, read with `for`.
#[pyclass(frozen, module = "capibara._capibara")]
pub(crate) struct ChatEvents {
    feed: EventFeed,
}

impl ChatEvents {
    pub(crate) fn new(feed: EventFeed) -> Self {
        Self { feed }
    }
}

#[pymethods]
impl ChatEvents {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Plain>> {
        wait(py, self.feed.next())
    }

    /// Stops the answer (the upstream request is dropped).
    fn close(&self) {
        self.feed.close();
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, _exc: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.feed.close();
        false
    }
}

/// The events of a streamed answer, read with `async for`.
#[pyclass(frozen, module = "capibara._capibara")]
pub(crate) struct AsyncChatEvents {
    feed: EventFeed,
}

impl AsyncChatEvents {
    pub(crate) fn new(feed: EventFeed) -> Self {
        Self { feed }
    }
}

#[pymethods]
impl AsyncChatEvents {
    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let next = self.feed.next();
        awaitable(py, async move {
            match next.await? {
                Some(event) => Ok(event),
                None => Err(PyStopAsyncIteration::new_err(())),
            }
        })
    }

    /// Stops the answer (the upstream request is dropped).
    fn aclose<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.feed.close();
        awaitable(py, async { Ok(()) })
    }

    fn __aenter__(slf: Py<Self>, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        awaitable(py, async move { Ok(slf) })
    }

    #[pyo3(signature = (*_exc))]
    fn __aexit__<'py>(
        &self,
        py: Python<'py>,
        _exc: &Bound<'py, pyo3::types::PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.feed.close();
        awaitable(py, async { Ok(false) })
    }
}
