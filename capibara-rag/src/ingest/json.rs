//! JSON and JSON-lines records: `.json` (an object or an array of objects) and `.jsonl` (one object
//! a line, BEIR's `corpus.jsonl` among them).
//!
//! A record's fields:
//! - `_id` or `id` (string or integer; `_id` wins): the document id;
//! - `title` (string): the title;
//! - `text` or `content` (string; `text` wins): the text, required;
//! - `metadata` (object): copied to every chunk, together with any other top-level field
//!   (`metadata`'s own keys win over top-level ones of the same name).

use std::io::BufRead;

use capibara_core::{Error, Result};
use serde_json::{Map, Value};

/// One record, before it gets its source and a document id.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Record {
    /// `_id` or `id`, as a string.
    pub(crate) id: Option<String>,
    /// `title`, `None` when missing or blank.
    pub(crate) title: Option<String>,
    /// `text` or `content`.
    pub(crate) text: String,
    /// `metadata` merged over the other top-level fields.
    pub(crate) metadata: Map<String, Value>,
}

/// The records of a `.json` file: one object, or an array of objects. `name` names the file in
/// errors.
pub(crate) fn json_records(name: &str, source: &str) -> Result<Vec<Record>> {
    let value: Value = serde_json::from_str(source).map_err(|e| {
        Error::invalid(format!("{name}: invalid JSON at line {}, column {}: {e}", e.line(), e.column()))
    })?;
    match value {
        Value::Object(object) => {
            Ok(vec![record(object).map_err(|e| Error::invalid(format!("{name}: {e}")))?])
        }
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(index, item)| match item {
                Value::Object(object) => {
                    record(object).map_err(|e| Error::invalid(format!("{name}: item {index}: {e}")))
                }
                other => Err(Error::invalid(format!(
                    "{name}: item {index} is {}, expected an object with a `text` or `content` field",
                    kind(&other)
                ))),
            })
            .collect(),
        other => Err(Error::invalid(format!(
            "{name}: the top level is {}, expected an object or an array of objects",
            kind(&other)
        ))),
    }
}

/// The records of a `.jsonl` stream, read one line at a time; blank lines are skipped. Errors
/// name the 1-based line.
pub(crate) fn json_lines_records(name: &str, reader: impl BufRead) -> Result<Vec<Record>> {
    let mut records = Vec::new();
    for (index, line) in reader.lines().enumerate() {
        let number = index + 1;
        let line = line.map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => {
                Error::invalid(format!("{name} is a binary file, not text: line {number} is not valid UTF-8"))
            }
            _ => Error::unavailable(format!("{name}: reading line {number}: {e}")),
        })?;
        let line = if number == 1 {
            line.strip_prefix('\u{feff}').map(str::to_string).unwrap_or(line)
        } else {
            line
        };
        if line.contains('\0') {
            return Err(Error::invalid(format!(
                "{name} is a binary file, not text: line {number} has NUL bytes"
            )));
        }
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(&line)
            .map_err(|e| Error::invalid(format!("{name}: line {number}: invalid JSON: {e}")))?;
        let Value::Object(object) = value else {
            return Err(Error::invalid(format!(
                "{name}: line {number}: expected a JSON object, found {}",
                kind(&value)
            )));
        };
        records.push(record(object).map_err(|e| Error::invalid(format!("{name}: line {number}: {e}")))?);
    }
    Ok(records)
}

fn record(mut object: Map<String, Value>) -> std::result::Result<Record, String> {
    let id = match (object.remove("_id"), object.remove("id")) {
        (Some(id), _) | (None, Some(id)) => id_string(id)?,
        (None, None) => None,
    };
    let title = match object.remove("title") {
        None | Some(Value::Null) => None,
        Some(Value::String(title)) => Some(title.trim().to_string()).filter(|t| !t.is_empty()),
        Some(other) => return Err(format!("`title` is {}, expected a string", kind(&other))),
    };
    let text = match (object.remove("text"), object.remove("content")) {
        (Some(Value::String(text)), _) | (None, Some(Value::String(text))) => text,
        (Some(other), _) | (None, Some(other)) => {
            return Err(format!("the text field is {}, expected a string", kind(&other)));
        }
        (None, None) => return Err("no `text` or `content` field".to_string()),
    };
    let nested = match object.remove("metadata") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(other) => return Err(format!("`metadata` is {}, expected an object", kind(&other))),
    };
    let mut metadata = object;
    metadata.extend(nested);
    Ok(Record { id, title, text, metadata })
}

fn id_string(id: Value) -> std::result::Result<Option<String>, String> {
    match id {
        Value::Null => Ok(None),
        Value::String(id) if id.trim().is_empty() => Err("the id is empty".to_string()),
        Value::String(id) => Ok(Some(id)),
        Value::Number(number) if number.is_i64() || number.is_u64() => Ok(Some(number.to_string())),
        other => Err(format!("the id is {}, expected a string or an integer", kind(&other))),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_object_and_array_records() {
        let one = json_records("a.json", r#"{"content": "Hola.", "autor": "Ana"}"#).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].text, "Hola.");
        assert_eq!(one[0].id, None);
        assert_eq!(one[0].metadata["autor"], "Ana");

        let many = json_records(
            "b.json",
            r#"[{"id": 7, "title": " T ", "text": "Uno", "metadata": {"lang": "es", "autor": "x"}, "autor": "y"},
                {"_id": "d2", "id": "ignored", "text": "Dos", "title": ""}]"#,
        )
        .unwrap();
        assert_eq!(many[0].id.as_deref(), Some("7"));
        assert_eq!(many[0].title.as_deref(), Some("T"));
        assert_eq!(many[0].metadata["autor"], "x", "metadata wins over top-level fields");
        assert_eq!(many[0].metadata["lang"], "es");
        assert_eq!(many[1].id.as_deref(), Some("d2"));
        assert_eq!(many[1].title, None);
        assert!(!many[1].metadata.contains_key("id"));
    }

    #[test]
    fn json_errors_say_where() {
        let err = json_records("b.json", r#"[{"text": "ok"}, {"title": "sin texto"}]"#).unwrap_err();
        assert!(err.to_string().contains("b.json: item 1: no `text` or `content` field"), "{err}");
        let err = json_records("c.json", "[1]").unwrap_err();
        assert!(err.to_string().contains("item 0 is a number"), "{err}");
        let err = json_records("d.json", "{\n\"text\": }").unwrap_err();
        assert!(err.to_string().contains("d.json: invalid JSON at line 2"), "{err}");
        let err = json_records("e.json", r#"{"text": "x", "id": 1.5}"#).unwrap_err();
        assert!(err.to_string().contains("the id is a number"), "{err}");
    }

    #[test]
    fn json_lines_skip_blank_lines_and_name_the_bad_one() {
        let source = "{\"_id\": \"a\", \"text\": \"Uno\"}\n\n{\"_id\": \"b\", \"text\": \"Dos\"}\n";
        let records = json_lines_records("c.jsonl", source.as_bytes()).unwrap();
        assert_eq!(records.iter().map(|r| r.id.as_deref().unwrap()).collect::<Vec<_>>(), ["a", "b"]);

        let broken = "{\"text\": \"Uno\"}\n{\"text\": \"Dos\"\n";
        let err = json_lines_records("c.jsonl", broken.as_bytes()).unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)));
        assert!(err.to_string().contains("c.jsonl: line 2: invalid JSON"), "{err}");

        let err = json_lines_records("c.jsonl", &b"{\"text\": \"\xff\"}\n"[..]).unwrap_err();
        assert!(err.to_string().contains("binary file, not text"), "{err}");
    }
}
