//! Files sent to `POST /api/v1/rag/ingest` as `multipart/form-data`: each is streamed to a
//! private batch directory under the data dir, within the per-file size limit, then ingested from
//! there and removed.

use std::path::{Path, PathBuf};

use axum::extract::{FromRequest, Multipart, Request};
use capibara_core::Error;
use capibara_rag::ingest::Format;
use tokio::io::AsyncWriteExt;

use super::chat_input::multipart_error;
use super::error::ApiError;
use crate::app::Capibara;
use crate::rag::Rag;

/// Bytes of multipart framing and form fields allowed on top of the files themselves.
const FRAMING_BYTES: u64 = 1 << 20;

/// The body limit of the ingestion route: room for a few files at the per-file limit.
pub(crate) fn body_limit(max_file_bytes: u64) -> usize {
    usize::try_from(max_file_bytes.saturating_mul(4).saturating_add(FRAMING_BYTES)).unwrap_or(usize::MAX)
}

/// The JSON body limit of the ingestion route: the larger of the JSON limit and one file.
pub(crate) fn json_limit(app: &Capibara, rag: &Rag) -> usize {
    let file = usize::try_from(rag.ingest_settings().max_file_bytes).unwrap_or(usize::MAX);
    app.config().server.max_json_bytes.max(file)
}

/// Uploaded files waiting to be ingested. [`remove`](Self::remove) deletes them.
#[derive(Debug)]
pub(crate) struct UploadBatch {
    dir: PathBuf,
}

impl UploadBatch {
    /// The batch's directory: ingest it as a whole.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Deletes the files.
    pub(crate) async fn remove(self) {
        if let Err(error) = tokio::fs::remove_dir_all(&self.dir).await {
            tracing::warn!(dir = %self.dir.display(), %error, "could not remove uploaded files");
        }
    }
}

/// Receives every file of a multipart body (fields `files` or `file`). Fails, keeping nothing,
/// when there is no file, too many, a duplicate name, an unsupported type or a file over the limit.
pub(crate) async fn receive(rag: &Rag, request: Request) -> Result<UploadBatch, ApiError> {
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| Error::invalid(format!("malformed multipart body: {e}")))?;
    let dir = rag.uploads_dir().join(uuid::Uuid::now_v7().to_string());
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| Error::unavailable(format!("cannot create {}: {e}", dir.display())))?;
    let batch = UploadBatch { dir };
    match receive_into(&batch.dir, rag, &mut multipart).await {
        Ok(0) => {
            batch.remove().await;
            Err(Error::invalid(format!(
                "send the files to ingest as multipart field `files` ({})",
                Format::supported_list()
            ))
            .into())
        }
        Ok(_) => Ok(batch),
        Err(error) => {
            batch.remove().await;
            Err(error)
        }
    }
}

async fn receive_into(dir: &Path, rag: &Rag, multipart: &mut Multipart) -> Result<usize, ApiError> {
    let settings = rag.ingest_settings();
    let mut received = 0;
    while let Some(mut field) = multipart.next_field().await.map_err(|e| multipart_error(&e))? {
        let Some(file_name) = field.file_name().map(str::to_owned) else { continue };
        if !matches!(field.name(), Some("files" | "file")) || file_name.is_empty() {
            continue;
        }
        if received >= settings.max_files_per_request {
            return Err(Error::TooLarge(format!(
                "at most {} files per request",
                settings.max_files_per_request
            ))
            .into());
        }
        let name = safe_name(&file_name)?;
        let path = dir.join(&name);
        let mut file = tokio::fs::OpenOptions::new().write(true).create_new(true).open(&path).await.map_err(
            |e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => Error::invalid(format!("{name} is sent twice")),
                _ => Error::unavailable(format!("cannot store {name}: {e}")),
            },
        )?;
        let mut size = 0u64;
        while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(&e))? {
            size += chunk.len() as u64;
            if size > settings.max_file_bytes {
                return Err(Error::TooLarge(format!(
                    "{name} is larger than the {}-byte limit per file (retrieval.ingest.max_file_bytes)",
                    settings.max_file_bytes
                ))
                .into());
            }
            file.write_all(&chunk)
                .await
                .map_err(|e| Error::unavailable(format!("cannot store {name}: {e}")))?;
        }
        file.flush().await.map_err(|e| Error::unavailable(format!("cannot store {name}: {e}")))?;
        received += 1;
    }
    Ok(received)
}

/// The file's own name (no directories), checked: it names what the document is, and must have
/// a supported extension.
fn safe_name(file_name: &str) -> Result<String, Error> {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or_default().trim();
    if base.is_empty() || base.starts_with('.') || base.len() > 255 || base.chars().any(char::is_control) {
        return Err(Error::invalid(format!("{file_name:?} is not a usable file name")));
    }
    if Format::from_path(Path::new(base)).is_none() {
        return Err(Error::invalid(format!(
            "{base}: unsupported file type; supported: {}",
            Format::supported_list()
        )));
    }
    Ok(base.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_their_directories_and_need_a_supported_type() {
        assert_eq!(safe_name("../../etc/notas.md").unwrap(), "notas.md");
        assert_eq!(safe_name("C:\\docs\\guía.txt").unwrap(), "guía.txt");
        for bad in ["", "../", ".env", "virus.exe", "sin-extension", "a\u{0}.txt"] {
            assert!(safe_name(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
