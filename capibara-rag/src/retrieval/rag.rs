//! The seed's two retrieval depths and the guided choice between them, over a [`HybridIndex`].
//!
//! - **Mini RAG**: a hybrid search for the top 5 within a real 50 ms budget, its complete results
//!   cached (1,000 entries for 300 s by default) in any [`Cache`] — in memory or Redis.
//! - **Full RAG**: query expansion by pseudo-relevance feedback (factor 2: each variant searches
//!   twice as deep as the answer, and the expansion adds up to as many words as the query had),
//!   both variants within a 200 ms budget, fused, top 10.
//! - **Guided**: mini first; full when measurable signals say mini is not enough (too few hits,
//!   budget exceeded, no lexical match, weak dense evidence, a long query or a "deep" keyword).
//!   The reasons are returned with the result.
//!
//! A budget that runs out returns the best results so far, flagged `partial`; partial results are
//! never cached.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use capibara_core::cache::Cache;
use capibara_core::vector::Filter;
use capibara_core::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use capibara_core::config::{EscalationSettings, FullRagSettings, MiniRagSettings, RagSettings};

use super::hybrid::{HybridIndex, SearchHit, SearchMode, SearchOutcome, SearchRequest};

/// Which depth produced a [`Retrieval`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RagDepth {
    /// Mini RAG.
    Mini,
    /// Full RAG.
    Full,
}

/// A measurable reason guided retrieval escalated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "signal", rename_all = "snake_case")]
pub enum EscalationReason {
    /// Mini found fewer hits than wanted.
    FewResults {
        /// Hits found.
        found: usize,
    },
    /// Mini's budget ran out (its result was partial).
    BudgetExceeded,
    /// No query word matched any text lexically.
    NoLexicalMatch,
    /// The best dense similarity was below the threshold.
    WeakEvidence {
        /// The best dense similarity among mini's hits (none when none had one).
        best_dense_score: Option<f32>,
    },
    /// The query is long.
    LongQuery {
        /// Its word count.
        words: usize,
    },
    /// The query asks for depth.
    DeepKeyword {
        /// The keyword found.
        keyword: String,
    },
}

/// The result of a retrieval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retrieval {
    /// Which depth answered.
    pub depth: RagDepth,
    /// Best first.
    pub hits: Vec<SearchHit>,
    /// A budget ran out: these are the best results found in time.
    pub partial: bool,
    /// Served from the cache.
    pub cached: bool,
    /// Why guided retrieval escalated (empty otherwise).
    pub escalation: Vec<EscalationReason>,
    /// Lexical candidates mini matched (escalation signal).
    pub lexical_matches: usize,
    /// Wall time in milliseconds.
    pub took_ms: f64,
}

/// Mini, full and guided retrieval over one [`HybridIndex`].
pub struct Retriever {
    index: Arc<HybridIndex>,
    cache: Arc<dyn Cache>,
    settings: RagSettings,
}

impl std::fmt::Debug for Retriever {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retriever").field("index", &self.index).field("settings", &self.settings).finish()
    }
}

impl Retriever {
    /// A retriever over `index`, caching mini results in `cache`.
    pub fn new(index: Arc<HybridIndex>, cache: Arc<dyn Cache>, settings: RagSettings) -> Result<Self> {
        settings.validate()?;
        Ok(Self { index, cache, settings })
    }

    /// The index searched.
    pub fn index(&self) -> &Arc<HybridIndex> {
        &self.index
    }

    /// The settings.
    pub fn settings(&self) -> &RagSettings {
        &self.settings
    }

    /// Mini RAG: hybrid top-k within the mini budget, cached when complete.
    pub async fn mini(&self, query: &str, filter: Option<&Filter>) -> Result<Retrieval> {
        let started = Instant::now();
        let settings = &self.settings.mini;
        let key = self.cache_key(query, settings.top_k, filter)?;
        if settings.cache_ttl_secs > 0 {
            match self.cache.get(&key).await {
                Ok(Some(bytes)) => {
                    if let Ok(mut cached) = serde_json::from_slice::<Retrieval>(&bytes) {
                        cached.cached = true;
                        cached.took_ms = elapsed_ms(started);
                        return Ok(cached);
                    }
                }
                Ok(None) => {}
                // A cache that is down slows retrieval; it must not fail it.
                Err(error) => tracing::warn!(%error, "retrieval cache read failed"),
            }
        }
        let request = search(query, settings.top_k, filter);
        let outcome = self.index.search(&request, Some(Duration::from_millis(settings.budget_ms))).await?;
        let retrieval = retrieval(RagDepth::Mini, outcome, started);
        if settings.cache_ttl_secs > 0 && !retrieval.partial {
            let bytes = serde_json::to_vec(&retrieval).map_err(|e| Error::internal(e.to_string()))?;
            if let Err(error) =
                self.cache.set(&key, Bytes::from(bytes), Duration::from_secs(settings.cache_ttl_secs)).await
            {
                tracing::warn!(%error, "retrieval cache write failed");
            }
        }
        Ok(retrieval)
    }

    /// Full RAG: the query and its feedback expansion searched deep within the full budget, fused.
    pub async fn full(&self, query: &str, filter: Option<&Filter>) -> Result<Retrieval> {
        let started = Instant::now();
        let settings = &self.settings.full;
        let budget = Duration::from_millis(settings.budget_ms);
        let depth = ((settings.top_k as f32 * settings.expansion_factor).ceil() as usize).max(settings.top_k);
        let first = self.index.search(&search(query, depth, filter), Some(budget)).await?;
        let lexical_matches = first.lexical_matches;
        let mut partial = first.partial;
        let expansion = self.expansion_terms(query, &first.hits);
        let mut rankings = vec![(first.hits, 1.0)];
        let remaining = budget.saturating_sub(started.elapsed());
        if !expansion.is_empty() && !partial && !remaining.is_zero() {
            let expanded = format!("{query} {}", expansion.join(" "));
            match tokio::time::timeout(remaining, self.index.search(&search(&expanded, depth, filter), None))
                .await
            {
                Ok(outcome) => rankings.push((outcome?.hits, 0.5)),
                Err(_) => partial = true,
            }
        }
        let hits = reciprocal_rank_fusion(rankings, settings.top_k);
        Ok(Retrieval {
            depth: RagDepth::Full,
            hits,
            partial,
            cached: false,
            escalation: Vec::new(),
            lexical_matches,
            took_ms: elapsed_ms(started),
        })
    }

    /// Guided: mini, escalated to full when [`Retriever::escalation_reasons`] finds any reason.
    pub async fn guided(&self, query: &str, filter: Option<&Filter>) -> Result<Retrieval> {
        let started = Instant::now();
        let mini = self.mini(query, filter).await?;
        let reasons = self.escalation_reasons(query, &mini);
        if reasons.is_empty() {
            return Ok(mini);
        }
        let mut full = self.full(query, filter).await?;
        full.escalation = reasons;
        full.took_ms = elapsed_ms(started);
        Ok(full)
    }

    /// The signals that say a mini result is not enough for `query`.
    pub fn escalation_reasons(&self, query: &str, mini: &Retrieval) -> Vec<EscalationReason> {
        let settings = &self.settings.escalation;
        let mut reasons = Vec::new();
        if mini.hits.len() < settings.min_results {
            reasons.push(EscalationReason::FewResults { found: mini.hits.len() });
        }
        if mini.partial {
            reasons.push(EscalationReason::BudgetExceeded);
        }
        if mini.lexical_matches == 0 {
            reasons.push(EscalationReason::NoLexicalMatch);
        }
        let best_dense_score = mini.hits.iter().filter_map(|hit| hit.dense_score).reduce(f32::max);
        if best_dense_score.is_none_or(|score| score < settings.min_dense_score) && !mini.partial {
            reasons.push(EscalationReason::WeakEvidence { best_dense_score });
        }
        let words: Vec<String> =
            query.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(fold).collect();
        if words.len() > settings.max_query_words {
            reasons.push(EscalationReason::LongQuery { words: words.len() });
        }
        if let Some(keyword) = settings.deep_keywords.iter().find(|keyword| words.contains(&fold(keyword))) {
            reasons.push(EscalationReason::DeepKeyword { keyword: keyword.clone() });
        }
        reasons
    }

    /// Words of the best hits that the query lacks, most frequent first (pseudo-relevance feedback).
    fn expansion_terms(&self, query: &str, hits: &[SearchHit]) -> Vec<String> {
        let settings = &self.settings.full;
        let analyzer = self.index.analyzer();
        let query_terms: HashSet<String> = analyzer.terms(query).into_iter().collect();
        let query_words = query.split_whitespace().count();
        let wanted = ((query_words as f32 * (settings.expansion_factor - 1.0)).round() as usize).max(2);
        let mut counts: HashMap<String, (usize, String)> = HashMap::new();
        for hit in hits.iter().take(settings.feedback_hits) {
            for word in hit.text.split(|c: char| !c.is_alphanumeric()).filter(|w| w.chars().count() >= 4) {
                // One analysed term per word: stop words analyse to nothing and are skipped.
                let Some(term) = analyzer.terms(word).into_iter().next() else { continue };
                if query_terms.contains(&term) {
                    continue;
                }
                counts.entry(term).or_insert_with(|| (0, word.to_lowercase())).0 += 1;
            }
        }
        let mut ranked: Vec<(usize, String)> = counts.into_values().collect();
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        ranked.into_iter().take(wanted).map(|(_, word)| word).collect()
    }

    fn cache_key(&self, query: &str, k: usize, filter: Option<&Filter>) -> Result<String> {
        let identity = serde_json::json!({
            "collection": self.index.collection(),
            "embedder": self.index.embedder().model_id(),
            "contents": self.index.fingerprint(),
            "query": query.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase(),
            "k": k,
            "filter": filter,
        });
        let bytes = serde_json::to_vec(&identity).map_err(|e| Error::internal(e.to_string()))?;
        Ok(format!("capibara:rag:mini:{}", hex::encode(Sha256::digest(bytes))))
    }
}

fn search(query: &str, k: usize, filter: Option<&Filter>) -> SearchRequest {
    SearchRequest { query: query.to_owned(), k, filter: filter.cloned(), mode: SearchMode::Hybrid }
}

fn retrieval(depth: RagDepth, outcome: SearchOutcome, started: Instant) -> Retrieval {
    Retrieval {
        depth,
        hits: outcome.hits,
        partial: outcome.partial,
        cached: false,
        escalation: Vec::new(),
        lexical_matches: outcome.lexical_matches,
        took_ms: elapsed_ms(started),
    }
}

fn elapsed_ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e3
}

/// Lowercase without accents, for keyword comparison.
fn fold(word: impl AsRef<str>) -> String {
    word.as_ref()
        .to_lowercase()
        .chars()
        .map(|c| match c {
            'á' | 'à' | 'ä' | 'â' => 'a',
            'é' | 'è' | 'ë' | 'ê' => 'e',
            'í' | 'ì' | 'ï' | 'î' => 'i',
            'ó' | 'ò' | 'ö' | 'ô' => 'o',
            'ú' | 'ù' | 'ü' | 'û' => 'u',
            other => other,
        })
        .collect()
}

/// Weighted reciprocal rank fusion of several hit lists (k = 60); each hit keeps the fused score.
fn reciprocal_rank_fusion(rankings: Vec<(Vec<SearchHit>, f32)>, limit: usize) -> Vec<SearchHit> {
    let mut fused: Vec<SearchHit> = Vec::new();
    let mut slots: HashMap<String, usize> = HashMap::new();
    for (hits, weight) in rankings {
        for (rank, mut hit) in hits.into_iter().enumerate() {
            let score = weight / (60.0 + rank as f32 + 1.0);
            match slots.get(&hit.id) {
                Some(&slot) => fused[slot].score += score,
                None => {
                    slots.insert(hit.id.clone(), fused.len());
                    hit.score = score;
                    fused.push(hit);
                }
            }
        }
    }
    fused.sort_by(|a, b| b.score.total_cmp(&a.score));
    fused.truncate(limit);
    fused
}

#[cfg(test)]
#[path = "rag_tests.rs"]
mod tests;
