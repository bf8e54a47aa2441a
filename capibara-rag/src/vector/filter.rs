//! Evaluating a [`Filter`] against records' metadata, with the semantics documented on
//! [`Filter`], and refusing filters that name fields no record of the collection has.

use capibara_core::vector::{Filter, Metadata};
use capibara_core::{Error, Result};
use serde_json::Value;

use super::collection::Collection;

/// Most known field names listed in an "unknown filter field" error.
const LISTED_FIELDS: usize = 20;

/// Errors unless every field `filter` names is carried by at least one record of `collection`:
/// a misspelt field would otherwise silently match nothing (or, under `Not`, everything).
pub(crate) fn check_fields(filter: &Filter, collection: &Collection, name: &str) -> Result<()> {
    let Some(unknown) = filter.fields().into_iter().find(|field| !collection.has_field(field)) else {
        return Ok(());
    };
    let mut known: Vec<&str> = collection.fields().take(LISTED_FIELDS + 1).collect();
    let more = if known.len() > LISTED_FIELDS { ", …" } else { "" };
    known.truncate(LISTED_FIELDS);
    Err(Error::invalid(format!(
        "unknown filter field '{unknown}' in collection '{name}' (known: {}{more})",
        known.join(", ")
    )))
}

/// The slots whose metadata matches `filter`, ascending.
pub(crate) fn select(filter: &Filter, metadata: &[Metadata]) -> Vec<usize> {
    metadata.iter().enumerate().filter(|(_, m)| matches(filter, m)).map(|(slot, _)| slot).collect()
}

/// Whether `metadata` passes `filter`.
pub(crate) fn matches(filter: &Filter, metadata: &Metadata) -> bool {
    match filter {
        Filter::Eq { field, value } => metadata.get(field).is_some_and(|v| scalar_eq(v, value)),
        Filter::In { field, values } => {
            metadata.get(field).is_some_and(|v| values.iter().any(|value| scalar_eq(v, value)))
        }
        Filter::Range { field, gte, lte } => metadata
            .get(field)
            .and_then(Value::as_f64)
            .is_some_and(|v| gte.is_none_or(|low| v >= low) && lte.is_none_or(|high| v <= high)),
        Filter::And(filters) => filters.iter().all(|f| matches(f, metadata)),
        Filter::Or(filters) => filters.iter().any(|f| matches(f, metadata)),
        Filter::Not(filter) => !matches(filter, metadata),
    }
}

/// Equality of scalars, numbers by value (`1 == 1.0`, and integers exactly beyond 2^53).
fn scalar_eq(stored: &Value, wanted: &Value) -> bool {
    match (stored, wanted) {
        (Value::Number(a), Value::Number(b)) => {
            if let (Some(a), Some(b)) = (a.as_i64(), b.as_i64()) {
                a == b
            } else if let (Some(a), Some(b)) = (a.as_u64(), b.as_u64()) {
                a == b
            } else {
                a.as_f64().zip(b.as_f64()).is_some_and(|(a, b)| a == b)
            }
        }
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use capibara_core::vector::VectorRecord;
    use serde_json::json;

    use super::*;

    fn meta(value: Value) -> Metadata {
        let Value::Object(map) = value else { panic!("metadata is an object") };
        map
    }

    fn eq(field: &str, value: Value) -> Filter {
        Filter::Eq { field: field.into(), value }
    }

    fn range(field: &str, gte: Option<f64>, lte: Option<f64>) -> Filter {
        Filter::Range { field: field.into(), gte, lte }
    }

    #[test]
    fn eq_compares_scalars_and_numbers_by_value() {
        let m = meta(
            json!({"lang": "es", "year": 2020, "score": 0.5, "ok": true, "tags": ["es"], "big": u64::MAX}),
        );
        assert!(matches(&eq("lang", json!("es")), &m));
        assert!(!matches(&eq("lang", json!("en")), &m));
        assert!(matches(&eq("year", json!(2020.0)), &m));
        assert!(matches(&eq("score", json!(0.5)), &m));
        assert!(matches(&eq("ok", json!(true)), &m));
        assert!(!matches(&eq("ok", json!("true")), &m), "no coercion between types");
        assert!(!matches(&eq("year", json!("2020")), &m));
        assert!(!matches(&eq("tags", json!("es")), &m), "arrays are not scalars");
        assert!(matches(&eq("big", json!(u64::MAX)), &m));
        assert!(!matches(&eq("big", json!(u64::MAX - 1)), &m), "large integers compare exactly");
        assert!(!matches(&eq("missing", json!(1)), &m));
    }

    #[test]
    fn in_range_and_combinators() {
        let m = meta(json!({"lang": "es", "year": 2020, "title": "x"}));
        let is_in =
            |values: Value| Filter::In { field: "lang".into(), values: values.as_array().cloned().unwrap() };
        assert!(matches(&is_in(json!(["en", "es"])), &m));
        assert!(!matches(&is_in(json!(["en", "fr"])), &m));
        assert!(matches(&range("year", Some(2020.0), None), &m), "bounds are inclusive");
        assert!(matches(&range("year", None, Some(2020.0)), &m));
        assert!(!matches(&range("year", Some(2020.5), Some(2030.0)), &m));
        assert!(!matches(&range("title", Some(0.0), None), &m), "strings are outside every range");
        assert!(!matches(&range("missing", Some(0.0), None), &m));
        let both = Filter::And(vec![eq("lang", json!("es")), range("year", Some(2000.0), None)]);
        assert!(matches(&both, &m));
        let either = Filter::Or(vec![eq("lang", json!("en")), eq("year", json!(2020))]);
        assert!(matches(&either, &m));
        assert!(!matches(&Filter::Not(Box::new(either)), &m));
        assert!(matches(&Filter::Not(Box::new(eq("missing", json!(1)))), &m), "not matches a missing field");
    }

    #[test]
    fn select_returns_matching_slots_in_order() {
        let metadata: Vec<Metadata> = (0..10).map(|i| meta(json!({ "n": i }))).collect();
        let odd_and_small = Filter::And(vec![
            Filter::In { field: "n".into(), values: vec![json!(1), json!(3), json!(5), json!(7)] },
            range("n", None, Some(5.0)),
        ]);
        assert_eq!(select(&odd_and_small, &metadata), vec![1, 3, 5]);
    }

    #[test]
    fn unknown_fields_are_named_with_the_known_ones() {
        let mut collection = Collection::new(1);
        for (id, metadata) in [("a", json!({"lang": "es"})), ("b", json!({"year": 1}))] {
            let record = VectorRecord {
                id: id.into(),
                vector: vec![1.0],
                text: String::new(),
                metadata: meta(metadata),
            };
            collection.upsert(record);
        }
        assert!(check_fields(&eq("lang", json!("es")), &collection, "docs").is_ok());
        let nested = Filter::Not(Box::new(Filter::Or(vec![eq("year", json!(1)), eq("lnag", json!("es"))])));
        let error = check_fields(&nested, &collection, "docs").unwrap_err();
        assert_eq!(
            error,
            Error::invalid("unknown filter field 'lnag' in collection 'docs' (known: lang, year)")
        );
    }
}
