use std::sync::Arc;
use std::time::Duration;

use capibara_core::Error;
use capibara_core::vector::{Filter, VectorStore};
use serde_json::json;

use super::*;
use crate::retrieval::test_support::{HashingEmbedder, entry, open_index};
use crate::vector::ExactStore;

async fn index_with(delay: Duration, store: Arc<dyn VectorStore>) -> HybridIndex {
    let index = open_index(Arc::new(HashingEmbedder { delay }), store).await;
    index
        .add(vec![
            entry("a", "El capibara es el roedor más grande del mundo", json!({"lang": "es", "year": 2020})),
            entry("b", "La llama vive en los Andes y come hierba", json!({"lang": "es", "year": 2021})),
            entry("c", "The capybara is the largest living rodent", json!({"lang": "en", "year": 2022})),
            entry("d", "Los roedores grandes viven cerca del agua", json!({"lang": "es"})),
        ])
        .await
        .unwrap();
    index
}

async fn index() -> HybridIndex {
    index_with(Duration::ZERO, Arc::new(ExactStore::in_memory())).await
}

fn request(query: &str, k: usize, mode: SearchMode) -> SearchRequest {
    SearchRequest { query: query.into(), k, filter: None, mode }
}

fn ids(outcome: &SearchOutcome) -> Vec<&str> {
    outcome.hits.iter().map(|hit| hit.id.as_str()).collect()
}

#[tokio::test]
async fn every_mode_finds_the_matching_text_with_its_scores() {
    let index = index().await;
    assert_eq!(index.len(), 4);
    for mode in [SearchMode::Lexical, SearchMode::Dense, SearchMode::Hybrid] {
        let outcome = index.search(&request("capibara roedor grande", 2, mode), None).await.unwrap();
        assert_eq!(outcome.hits[0].id, "a", "{mode:?}: {outcome:?}");
        assert!(outcome.hits.len() <= 2);
        assert!(!outcome.partial);
        let top = &outcome.hits[0];
        assert_eq!(top.text, "El capibara es el roedor más grande del mundo");
        assert_eq!(top.metadata["year"], json!(2020));
        assert_eq!(top.lexical_score.is_some(), mode != SearchMode::Dense);
        assert_eq!(top.dense_score.is_some(), mode != SearchMode::Lexical);
    }
}

#[tokio::test]
async fn filters_apply_before_ranking_on_both_sides() {
    let index = index().await;
    let mut search = request("capibara roedor", 3, SearchMode::Hybrid);
    search.filter = Some(Filter::Eq { field: "lang".into(), value: json!("en") });
    let outcome = index.search(&search, None).await.unwrap();
    assert_eq!(ids(&outcome), ["c"]);
    search.filter = Some(Filter::Range { field: "year".into(), gte: Some(2021.0), lte: None });
    search.mode = SearchMode::Lexical;
    let outcome = index.search(&search, None).await.unwrap();
    assert!(outcome.hits.iter().all(|hit| hit.id == "c" || hit.id == "b"), "{outcome:?}");
    search.filter = Some(Filter::Eq { field: "idioma".into(), value: json!("es") });
    for mode in [SearchMode::Lexical, SearchMode::Dense, SearchMode::Hybrid] {
        search.mode = mode;
        let error = index.search(&search, None).await.unwrap_err();
        assert!(error.to_string().contains("unknown filter field 'idioma'"), "{mode:?}: {error}");
    }
}

#[tokio::test]
async fn bad_requests_are_refused() {
    let index = index().await;
    for (query, k) in [("  ", 3), ("capibara", 0), ("capibara", 10_000)] {
        let error = index.search(&request(query, k, SearchMode::Hybrid), None).await.unwrap_err();
        assert_eq!(error.code(), "invalid_input", "{query:?} k={k}: {error}");
    }
    let huge = "palabra ".repeat(2_000);
    let error = index.search(&request(&huge, 3, SearchMode::Hybrid), None).await.unwrap_err();
    assert!(matches!(error, Error::TooLarge(_)), "{error}");
}

#[tokio::test]
async fn replacing_and_removing_keep_both_sides_in_step() {
    let index = index().await;
    index.add(vec![entry("b", "El capibara nada muy bien", json!({"lang": "es"}))]).await.unwrap();
    assert_eq!(index.len(), 4);
    let outcome = index.search(&request("llama Andes", 4, SearchMode::Lexical), None).await.unwrap();
    assert!(outcome.hits.iter().all(|hit| hit.id != "b"), "the old text of b is gone: {outcome:?}");
    assert_eq!(index.remove(&["a".into(), "zzz".into()]).await.unwrap(), 1);
    for mode in [SearchMode::Lexical, SearchMode::Dense, SearchMode::Hybrid] {
        let outcome = index.search(&request("capibara roedor", 4, mode), None).await.unwrap();
        assert!(outcome.hits.iter().all(|hit| hit.id != "a"), "{mode:?}: {outcome:?}");
    }
}

#[tokio::test]
async fn a_budget_cut_returns_the_lexical_ranking_flagged_partial() {
    let store: Arc<dyn VectorStore> = Arc::new(ExactStore::in_memory());
    let fast = index_with(Duration::ZERO, store.clone()).await;
    drop(fast);
    // A second index over the same store with a slow embedder (adding already happened).
    let slow = open_index(Arc::new(HashingEmbedder { delay: Duration::from_millis(300) }), store).await;
    slow.load_lexical([
        entry("a", "El capibara es el roedor más grande del mundo", json!({"lang": "es"})),
        entry("b", "La llama vive en los Andes y come hierba", json!({"lang": "es"})),
    ])
    .unwrap();
    let started = std::time::Instant::now();
    let outcome = slow
        .search(&request("capibara", 2, SearchMode::Hybrid), Some(Duration::from_millis(50)))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_millis(250), "the budget is enforced");
    assert!(outcome.partial);
    assert_eq!(ids(&outcome), ["a"]);
    assert_eq!(outcome.hits[0].dense_score, None);
    let error = slow
        .search(&request("capibara", 2, SearchMode::Dense), Some(Duration::from_millis(50)))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "timeout");
    // Without a budget the dense side is waited for, and store records fill in texts the
    // lexical side does not hold.
    let outcome = slow.search(&request("capybara rodent", 4, SearchMode::Dense), None).await.unwrap();
    assert_eq!(outcome.hits[0].id, "c");
    assert_eq!(outcome.hits[0].text, "The capybara is the largest living rodent");
}
