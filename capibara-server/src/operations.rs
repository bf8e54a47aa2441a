//! What every face offers, once: chat, embeddings, search, RAG answers, ingestion and statistics,
//! each with its checks, size limits and the configured request timeout. The HTTP handlers and the
//! Python and Node bindings only translate their callers' types to these calls and back.

use std::future::Future;
use std::path::PathBuf;

use capibara_core::chat::{ChatRequest, ChatResponse, Message, SamplingOptions};
use capibara_core::embed::validate_inputs;
use capibara_core::llm::ChatStream;
use capibara_core::{Error, Result};
use capibara_rag::ingest::IngestProgress;

use serde::Deserialize;

use crate::app::Capibara;
use crate::rag::{
    AskOptions, DocumentInput, IngestSummary, RagAnswer, RetrievalStats, SearchOptions, SearchResults,
    checked_documents, checked_query,
};

/// Most paths given to one ingestion call.
pub const MAX_PATHS_PER_CALL: usize = 10_000;

/// How to answer a stateless chat: the model and the sampling options, as the bindings take
/// them (`chat(messages, model=…, max_tokens=…)`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatOptions {
    /// Model to ask; the configured one when unset.
    pub model: Option<String>,
    /// Softmax temperature, 0 – 2.
    pub temperature: Option<f32>,
    /// Nucleus sampling mass, (0, 1].
    pub top_p: Option<f32>,
    /// Keep only the k most likely tokens.
    pub top_k: Option<u32>,
    /// Most tokens to generate.
    pub max_tokens: Option<u32>,
    /// Strings that end generation when produced.
    pub stop: Vec<String>,
    /// Seed for reproducible sampling.
    pub seed: Option<u64>,
    /// Penalty for repeating tokens (1.0 = off).
    pub repeat_penalty: Option<f32>,
    /// Presence penalty, -2 – 2.
    pub presence_penalty: Option<f32>,
    /// Frequency penalty, -2 – 2.
    pub frequency_penalty: Option<f32>,
}

impl ChatOptions {
    /// The request these options ask for over `messages`.
    pub fn request(self, messages: Vec<Message>) -> ChatRequest {
        ChatRequest {
            model: self.model,
            messages,
            options: SamplingOptions {
                temperature: self.temperature,
                top_p: self.top_p,
                top_k: self.top_k,
                max_tokens: self.max_tokens,
                stop: self.stop,
                seed: self.seed,
                repeat_penalty: self.repeat_penalty,
                presence_penalty: self.presence_penalty,
                frequency_penalty: self.frequency_penalty,
            },
            tools: Vec::new(),
        }
    }
}

impl Capibara {
    /// One whole answer from the chat backend (stateless: nothing is stored).
    pub async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        self.check_chat(&request)?;
        let llm = self.llm()?;
        self.within_timeout("the answer", llm.chat(request)).await
    }

    /// A streamed answer (stateless). The stream is returned once the backend has produced its
    /// first event; the backend's own first-token and idle timeouts apply to the rest.
    pub async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream> {
        self.check_chat(&request)?;
        let llm = self.llm()?;
        self.within_timeout("the first token", llm.chat_stream(request)).await
    }

    /// Unit vectors for `texts` (1 to 2,048 non-empty texts of at most 1 MB each).
    pub async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        validate_inputs(texts)?;
        let embedder = self.embedder()?;
        self.within_timeout("embedding", embedder.embed(texts)).await
    }

    /// Searches the retrieval collection.
    pub async fn search(&self, query: &str, options: &SearchOptions) -> Result<SearchResults> {
        let query = checked_query(Some(query.to_owned()))?;
        let rag = self.rag()?;
        let timeout = self.config().server.request_timeout;
        let search = rag.search(&query, options.mode, options.k, options.filter.as_ref(), timeout);
        let found = self.within_timeout("the search", search).await?;
        Ok(SearchResults::new(query, found))
    }

    /// Answers `question` from retrieved sources, returning exactly the sources the model saw.
    pub async fn ask(&self, question: &str, options: AskOptions) -> Result<RagAnswer> {
        crate::rag::answer::ask(self, question, options).await
    }

    /// Ingests files and directories. Unreadable files are reported in the summary; when none
    /// could be read, the first one's error is returned.
    pub async fn ingest_paths(
        &self,
        paths: &[PathBuf],
        progress: &mut dyn IngestProgress,
    ) -> Result<IngestSummary> {
        if paths.is_empty() {
            return Err(Error::invalid("paths must hold at least one file or directory"));
        }
        if paths.len() > MAX_PATHS_PER_CALL {
            return Err(Error::TooLarge(format!(
                "{} paths in one call; the limit is {MAX_PATHS_PER_CALL}",
                paths.len()
            )));
        }
        if let Some(i) = paths.iter().position(|p| p.as_os_str().is_empty()) {
            return Err(Error::invalid(format!("paths[{i}] is empty")));
        }
        let summary = IngestSummary::from(self.rag()?.ingest_paths(paths, progress).await?);
        match summary.nothing_read() {
            Some(error) => Err(error),
            None => Ok(summary),
        }
    }

    /// Ingests documents given in memory (see [`checked_documents`] for the limits).
    pub async fn ingest_documents(&self, documents: Vec<DocumentInput>) -> Result<IngestSummary> {
        let documents = checked_documents(documents)?;
        let rag = std::sync::Arc::clone(self.rag()?);
        // A task of its own: a caller that goes away does not cut an ingestion short.
        let report =
            tokio::spawn(
                async move { rag.ingest_documents(documents, &mut capibara_rag::ingest::Silent).await },
            )
            .await
            .map_err(|e| Error::internal(format!("the ingestion task failed: {e}")))??;
        Ok(IngestSummary::from(report))
    }

    /// What the retrieval collection holds.
    pub async fn retrieval_stats(&self) -> Result<RetrievalStats> {
        let rag = self.rag()?;
        let counts = rag.counts().await?;
        let index = rag.index();
        let vectors = rag.vector_store().count(index.collection()).await?;
        Ok(RetrievalStats {
            collection: index.collection().to_owned(),
            documents: counts.documents,
            indexed_documents: counts.indexed_documents,
            chunks: counts.chunks,
            vectors,
            embedding_model: index.embedder().model_id().to_owned(),
        })
    }

    /// A chat request is well formed and its text within `[server].max_json_bytes` (the limit
    /// an HTTP body has, applied to every face).
    fn check_chat(&self, request: &ChatRequest) -> Result<()> {
        request.validate()?;
        let limit = self.config().server.max_json_bytes;
        let bytes: usize = request
            .messages
            .iter()
            .map(|m| m.content.len() + m.tool_calls.iter().map(|c| c.arguments.len()).sum::<usize>())
            .sum();
        if bytes > limit {
            return Err(Error::TooLarge(format!(
                "the messages hold {bytes} bytes of text; the limit is {limit}"
            )));
        }
        Ok(())
    }

    /// Runs `work`, failing with [`Error::Timeout`] after `[server].request_timeout`.
    async fn within_timeout<T>(&self, what: &str, work: impl Future<Output = Result<T>>) -> Result<T> {
        let timeout = self.config().server.request_timeout;
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| Error::Timeout(format!("{what} took longer than {timeout:?}")))?
    }
}
