//! Files uploaded with chat messages: size-limited, extension-checked, stored under the data dir
//! with safe names, hashed, and (for text files) read so the model can see their content.

use std::path::{Path, PathBuf};

use capibara_core::config::UploadConfig;
use capibara_core::store::Attachment;
use capibara_core::turn::TurnAttachment;
use capibara_core::{Error, Result};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

/// Longest stored file name (before the id prefix).
const MAX_SAFE_NAME: usize = 100;

/// Where uploads are written, and the rules they follow.
#[derive(Debug, Clone)]
pub struct UploadStore {
    data_dir: PathBuf,
    rules: UploadConfig,
}

/// A file being received: bytes are added as they arrive, with the size limit enforced on the way.
#[derive(Debug)]
pub struct IncomingFile {
    original_name: String,
    extension: String,
    content_type: Option<String>,
    bytes: Vec<u8>,
    limit: usize,
}

impl IncomingFile {
    /// Adds a piece of the file; fails as soon as the file exceeds the limit.
    pub fn push(&mut self, chunk: &[u8]) -> Result<()> {
        if self.bytes.len() + chunk.len() > self.limit {
            return Err(Error::TooLarge(format!(
                "file `{}` is larger than the {} limit",
                self.original_name,
                human_bytes(self.limit)
            )));
        }
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }

    /// Whether nothing was received (browsers send an empty part for an unused file input).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty() && self.original_name.is_empty()
    }
}

impl UploadStore {
    /// Uploads go to `<data_dir>/uploads`.
    pub fn new(data_dir: &Path, rules: UploadConfig) -> Self {
        Self { data_dir: data_dir.to_path_buf(), rules }
    }

    /// The rules in effect.
    pub fn rules(&self) -> &UploadConfig {
        &self.rules
    }

    /// Starts receiving a file, checking its name and extension first.
    pub fn begin(&self, original_name: &str, content_type: Option<&str>) -> Result<IncomingFile> {
        let original_name = original_name.trim();
        if original_name.is_empty() {
            return Err(Error::invalid("an uploaded file has no name"));
        }
        let extension = extension_of(original_name).ok_or_else(|| {
            Error::invalid(format!("file `{original_name}` has no extension; allowed: {}", self.allowed()))
        })?;
        if !self.rules.allowed_extensions.contains(&extension) {
            return Err(Error::invalid(format!(
                "file type `.{extension}` is not accepted (file `{original_name}`); allowed: {}",
                self.allowed()
            )));
        }
        Ok(IncomingFile {
            original_name: original_name.chars().take(255).collect(),
            extension,
            content_type: content_type.map(str::to_owned),
            bytes: Vec::new(),
            limit: self.rules.max_file_bytes,
        })
    }

    fn allowed(&self) -> String {
        self.rules.allowed_extensions.iter().map(String::as_str).collect::<Vec<_>>().join(", ")
    }

    /// Writes the file (temporary name, then rename, so no half-written file is ever visible) and
    /// returns it with its text when it is a text file.
    pub async fn store(&self, file: IncomingFile) -> Result<TurnAttachment> {
        let id = Uuid::now_v7();
        let month = chrono::Utc::now().format("%Y/%m").to_string();
        let relative = format!("uploads/{month}/{}-{}", id.simple(), safe_name(&file.original_name));
        let path = self.data_dir.join(&relative);
        let dir = path.parent().ok_or_else(|| Error::internal("upload path has no parent"))?;
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| Error::internal(format!("cannot create {}: {e}", dir.display())))?;
        let temporary = path.with_extension("partial");
        write_synced(&temporary, &file.bytes).await?;
        tokio::fs::rename(&temporary, &path)
            .await
            .map_err(|e| Error::internal(format!("cannot move upload into place: {e}")))?;

        let (text, truncated) = if self.rules.text_extensions.contains(&file.extension) {
            let (text, truncated) = decode_text(&file.bytes, self.rules.max_text_chars);
            (Some(text), truncated)
        } else {
            (None, false)
        };
        Ok(TurnAttachment {
            attachment: Attachment {
                id,
                original_name: file.original_name,
                stored_path: relative,
                size_bytes: file.bytes.len() as u64,
                content_type: file.content_type,
                sha256: hex::encode(Sha256::digest(&file.bytes)),
            },
            text,
            truncated,
        })
    }

    /// Removes stored files that ended up unused (the turn they came with failed before storing).
    pub async fn discard(&self, attachments: &[TurnAttachment]) {
        for attached in attachments {
            let path = self.data_dir.join(&attached.attachment.stored_path);
            if let Err(error) = tokio::fs::remove_file(&path).await {
                tracing::warn!(path = %path.display(), %error, "could not remove an unused upload");
            }
        }
    }
}

async fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |e: std::io::Error| Error::internal(format!("cannot write upload {}: {e}", path.display()));
    let mut out = tokio::fs::File::create(path).await.map_err(io)?;
    out.write_all(bytes).await.map_err(io)?;
    out.sync_all().await.map_err(io)
}

/// Lowercase extension without the dot, if the name has one.
fn extension_of(name: &str) -> Option<String> {
    let (stem, extension) = name.rsplit_once('.')?;
    (!stem.is_empty() && !extension.is_empty()).then(|| extension.to_ascii_lowercase())
}

/// A name safe on every file system: ASCII letters, digits, `.`, `-`, `_`; no leading dots; bounded.
fn safe_name(name: &str) -> String {
    // Keep only the last path component a client might have sent (`C:\a\b.txt`, `../../x.txt`).
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String =
        base.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    let trimmed = cleaned.trim_start_matches('.');
    let mut safe: String = if trimmed.len() > MAX_SAFE_NAME {
        // Keep the extension when shortening.
        let extension = extension_of(trimmed).unwrap_or_default();
        let keep = MAX_SAFE_NAME.saturating_sub(extension.len() + 1);
        format!("{}.{extension}", &trimmed[..keep])
    } else {
        trimmed.to_owned()
    };
    if safe.is_empty() {
        safe.push_str("file");
    }
    safe
}

/// Text of a file: UTF-8, or Latin-1 when it is not valid UTF-8 (common for Spanish files), cut to
/// `max_chars` characters.
fn decode_text(bytes: &[u8], max_chars: usize) -> (String, bool) {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text.trim_start_matches('\u{feff}').to_owned(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    };
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => (text[..cut].to_owned(), true),
        None => (text, false),
    }
}

fn human_bytes(bytes: usize) -> String {
    if bytes >= 1024 * 1024 && bytes.is_multiple_of(1024 * 1024) {
        format!("{} MB", bytes / (1024 * 1024))
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_safe() {
        assert_eq!(safe_name("../../etc/passwd.txt"), "passwd.txt");
        assert_eq!(safe_name(r"C:\Users\ana\informe final.pdf"), "informe_final.pdf");
        assert_eq!(safe_name("...hidden.md"), "hidden.md");
        assert_eq!(safe_name("año_ñandú.csv"), "a_o__and_.csv");
        let long = format!("{}.json", "a".repeat(300));
        let safe = safe_name(&long);
        assert!(safe.len() <= MAX_SAFE_NAME && safe.ends_with(".json"));
    }

    #[test]
    fn extensions_are_lowercase_and_required() {
        assert_eq!(extension_of("Foto.JPG").as_deref(), Some("jpg"));
        assert_eq!(extension_of("sin_extension"), None);
        assert_eq!(extension_of(".bashrc"), None);
    }

    #[test]
    fn text_is_decoded_and_cut() {
        assert_eq!(decode_text("\u{feff}hola".as_bytes(), 10), ("hola".to_owned(), false));
        assert_eq!(decode_text(&[b'a', 0xf1, b'o'], 10).0, "año");
        assert_eq!(decode_text("ñañaña".as_bytes(), 3), ("ñañ".to_owned(), true));
    }

    #[tokio::test]
    async fn files_are_stored_hashed_and_limited() {
        let dir = tempfile::tempdir().unwrap();
        let rules = UploadConfig { max_file_bytes: 8, ..UploadConfig::default() };
        let store = UploadStore::new(dir.path(), rules);
        assert!(store.begin("virus.exe", None).unwrap_err().to_string().contains(".exe"));
        let mut file = store.begin("notas.txt", Some("text/plain")).unwrap();
        file.push(b"hola ").unwrap();
        assert_eq!(file.push(b"mundo!").unwrap_err().code(), "too_large");
        let mut file = store.begin("notas.txt", None).unwrap();
        file.push(b"hola").unwrap();
        let stored = store.store(file).await.unwrap();
        assert_eq!(stored.text.as_deref(), Some("hola"));
        assert_eq!(stored.attachment.size_bytes, 4);
        let on_disk = std::fs::read(dir.path().join(&stored.attachment.stored_path)).unwrap();
        assert_eq!(on_disk, b"hola");
        assert_eq!(stored.attachment.sha256, hex::encode(Sha256::digest(b"hola")));
        store.discard(std::slice::from_ref(&stored)).await;
        assert!(!dir.path().join(&stored.attachment.stored_path).exists());
    }
}
