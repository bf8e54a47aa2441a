//! The `Capibara` class: the composition `capibara serve` builds, one method per library
//! operation. Each method reads its arguments into the library's types, runs the operation on the
//! addon's tokio runtime and settles a promise with the result (or the mapped `Error`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use capibara_core::chat::Message;
use capibara_core::config::Config;
use capibara_rag::ingest::Silent;
use capibara_server::operations::ChatOptions;
use capibara_server::rag::{AskOptions, DocumentInput, SearchOptions};
use capibara_server::serve::Background;
use capibara_server::{Capibara as App, settings};
use napi::ValueType;
use napi::bindgen_prelude::{Either, Env, JsValue, PromiseRaw, Unknown};
use napi_derive::napi;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::convert::{from_js, is_absent, string, to_value, type_name};
use crate::errors::{Failure, Settled, promise};
use crate::inputs;
use crate::results::{ChatAnswer, IngestSummary, RagAnswer, RetrievalStats, SearchResults};
use crate::server::Server;
use crate::stream::ChatEvents;

/// Host `serve()` binds when none is given.
const DEFAULT_HOST: &str = "127.0.0.1";
/// Port `serve()` binds when none is given.
const DEFAULT_PORT: u16 = 5001;

/// A promise of a call's result (what each method returns).
type Pending<'env, T> = napi::Result<PromiseRaw<'env, Settled<T>>>;

/// The composition (until closed) and the servers started over it.
struct Core {
    app: RwLock<Option<App>>,
    servers: Mutex<Vec<Arc<Background>>>,
    /// The runtime the composition was built on; it is released there.
    runtime: tokio::runtime::Handle,
}

impl Core {
    fn app(&self) -> Result<App, Failure> {
        self.app.read().unwrap_or_else(PoisonError::into_inner).clone().ok_or(Failure::Closed)
    }

    fn is_closed(&self) -> bool {
        self.app.read().unwrap_or_else(PoisonError::into_inner).is_none()
    }

    /// Releases the composition and stops the servers it started. Calls under way finish.
    fn close(&self) {
        let servers = std::mem::take(&mut *self.servers.lock().unwrap_or_else(PoisonError::into_inner));
        for server in servers {
            server.stop();
        }
        self.release();
    }

    /// Lets go of the composition; it is freed once calls under way and servers are done with it.
    fn release(&self) {
        if let Some(app) = self.app.write().unwrap_or_else(PoisonError::into_inner).take() {
            // Its stores and clients are dropped where they were made, off the JavaScript thread.
            drop(self.runtime.spawn(async move { drop(app) }));
        }
    }
}

impl Drop for Core {
    /// A `Capibara` collected without `close()`: its servers keep serving (`server.close()`
    /// stops them).
    fn drop(&mut self) {
        self.release();
    }
}

/// Where the configuration comes from.
enum ConfigSource {
    /// The embedded defaults and `CAPIBARA_…` variables.
    Defaults,
    /// A `capibara.toml`.
    File(PathBuf),
    /// An object laid out like a `capibara.toml`.
    Object(Value),
}

impl ConfigSource {
    fn read(config: Unknown<'_>) -> Result<Self, Failure> {
        if is_absent(&config) {
            return Ok(Self::Defaults);
        }
        match config.get_type() {
            Ok(ValueType::String) => Ok(Self::File(PathBuf::from(string(config, "config")?))),
            Ok(ValueType::Object) if !config.is_array().unwrap_or(true) => {
                Ok(Self::Object(to_value(config, "config")?))
            }
            _ => Err(Failure::invalid(format!(
                "config: expected a path to a capibara.toml or an object laid out like one, got {}",
                type_name(&config)
            ))),
        }
    }

    fn load(self) -> Result<Config, Failure> {
        let config = match self {
            Self::Defaults => settings::load(None),
            Self::File(path) => settings::load(Some(&path)),
            Self::Object(value) => settings::from_value(&value),
        };
        Ok(config?)
    }
}

/// Capibara in process: chat, embeddings, retrieval and the HTTP server over one composition.
/// Open it with `await Capibara.open(config)`; every call returns a Promise (`streamChat` an
/// async iterable). Errors are `Error`s with a `code` (`invalid_input`, `unavailable`, …).
#[napi]
pub struct Capibara {
    core: Arc<Core>,
}

#[napi]
impl Capibara {
    /// Builds a composition: `config` is a path to a `capibara.toml`, an object laid out like one
    /// (snake_case keys, as in the file), or nothing for the embedded defaults. `CAPIBARA_…`
    /// variables override it as they do for `capibara serve`.
    #[napi(
        ts_args_type = "config?: string | Record<string, unknown> | null",
        ts_return_type = "Promise<Capibara>"
    )]
    pub fn open<'env>(env: &'env Env, config: Unknown<'_>) -> Pending<'env, Capibara> {
        let source = ConfigSource::read(config);
        promise(
            env,
            source.map(|source| async move {
                let app = App::build(source.load()?).await?;
                let core = Core {
                    app: RwLock::new(Some(app)),
                    servers: Mutex::new(Vec::new()),
                    runtime: tokio::runtime::Handle::current(),
                };
                Ok(Capibara { core: Arc::new(core) })
            }),
        )
    }

    /// A whole answer. `messages` is a text (one user message) or a list of
    /// `{ role, content }` messages.
    #[napi(
        ts_args_type = "messages: string | Array<Message>, options?: ChatOptions",
        ts_return_type = "Promise<ChatAnswer>"
    )]
    pub fn chat<'env>(
        &self,
        env: &'env Env,
        messages: Unknown<'_>,
        options: Unknown<'_>,
    ) -> Pending<'env, ChatAnswer> {
        let call = self.core.app().and_then(|app| {
            let messages = read_messages(messages)?;
            let request = chat_options(options)?.request(messages);
            Ok(async move { Ok(app.chat(request).await?.into()) })
        });
        promise(env, call)
    }

    /// The answer as it is generated, read with `for await`: `content` and `reasoning` deltas,
    /// `tool_call`s, `usage`, then `done`. Throws at once for arguments of the wrong type or when
    /// closed; a request the library refuses rejects the first read.
    #[napi(ts_args_type = "messages: string | Array<Message>, options?: ChatOptions")]
    pub fn stream_chat(
        &self,
        env: &Env,
        messages: Unknown<'_>,
        options: Unknown<'_>,
    ) -> napi::Result<ChatEvents> {
        let started = self.core.app().and_then(|app| {
            let messages = read_messages(messages)?;
            let request = chat_options(options)?.request(messages);
            Ok(ChatEvents::start(app, request))
        });
        started.map_err(|failure| failure.into_js(env))
    }

    /// Unit vectors: one array of numbers for a text, an array of them for an array of texts.
    #[napi(
        ts_args_type = "texts: string | Array<string>",
        ts_return_type = "Promise<Array<number> | Array<Array<number>>>"
    )]
    pub fn embed<'env>(
        &self,
        env: &'env Env,
        texts: Unknown<'_>,
    ) -> Pending<'env, Either<Vec<f64>, Vec<Vec<f64>>>> {
        let call = self.core.app().and_then(|app| {
            let (texts, single) = match texts.get_type() {
                Ok(ValueType::String) => (vec![string(texts, "texts")?], true),
                _ if texts.is_array().unwrap_or(false) => (from_js::<Vec<String>>(texts, "texts")?, false),
                _ => {
                    return Err(Failure::invalid(format!(
                        "texts: expected a string or an array of strings, got {}",
                        type_name(&texts)
                    )));
                }
            };
            Ok(async move {
                let vectors = app.embed(&texts).await?;
                let mut vectors: Vec<Vec<f64>> =
                    vectors.into_iter().map(|v| v.into_iter().map(f64::from).collect()).collect();
                Ok(match (single, vectors.pop()) {
                    (true, Some(vector)) => Either::A(vector),
                    (_, last) => {
                        vectors.extend(last);
                        Either::B(vectors)
                    }
                })
            })
        });
        promise(env, call)
    }

    /// Searches the retrieval collection.
    #[napi(
        ts_args_type = "query: string, options?: SearchOptions",
        ts_return_type = "Promise<SearchResults>"
    )]
    pub fn search<'env>(
        &self,
        env: &'env Env,
        query: Unknown<'_>,
        options: Unknown<'_>,
    ) -> Pending<'env, SearchResults> {
        let call = self.core.app().and_then(|app| {
            let query = string(query, "query")?;
            let options: SearchOptions = read_options::<inputs::SearchOptions>(options)?.into();
            Ok(async move { Ok(app.search(&query, &options).await?.into()) })
        });
        promise(env, call)
    }

    /// Answers a question from retrieved sources, with exactly the sources the model saw.
    #[napi(ts_args_type = "question: string, options?: AskOptions", ts_return_type = "Promise<RagAnswer>")]
    pub fn ask<'env>(
        &self,
        env: &'env Env,
        question: Unknown<'_>,
        options: Unknown<'_>,
    ) -> Pending<'env, RagAnswer> {
        let call = self.core.app().and_then(|app| {
            let question = string(question, "question")?;
            let options: AskOptions = read_options::<inputs::AskOptions>(options)?.into();
            Ok(async move { Ok(app.ask(&question, options).await?.into()) })
        });
        promise(env, call)
    }

    /// Ingests files and directories (Markdown, text, HTML, PDF, …). Files that cannot be read
    /// are listed in `failures`; when none could be read, the promise rejects with the first
    /// one's error.
    #[napi(ts_args_type = "paths: string | Array<string>", ts_return_type = "Promise<IngestSummary>")]
    pub fn ingest<'env>(&self, env: &'env Env, paths: Unknown<'_>) -> Pending<'env, IngestSummary> {
        let call = self.core.app().and_then(|app| {
            let paths: Vec<PathBuf> = match paths.get_type() {
                Ok(ValueType::String) => vec![PathBuf::from(string(paths, "paths")?)],
                _ if paths.is_array().unwrap_or(false) => {
                    from_js::<Vec<String>>(paths, "paths")?.into_iter().map(PathBuf::from).collect()
                }
                _ => {
                    return Err(Failure::invalid(format!(
                        "paths: expected a path or an array of paths, got {}",
                        type_name(&paths)
                    )));
                }
            };
            Ok(async move { Ok(app.ingest_paths(&paths, &mut Silent).await?.into()) })
        });
        promise(env, call)
    }

    /// Ingests documents given in memory (`text`, and optionally `id`, `title`, `source`,
    /// `metadata`).
    #[napi(ts_args_type = "documents: Array<Document>", ts_return_type = "Promise<IngestSummary>")]
    pub fn ingest_documents<'env>(
        &self,
        env: &'env Env,
        documents: Unknown<'_>,
    ) -> Pending<'env, IngestSummary> {
        let call = self.core.app().and_then(|app| {
            if !documents.is_array().unwrap_or(false) {
                return Err(Failure::invalid(format!(
                    "documents: expected an array of {{ text, … }} objects, got {}",
                    type_name(&documents)
                )));
            }
            let documents: Vec<inputs::Document> = from_js(documents, "documents")?;
            let documents: Vec<DocumentInput> = documents.into_iter().map(Into::into).collect();
            Ok(async move { Ok(app.ingest_documents(documents).await?.into()) })
        });
        promise(env, call)
    }

    /// What the retrieval collection holds.
    #[napi(ts_return_type = "Promise<RetrievalStats>")]
    pub fn stats<'env>(&self, env: &'env Env) -> Pending<'env, RetrievalStats> {
        let call = self.core.app().map(|app| async move { Ok(app.retrieval_stats().await?.into()) });
        promise(env, call)
    }

    /// Starts the HTTP server (every route of `capibara serve`) in this process; port 0 picks a
    /// free one. Defaults: `127.0.0.1:5001`. Closing this `Capibara` stops it.
    #[napi(ts_args_type = "host?: string | null, port?: number | null", ts_return_type = "Promise<Server>")]
    pub fn serve<'env>(&self, env: &'env Env, host: Unknown<'_>, port: Unknown<'_>) -> Pending<'env, Server> {
        let core = Arc::clone(&self.core);
        let call = self.core.app().and_then(|app| {
            let host = if is_absent(&host) { DEFAULT_HOST.to_owned() } else { string(host, "host")? };
            let port = if is_absent(&port) { DEFAULT_PORT } else { from_js::<u16>(port, "port")? };
            Ok(async move {
                let running = Arc::new(Background::start(app, &host, port).await?);
                let mut servers = core.servers.lock().unwrap_or_else(PoisonError::into_inner);
                // Servers closed on their own are forgotten, so serving repeatedly does not pile them up.
                servers.retain(|server| server.is_running());
                servers.push(Arc::clone(&running));
                drop(servers);
                // Closed while binding: the server must not outlive its composition.
                if core.is_closed() {
                    running.stop();
                }
                Ok(Server::new(running))
            })
        });
        promise(env, call)
    }

    /// Releases the models and stores and stops the servers started here. Calls under way
    /// finish; later calls reject with code `closed`.
    #[napi]
    pub fn close(&self) {
        self.core.close();
    }

    /// Whether `close()` was called.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.core.is_closed()
    }
}

/// Chat options read into the library's; absent options are the defaults.
fn chat_options(options: Unknown<'_>) -> Result<ChatOptions, Failure> {
    Ok(read_options::<inputs::ChatOptions>(options)?.into())
}

/// An options object (or nothing, for the defaults).
fn read_options<T: DeserializeOwned + Default>(options: Unknown<'_>) -> Result<T, Failure> {
    if is_absent(&options) {
        return Ok(T::default());
    }
    if options.get_type().ok() != Some(ValueType::Object) || options.is_array().unwrap_or(true) {
        return Err(Failure::invalid(format!("options: expected an object, got {}", type_name(&options))));
    }
    from_js(options, "options")
}

/// A text (one user message), or a list of `{ role, content }` messages.
fn read_messages(messages: Unknown<'_>) -> Result<Vec<Message>, Failure> {
    if messages.get_type().ok() == Some(ValueType::String) {
        return Ok(vec![Message::user(string(messages, "messages")?)]);
    }
    if !messages.is_array().unwrap_or(false) {
        return Err(Failure::invalid(format!(
            "messages: expected a string or an array of {{ role, content }} messages, got {}",
            type_name(&messages)
        )));
    }
    let messages: Vec<inputs::Message> = from_js(messages, "messages")?;
    Ok(messages.into_iter().map(Message::from).collect())
}
