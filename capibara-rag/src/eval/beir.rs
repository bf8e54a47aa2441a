//! Reading evaluation sets in the BEIR layout.
//!
//! ```text
//! <dir>/corpus.jsonl        {"_id": …, "title": …, "text": …, "metadata": {…}}   one document a line
//! <dir>/queries.jsonl       {"_id": …, "text": …, "metadata": {…}}               one query a line
//! <dir>/qrels/<split>.tsv   query-id <TAB> corpus-id <TAB> score                 header line optional
//! ```
//!
//! `title` and `metadata` may be missing; ids may be JSON strings or integers. Blank lines are
//! skipped. Every problem is reported with the file and the 1-based line number.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use capibara_core::vector::Metadata;
use capibara_core::{Error, Result};
use serde::Deserialize;

use super::metrics::Qrels;

/// One corpus document.
#[derive(Debug, Clone, PartialEq)]
pub struct BeirDocument {
    /// `_id`.
    pub id: String,
    /// `title`, empty when missing.
    pub title: String,
    /// `text`.
    pub text: String,
    /// `metadata`, empty when missing.
    pub metadata: Metadata,
}

impl BeirDocument {
    /// The text to index: the title and the text on separate lines, or the text alone when the
    /// title is empty.
    pub fn indexed_text(&self) -> String {
        if self.title.trim().is_empty() {
            self.text.clone()
        } else {
            format!("{}\n{}", self.title, self.text)
        }
    }
}

/// One query.
#[derive(Debug, Clone, PartialEq)]
pub struct BeirQuery {
    /// `_id`.
    pub id: String,
    /// `text`.
    pub text: String,
    /// `metadata`, empty when missing.
    pub metadata: Metadata,
}

/// A whole evaluation set: corpus, queries and the relevance judgements of one split.
#[derive(Debug, Clone, PartialEq)]
pub struct BeirDataset {
    /// The documents, in file order.
    pub corpus: Vec<BeirDocument>,
    /// The queries, in file order.
    pub queries: Vec<BeirQuery>,
    /// The judgements of the split.
    pub qrels: Qrels,
}

impl BeirDataset {
    /// Reads `dir` with the judgements of the `test` split.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        Self::load_split(dir, "test")
    }

    /// Reads `dir` with the judgements of `qrels/<split>.tsv`.
    ///
    /// Fails with [`Error::NotFound`] when the folder or a file is missing, and with
    /// [`Error::InvalidInput`] on a malformed line, a repeated document or query id, or a judgement
    /// for a query that `queries.jsonl` does not have. Judgements may name documents missing
    /// from the corpus (they count as relevant documents that cannot be retrieved).
    pub fn load_split(dir: impl AsRef<Path>, split: &str) -> Result<Self> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(Error::NotFound(format!("BEIR dataset folder {} does not exist", dir.display())));
        }
        let corpus = read_corpus(dir.join("corpus.jsonl"))?;
        let queries = read_queries(dir.join("queries.jsonl"))?;
        let qrels_path = dir.join("qrels").join(format!("{split}.tsv"));
        let qrels = read_qrels(&qrels_path)?;
        let query_ids: HashSet<&str> = queries.iter().map(|q| q.id.as_str()).collect();
        if let Some(unknown) = qrels.query_ids().find(|id| !query_ids.contains(id)) {
            return Err(Error::invalid(format!(
                "{}: judgements for query {unknown:?}, which {} does not have",
                qrels_path.display(),
                dir.join("queries.jsonl").display()
            )));
        }
        Ok(Self { corpus, queries, qrels })
    }

    /// The queries that have at least one judgement, in file order: the ones metrics average over.
    pub fn judged_queries(&self) -> impl Iterator<Item = &BeirQuery> {
        self.queries.iter().filter(|query| self.qrels.get(&query.id).is_some())
    }
}

#[derive(Deserialize)]
struct RawDocument {
    #[serde(rename = "_id")]
    id: serde_json::Value,
    #[serde(default)]
    title: Option<String>,
    text: String,
    #[serde(default)]
    metadata: Option<Metadata>,
}

#[derive(Deserialize)]
struct RawQuery {
    #[serde(rename = "_id")]
    id: serde_json::Value,
    text: String,
    #[serde(default)]
    metadata: Option<Metadata>,
}

/// Reads a BEIR `corpus.jsonl`; document ids must be unique and non-empty.
pub fn read_corpus(path: impl AsRef<Path>) -> Result<Vec<BeirDocument>> {
    let path = path.as_ref();
    let mut seen = HashSet::new();
    let mut corpus = Vec::new();
    for_each_line(path, |line_no, line| {
        let raw: RawDocument = serde_json::from_str(line).map_err(|e| at(path, line_no, &e.to_string()))?;
        let id = id_text(raw.id).map_err(|m| at(path, line_no, &m))?;
        if !seen.insert(id.clone()) {
            return Err(at(path, line_no, &format!("document id {id:?} appears twice")));
        }
        corpus.push(BeirDocument {
            id,
            title: raw.title.unwrap_or_default(),
            text: raw.text,
            metadata: raw.metadata.unwrap_or_default(),
        });
        Ok(())
    })?;
    Ok(corpus)
}

/// Reads a BEIR `queries.jsonl`; query ids must be unique and non-empty.
pub fn read_queries(path: impl AsRef<Path>) -> Result<Vec<BeirQuery>> {
    let path = path.as_ref();
    let mut seen = HashSet::new();
    let mut queries = Vec::new();
    for_each_line(path, |line_no, line| {
        let raw: RawQuery = serde_json::from_str(line).map_err(|e| at(path, line_no, &e.to_string()))?;
        let id = id_text(raw.id).map_err(|m| at(path, line_no, &m))?;
        if !seen.insert(id.clone()) {
            return Err(at(path, line_no, &format!("query id {id:?} appears twice")));
        }
        queries.push(BeirQuery { id, text: raw.text, metadata: raw.metadata.unwrap_or_default() });
        Ok(())
    })?;
    Ok(queries)
}

/// Reads a BEIR qrels file: three tab-separated columns (query id, document id, integer grade),
/// with an optional `query-id …` header as the first line. A repeated (query, document) pair is
/// an error.
pub fn read_qrels(path: impl AsRef<Path>) -> Result<Qrels> {
    let path = path.as_ref();
    let mut qrels = Qrels::new();
    let mut first = true;
    for_each_line(path, |line_no, line| {
        let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
        let is_header = first && fields.first().is_some_and(|f| f.eq_ignore_ascii_case("query-id"));
        first = false;
        if is_header {
            return Ok(());
        }
        let [query, doc, grade] = fields[..] else {
            return Err(at(
                path,
                line_no,
                &format!(
                    "expected 3 tab-separated fields (query-id, corpus-id, score), found {}",
                    fields.len()
                ),
            ));
        };
        if query.is_empty() || doc.is_empty() {
            return Err(at(path, line_no, "empty query-id or corpus-id"));
        }
        let grade: i32 =
            grade.parse().map_err(|_| at(path, line_no, &format!("score {grade:?} is not an integer")))?;
        if qrels.insert(query, doc, grade).is_some() {
            return Err(at(path, line_no, &format!("query {query:?} judges document {doc:?} twice")));
        }
        Ok(())
    })?;
    Ok(qrels)
}

/// Calls `handle` with the 1-based number and text of each non-blank line of `path`.
fn for_each_line(path: &Path, mut handle: impl FnMut(usize, &str) -> Result<()>) -> Result<()> {
    let file = File::open(path).map_err(|e| open_error(path, &e))?;
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line_no = index + 1;
        let line = line.map_err(|e| match e.kind() {
            io::ErrorKind::InvalidData => at(path, line_no, "not valid UTF-8"),
            _ => Error::internal(format!("reading {}: {e}", path.display())),
        })?;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        handle(line_no, line)?;
    }
    Ok(())
}

fn open_error(path: &Path, error: &io::Error) -> Error {
    match error.kind() {
        io::ErrorKind::NotFound => Error::NotFound(format!("{} does not exist", path.display())),
        _ => Error::internal(format!("opening {}: {error}", path.display())),
    }
}

fn at(path: &Path, line_no: usize, problem: &str) -> Error {
    Error::invalid(format!("{}:{line_no}: {problem}", path.display()))
}

/// A JSON `_id` as text: strings as they are, integers in decimal.
fn id_text(id: serde_json::Value) -> Result<String, String> {
    let text = match id {
        serde_json::Value::String(text) => text,
        serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        other => return Err(format!("_id must be a string or an integer, got {other}")),
    };
    if text.is_empty() {
        return Err("_id is empty".to_owned());
    }
    Ok(text)
}

#[cfg(test)]
#[path = "beir_tests.rs"]
mod tests;
