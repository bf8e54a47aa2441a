//! [`Filter`]s as Milvus boolean expressions over the `metadata` JSON field, and the literal
//! `id in [...]` lists that get and delete send.
//!
//! Nothing a caller wrote reaches an expression as code: field names are checked by
//! [`Filter::validate`] to be letters, digits, `_` and `.` and are then quoted; every string is
//! written as a double-quoted literal in which `"` and `\` are escaped and every character outside
//! printable ASCII is a `\u`/`\U` escape, so the expression is plain ASCII and a value can never
//! close its literal. What Milvus cannot compare exactly is refused instead of approximated:
//! integers beyond ±(2^63 − 1).
//!
//! How each filter reads, measured against Milvus 2.3.5 (the same semantics as the embedded
//! stores): `metadata["f"] == v` is false for records without `f` or with an array, an object or
//! another type there, numbers compare by value (`2010 == 2010.0`), and `not (…)` is true for
//! records without the field. A list mixing types in one `in` makes the server fail, so `In`
//! becomes one `in` per type (strings, integers, other numbers, booleans) joined by `or`.

use std::fmt::Write;

use capibara_core::vector::Filter;
use capibara_core::{Error, Result};
use serde_json::{Number, Value};

/// The longest expression sent (1 MiB); a longer filter is refused.
const MAX_EXPR_BYTES: usize = 1 << 20;

/// The record id field, the primary key.
pub(super) const ID_FIELD: &str = "id";
/// The JSON field holding a record's metadata.
pub(super) const METADATA_FIELD: &str = "metadata";

/// The expression selecting what `filter` (already validated) selects.
pub(super) fn filter_expr(filter: &Filter) -> Result<String> {
    let mut out = String::new();
    push_filter(&mut out, filter)?;
    if out.len() > MAX_EXPR_BYTES {
        return Err(Error::invalid(format!(
            "the filter is {} bytes as a Milvus expression, the limit is {MAX_EXPR_BYTES}",
            out.len()
        )));
    }
    Ok(out)
}

/// `id in ["a", "b"]`, with every id a safely quoted literal.
pub(super) fn ids_expr<'a>(ids: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = format!("{ID_FIELD} in [");
    for (i, id) in ids.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        push_string(&mut out, id);
    }
    out.push(']');
    out
}

/// `exists metadata["field"]`: records carrying `field`, whatever its value.
pub(super) fn exists_expr(field: &str) -> String {
    let mut out = String::from("exists ");
    push_field(&mut out, field);
    out
}

fn push_filter(out: &mut String, filter: &Filter) -> Result<()> {
    match filter {
        Filter::Eq { field, value } => push_comparison(out, field, "==", value)?,
        Filter::In { field, values } => push_in(out, field, values)?,
        Filter::Range { field, gte, lte } => {
            let bounds: Vec<(&str, f64)> =
                [(">=", *gte), ("<=", *lte)].into_iter().filter_map(|(op, b)| b.map(|b| (op, b))).collect();
            push_joined(out, "and", &bounds, |out, (op, bound)| {
                push_field(out, field);
                let _ = write!(out, " {op} ");
                push_float(out, *bound);
                Ok(())
            })?;
        }
        Filter::And(filters) => push_joined(out, "and", filters, push_filter)?,
        Filter::Or(filters) => push_joined(out, "or", filters, push_filter)?,
        Filter::Not(filter) => {
            out.push_str("not (");
            push_filter(out, filter)?;
            out.push(')');
        }
    }
    Ok(())
}

/// `items` written by `push` and joined by `op`, in parentheses when more than one.
fn push_joined<T>(
    out: &mut String,
    op: &str,
    items: &[T],
    push: impl Fn(&mut String, &T) -> Result<()>,
) -> Result<()> {
    let grouped = items.len() > 1;
    if grouped {
        out.push('(');
    }
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            let _ = write!(out, " {op} ");
        }
        push(out, item)?;
    }
    if grouped {
        out.push(')');
    }
    Ok(())
}

fn push_comparison(out: &mut String, field: &str, op: &str, value: &Value) -> Result<()> {
    push_field(out, field);
    let _ = write!(out, " {op} ");
    push_scalar(out, field, value)
}

/// The kinds of scalar one `in` list may hold (the server refuses mixed lists).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Integer,
    Float,
    Bool,
}

fn kind(value: &Value) -> Kind {
    match value {
        Value::String(_) => Kind::String,
        Value::Bool(_) => Kind::Bool,
        Value::Number(n) if n.is_i64() || n.is_u64() => Kind::Integer,
        _ => Kind::Float,
    }
}

fn push_in(out: &mut String, field: &str, values: &[Value]) -> Result<()> {
    let groups: Vec<Vec<&Value>> = [Kind::String, Kind::Integer, Kind::Float, Kind::Bool]
        .into_iter()
        .map(|k| values.iter().filter(|v| kind(v) == k).collect::<Vec<_>>())
        .filter(|group| !group.is_empty())
        .collect();
    push_joined(out, "or", &groups, |out, group| {
        push_field(out, field);
        out.push_str(" in [");
        for (i, value) in group.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            push_scalar(out, field, value)?;
        }
        out.push(']');
        Ok(())
    })
}

fn push_scalar(out: &mut String, field: &str, value: &Value) -> Result<()> {
    match value {
        Value::String(s) => push_string(out, s),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => push_number(out, field, n)?,
        other => {
            return Err(Error::invalid(format!(
                "filter on '{field}' compares with {other}; only strings, numbers and booleans can be compared"
            )));
        }
    }
    Ok(())
}

fn push_number(out: &mut String, field: &str, n: &Number) -> Result<()> {
    // The server reads `-9223372036854775808` as the negation of an out-of-range literal.
    if let Some(i) = n.as_i64().filter(|i| *i != i64::MIN) {
        let _ = write!(out, "{i}");
    } else if n.is_u64() || n.is_i64() {
        return Err(Error::invalid(format!(
            "filter on '{field}' compares with {n}, beyond the signed 64-bit integers Milvus compares"
        )));
    } else if let Some(f) = n.as_f64() {
        push_float(out, f);
    }
    Ok(())
}

/// A float literal the server reads back as the same `f64` (`2050.0`, `1e-7`, `-2.5`).
fn push_float(out: &mut String, value: f64) {
    let _ = write!(out, "{value:?}");
}

fn push_field(out: &mut String, field: &str) {
    out.push_str(METADATA_FIELD);
    out.push('[');
    push_string(out, field);
    out.push(']');
}

/// A double-quoted string literal of plain ASCII: `"` and `\` escaped, everything outside
/// printable ASCII as `\uXXXX` or `\UXXXXXXXX` (the server decodes these as Go string escapes).
fn push_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            c if u32::from(c) <= 0xFFFF => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => {
                let _ = write!(out, "\\U{:08x}", u32::from(c));
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn eq(field: &str, value: Value) -> Filter {
        Filter::Eq { field: field.into(), value }
    }

    #[test]
    fn strings_cannot_close_their_literal() {
        let expr = filter_expr(&eq("lang", json!("x\" or id != \""))).unwrap();
        assert_eq!(expr, r#"metadata["lang"] == "x\" or id != \"""#);
        let expr = filter_expr(&eq("t", json!("a\\\" or true or \"\\"))).unwrap();
        assert_eq!(expr, r#"metadata["t"] == "a\\\" or true or \"\\""#);
        let expr = filter_expr(&eq("t", json!("ñ\n🦫\u{0}'"))).unwrap();
        assert_eq!(expr, r#"metadata["t"] == "\u00f1\u000a\U0001f9ab\u0000'""#);
        assert!(expr.is_ascii());
    }

    #[test]
    fn scalars_and_combinators() {
        let filter = Filter::And(vec![
            eq("year", json!(2010)),
            eq("weight", json!(2.5)),
            eq("ok", json!(false)),
            Filter::Not(Box::new(Filter::Or(vec![eq("a.b", json!(-3)), eq("x", json!(1e-7))]))),
            Filter::Range { field: "n".into(), gte: Some(-2.5), lte: None },
            Filter::Range { field: "n".into(), gte: Some(1.0), lte: Some(2050.0) },
        ]);
        assert_eq!(
            filter_expr(&filter).unwrap(),
            concat!(
                r#"(metadata["year"] == 2010 and metadata["weight"] == 2.5 and metadata["ok"] == false"#,
                r#" and not ((metadata["a.b"] == -3 or metadata["x"] == 1e-7)) and metadata["n"] >= -2.5"#,
                r#" and (metadata["n"] >= 1.0 and metadata["n"] <= 2050.0))"#
            )
        );
    }

    #[test]
    fn in_lists_are_split_by_type() {
        let values = vec![json!("es"), json!(1), json!(2.5), json!(true), json!("en"), json!(2003.0)];
        let expr = filter_expr(&Filter::In { field: "v".into(), values }).unwrap();
        assert_eq!(
            expr,
            r#"(metadata["v"] in ["es", "en"] or metadata["v"] in [1] or metadata["v"] in [2.5, 2003.0] or metadata["v"] in [true])"#
        );
        let single =
            filter_expr(&Filter::In { field: "v".into(), values: vec![json!(1), json!(2)] }).unwrap();
        assert_eq!(single, r#"metadata["v"] in [1, 2]"#);
    }

    #[test]
    fn integers_beyond_i64_are_refused() {
        let error = filter_expr(&eq("big", json!(u64::MAX))).unwrap_err();
        assert!(matches!(error, Error::InvalidInput(_)), "{error}");
        assert!(filter_expr(&eq("small", json!(i64::MIN))).is_err());
        assert!(filter_expr(&eq("big", json!(i64::MAX))).is_ok());
    }

    #[test]
    fn id_lists_and_exists() {
        assert_eq!(ids_expr(["a", "b\"]"]), r#"id in ["a", "b\"]"]"#);
        assert_eq!(exists_expr("lang"), r#"exists metadata["lang"]"#);
    }

    #[test]
    fn huge_filters_are_refused() {
        let values = (0..1000).map(|i| json!(format!("{i}{}", "x".repeat(2000)))).collect();
        let error = filter_expr(&Filter::In { field: "v".into(), values }).unwrap_err();
        assert!(error.to_string().contains("limit"), "{error}");
    }
}
