//! The shared validation of queries, records, filters and collection names, and `search_many`'s
//! default.

use std::sync::Mutex;

use serde_json::json;

use super::*;

fn query(vector: Vec<f32>, k: usize) -> VectorQuery {
    VectorQuery { vector, k, filter: None }
}

fn eq(field: &str, value: serde_json::Value) -> Filter {
    Filter::Eq { field: field.into(), value }
}

fn message(result: Result<()>) -> String {
    match result {
        Err(Error::InvalidInput(message)) => message,
        other => panic!("expected invalid input, got {other:?}"),
    }
}

#[test]
fn query_k_must_be_between_one_and_max_k() {
    assert!(query(vec![0.0; 3], 1).validate(3).is_ok());
    assert!(query(vec![0.0; 3], MAX_K).validate(3).is_ok());
    assert!(message(query(vec![0.0; 3], 0).validate(3)).contains("1000"));
    assert!(message(query(vec![0.0; 3], MAX_K + 1).validate(3)).contains("MAX_K"));
}

#[test]
fn query_vector_must_have_the_dimension_and_finite_values() {
    assert_eq!(
        message(query(vec![0.0; 2], 5).validate(3)),
        "vector has 2 dimensions, the collection expects 3"
    );
    assert!(message(query(vec![0.0, f32::NAN, 1.0], 5).validate(3)).contains("value 1 is not finite"));
    assert!(query(vec![0.0, f32::INFINITY, 1.0], 5).validate(3).is_err());
}

#[test]
fn query_validation_checks_the_filter() {
    let mut bad = query(vec![1.0], 1);
    bad.filter = Some(Filter::And(vec![]));
    assert!(message(bad.validate(1)).contains("'and' has no filters"));
}

#[test]
fn records_need_an_id_of_bounded_length_and_a_finite_vector() {
    let record = |id: &str, vector: Vec<f32>| VectorRecord {
        id: id.into(),
        vector,
        text: String::new(),
        metadata: Metadata::new(),
    };
    assert!(record("a", vec![1.0, 2.0]).validate(2).is_ok());
    assert!(record(&"x".repeat(MAX_ID_BYTES), vec![1.0, 2.0]).validate(2).is_ok());
    assert_eq!(message(record("", vec![1.0, 2.0]).validate(2)), "record id is empty");
    assert!(message(record(&"x".repeat(MAX_ID_BYTES + 1), vec![1.0]).validate(1)).contains("512"));
    assert_eq!(
        message(record("a", vec![1.0]).validate(2)),
        "record \"a\": vector has 1 dimensions, the collection expects 2"
    );
    assert!(message(record("a", vec![f32::NAN, 1.0]).validate(2)).contains("not finite"));
}

#[test]
fn collection_names_follow_milvus_rules() {
    for good in ["docs", "_private", "Docs_2024", "a", &"a".repeat(MAX_COLLECTION_NAME_CHARS)] {
        assert!(validate_collection_name(good).is_ok(), "{good}");
    }
    for bad in ["", "2docs", "docs-es", "docs.es", "docs es", "señal", "../etc", &"a".repeat(256)] {
        assert!(validate_collection_name(bad).is_err(), "{bad:?} should be rejected");
    }
}

#[test]
fn well_formed_filters_pass() {
    let filter = Filter::And(vec![
        eq("lang", json!("es")),
        Filter::In { field: "source.kind".into(), values: vec![json!(1), json!("pdf"), json!(true)] },
        Filter::Or(vec![
            Filter::Range { field: "year".into(), gte: Some(2000.0), lte: None },
            Filter::Not(Box::new(Filter::Range { field: "year".into(), gte: Some(1.0), lte: Some(1.0) })),
        ]),
    ]);
    assert!(filter.validate().is_ok());
    assert_eq!(filter.fields(), vec!["lang", "source.kind", "year"]);
}

#[test]
fn filter_depth_is_bounded() {
    let mut filter = eq("a", json!(1));
    for _ in 1..MAX_FILTER_DEPTH {
        filter = Filter::Not(Box::new(filter));
    }
    assert!(filter.validate().is_ok());
    let deeper = Filter::And(vec![filter]);
    assert!(message(deeper.validate()).contains("deeper than 16"));
}

#[test]
fn filter_in_lists_between_one_and_max_values() {
    let values = |n: usize| (0..n).map(|i| json!(i)).collect::<Vec<_>>();
    let within = Filter::In { field: "a".into(), values: values(MAX_FILTER_VALUES) };
    assert!(within.validate().is_ok());
    let over = Filter::In { field: "a".into(), values: values(MAX_FILTER_VALUES + 1) };
    assert!(message(over.validate()).contains("1000"));
    assert!(Filter::In { field: "a".into(), values: vec![] }.validate().is_err());
}

#[test]
fn filter_ranges_need_ordered_finite_bounds() {
    let range = |gte, lte| Filter::Range { field: "n".into(), gte, lte };
    assert!(range(Some(1.0), None).validate().is_ok());
    assert!(range(None, Some(1.0)).validate().is_ok());
    assert!(range(Some(1.0), Some(1.0)).validate().is_ok());
    assert!(message(range(None, None).validate()).contains("no bound"));
    assert!(message(range(Some(2.0), Some(1.0)).validate()).contains("above"));
    assert!(range(Some(f64::NAN), None).validate().is_err());
    assert!(range(None, Some(f64::INFINITY)).validate().is_err());
}

#[test]
fn filter_fields_and_values_are_checked() {
    assert!(message(eq("", json!(1)).validate()).contains("empty"));
    assert!(eq("a-b", json!(1)).validate().is_err());
    assert!(eq("a b", json!(1)).validate().is_err());
    assert!(eq(&"a".repeat(256), json!(1)).validate().is_err());
    assert!(eq("a", json!(null)).validate().is_err());
    assert!(eq("a", json!([1])).validate().is_err());
    assert!(eq("a", json!({"b": 1})).validate().is_err());
    assert!(Filter::Or(vec![]).validate().is_err());
}

/// A store that answers `search` with the query's `k` as the only hit's score.
struct Echo {
    calls: Mutex<usize>,
}

#[async_trait]
impl VectorStore for Echo {
    async fn ensure_collection(&self, _: &str, _: usize) -> Result<()> {
        Ok(())
    }
    async fn upsert(&self, _: &str, _: Vec<VectorRecord>) -> Result<()> {
        Ok(())
    }
    async fn search(&self, _: &str, query: &VectorQuery) -> Result<Vec<ScoredRecord>> {
        *self.calls.lock().unwrap() += 1;
        if query.k == 0 {
            return Err(Error::invalid("k"));
        }
        let record =
            VectorRecord { id: "r".into(), vector: vec![], text: String::new(), metadata: Metadata::new() };
        Ok(vec![ScoredRecord { record, score: query.k as f32 }])
    }
    async fn get(&self, _: &str, _: &[String]) -> Result<Vec<VectorRecord>> {
        Ok(vec![])
    }
    async fn delete(&self, _: &str, _: &[String]) -> Result<u64> {
        Ok(0)
    }
    async fn count(&self, _: &str) -> Result<u64> {
        Ok(0)
    }
}

#[tokio::test]
async fn search_many_defaults_to_one_search_per_query_in_order() {
    let store = Arc::new(Echo { calls: Mutex::new(0) });
    let queries = vec![query(vec![], 3), query(vec![], 1), query(vec![], 2)];
    let results = store.search_many("c", &queries).await.unwrap();
    let scores: Vec<f32> = results.iter().map(|hits| hits[0].score).collect();
    assert_eq!(scores, vec![3.0, 1.0, 2.0]);
    assert_eq!(*store.calls.lock().unwrap(), 3);

    let failing = vec![query(vec![], 1), query(vec![], 0)];
    assert!(store.search_many("c", &failing).await.is_err());
}
