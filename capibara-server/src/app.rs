//! The composition root: configuration in, one [`Capibara`] value out, holding every component.
//!
//! Every face (the HTTP server, the CLI, the Python and Node bindings) builds the same value, so a
//! request runs the same code path whichever way it came in.

use std::sync::Arc;
use std::time::Instant;

use capibara_core::config::Config;
use capibara_core::llm::LlmBackend;
use capibara_core::store::ConversationStore;
use capibara_core::turn::{ChatTurn, TurnSettings};
use capibara_core::{Error, Result};

use crate::store::SqlStore;
use crate::uploads::UploadStore;

/// What to tell a user who chats before configuring a model.
pub const NO_BACKEND_HELP: &str = "no chat model is configured. Add one to capibara.toml, e.g.\n\
    [[llm.backends]]\nkind = \"ollama\"            # or \"openai\" (vLLM, llama.cpp server, OpenAI) or \"llamacpp\"\n\
    base_url = \"http://127.0.0.1:11434\"\nmodel = \"gpt-oss:20b\"\n\
    or set CAPIBARA_LLM__BACKENDS='[{kind=\"openai\", base_url=\"http://127.0.0.1:8000/v1\", model=\"openai/gpt-oss-20b\"}]'";

/// Every component of a running Capibara, built from one [`Config`]. Cheap to clone.
#[derive(Clone)]
pub struct Capibara {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    llm: Option<Arc<dyn LlmBackend>>,
    store: Arc<dyn ConversationStore>,
    turns: Option<ChatTurn>,
    uploads: UploadStore,
    started: Instant,
}

impl std::fmt::Debug for Capibara {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capibara")
            .field("llm", &self.inner.llm.as_ref().map(|l| l.id().to_owned()))
            .finish_non_exhaustive()
    }
}

impl Capibara {
    /// Builds every component the configuration names: the data dir, the database (migrated), the
    /// chat backends.
    pub async fn build(config: Config) -> Result<Self> {
        config.validate()?;
        let data_dir = &config.storage.data_dir;
        tokio::fs::create_dir_all(data_dir)
            .await
            .map_err(|e| Error::unavailable(format!("cannot create data dir {}: {e}", data_dir.display())))?;
        let url = config.storage.effective_database_url();
        let store = SqlStore::connect(&url, config.storage.max_connections).await?;
        let llm = capibara_llm::build_chain(&config.llm)?;
        Ok(Self::with_components(config, llm, Arc::new(store)))
    }

    /// Assembles a `Capibara` from ready-made components (embedding, tests).
    pub fn with_components(
        config: Config,
        llm: Option<Arc<dyn LlmBackend>>,
        store: Arc<dyn ConversationStore>,
    ) -> Self {
        let turns = llm
            .as_ref()
            .map(|llm| ChatTurn::new(Arc::clone(llm), Arc::clone(&store), TurnSettings::from(&config.chat)));
        let uploads = UploadStore::new(&config.storage.data_dir, config.uploads.clone());
        Self { inner: Arc::new(Inner { config, llm, store, turns, uploads, started: Instant::now() }) }
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
