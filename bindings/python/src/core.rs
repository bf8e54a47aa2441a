//! What the sync and async classes share: the composed [`Capibara`] (until closed) and, per
//! operation, the reading of Python arguments into the library's types. Each operation returns a
//! prepared [`Call`] that the sync class waits for and the async class awaits.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use capibara_core::chat::Message;
use capibara_rag::ingest::{IngestEvent, IngestProgress};
use capibara_server::Capibara;
use capibara_server::operations::ChatOptions;
use capibara_server::rag::{AskOptions, DocumentInput, SearchOptions};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use serde_json::{Value, json};

use crate::convert::{from_py, from_value, to_value};
use crate::errors;
use crate::runtime::{Call, call};
use crate::to_python::{Plain, to_python};
use capibara_server::serve::Background;

use crate::server::Server;
use crate::stream::EventFeed;

/// The composition shared by a `Capibara` and its `AsyncCapibara` view.
pub(crate) struct Core {
    app: RwLock<Option<Capibara>>,
    servers: Mutex<Vec<Arc<Background>>>,
}

impl Core {
    pub(crate) fn new(app: Capibara) -> Arc<Self> {
        Arc::new(Self { app: RwLock::new(Some(app)), servers: Mutex::new(Vec::new()) })
    }

    /// The composition, or `capibara.Closed`.
    pub(crate) fn app(&self) -> PyResult<Capibara> {
        self.app.read().unwrap_or_else(PoisonError::into_inner).clone().ok_or_else(errors::closed)
    }

    /// Releases the composition and stops the servers it started. Calls under way finish.
    pub(crate) fn close(&self) {
        self.app.write().unwrap_or_else(PoisonError::into_inner).take();
        let servers = std::mem::take(&mut *self.servers.lock().unwrap_or_else(PoisonError::into_inner));
        for server in servers {
            server.stop();
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.app.read().unwrap_or_else(PoisonError::into_inner).is_none()
    }

    pub(crate) fn chat(
        &self,
        messages: &Bound<'_, PyAny>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Call<Plain>> {
        let app = self.app()?;
        let request = chat_options(options)?.request(read_messages(messages)?);
        Ok(call(async move { Ok(Plain::of(app.chat(request).await?)) }))
    }

    pub(crate) fn stream_chat(
        &self,
        messages: &Bound<'_, PyAny>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<EventFeed> {
        let app = self.app()?;
        let request = chat_options(options)?.request(read_messages(messages)?);
        Ok(EventFeed::start(app, request))
    }

    pub(crate) fn embed(&self, texts: &Bound<'_, PyAny>) -> PyResult<Call<Plain>> {
        let app = self.app()?;
        let (texts, single) = match texts.cast::<PyString>() {
            Ok(text) => (vec![text.to_str()?.to_owned()], true),
            Err(_) => (from_py::<Vec<String>>(texts, "texts")?, false),
        };
        Ok(call(async move {
            let mut vectors = app.embed(&texts).await?;
            match (single, vectors.pop()) {
                (true, Some(vector)) => Ok(Plain::of(vector)),
                (_, last) => {
                    vectors.extend(last);
                    Ok(Plain::of(vectors))
                }
            }
        }))
    }

    pub(crate) fn search(
        &self,
        query: &Bound<'_, PyAny>,
        k: Option<&Bound<'_, PyAny>>,
        filter: Option<&Bound<'_, PyAny>>,
        mode: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Call<Plain>> {
        let app = self.app()?;
        let query = read_text(query, "query")?;
        let mut options = serde_json::Map::new();
        for (name, value) in [("k", k), ("filter", filter), ("mode", mode)] {
            if let Some(value) = value.filter(|v| !v.is_none()) {
                options.insert(name.to_owned(), to_value(value, name)?);
            }
        }
        let options: SearchOptions = from_value(Value::Object(options), "search options")?;
        Ok(call(async move { Ok(Plain::of(app.search(&query, &options).await?)) }))
    }

    pub(crate) fn ask(
        &self,
        question: &Bound<'_, PyAny>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Call<Plain>> {
        let app = self.app()?;
        let question = read_text(question, "question")?;
        let options: AskOptions = match options {
            Some(options) => from_py(options.as_any(), "options")?,
            None => AskOptions::default(),
        };
        Ok(call(async move { Ok(Plain::of(app.ask(&question, options).await?)) }))
    }

    pub(crate) fn ingest(
        &self,
        paths: &Bound<'_, PyAny>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Call<Plain>> {
        let app = self.app()?;
        let paths = read_paths(paths)?;
        Ok(Box::pin(async move {
            let mut reporter = ProgressCallback { callback: progress, failed: None };
            let summary = app.ingest_paths(&paths, &mut reporter).await.map_err(errors::to_py)?;
            // A callback that raised does not tear an ingestion in half; its exception is raised
            // once the ingestion is recorded.
            if let Some(error) = reporter.failed {
                return Err(error);
            }
            Ok(Plain::of(summary))
        }))
    }

    pub(crate) fn ingest_documents(&self, documents: &Bound<'_, PyAny>) -> PyResult<Call<Plain>> {
        let app = self.app()?;
        let documents: Vec<DocumentInput> = from_py(documents, "documents")?;
        Ok(call(async move { Ok(Plain::of(app.ingest_documents(documents).await?)) }))
    }

    pub(crate) fn stats(&self) -> PyResult<Call<Plain>> {
        let app = self.app()?;
        Ok(call(async move { Ok(Plain::of(app.retrieval_stats().await?)) }))
    }

    /// Starts the HTTP server over this composition; closing the composition stops it.
    pub(crate) fn serve(self: &Arc<Self>, host: String, port: u16) -> PyResult<Call<Server>> {
        let app = self.app()?;
        let core = Arc::clone(self);
        Ok(call(async move {
            let running = Arc::new(Background::start(app, &host, port).await?);
            let mut servers = core.servers.lock().unwrap_or_else(PoisonError::into_inner);
            // Servers closed on their own are forgotten, so serving repeatedly does not pile them up.
            servers.retain(|server| server.is_running());
            servers.push(Arc::clone(&running));
            drop(servers);
            if core.is_closed() {
                running.stop();
            }
            Ok(Server::new(running))
        }))
    }
}

/// `chat(..., **options)` read into the library's options; an unknown option is an error.
fn chat_options(options: Option<&Bound<'_, PyDict>>) -> PyResult<ChatOptions> {
    match options {
        Some(options) => from_py(options.as_any(), "options"),
        None => Ok(ChatOptions::default()),
    }
}

/// A text argument; a str is taken as it is, anything else is refused naming the argument.
fn read_text(text: &Bound<'_, PyAny>, what: &str) -> PyResult<String> {
    match text.cast::<PyString>() {
        Ok(text) => Ok(text.to_str()?.to_owned()),
        Err(_) => from_py(text, what),
    }
}

/// A message text, or a list of `{"role", "content"}` dicts.
fn read_messages(messages: &Bound<'_, PyAny>) -> PyResult<Vec<Message>> {
    if let Ok(text) = messages.cast::<PyString>() {
        return Ok(vec![Message::user(text.to_str()?)]);
    }
    from_py(messages, "messages")
}

/// A path, or a list of paths (str or `os.PathLike`).
fn read_paths(paths: &Bound<'_, PyAny>) -> PyResult<Vec<PathBuf>> {
    if let Ok(path) = paths.extract::<PathBuf>() {
        return Ok(vec![path]);
    }
    let mut read = Vec::new();
    for (i, item) in paths
        .try_iter()
        .map_err(|_| {
            errors::to_py(capibara_core::Error::invalid("paths: expected a path or a list of paths"))
        })?
        .enumerate()
    {
        let item = item?;
        let path = item.extract::<PathBuf>().map_err(|_| {
            errors::to_py(capibara_core::Error::invalid(format!("paths[{i}]: expected a str or os.PathLike")))
        })?;
        read.push(path);
    }
    Ok(read)
}

/// Ingestion events handed to a Python callable as dicts.
struct ProgressCallback {
    callback: Option<Py<PyAny>>,
    failed: Option<PyErr>,
}

impl IngestProgress for ProgressCallback {
    fn event(&mut self, event: IngestEvent) {
        let Some(callback) = &self.callback else { return };
        if self.failed.is_some() {
            return;
        }
        let event = match event {
            IngestEvent::Discovered { files, bytes } => {
                json!({"type": "discovered", "files": files, "bytes": bytes})
            }
            IngestEvent::FileLoaded { source, bytes } => {
                json!({"type": "file_loaded", "source": source, "bytes": bytes})
            }
            IngestEvent::FileFailed { source, error } => {
                json!({"type": "file_failed", "source": source, "error": error})
            }
            IngestEvent::Indexed { chunks } => json!({"type": "indexed", "chunks": chunks}),
        };
        let outcome = Python::attach(|py| {
            let event = to_python(py, &event)?;
            callback.call1(py, (event,)).map(drop)
        });
        if let Err(error) = outcome {
            self.failed = Some(error);
        }
    }
}
