use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use capibara_core::Result;
use capibara_core::cache::{Cache, MemoryCache};
use capibara_core::embed::Embedder;
use serde_json::json;

use super::*;
use crate::retrieval::test_support::{HashingEmbedder, entry, open_index};
use crate::vector::ExactStore;

/// Counts embedding calls, so tests can tell a cache hit from a search.
struct CountingEmbedder {
    inner: HashingEmbedder,
    calls: AtomicUsize,
}

#[async_trait]
impl Embedder for CountingEmbedder {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }
    fn dimension(&self) -> usize {
        self.inner.dimension()
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.embed(texts).await
    }
}

const CORPUS: [(&str, &str); 6] = [
    ("a", "El capibara es el roedor más grande del mundo y vive en Sudamérica"),
    ("b", "El capibara vive en grupos cerca de ríos y lagunas de Sudamérica"),
    ("c", "Los ríos y lagunas de Sudamérica albergan muchas especies de roedores"),
    ("d", "La llama vive en los Andes y come hierba"),
    ("e", "El volcán Teide está en Tenerife"),
    ("f", "Las lagunas andinas tienen flamencos"),
];

async fn retriever(
    delay: Duration,
    settings: RagSettings,
) -> (Retriever, Arc<CountingEmbedder>, Arc<MemoryCache>) {
    let embedder = Arc::new(CountingEmbedder {
        inner: HashingEmbedder { delay: Duration::ZERO },
        calls: AtomicUsize::new(0),
    });
    let index = open_index(embedder.clone(), Arc::new(ExactStore::in_memory())).await;
    index
        .add(CORPUS.iter().map(|(id, text)| entry(id, text, json!({"topic": "animales"}))).collect())
        .await
        .unwrap();
    let index = if delay.is_zero() {
        index
    } else {
        // The same collection behind a slow embedder.
        let slow = open_index(Arc::new(HashingEmbedder { delay }), Arc::new(ExactStore::in_memory())).await;
        slow.load_lexical(CORPUS.iter().map(|(id, text)| entry(id, text, json!({"topic": "animales"}))))
            .unwrap();
        slow
    };
    let cache = Arc::new(MemoryCache::new(1_000));
    let retriever = Retriever::new(Arc::new(index), cache.clone(), settings).unwrap();
    embedder.calls.store(0, Ordering::SeqCst);
    (retriever, embedder, cache)
}

#[tokio::test]
async fn mini_returns_the_top_five_and_caches_complete_results() {
    let (retriever, embedder, cache) = retriever(Duration::ZERO, RagSettings::default()).await;
    let first = retriever.mini("¿Dónde vive el capibara?", None).await.unwrap();
    assert_eq!(first.depth, RagDepth::Mini);
    assert!(first.hits.len() <= 5 && !first.hits.is_empty());
    assert!(["a", "b"].contains(&first.hits[0].id.as_str()), "{first:?}");
    assert!(!first.cached && !first.partial);
    assert_eq!(embedder.calls.load(Ordering::SeqCst), 1);
    assert_eq!(cache.len(), 1);

    // Same query (spacing and case aside): served from the cache, no embedding.
    let again = retriever.mini("¿dónde  vive el CAPIBARA?", None).await.unwrap();
    assert!(again.cached);
    assert_eq!(again.hits, first.hits);
    assert_eq!(embedder.calls.load(Ordering::SeqCst), 1);

    // Another filter is another entry.
    let filter = capibara_core::vector::Filter::Eq { field: "topic".into(), value: json!("animales") };
    let filtered = retriever.mini("¿Dónde vive el capibara?", Some(&filter)).await.unwrap();
    assert!(!filtered.cached);
    assert_eq!(cache.len(), 2);
}

#[tokio::test]
async fn a_change_to_the_index_makes_cached_results_stale() {
    let (retriever, embedder, _) = retriever(Duration::ZERO, RagSettings::default()).await;
    let before = retriever.mini("capibara", None).await.unwrap();
    let newcomer = entry("g", "El capibara bebé sigue a su madre", json!({"topic": "animales"}));
    retriever.index().add(vec![newcomer]).await.unwrap();
    let after = retriever.mini("capibara", None).await.unwrap();
    assert!(!after.cached, "a new entry changes the answer, so the old one is not served");
    assert!(after.hits.iter().any(|hit| hit.id == "g"), "{after:?}");
    assert_ne!(after.hits, before.hits);
    retriever.index().remove(&["g".to_owned()]).await.unwrap();
    let calls = embedder.calls.load(Ordering::SeqCst);
    let restored = retriever.mini("capibara", None).await.unwrap();
    assert!(restored.cached, "the same contents as before: the first answer is valid again");
    assert_eq!(restored.hits, before.hits);
    assert_eq!(embedder.calls.load(Ordering::SeqCst), calls);
}

#[tokio::test]
async fn a_slow_dense_side_makes_mini_partial_within_its_budget_and_uncached() {
    let (retriever, _, cache) = retriever(Duration::from_millis(400), RagSettings::default()).await;
    let started = std::time::Instant::now();
    let mini = retriever.mini("capibara", None).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "the 50 ms budget holds: {:?}",
        started.elapsed()
    );
    assert!(mini.partial);
    assert!(!mini.hits.is_empty(), "the lexical hits found in time are returned");
    assert!(cache.is_empty(), "partial results are not cached");

    let started = std::time::Instant::now();
    let full = retriever.full("capibara", None).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(350),
        "the 200 ms budget holds: {:?}",
        started.elapsed()
    );
    assert!(full.partial);
    assert_eq!(full.depth, RagDepth::Full);
    assert!(full.hits.iter().any(|hit| hit.id == "a"));
}

#[tokio::test]
async fn full_expands_the_query_with_feedback_words_and_returns_up_to_ten() {
    let (retriever, embedder, _) = retriever(Duration::ZERO, RagSettings::default()).await;
    let full = retriever.full("capibara", None).await.unwrap();
    assert!(!full.partial);
    assert!(full.hits.len() <= 10);
    // Two searches (original and expanded), each embedding its query once.
    assert_eq!(embedder.calls.load(Ordering::SeqCst), 2);
    // "c" shares no word with the query but does with the capibara texts (ríos, lagunas,
    // Sudamérica): the expansion brings it in.
    assert!(full.hits.iter().any(|hit| hit.id == "c"), "{full:?}");
    let expansion = retriever.expansion_terms("capibara", &full.hits[..2]);
    assert!(!expansion.is_empty() && expansion.len() <= 2, "{expansion:?}");
    assert!(expansion.iter().all(|word| word != "capibara"));
}

#[tokio::test]
async fn guided_escalates_only_on_measurable_signals() {
    let (retriever, _, _) = retriever(Duration::ZERO, RagSettings::default()).await;
    let plain = retriever.guided("capibara roedor grande Sudamérica", None).await.unwrap();
    assert_eq!(plain.depth, RagDepth::Mini, "{plain:?}");
    assert!(plain.escalation.is_empty());

    let deep = retriever.guided("Explícame la diferencia entre el capibara y la llama", None).await.unwrap();
    assert_eq!(deep.depth, RagDepth::Full);
    assert!(deep.escalation.iter().any(|r| matches!(r, EscalationReason::DeepKeyword { .. })), "{deep:?}");

    let unknown = retriever.guided("xilófono", None).await.unwrap();
    assert_eq!(unknown.depth, RagDepth::Full);
    assert!(unknown.escalation.contains(&EscalationReason::NoLexicalMatch), "{unknown:?}");

    let long = "capibara ".repeat(20);
    let reasons = retriever.escalation_reasons(&long, &retriever.mini(&long, None).await.unwrap());
    assert!(reasons.contains(&EscalationReason::LongQuery { words: 20 }), "{reasons:?}");
}

#[tokio::test]
async fn settings_and_requests_are_validated() {
    let mut settings = RagSettings::default();
    settings.mini.budget_ms = 0;
    let index = Arc::new(
        open_index(Arc::new(HashingEmbedder { delay: Duration::ZERO }), Arc::new(ExactStore::in_memory()))
            .await,
    );
    let error = Retriever::new(index.clone(), Arc::new(MemoryCache::new(10)), settings).unwrap_err();
    assert!(error.to_string().contains("mini.budget_ms"), "{error}");
    let parsed: RagSettings = serde_json::from_value(json!({"mini": {"top_k": 3}})).unwrap();
    assert_eq!(parsed.mini.top_k, 3);
    assert_eq!(parsed.full, FullRagSettings::default());
    assert!(serde_json::from_value::<RagSettings>(json!({"mini": {"topk": 3}})).is_err());

    let retriever = Retriever::new(index, Arc::new(MemoryCache::new(10)), RagSettings::default()).unwrap();
    assert_eq!(retriever.mini("   ", None).await.unwrap_err().code(), "invalid_input");
    // An empty collection answers nothing, not an error.
    let empty = retriever.guided("capibara", None).await.unwrap();
    assert!(empty.hits.is_empty());
    assert!(empty.escalation.contains(&EscalationReason::FewResults { found: 0 }));
}

#[tokio::test]
async fn a_failing_cache_does_not_fail_retrieval() {
    struct BrokenCache;
    #[async_trait]
    impl Cache for BrokenCache {
        async fn get(&self, _: &str) -> Result<Option<bytes::Bytes>> {
            Err(capibara_core::Error::unavailable("cache down"))
        }
        async fn set(&self, _: &str, _: bytes::Bytes, _: Duration) -> Result<()> {
            Err(capibara_core::Error::unavailable("cache down"))
        }
        async fn delete(&self, _: &str) -> Result<()> {
            Ok(())
        }
    }
    let (working, _, _) = retriever(Duration::ZERO, RagSettings::default()).await;
    let retriever =
        Retriever::new(working.index.clone(), Arc::new(BrokenCache), RagSettings::default()).unwrap();
    let mini = retriever.mini("capibara", None).await.unwrap();
    assert!(!mini.hits.is_empty());
}
