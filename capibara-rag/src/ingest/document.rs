//! A loaded document and the file formats documents are loaded from.

use std::fmt;
use std::path::Path;

use serde_json::{Map, Value};

/// One document's text, ready to chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The file it came from, as the path was found (the root given to the loader joined with
    /// the path under it).
    pub source: String,
    /// The record's own `_id`/`id` when it has one, otherwise a content-derived id (see
    /// [`ids`](super::ids)).
    pub doc_id: String,
    /// The title: a JSON `title` field, an HTML `<title>`, a Markdown front-matter `title` or first
    /// level-1 heading. `None` when there is none.
    pub title: Option<String>,
    /// The visible text, markup removed, with `\n` line ends and paragraphs separated by one blank
    /// line.
    pub text: String,
    /// Fields that travel with every chunk: a JSON record's `metadata` object and its other
    /// top-level fields.
    pub metadata: Map<String, Value>,
}

impl Document {
    /// A document with no title and no metadata.
    pub fn new(source: impl Into<String>, doc_id: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            doc_id: doc_id.into(),
            title: None,
            text: text.into(),
            metadata: Map::new(),
        }
    }
}

/// A supported file format, chosen by the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `.txt`: plain UTF-8 text.
    Text,
    /// `.md`, `.markdown`: CommonMark with tables, footnotes and front matter.
    Markdown,
    /// `.html`, `.htm`: the visible text.
    Html,
    /// `.json`: one object with a `text` or `content` field, or an array of them.
    Json,
    /// `.jsonl`: one such object a line (BEIR's `corpus.jsonl` among them).
    JsonLines,
    /// `.pdf`: the text layer of a PDF.
    Pdf,
}

impl Format {
    /// Every supported extension, lowercase and without the dot.
    pub const EXTENSIONS: &'static [&'static str] =
        &["txt", "md", "markdown", "html", "htm", "json", "jsonl", "pdf"];

    /// The format of `path` by its extension (case-insensitive), or `None` when unsupported.
    pub fn from_path(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match extension.as_str() {
            "txt" => Self::Text,
            "md" | "markdown" => Self::Markdown,
            "html" | "htm" => Self::Html,
            "json" => Self::Json,
            "jsonl" => Self::JsonLines,
            "pdf" => Self::Pdf,
            _ => return None,
        })
    }

    /// The supported extensions as a readable list for error messages: `.txt, .md, …`.
    pub fn supported_list() -> String {
        Self::EXTENSIONS.iter().map(|e| format!(".{e}")).collect::<Vec<_>>().join(", ")
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Text => "text",
            Self::Markdown => "markdown",
            Self::Html => "html",
            Self::Json => "json",
            Self::JsonLines => "jsonl",
            Self::Pdf => "pdf",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_follow_extensions_case_insensitively() {
        assert_eq!(Format::from_path(Path::new("a/b.MD")), Some(Format::Markdown));
        assert_eq!(Format::from_path(Path::new("x.markdown")), Some(Format::Markdown));
        assert_eq!(Format::from_path(Path::new("x.Htm")), Some(Format::Html));
        assert_eq!(Format::from_path(Path::new("corpus.jsonl")), Some(Format::JsonLines));
        assert_eq!(Format::from_path(Path::new("x.pdf")), Some(Format::Pdf));
        assert_eq!(Format::from_path(Path::new("x.docx")), None);
        assert_eq!(Format::from_path(Path::new("README")), None);
        assert!(Format::supported_list().starts_with(".txt, .md"));
    }
}
