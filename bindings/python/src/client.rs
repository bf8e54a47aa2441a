//! The two classes Python sees: `Capibara` (blocking calls, for scripts) and `AsyncCapibara`
//! (awaitables, for asyncio). Both are views of one [`Core`]; each method reads its arguments and
//! runs the library operation of the same name.

use std::path::PathBuf;
use std::sync::Arc;

use capibara_core::config::Config;
use capibara_server::{Capibara as App, settings};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::convert::to_value;
use crate::core::Core;
use crate::errors;
use crate::runtime::{awaitable, call, wait};
use crate::server::Server;
use crate::stream::{AsyncChatEvents, ChatEvents};
use crate::to_python::Plain;

/// The configuration named by `config`: `None` (embedded defaults and `CAPIBARA_…` variables), a
/// path to a `capibara.toml`, or a dict laid out like one.
fn read_config(config: Option<&Bound<'_, PyAny>>) -> PyResult<Config> {
    let config = match config.filter(|c| !c.is_none()) {
        None => settings::load(None),
        Some(dict) if dict.is_instance_of::<PyDict>() => settings::from_value(&to_value(dict, "config")?),
        Some(path) => match path.extract::<PathBuf>() {
            Ok(path) => settings::load(Some(&path)),
            Err(_) => Err(capibara_core::Error::invalid(
                "config: expected None, a path to a capibara.toml, or a dict",
            )),
        },
    };
    config.map_err(errors::to_py)
}

/// Capibara in process, with blocking calls. `Capibara()` uses the embedded defaults;
/// `Capibara.from_config(path_or_dict)` reads a configuration as `capibara serve` does.
#[pyclass(frozen, module = "capibara._capibara")]
pub(crate) struct Capibara {
    core: Arc<Core>,
}

#[pymethods]
impl Capibara {
    #[new]
    #[pyo3(signature = (config=None))]
    fn new(py: Python<'_>, config: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let config = read_config(config)?;
        let app = wait(py, call(App::build(config)))?;
        Ok(Self { core: Core::new(app) })
    }

    /// Builds from a path to a `capibara.toml` or a dict laid out like one.
    #[staticmethod]
    fn from_config(py: Python<'_>, config: &Bound<'_, PyAny>) -> PyResult<Self> {
        if config.is_none() {
            return Err(errors::to_py(capibara_core::Error::invalid(
                "config: expected a path or a dict (use Capibara() for the defaults)",
            )));
        }
        Self::new(py, Some(config))
    }

    /// The async view of this same composition.
    #[getter]
    fn aio(&self) -> AsyncCapibara {
        AsyncCapibara { core: Arc::clone(&self.core) }
    }

    /// A whole answer: `messages` is a text or a list of `{"role", "content"}` dicts.
    #[pyo3(signature = (messages, **options))]
    fn chat(
        &self,
        py: Python<'_>,
        messages: &Bound<'_, PyAny>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Plain> {
        wait(py, self.core.chat(messages, options)?)
    }

    /// The answer as typed events, read with `for`.
    #[pyo3(signature = (messages, **options))]
    fn stream_chat(
        &self,
        messages: &Bound<'_, PyAny>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<ChatEvents> {
        Ok(ChatEvents::new(self.core.stream_chat(messages, options)?))
    }

    /// Unit vectors: one list of floats for a text, a list of them for a list of texts.
    fn embed(&self, py: Python<'_>, texts: &Bound<'_, PyAny>) -> PyResult<Plain> {
        wait(py, self.core.embed(texts)?)
    }

    /// Searches the retrieval collection.
    #[pyo3(signature = (query, k=None, filter=None, mode=None))]
    fn search(
        &self,
        py: Python<'_>,
        query: &Bound<'_, PyAny>,
        k: Option<&Bound<'_, PyAny>>,
        filter: Option<&Bound<'_, PyAny>>,
        mode: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Plain> {
        wait(py, self.core.search(query, k, filter, mode)?)
    }

    /// Answers a question from retrieved sources, with the sources the model saw.
    #[pyo3(signature = (question, **options))]
    fn ask(
        &self,
        py: Python<'_>,
        question: &Bound<'_, PyAny>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Plain> {
        wait(py, self.core.ask(question, options)?)
    }

    /// Ingests files and directories; `progress` is called with each event.
    #[pyo3(signature = (paths, progress=None))]
    fn ingest(
        &self,
        py: Python<'_>,
        paths: &Bound<'_, PyAny>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Plain> {
        wait(py, self.core.ingest(paths, progress)?)
    }

    /// Ingests documents given as dicts (`text`, and optionally `id`, `title`, `source`, `metadata`).
    fn ingest_documents(&self, py: Python<'_>, documents: &Bound<'_, PyAny>) -> PyResult<Plain> {
        wait(py, self.core.ingest_documents(documents)?)
    }

    /// What the retrieval collection holds.
    fn stats(&self, py: Python<'_>) -> PyResult<Plain> {
        wait(py, self.core.stats()?)
    }

    /// Starts the HTTP server (every route of `capibara serve`) in this process.
    #[pyo3(signature = (host="127.0.0.1".to_owned(), port=5001))]
    fn serve(&self, py: Python<'_>, host: String, port: u16) -> PyResult<Server> {
        wait(py, self.core.serve(host, port)?)
    }

    /// Releases the models and stores and stops started servers. Later calls raise `Closed`.
    fn close(&self) {
        self.core.close();
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.core.is_closed()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, _exc: &Bound<'_, PyTuple>) -> bool {
        self.core.close();
        false
    }
}

/// Capibara in process, with awaitable calls: `await AsyncCapibara.open(config)`.
#[pyclass(frozen, module = "capibara._capibara")]
pub(crate) struct AsyncCapibara {
    core: Arc<Core>,
}

#[pymethods]
impl AsyncCapibara {
    /// Builds a composition without blocking the event loop (see `Capibara()` for `config`).
    #[staticmethod]
    #[pyo3(signature = (config=None))]
    fn open<'py>(py: Python<'py>, config: Option<&Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
        let config = read_config(config)?;
        awaitable(py, async move {
            let app = call(App::build(config)).await?;
            Ok(AsyncCapibara { core: Core::new(app) })
        })
    }

    /// A whole answer: `messages` is a text or a list of `{"role", "content"}` dicts.
    #[pyo3(signature = (messages, **options))]
    fn chat<'py>(
        &self,
        py: Python<'py>,
        messages: &Bound<'py, PyAny>,
        options: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.core.chat(messages, options)?)
    }

    /// The answer as typed events, read with `async for`.
    #[pyo3(signature = (messages, **options))]
    fn stream_chat(
        &self,
        messages: &Bound<'_, PyAny>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<AsyncChatEvents> {
        Ok(AsyncChatEvents::new(self.core.stream_chat(messages, options)?))
    }

    /// Unit vectors: one list of floats for a text, a list of them for a list of texts.
    fn embed<'py>(&self, py: Python<'py>, texts: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.core.embed(texts)?)
    }

    /// Searches the retrieval collection.
    #[pyo3(signature = (query, k=None, filter=None, mode=None))]
    fn search<'py>(
        &self,
        py: Python<'py>,
        query: &Bound<'py, PyAny>,
        k: Option<&Bound<'py, PyAny>>,
        filter: Option<&Bound<'py, PyAny>>,
        mode: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.core.search(query, k, filter, mode)?)
    }

    /// Answers a question from retrieved sources, with the sources the model saw.
    #[pyo3(signature = (question, **options))]
    fn ask<'py>(
        &self,
        py: Python<'py>,
        question: &Bound<'py, PyAny>,
        options: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.core.ask(question, options)?)
    }

    /// Ingests files and directories; `progress` is called with each event.
    #[pyo3(signature = (paths, progress=None))]
    fn ingest<'py>(
        &self,
        py: Python<'py>,
        paths: &Bound<'py, PyAny>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.core.ingest(paths, progress)?)
    }

    /// Ingests documents given as dicts (`text`, and optionally `id`, `title`, `source`, `metadata`).
    fn ingest_documents<'py>(
        &self,
        py: Python<'py>,
        documents: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.core.ingest_documents(documents)?)
    }

    /// What the retrieval collection holds.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.core.stats()?)
    }

    /// Starts the HTTP server (every route of `capibara serve`) in this process.
    #[pyo3(signature = (host="127.0.0.1".to_owned(), port=5001))]
    fn serve<'py>(&self, py: Python<'py>, host: String, port: u16) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.core.serve(host, port)?)
    }

    /// Releases the models and stores and stops started servers. Later calls raise `Closed`.
    fn close(&self) {
        self.core.close();
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.core.is_closed()
    }

    fn __aenter__(slf: Py<Self>, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        awaitable(py, async move { Ok(slf) })
    }

    #[pyo3(signature = (*_exc))]
    fn __aexit__<'py>(&self, py: Python<'py>, _exc: &Bound<'py, PyTuple>) -> PyResult<Bound<'py, PyAny>> {
        self.core.close();
        awaitable(py, async { Ok(false) })
    }
}
