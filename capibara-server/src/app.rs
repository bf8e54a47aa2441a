//! The composition root: configuration in, one [`Capibara`] value out, holding every component.
//!
//! Every face (the HTTP server, the CLI, the Python and Node bindings) builds the same value, so a
//! request runs the same code path whichever way it came in.

use std::sync::Arc;
use std::time::Instant;

use capibara_core::config::{Config, EmbeddingsConfig};
use capibara_core::embed::Embedder;
use capibara_core::llm::LlmBackend;
use capibara_core::store::ConversationStore;
use capibara_core::turn::{ChatTurn, TurnSettings};
use capibara_core::{Error, Result};

use crate::local_models::{self, LineProgress};
use crate::rag::Rag;
use crate::store::SqlStore;
use crate::uploads::UploadStore;

/// What to tell a user who chats before configuring a model.
pub const NO_BACKEND_HELP: &str = "no chat model is configured. Add one to capibara.toml, e.g.\n\
    [[llm.backends]]\nkind = \"ollama\"            # or \"openai\" (vLLM, llama.cpp server, OpenAI) or \"llamacpp\"\n\
    base_url = \"http://127.0.0.1:11434\"\nmodel = \"gpt-oss:20b\"\n\
    or set CAPIBARA_LLM__BACKENDS='[{kind=\"openai\", base_url=\"http://127.0.0.1:8000/v1\", model=\"openai/gpt-oss-20b\"}]'";

/// What to tell a user who embeds without an embedding model.
pub const NO_EMBEDDER_HELP: &str = "no embedding model is configured. The default is the local all-MiniLM-L6-v2 \
    (builds with `--features local-embed`, as `make run` does); or use a server:\n\
    [embeddings]\nkind = \"openai\"          # TEI, vLLM, Ollama, OpenAI\nbase_url = \"http://127.0.0.1:8080/v1\"\nmodel = \"bge-m3\"";

/// Every component of a running Capibara, built from one [`Config`]. Cheap to clone.
#[derive(Clone)]
pub struct Capibara {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    llm: Option<Arc<dyn LlmBackend>>,
    embedder: Option<Arc<dyn Embedder>>,
    store: Arc<dyn ConversationStore>,
    turns: Option<ChatTurn>,
    rag: Arc<RagSlot>,
    uploads: UploadStore,
    started: Instant,
}

impl std::fmt::Debug for Capibara {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capibara")
            .field("llm", &self.inner.llm.as_ref().map(|l| l.id().to_owned()))
            .field("embedder", &self.inner.embedder.as_ref().map(|e| e.model_id().to_owned()))
            .finish_non_exhaustive()
    }
}

impl Capibara {
    /// Builds every component the configuration names: the data dir, the database (migrated), the
    /// chat backends, the embedding model and, with an embedding model, retrieval (the vector
    /// store, recovered from the ingestion ledger before this returns). With no backend configured,
    /// the local default model is used (builds with `local-llm`), and default model files are
    /// fetched on first use when `models.auto_pull` allows it.
    pub async fn build(config: Config) -> Result<Self> {
        config.validate()?;
        let config = blocking(move || {
            let mut config = config;
            local_models::resolve(&mut config, &mut LineProgress::log())?;
            Ok(config)
        })
        .await?;
        let data_dir = &config.storage.data_dir;
        tokio::fs::create_dir_all(data_dir)
            .await
            .map_err(|e| Error::unavailable(format!("cannot create data dir {}: {e}", data_dir.display())))?;
        let url = config.storage.effective_database_url();
        let llm_config = config.llm.clone();
        // Loading models reads hundreds of megabytes: both load at once, off the async threads.
        let (store, llm, embedder) = tokio::join!(
            SqlStore::connect(&url, config.storage.max_connections),
            blocking(move || capibara_llm::build_chain(&llm_config)),
            build_embedder(&config.embeddings),
        );
        let (store, embedder) = (store?, embedder?);
        let (rag, unreachable) = match &embedder {
            Some(embedder) => match Rag::build(&config, Arc::clone(embedder), &store).await {
                Ok(rag) => (Some(Arc::new(rag)), None),
                // A vector store on another machine may be down: serve everything else, answer
                // retrieval with 503 and the cause, and keep trying to connect.
                Err(error @ Error::Unavailable(_)) => (None, Some(error)),
                Err(error) => return Err(error),
            },
            None => (None, None),
        };
        let app = Self::assemble(config, llm?, embedder.clone(), Arc::new(store.clone()), rag);
        if let (Some(error), Some(embedder)) = (unreachable, embedder) {
            tracing::warn!(%error, "retrieval is unavailable; retrying every {} s", RAG_RETRY.as_secs());
            app.inner.rag.wait(error.to_string());
            tokio::spawn(retry_rag(Arc::downgrade(&app.inner.rag), app.config().clone(), embedder, store));
        }
        Ok(app)
    }

    /// Assembles a `Capibara` from ready-made components (embedding, tests), without an embedder.
    pub fn with_components(
        config: Config,
        llm: Option<Arc<dyn LlmBackend>>,
        store: Arc<dyn ConversationStore>,
    ) -> Self {
        Self::from_parts(config, llm, None, store)
    }

    /// As [`build`](Self::build) without chat models (for ingestion and other offline work): the
    /// database, the embedding model and retrieval only.
    pub async fn build_without_chat(mut config: Config) -> Result<Self> {
        config.llm.backends.clear();
        config.llm.local_default = false;
        Self::build(config).await
    }

    /// Assembles a `Capibara` from ready-made components, without retrieval.
    pub fn from_parts(
        config: Config,
        llm: Option<Arc<dyn LlmBackend>>,
        embedder: Option<Arc<dyn Embedder>>,
        store: Arc<dyn ConversationStore>,
    ) -> Self {
        Self::assemble(config, llm, embedder, store, None)
    }

    /// Assembles a `Capibara` from ready-made components, retrieval included.
    pub fn assemble(
        config: Config,
        llm: Option<Arc<dyn LlmBackend>>,
        embedder: Option<Arc<dyn Embedder>>,
        store: Arc<dyn ConversationStore>,
        rag: Option<Arc<Rag>>,
    ) -> Self {
        let turns = llm
            .as_ref()
            .map(|llm| ChatTurn::new(Arc::clone(llm), Arc::clone(&store), TurnSettings::from(&config.chat)));
        let uploads = UploadStore::new(&config.storage.data_dir, config.uploads.clone());
        let rag = Arc::new(RagSlot::new(rag));
        Self {
            inner: Arc::new(Inner {
                config,
                llm,
                embedder,
                store,
                turns,
                rag,
                uploads,
                started: Instant::now(),
            }),
        }
    }

    /// The configuration in effect.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The chat backend (or fallback chain); `Unavailable` with set-up help when none is configured.
    pub fn llm(&self) -> Result<&Arc<dyn LlmBackend>> {
        self.inner.llm.as_ref().ok_or_else(|| Error::unavailable(NO_BACKEND_HELP))
    }

    /// Whether a chat backend is configured.
    pub fn has_llm(&self) -> bool {
        self.inner.llm.is_some()
    }

    /// The conversational turn runner; `Unavailable` with set-up help when no backend is configured.
    pub fn turns(&self) -> Result<&ChatTurn> {
        self.inner.turns.as_ref().ok_or_else(|| Error::unavailable(NO_BACKEND_HELP))
    }

    /// The embedding model; `Unavailable` with set-up help when none is configured.
    pub fn embedder(&self) -> Result<&Arc<dyn Embedder>> {
        self.inner.embedder.as_ref().ok_or_else(|| Error::unavailable(NO_EMBEDDER_HELP))
    }

    /// Retrieval (search, ingestion, RAG answers); `Unavailable` with set-up help when there is
    /// no embedding model.
    pub fn rag(&self) -> Result<&Arc<Rag>> {
        self.inner.rag.get()
    }

    /// The conversation store.
    pub fn store(&self) -> &Arc<dyn ConversationStore> {
        &self.inner.store
    }

    /// Where uploads go.
    pub fn uploads(&self) -> &UploadStore {
        &self.inner.uploads
    }

    /// Time since the value was built.
    pub fn uptime(&self) -> std::time::Duration {
        self.inner.started.elapsed()
    }
}

/// How often a server whose vector store was unreachable at start tries again.
const RAG_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// Retrieval once it is ready, or why it is not.
struct RagSlot {
    ready: std::sync::OnceLock<Arc<Rag>>,
    waiting: std::sync::Mutex<Option<String>>,
}

impl RagSlot {
    fn new(rag: Option<Arc<Rag>>) -> Self {
        let ready = std::sync::OnceLock::new();
        if let Some(rag) = rag {
            let _ = ready.set(rag);
        }
        Self { ready, waiting: std::sync::Mutex::new(None) }
    }

    fn get(&self) -> Result<&Arc<Rag>> {
        if let Some(rag) = self.ready.get() {
            return Ok(rag);
        }
        let waiting = self.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        Err(Error::unavailable(match waiting {
            Some(cause) => format!("retrieval is not available yet (retrying): {cause}"),
            None => NO_EMBEDDER_HELP.to_owned(),
        }))
    }

    fn wait(&self, cause: String) {
        *self.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(cause);
    }
}

/// Builds retrieval until it succeeds (or the app is gone).
async fn retry_rag(
    slot: std::sync::Weak<RagSlot>,
    config: Config,
    embedder: Arc<dyn Embedder>,
    store: SqlStore,
) {
    loop {
        tokio::time::sleep(RAG_RETRY).await;
        let Some(live) = slot.upgrade() else { return };
        match Rag::build(&config, Arc::clone(&embedder), &store).await {
            Ok(rag) => {
                let _ = live.ready.set(Arc::new(rag));
                tracing::info!("retrieval is available");
                return;
            }
            Err(error) => live.wait(error.to_string()),
        }
    }
}

/// Runs blocking work (pip, hashing, model loading) on tokio's blocking pool.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::internal(format!("a loading task failed: {e}")))?
}

/// The embedding model `config` names, if any, with its default files installed when missing
/// (and `models.auto_pull` allows it); chat models are neither fetched nor loaded.
pub(crate) async fn embedder_for(config: Config) -> Result<Option<Arc<dyn Embedder>>> {
    config.validate()?;
    let config = blocking(move || {
        let mut config = config;
        config.llm.backends.clear();
        config.llm.local_default = false;
        local_models::resolve(&mut config, &mut LineProgress::stderr())?;
        Ok(config)
    })
    .await?;
    build_embedder(&config.embeddings).await
}

/// The embedding model `[embeddings]` names, if any.
async fn build_embedder(config: &EmbeddingsConfig) -> Result<Option<Arc<dyn Embedder>>> {
    match config {
        EmbeddingsConfig::None => Ok(None),
        EmbeddingsConfig::Openai(remote) => {
            Ok(Some(Arc::new(capibara_llm::embeddings::OpenAiEmbedder::connect(remote.clone()).await?)))
        }
        EmbeddingsConfig::Local(local) => load_local_embedder(local.clone()).await,
    }
}

#[cfg(feature = "local-embed")]
async fn load_local_embedder(
    config: capibara_core::config::LocalEmbeddingsConfig,
) -> Result<Option<Arc<dyn Embedder>>> {
    use capibara_rag::local_embed::{LocalEmbedder, LocalEmbedderOptions};
    let dir = config.path.ok_or_else(|| Error::invalid("embeddings.path is not resolved"))?;
    let mut options = LocalEmbedderOptions::new(dir);
    if let Some(model) = config.model {
        options.model_id = model;
    }
    options.threads = config.threads;
    options.batch_size = config.batch_size;
    options.max_seq_len = config.max_seq_len;
    let embedder =
        blocking(move || LocalEmbedder::load(options).map_err(|e| e.context("embeddings"))).await?;
    Ok(Some(Arc::new(embedder)))
}

#[cfg(not(feature = "local-embed"))]
async fn load_local_embedder(
    _config: capibara_core::config::LocalEmbeddingsConfig,
) -> Result<Option<Arc<dyn Embedder>>> {
    // The default configuration asks for the local embedder; a build without it serves
    // everything else and answers embedding requests with how to get one.
    tracing::warn!("this build has no local embedder (feature `local-embed`): embedding routes answer 503");
    Ok(None)
}
