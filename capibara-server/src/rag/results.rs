//! What retrieval returns to a caller, the same whichever face asked: numbered sources, how the
//! retrieval went, ingestion reports and statistics. The HTTP routes serialise these types as
//! they are; the bindings hand the same values to Python and Node.

use capibara_core::vector::Metadata;
use capibara_core::{Error, Result};
use capibara_rag::ingest::{Document, IngestFailure, IngestReport, ids::record_document_id};
use capibara_rag::retrieval::{EscalationReason, RagDepth, SearchHit};
use serde::{Deserialize, Serialize};

use super::{RagMode, RagSearch};

/// Longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 4_000;

/// Most documents ingested in one call.
pub const MAX_DOCUMENTS_PER_CALL: usize = 10_000;

/// One result of a search, numbered as a RAG answer cites it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Source {
    /// Position (1-based); a RAG answer cites sources by this number.
    pub n: usize,
    /// The chunk's id.
    pub id: String,
    /// The chunk's text.
    pub text: String,
    /// The score of the mode's ranking; higher is better.
    pub score: f32,
    /// The BM25 score, when the lexical side found it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lexical_score: Option<f32>,
    /// The inner product with the query, when the dense side found it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dense_score: Option<f32>,
    /// The document's source (file or origin), from its metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The document's title, from its metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Every metadata field of the chunk.
    pub metadata: Metadata,
}

impl Source {
    /// Numbers hits from 1, lifting `source` and `title` out of their metadata.
    pub fn from_hits(hits: Vec<SearchHit>) -> Vec<Self> {
        hits.into_iter()
            .enumerate()
            .map(|(i, hit)| {
                let text_field =
                    |name: &str| hit.metadata.get(name).and_then(|v| v.as_str()).map(str::to_owned);
                Self {
                    n: i + 1,
                    source: text_field("source"),
                    title: text_field("title"),
                    id: hit.id,
                    text: hit.text,
                    score: hit.score,
                    lexical_score: hit.lexical_score,
                    dense_score: hit.dense_score,
                    metadata: hit.metadata,
                }
            })
            .collect()
    }
}

/// How a retrieval went, without its hits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetrievalInfo {
    /// The mode asked for.
    pub mode: RagMode,
    /// For mini, full and guided: the depth that answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub depth: Option<RagDepth>,
    /// A budget ran out: the best results found in time.
    pub partial: bool,
    /// Served from the result cache.
    pub cached: bool,
    /// Why guided search escalated.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub escalation: Vec<EscalationReason>,
    /// Wall time in milliseconds.
    pub took_ms: f64,
}

impl RetrievalInfo {
    /// Splits a search into how it went and its hits.
    pub fn split(search: RagSearch) -> (Self, Vec<SearchHit>) {
        let info = Self {
            mode: search.mode,
            depth: search.depth,
            partial: search.partial,
            cached: search.cached,
            escalation: search.escalation,
            took_ms: search.took_ms,
        };
        (info, search.hits)
    }
}

/// A search's answer: the query as searched, the numbered results and how retrieval went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchResults {
    /// The query, trimmed.
    pub query: String,
    /// How many results there are.
    pub total_results: usize,
    /// Best first.
    pub results: Vec<Source>,
    /// How retrieval went.
    #[serde(flatten)]
    pub retrieval: RetrievalInfo,
}

impl SearchResults {
    /// Numbers a search's hits.
    pub fn new(query: String, search: RagSearch) -> Self {
        let (retrieval, hits) = RetrievalInfo::split(search);
        let results = Source::from_hits(hits);
        Self { query, total_results: results.len(), results, retrieval }
    }
}

/// How to search: the mode, the depth and a metadata filter.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchOptions {
    /// How to search (guided by default).
    pub mode: RagMode,
    /// Results wanted (1 to [`capibara_core::vector::MAX_K`]); 10 for lexical, dense and hybrid
    /// when unset, the configured depth for mini, full and guided.
    pub k: Option<usize>,
    /// Metadata every result must match.
    pub filter: Option<capibara_core::vector::Filter>,
}

/// Checks a query: present, not blank, at most [`MAX_QUERY_CHARS`]; returns it trimmed.
pub fn checked_query(query: Option<String>) -> Result<String> {
    let query = query.unwrap_or_default();
    let trimmed = query.trim();
    if trimmed.is_empty() {
        return Err(Error::invalid("query is required and must not be empty"));
    }
    let chars = trimmed.chars().count();
    if chars > MAX_QUERY_CHARS {
        return Err(Error::TooLarge(format!("query has {chars} characters; the limit is {MAX_QUERY_CHARS}")));
    }
    Ok(trimmed.to_owned())
}

/// A document handed over in memory.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentInput {
    /// Stable id; derived from `source` and the text when missing. A new text under the same id
    /// replaces the earlier version.
    #[serde(default)]
    pub id: Option<String>,
    /// The text.
    pub text: String,
    /// A title, shown with its chunks.
    #[serde(default)]
    pub title: Option<String>,
    /// Where it came from (`api` when missing).
    #[serde(default)]
    pub source: Option<String>,
    /// Fields searches can filter on.
    #[serde(default)]
    pub metadata: Metadata,
}

/// Checks documents handed over in memory (some, at most [`MAX_DOCUMENTS_PER_CALL`], none
/// empty, ids of 1 to 512 bytes) and turns them into ingestible documents.
pub fn checked_documents(documents: Vec<DocumentInput>) -> Result<Vec<Document>> {
    if documents.is_empty() {
        return Err(Error::invalid("documents must hold at least one document"));
    }
    if documents.len() > MAX_DOCUMENTS_PER_CALL {
        return Err(Error::TooLarge(format!(
            "{} documents in one request; the limit is {MAX_DOCUMENTS_PER_CALL}",
            documents.len()
        )));
    }
    documents
        .into_iter()
        .enumerate()
        .map(|(i, doc)| {
            if doc.text.trim().is_empty() {
                return Err(Error::invalid(format!("documents[{i}].text must not be empty")));
            }
            if doc.id.as_deref().is_some_and(|id| id.trim().is_empty() || id.len() > 512) {
                return Err(Error::invalid(format!("documents[{i}].id must be 1 to 512 bytes")));
            }
            let source = doc.source.unwrap_or_else(|| "api".to_owned());
            let id = doc.id.unwrap_or_else(|| record_document_id(&source, &doc.text));
            let mut document = Document::new(source, id, doc.text);
            document.title = doc.title;
            document.metadata = doc.metadata;
            Ok(document)
        })
        .collect()
}

/// What an ingestion did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IngestSummary {
    /// Files read.
    pub files: usize,
    /// Documents found.
    pub documents: usize,
    /// Documents skipped because this version was already indexed.
    pub unchanged_documents: usize,
    /// Chunks embedded and indexed.
    pub chunks_indexed: usize,
    /// Chunks of earlier versions removed.
    pub chunks_removed: usize,
    /// Files that failed, with the reason.
    pub failures: Vec<IngestFailure>,
    /// Wall time in seconds.
    pub seconds: f64,
}

impl From<IngestReport> for IngestSummary {
    fn from(report: IngestReport) -> Self {
        Self {
            files: report.files,
            documents: report.documents,
            unchanged_documents: report.unchanged_documents,
            chunks_indexed: report.chunks_indexed,
            chunks_removed: report.chunks_removed,
            failures: report.failures,
            seconds: report.seconds,
        }
    }
}

impl IngestSummary {
    /// When no file could be read at all: the error the first failure stands for.
    pub fn nothing_read(&self) -> Option<Error> {
        if self.files > 0 {
            return None;
        }
        let failure = self.failures.first()?;
        let message = failure.error.clone();
        Some(match failure.code {
            "too_large" => Error::TooLarge(message),
            "not_found" => Error::NotFound(message),
            "invalid_input" => Error::InvalidInput(message),
            _ => Error::Internal(message),
        })
    }
}

/// What the collection holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetrievalStats {
    /// The collection searched.
    pub collection: String,
    /// Documents in the ledger.
    pub documents: u64,
    /// Documents fully indexed.
    pub indexed_documents: u64,
    /// Chunks in the ledger.
    pub chunks: u64,
    /// Vectors in the store.
    pub vectors: u64,
    /// The embedding model's id.
    pub embedding_model: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_trimmed_and_bounded() {
        assert_eq!(checked_query(Some("  hola ".into())).unwrap(), "hola");
        assert!(matches!(checked_query(None), Err(Error::InvalidInput(_))));
        assert!(matches!(checked_query(Some(" \n".into())), Err(Error::InvalidInput(_))));
        let long = "a".repeat(MAX_QUERY_CHARS + 1);
        assert!(matches!(checked_query(Some(long)), Err(Error::TooLarge(_))));
    }

    #[test]
    fn documents_are_checked_with_their_index() {
        assert!(checked_documents(Vec::new()).is_err());
        let blank = DocumentInput { text: " ".into(), ..DocumentInput::default() };
        let fine = DocumentInput { text: "hola".into(), ..DocumentInput::default() };
        let error = checked_documents(vec![fine.clone(), blank]).unwrap_err();
        assert!(error.to_string().contains("documents[1]"), "{error}");
        let documents = checked_documents(vec![fine]).unwrap();
        assert_eq!(documents[0].source, "api");
    }
}
