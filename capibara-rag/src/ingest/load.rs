//! Finding the files under the paths to ingest and loading each into documents.
//!
//! [`discover`] lists the files first (cheap: names and sizes only), so a caller can size a
//! progress bar by files or bytes, then [`load_file`] loads one file at a time; [`load_paths`] does
//! both. Loading is blocking file I/O: async callers run it on a blocking thread.

use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use capibara_core::{Error, Result};
use serde::{Deserialize, Serialize};

use super::document::{Document, Format};
use super::html::html_to_text;
use super::ids::{file_document_id, record_document_id};
use super::json::{Record, json_lines_records, json_records};
use super::markdown::markdown_to_text;
use super::normalize::normalize_text;
use super::pdf::pdf_to_text;

/// The largest file loaded by default: 20 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 20 * 1024 * 1024;

/// The name that marks a directory as a BEIR evaluation set: only this file of it is ingested.
pub const BEIR_CORPUS: &str = "corpus.jsonl";

/// Limits of loading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoadOptions {
    /// Files larger than this many bytes fail with [`Error::TooLarge`], checked before reading.
    pub max_file_bytes: u64,
    /// Name documents (`Document::source`) by their path relative to the ingest root rather than
    /// by the path they were read from: for files whose location means nothing to their readers,
    /// such as uploads waiting in a temporary directory.
    pub relative_sources: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self { max_file_bytes: DEFAULT_MAX_FILE_BYTES, relative_sources: false }
    }
}

/// A file to load, as found by [`discover`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Where it is: the given path, or a directory given joined with the path under it.
    pub path: PathBuf,
    /// Its path relative to the ingest root (the directory given, or the file's own name when a
    /// file was given), with `/` separators. Document ids derive from it, so the same tree ingested
    /// from another place gets the same ids.
    pub relative: String,
    /// Its format, from its extension.
    pub format: Format,
    /// Its size in bytes when it was found.
    pub bytes: u64,
}

/// The files to load under `paths`, in a deterministic order.
///
/// A file is taken as given; it fails with [`Error::InvalidInput`] when its extension is not
/// supported. A directory holding `corpus.jsonl` is a BEIR set and yields that file only. Any other
/// directory is walked recursively in byte order of names, skipping hidden entries (names starting
/// with `.`), files of unsupported types and symbolic links to directories, and treating
/// subdirectories holding `corpus.jsonl` as BEIR sets. A missing path is [`Error::NotFound`].
pub fn discover(paths: &[PathBuf]) -> Result<Vec<SourceFile>> {
    let mut files = Vec::new();
    for path in paths {
        let metadata = fs::metadata(path).map_err(|e| not_readable(path, &e, "cannot stat"))?;
        if metadata.is_dir() {
            walk(path, path, &mut files)?;
        } else {
            let relative = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let format = Format::from_path(path).ok_or_else(|| unsupported(path))?;
            files.push(SourceFile { path: path.clone(), relative, format, bytes: metadata.len() });
        }
    }
    Ok(files)
}

/// Loads the documents of one file: one for a text, Markdown, HTML or PDF file, one a record for
/// JSON and JSON lines.
///
/// Fails with [`Error::TooLarge`] when the file is over `options.max_file_bytes` (without reading
/// it), and with [`Error::InvalidInput`] when a text format holds binary data (NUL bytes, or bytes
/// that are not UTF-8), a JSON record is malformed (naming the line), or a PDF has no text. A file
/// of a text format that is in fact a PDF (it starts with `%PDF-`) is read as a PDF.
pub fn load_file(file: &SourceFile, options: &LoadOptions) -> Result<Vec<Document>> {
    let _span =
        tracing::debug_span!("ingest_file", path = %file.path.display(), format = %file.format).entered();
    let name = source_name(file, options);
    let handle = File::open(&file.path).map_err(|e| not_readable(&file.path, &e, "cannot open"))?;
    let size = handle.metadata().map_err(|e| not_readable(&file.path, &e, "cannot stat"))?.len();
    check_size(&name, size, options.max_file_bytes)?;

    if file.format == Format::JsonLines {
        let records = json_lines_records(&name, BufReader::new(handle.take(options.max_file_bytes)))?;
        return Ok(record_documents(file, records, true, options));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    // Read at most one byte past the limit, in case the file grew since it was measured.
    handle
        .take(options.max_file_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| not_readable(&file.path, &e, "cannot read"))?;
    check_size(&name, bytes.len() as u64, options.max_file_bytes)?;

    if file.format == Format::Pdf || bytes.starts_with(b"%PDF-") {
        let text = pdf_to_text(&name, &bytes)?;
        return Ok(vec![file_document(file, None, text, options)]);
    }
    let text = as_text(&name, bytes)?;
    let source = text.strip_prefix('\u{feff}').unwrap_or(&text);
    Ok(match file.format {
        Format::Text => vec![file_document(file, None, normalize_text(source), options)],
        Format::Markdown => {
            let markdown = markdown_to_text(source);
            vec![file_document(file, markdown.title, markdown.text, options)]
        }
        Format::Html => {
            let html = html_to_text(source);
            vec![file_document(file, html.title, html.text, options)]
        }
        Format::Json => {
            let single = source.trim_start().starts_with('{');
            record_documents(file, json_records(&name, source)?, !single, options)
        }
        // Both are read above; kept here so every format has one arm.
        Format::JsonLines => {
            record_documents(file, json_lines_records(&name, source.as_bytes())?, true, options)
        }
        Format::Pdf => vec![file_document(file, None, pdf_to_text(&name, source.as_bytes())?, options)],
    })
}

/// [`discover`] then [`load_file`] for every file, stopping at the first error.
pub fn load_paths(paths: &[PathBuf], options: &LoadOptions) -> Result<Vec<Document>> {
    let mut documents = Vec::new();
    for file in discover(paths)? {
        documents.extend(load_file(&file, options)?);
    }
    Ok(documents)
}

fn walk(root: &Path, dir: &Path, files: &mut Vec<SourceFile>) -> Result<()> {
    let corpus = dir.join(BEIR_CORPUS);
    if corpus.is_file() {
        let bytes = fs::metadata(&corpus).map_err(|e| not_readable(&corpus, &e, "cannot stat"))?.len();
        files.push(SourceFile {
            relative: relative_path(root, &corpus),
            path: corpus,
            format: Format::JsonLines,
            bytes,
        });
        return Ok(());
    }
    let mut entries = fs::read_dir(dir)
        .map_err(|e| not_readable(dir, &e, "cannot list"))?
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| not_readable(dir, &e, "cannot list"))?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let file_type = entry.file_type().map_err(|e| not_readable(&path, &e, "cannot stat"))?;
        if file_type.is_dir() {
            walk(root, &path, files)?;
            continue;
        }
        // Follows a symbolic link to a file; one to a directory is skipped, so cycles cannot occur.
        let metadata = fs::metadata(&path).map_err(|e| not_readable(&path, &e, "cannot stat"))?;
        if !metadata.is_file() {
            tracing::debug!(path = %path.display(), "skipped: not a regular file");
            continue;
        }
        match Format::from_path(&path) {
            Some(format) => {
                files.push(SourceFile {
                    relative: relative_path(root, &path),
                    path,
                    format,
                    bytes: metadata.len(),
                });
            }
            None => tracing::debug!(path = %path.display(), "skipped: unsupported file type"),
        }
    }
    Ok(())
}

fn relative_path(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

/// How a document of `file` is named.
fn source_name(file: &SourceFile, options: &LoadOptions) -> String {
    if options.relative_sources { file.relative.clone() } else { file.path.display().to_string() }
}

fn file_document(file: &SourceFile, title: Option<String>, text: String, options: &LoadOptions) -> Document {
    Document {
        source: source_name(file, options),
        doc_id: file_document_id(&file.relative),
        title,
        text,
        metadata: serde_json::Map::new(),
    }
}

/// Documents of JSON records; a record without an id gets one from the file and, when the file
/// holds several records, its text.
fn record_documents(
    file: &SourceFile,
    records: Vec<Record>,
    several: bool,
    options: &LoadOptions,
) -> Vec<Document> {
    let source = source_name(file, options);
    records
        .into_iter()
        .map(|record| {
            let text = normalize_text(&record.text);
            let doc_id = match record.id {
                Some(id) => id,
                None if several => record_document_id(&file.relative, &text),
                None => file_document_id(&file.relative),
            };
            Document { source: source.clone(), doc_id, title: record.title, text, metadata: record.metadata }
        })
        .collect()
}

/// The bytes as UTF-8 text, or the binary-file error.
fn as_text(name: &str, bytes: Vec<u8>) -> Result<String> {
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Err(Error::invalid(format!(
            "{name} is a binary file, not text: it has a NUL byte at offset {at}"
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        Error::invalid(format!(
            "{name} is a binary file, not text: it is not valid UTF-8 (first bad byte at offset {}); \
             text in another encoding must be converted to UTF-8",
            e.utf8_error().valid_up_to()
        ))
    })
}

fn check_size(name: &str, size: u64, limit: u64) -> Result<()> {
    if size <= limit {
        return Ok(());
    }
    Err(Error::TooLarge(format!(
        "{name} is {} ({size} bytes), over the {} limit for one file (LoadOptions::max_file_bytes)",
        human_size(size),
        human_size(limit)
    )))
}

fn human_size(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if bytes >= 1024 * 1024 {
        format!("{:.1} MiB", bytes as f64 / MIB)
    } else if bytes >= 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} bytes")
    }
}

fn unsupported(path: &Path) -> Error {
    let found = path
        .extension()
        .map(|e| format!("`.{}`", e.to_string_lossy()))
        .unwrap_or_else(|| "no extension".into());
    Error::invalid(format!(
        "{}: unsupported file type ({found}); supported: {}",
        path.display(),
        Format::supported_list()
    ))
}

fn not_readable(path: &Path, error: &std::io::Error, doing: &str) -> Error {
    match error.kind() {
        std::io::ErrorKind::NotFound => {
            Error::NotFound(format!("{}: no such file or directory", path.display()))
        }
        _ => Error::invalid(format!("{}: {doing}: {error}", path.display())),
    }
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
