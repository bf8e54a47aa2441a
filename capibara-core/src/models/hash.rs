//! Streaming sha256 of files.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::progress::{Progress, ProgressEvent};
use crate::error::{Error, Result};

/// Reports at most every this many bytes, so a progress bar is not flooded.
const REPORT_EVERY: u64 = 8 << 20;

/// Lowercase hex sha256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    sha256_file_with_progress(path, &mut super::NoProgress)
}

/// Lowercase hex sha256 of a file, reporting [`ProgressEvent::Bytes`] while reading.
pub fn sha256_file_with_progress(path: &Path, progress: &mut dyn Progress) -> Result<String> {
    let mut file = File::open(path).map_err(|e| io_error(path, &e))?;
    let total = file.metadata().map_err(|e| io_error(path, &e))?.len();
    let name = file_label(path);
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let (mut done, mut reported) = (0u64, 0u64);
    loop {
        let read = file.read(&mut buffer).map_err(|e| io_error(path, &e))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        done += read as u64;
        if done - reported >= REPORT_EVERY {
            reported = done;
            progress.report(ProgressEvent::Bytes { file: name.clone(), done, total });
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

pub(super) fn file_label(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

pub(super) fn io_error(path: &Path, error: &std::io::Error) -> Error {
    match error.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound(format!("{}: no such file", path.display())),
        _ => Error::Internal(format!("{}: {error}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_known_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(
            sha256_file(&path).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let missing = sha256_file(&dir.path().join("missing")).unwrap_err();
        assert!(matches!(missing, Error::NotFound(_)), "{missing:?}");
    }
}
