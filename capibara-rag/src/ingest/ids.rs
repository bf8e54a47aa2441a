//! Content-derived identifiers, so ingesting the same input twice yields the same ids.
//!
//! Every id is the first 32 hex characters (128 bits) of a SHA-256 over length-prefixed fields,
//! with a different leading tag per kind of id so ids of different kinds never coincide.

use sha2::{Digest, Sha256};

/// Hex characters kept of the SHA-256.
pub const ID_HEX_CHARS: usize = 32;

/// The id of a chunk: a hash of its document id and its text with whitespace runs collapsed
/// (re-wrapping lines does not change it).
///
/// `occurrence` tells apart identical chunks of one document (repeated boilerplate): the first
/// is occurrence 0, and hashes the same as if the text were unique, so adding or removing a
/// duplicate elsewhere in the document does not change the other chunks' ids.
pub fn chunk_id(doc_id: &str, text: &str, occurrence: usize) -> String {
    let normalized = normalize_for_id(text);
    let occurrence = occurrence.to_string();
    let mut fields = vec!["chunk", doc_id, normalized.as_str()];
    if occurrence != "0" {
        fields.push(occurrence.as_str());
    }
    hash_fields(&fields)
}

/// The id of a file that holds one document and gives no id of its own: a hash of its path
/// relative to the ingest root, with `/` separators.
///
/// The content is left out so that editing a paragraph keeps the document id, and with it the
/// ids of the chunks that did not change.
pub fn file_document_id(relative_path: &str) -> String {
    hash_fields(&["file", relative_path])
}

/// The id of a record without an id in a file of several records (a JSON array, JSON lines): a
/// hash of the file's path relative to the ingest root and the record's text.
pub fn record_document_id(relative_path: &str, text: &str) -> String {
    hash_fields(&["record", relative_path, &normalize_for_id(text)])
}

/// `text` with every whitespace run replaced by one space and the ends trimmed.
pub fn normalize_for_id(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn hash_fields(fields: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for field in fields {
        hasher.update((field.len() as u64).to_le_bytes());
        hasher.update(field.as_bytes());
    }
    let mut hex = hex::encode(hasher.finalize());
    hex.truncate(ID_HEX_CHARS);
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_hex_of_fixed_length() {
        let id = chunk_id("doc", "Hola mundo.", 0);
        assert_eq!(id.len(), ID_HEX_CHARS);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(id, chunk_id("doc", "Hola mundo.", 0));
    }

    #[test]
    fn chunk_ids_ignore_whitespace_but_not_words_document_or_occurrence() {
        let id = chunk_id("doc", "Hola mundo.", 0);
        assert_eq!(id, chunk_id("doc", "  Hola\n  mundo. ", 0));
        assert_ne!(id, chunk_id("doc", "Hola mundos.", 0));
        assert_ne!(id, chunk_id("otro", "Hola mundo.", 0));
        assert_ne!(id, chunk_id("doc", "Hola mundo.", 1));
    }

    #[test]
    fn fields_do_not_run_into_each_other() {
        assert_ne!(chunk_id("ab", "c", 0), chunk_id("a", "bc", 0));
        assert_ne!(file_document_id("a.txt"), record_document_id("a.txt", ""));
    }

    #[test]
    fn document_ids_follow_the_documented_inputs() {
        assert_eq!(file_document_id("docs/a.md"), file_document_id("docs/a.md"));
        assert_ne!(file_document_id("docs/a.md"), file_document_id("docs/b.md"));
        assert_ne!(record_document_id("r.jsonl", "uno"), record_document_id("r.jsonl", "dos"));
        assert_eq!(record_document_id("r.jsonl", "uno  dos"), record_document_id("r.jsonl", "uno dos"));
    }
}
