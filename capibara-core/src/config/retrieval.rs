//! Retrieval: the vector store, the text language, hybrid fusion, the mini/full retrieval depths,
//! the result cache and chunking. The behaviour lives in `capibara-rag`; this is the data.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The language whose stop words and stemmer the lexical analyzer uses (`capibara_rag::lexical::Analyzer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    /// Spanish: Snowball Spanish stop words and stemmer.
    #[default]
    Spanish,
    /// English: Snowball English stop words and the Snowball English (Porter2) stemmer.
    English,
    /// No language: no stop words, no stemming; only lowercasing, tokenising and folding.
    None,
}

/// How much each side counts; both non-negative and not both zero.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FusionWeights {
    /// Weight of the lexical (BM25) ranking.
    pub lexical: f32,
    /// Weight of the dense (embedding) ranking.
    pub dense: f32,
}

impl Default for FusionWeights {
    /// Chosen on `xquad_es` with the default embedder: the lexical side carries most of the weight.
    fn default() -> Self {
        Self { lexical: 0.8, dense: 0.2 }
    }
}

/// The fusion method, chosen by configuration (`method = "weighted"` or `"rrf"`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fusion {
    /// Weighted reciprocal rank fusion: `Σ weight / (k + rank)`, ranks from 1.
    Rrf {
        /// The rank offset (60 in the original paper); larger values flatten the head of each list.
        #[serde(default = "default_rrf_k")]
        k: f32,
        /// Per-side weights; equal weights give plain RRF.
        #[serde(default = "equal_weights")]
        weights: FusionWeights,
    },
    /// Convex combination of min-max normalised scores; a candidate missing from one list
    /// counts as that list's minimum there.
    Weighted {
        /// Per-side weights (normalised to sum to one).
        #[serde(default)]
        weights: FusionWeights,
    },
}

fn default_rrf_k() -> f32 {
    60.0
}

fn equal_weights() -> FusionWeights {
    FusionWeights { lexical: 1.0, dense: 1.0 }
}

impl Default for Fusion {
    fn default() -> Self {
        Self::Weighted { weights: FusionWeights::default() }
    }
}

impl Fusion {
    /// Plain reciprocal rank fusion (k = 60, equal weights), the usual baseline.
    pub fn plain_rrf() -> Self {
        Self::Rrf { k: default_rrf_k(), weights: equal_weights() }
    }

    /// Checks the parameters: finite, non-negative weights that are not both zero; RRF `k` ≥ 0.
    pub fn validate(&self) -> Result<()> {
        let (Self::Rrf { weights, .. } | Self::Weighted { weights }) = self;
        let FusionWeights { lexical, dense } = *weights;
        if !(lexical.is_finite() && dense.is_finite()) || lexical < 0.0 || dense < 0.0 {
            return Err(Error::invalid(format!(
                "fusion weights must be finite and non-negative, got lexical {lexical}, dense {dense}"
            )));
        }
        if lexical + dense <= 0.0 {
            return Err(Error::invalid("fusion weights must not both be zero"));
        }
        if let Self::Rrf { k, .. } = self
            && !(k.is_finite() && *k >= 0.0)
        {
            return Err(Error::invalid(format!("rrf k must be finite and non-negative, got {k}")));
        }
        Ok(())
    }
}

/// Mini RAG settings (the seed's `mini_rag`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MiniRagSettings {
    /// Hits returned.
    pub top_k: usize,
    /// Time budget in milliseconds.
    pub budget_ms: u64,
    /// Seconds a complete result stays cached (0 = no caching).
    pub cache_ttl_secs: u64,
}

impl Default for MiniRagSettings {
    fn default() -> Self {
        Self { top_k: 5, budget_ms: 50, cache_ttl_secs: 300 }
    }
}

/// Full RAG settings (the seed's `full_rag`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FullRagSettings {
    /// Hits returned.
    pub top_k: usize,
    /// Each variant searches `top_k × expansion_factor` deep; the expansion adds up to
    /// `(expansion_factor − 1) ×` the query's word count (at least 2).
    pub expansion_factor: f32,
    /// Time budget for the whole deep search, in milliseconds.
    pub budget_ms: u64,
    /// Hits whose texts feed the expansion.
    pub feedback_hits: usize,
}

impl Default for FullRagSettings {
    fn default() -> Self {
        Self { top_k: 10, expansion_factor: 2.0, budget_ms: 200, feedback_hits: 3 }
    }
}

/// When guided retrieval escalates from mini to full.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EscalationSettings {
    /// Fewer mini hits than this escalate.
    pub min_results: usize,
    /// A best dense similarity below this escalates (weak semantic evidence).
    pub min_dense_score: f32,
    /// Queries with more words than this escalate.
    pub max_query_words: usize,
    /// Words that ask for depth (compared without accents, lowercase).
    pub deep_keywords: Vec<String>,
}

impl Default for EscalationSettings {
    fn default() -> Self {
        let deep = [
            "compara",
            "comparar",
            "comparacion",
            "diferencia",
            "diferencias",
            "ventajas",
            "desventajas",
            "versus",
            "vs",
            "tutorial",
            "guia",
            "detallado",
            "detallada",
            "explica",
            "explicame",
            "analiza",
            "analizar",
            "investiga",
            "investigar",
            "ejemplos",
            "compare",
            "difference",
            "differences",
            "explain",
            "detailed",
            "analyze",
            "analyse",
            "guide",
        ];
        Self {
            min_results: 2,
            min_dense_score: 0.3,
            max_query_words: 16,
            deep_keywords: deep.iter().map(|word| (*word).to_owned()).collect(),
        }
    }
}

/// All retrieval-depth settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RagSettings {
    /// Mini RAG.
    pub mini: MiniRagSettings,
    /// Full RAG.
    pub full: FullRagSettings,
    /// Guided escalation.
    pub escalation: EscalationSettings,
}

impl RagSettings {
    /// Checks ranges: top-k 1..=100, budgets 1 ms..=60 s, expansion factor 1..=8.
    pub fn validate(&self) -> Result<()> {
        let checks = [
            ((1..=100).contains(&self.mini.top_k), "mini.top_k must be 1..=100"),
            ((1..=100).contains(&self.full.top_k), "full.top_k must be 1..=100"),
            ((1..=60_000).contains(&self.mini.budget_ms), "mini.budget_ms must be 1..=60000"),
            ((1..=60_000).contains(&self.full.budget_ms), "full.budget_ms must be 1..=60000"),
            ((1.0..=8.0).contains(&self.full.expansion_factor), "full.expansion_factor must be 1..=8"),
            ((1..=20).contains(&self.full.feedback_hits), "full.feedback_hits must be 1..=20"),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, message)) => Err(Error::invalid(format!("rag settings: {message}"))),
            None => Ok(()),
        }
    }
}

/// Where retrieval's vectors live, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum VectorStoreConfig {
    /// The embedded exact index (inner product), persisted under `path`
    /// (default: `<storage.data_dir>/vectors`).
    Exact {
        /// The store's directory.
        #[serde(default)]
        path: Option<PathBuf>,
    },
    /// The embedded HNSW index (approximate, for large collections; the server needs the `hnsw`
    /// feature), persisted under `path` (default: `<storage.data_dir>/vectors-hnsw`).
    Hnsw {
        /// The store's directory.
        #[serde(default)]
        path: Option<PathBuf>,
        /// Links per node (`M`), 2 to 255.
        #[serde(default = "default_hnsw_m")]
        m: usize,
        /// Candidates weighed while building (`ef_construction`), 1 to 4,096.
        #[serde(default = "default_hnsw_ef_construction")]
        ef_construction: usize,
        /// Candidates kept while searching (`ef`), 1 to 4,096.
        #[serde(default = "default_hnsw_ef_search")]
        ef_search: usize,
    },
    /// The embedded store with a FAISS index (the server needs the `faiss` feature), persisted
    /// under `path` (default: `<storage.data_dir>/vectors-faiss`).
    Faiss {
        /// The store's directory.
        #[serde(default)]
        path: Option<PathBuf>,
        /// `flat` (`IndexFlatIP`, exact) or `hnsw` (`IndexHNSWFlat`).
        #[serde(default)]
        index: FaissIndexKind,
        /// HNSW links per node (`M`), 2 to 255.
        #[serde(default = "default_hnsw_m")]
        m: usize,
        /// HNSW candidates weighed while building, 1 to 4,096.
        #[serde(default = "default_hnsw_ef_construction")]
        ef_construction: usize,
        /// HNSW candidates kept while searching, 1 to 4,096.
        #[serde(default = "default_hnsw_ef_search")]
        ef_search: usize,
    },
    /// A Milvus server (the server needs the `milvus` feature). The other keys of the section are
    /// the settings of `capibara_rag::vector::MilvusConfig` (`url`, `index`, `consistency`,
    /// `timeout`, `ready_timeout`), checked when the store is opened.
    Milvus(serde_json::Map<String, serde_json::Value>),
}

/// The FAISS index of `kind = "faiss"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaissIndexKind {
    /// `IndexFlatIP`: exact inner product.
    #[default]
    Flat,
    /// `IndexHNSWFlat` with the inner-product metric.
    Hnsw,
}

fn default_hnsw_m() -> usize {
    16
}

fn default_hnsw_ef_construction() -> usize {
    200
}

fn default_hnsw_ef_search() -> usize {
    64
}

impl VectorStoreConfig {
    fn validate(&self) -> Result<()> {
        match self {
            Self::Exact { .. } | Self::Milvus(_) => Ok(()),
            Self::Hnsw { m, ef_construction, ef_search, .. }
            | Self::Faiss { m, ef_construction, ef_search, .. } => {
                if !(2..=255).contains(m) {
                    return Err(Error::invalid(format!("retrieval.store.m must be 2..=255, got {m}")));
                }
                for (name, value) in [("ef_construction", ef_construction), ("ef_search", ef_search)] {
                    if !(1..=4_096).contains(value) {
                        return Err(Error::invalid(format!(
                            "retrieval.store.{name} must be 1..=4096, got {value}"
                        )));
                    }
                }
                Ok(())
            }
        }
    }
}

/// How documents are split and which files are accepted (`[retrieval.ingest]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSettings {
    /// Most (estimated) tokens per chunk.
    pub chunk_tokens: usize,
    /// Tokens repeated between consecutive chunks of a document.
    pub overlap_tokens: usize,
    /// Largest file accepted, in bytes (checked before reading; also the HTTP upload limit).
    pub max_file_bytes: u64,
    /// Most files in one HTTP ingestion request.
    pub max_files_per_request: usize,
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self {
            chunk_tokens: 256,
            overlap_tokens: 32,
            max_file_bytes: 20 * 1024 * 1024,
            max_files_per_request: 64,
        }
    }
}

impl IngestSettings {
    fn validate(&self) -> Result<()> {
        if self.chunk_tokens < 16 || self.chunk_tokens > 8_192 {
            return Err(Error::invalid(format!(
                "retrieval.ingest.chunk_tokens must be 16..=8192, got {}",
                self.chunk_tokens
            )));
        }
        if self.overlap_tokens * 2 >= self.chunk_tokens {
            return Err(Error::invalid(
                "retrieval.ingest.overlap_tokens must be less than half of chunk_tokens",
            ));
        }
        if self.max_file_bytes == 0 || self.max_file_bytes > 1 << 30 {
            return Err(Error::invalid("retrieval.ingest.max_file_bytes must be 1..=1073741824"));
        }
        if self.max_files_per_request == 0 || self.max_files_per_request > 10_000 {
            return Err(Error::invalid("retrieval.ingest.max_files_per_request must be 1..=10000"));
        }
        Ok(())
    }
}

impl Default for VectorStoreConfig {
    fn default() -> Self {
        Self::Exact { path: None }
    }
}

/// Where retrieval results are cached, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum CacheConfig {
    /// In process, at most `capacity` entries, least recently used evicted first.
    Memory {
        /// Entries kept (the seed's 1,000 by default).
        #[serde(default = "default_cache_capacity")]
        capacity: usize,
    },
    /// A Redis server shared by every process (`redis://host:port/db`).
    Redis {
        /// The server's URL.
        url: String,
    },
}

fn default_cache_capacity() -> usize {
    1_000
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self::Memory { capacity: default_cache_capacity() }
    }
}

/// The `[retrieval]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrievalConfig {
    /// The collection documents are ingested into and searched in.
    pub collection: String,
    /// Language of the lexical analysis (stop words, stemming).
    pub language: Language,
    /// The vector store.
    pub store: VectorStoreConfig,
    /// How lexical and dense rankings are fused.
    pub fusion: Fusion,
    /// Mini and full retrieval and the escalation between them.
    pub rag: RagSettings,
    /// The result cache of mini retrieval.
    pub cache: CacheConfig,
    /// Chunking and file limits of ingestion.
    pub ingest: IngestSettings,
}

impl Default for RetrievalConfig {
    fn default() -> Self {
        Self {
            collection: "capibara6_vectors".to_owned(),
            language: Language::default(),
            store: VectorStoreConfig::default(),
            fusion: Fusion::default(),
            rag: RagSettings::default(),
            cache: CacheConfig::default(),
            ingest: IngestSettings::default(),
        }
    }
}

impl RetrievalConfig {
    /// Checks the collection name, the fusion, the depths and the cache.
    pub fn validate(&self) -> Result<()> {
        crate::vector::validate_collection_name(&self.collection)
            .map_err(|e| Error::invalid(format!("retrieval.collection: {e}")))?;
        self.fusion.validate()?;
        self.rag.validate()?;
        self.store.validate()?;
        self.ingest.validate()?;
        match &self.cache {
            CacheConfig::Memory { capacity } if *capacity == 0 || *capacity > 10_000_000 => {
                Err(Error::invalid("retrieval.cache.capacity must be 1..=10000000"))
            }
            CacheConfig::Redis { url } if !(url.starts_with("redis://") || url.starts_with("rediss://")) => {
                Err(Error::invalid(format!(
                    "retrieval.cache.url must start with redis:// or rediss://, got {url:?}"
                )))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_seeds_and_sections_parse() {
        let config = RetrievalConfig::default();
        config.validate().unwrap();
        assert_eq!(config.collection, "capibara6_vectors");
        assert_eq!(
            (config.rag.mini.top_k, config.rag.mini.budget_ms, config.rag.mini.cache_ttl_secs),
            (5, 50, 300)
        );
        assert_eq!((config.rag.full.top_k, config.rag.full.budget_ms), (10, 200));
        assert_eq!(config.cache, CacheConfig::Memory { capacity: 1_000 });
        let parsed: RetrievalConfig = serde_json::from_value(serde_json::json!({
            "language": "english",
            "fusion": {"method": "rrf"},
            "cache": {"kind": "redis", "url": "redis://127.0.0.1:6379/0"},
            "rag": {"mini": {"top_k": 3}}
        }))
        .unwrap();
        parsed.validate().unwrap();
        assert_eq!(parsed.language, Language::English);
        assert_eq!(parsed.fusion, Fusion::plain_rrf());
        assert_eq!(parsed.rag.mini.top_k, 3);
        assert_eq!(parsed.rag.mini.budget_ms, 50);
    }

    #[test]
    fn bad_values_are_refused_with_the_key() {
        let mut config = RetrievalConfig { collection: "9 bad".into(), ..RetrievalConfig::default() };
        assert!(config.validate().unwrap_err().to_string().contains("retrieval.collection"));
        config.collection = "ok".into();
        config.cache = CacheConfig::Redis { url: "http://x".into() };
        assert!(config.validate().unwrap_err().to_string().contains("redis://"));
        config.cache = CacheConfig::Memory { capacity: 0 };
        assert!(config.validate().unwrap_err().to_string().contains("capacity"));
        assert!(serde_json::from_value::<RetrievalConfig>(serde_json::json!({"colection": "x"})).is_err());
        assert!(
            serde_json::from_value::<RetrievalConfig>(serde_json::json!({"store": {"kind": "pinecone"}}))
                .is_err()
        );
    }
}
