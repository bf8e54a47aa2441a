//! Opening a GGUF file: clear errors for missing, foreign, damaged and truncated files, and typed
//! access to its metadata.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{Content, Value};
use capibara_core::{Error, Result};

/// Architectures [`crate::local::LocalLlm`] can run.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama"];

/// An opened GGUF file whose header parsed and whose tensor data is all present.
pub(crate) struct GgufFile {
    pub(crate) path: PathBuf,
    pub(crate) content: Content,
    pub(crate) reader: BufReader<File>,
    pub(crate) size: u64,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile").field("path", &self.path).field("size", &self.size).finish_non_exhaustive()
    }
}

impl GgufFile {
    /// Opens and checks `path`: it exists, starts with the GGUF magic, its header parses, and every
    /// tensor's bytes lie inside the file.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let shown = path.display();
        let file = File::open(path).map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound(format!("model file {shown}: no such file")),
            _ => Error::invalid(format!("model file {shown}: cannot be opened: {error}")),
        })?;
        let size = file.metadata().map_err(|e| Error::invalid(format!("model file {shown}: {e}")))?.len();
        let mut reader = BufReader::new(file);
        let mut magic = [0u8; 4];
        if reader.read_exact(&mut magic).is_err() || &magic != b"GGUF" {
            return Err(Error::invalid(format!(
                "model file {shown} is not a GGUF file (it does not start with the `GGUF` magic)"
            )));
        }
        reader.seek(SeekFrom::Start(0)).map_err(|e| Error::invalid(format!("model file {shown}: {e}")))?;
        let content = Content::read(&mut reader).map_err(|e| {
            Error::invalid(format!("model file {shown}: the GGUF header is damaged or cut short: {e}"))
        })?;
        for (name, info) in &content.tensor_infos {
            let block = info.ggml_dtype.block_size();
            let bytes = (info.shape.elem_count() / block * info.ggml_dtype.type_size()) as u64;
            let end = content.tensor_data_offset.saturating_add(info.offset).saturating_add(bytes);
            if end > size {
                return Err(Error::invalid(format!(
                    "model file {shown} is truncated: tensor `{name}` ends at byte {end} but the file has {size} bytes"
                )));
            }
        }
        Ok(Self { path: path.to_owned(), content, reader, size })
    }

    /// `general.architecture`, checked against [`SUPPORTED_ARCHITECTURES`].
    pub(crate) fn architecture(&self) -> Result<String> {
        let architecture = self.string("general.architecture").ok_or_else(|| {
            Error::invalid(format!(
                "model file {}: no `general.architecture` in its metadata",
                self.path.display()
            ))
        })?;
        if !SUPPORTED_ARCHITECTURES.contains(&architecture.as_str()) {
            return Err(Error::invalid(format!(
                "model file {}: architecture `{architecture}` is not supported (supported: {})",
                self.path.display(),
                SUPPORTED_ARCHITECTURES.join(", ")
            )));
        }
        Ok(architecture)
    }

    pub(crate) fn value(&self, key: &str) -> Option<&Value> {
        self.content.metadata.get(key)
    }

    pub(crate) fn string(&self, key: &str) -> Option<String> {
        self.value(key).and_then(|v| v.to_string().ok()).cloned()
    }

    pub(crate) fn u32(&self, key: &str) -> Option<u32> {
        self.value(key).and_then(value_u32)
    }

    pub(crate) fn bool(&self, key: &str) -> Option<bool> {
        self.value(key).and_then(|v| v.to_bool().ok())
    }

    /// The string array under `key`, or an error naming the key.
    pub(crate) fn strings(&self, key: &str) -> Result<Vec<&str>> {
        let missing =
            || Error::invalid(format!("model file {}: metadata `{key}` is missing", self.path.display()));
        let values = self.value(key).ok_or_else(missing)?.to_vec().map_err(|_| missing())?;
        values.iter().map(|v| v.to_string().map(String::as_str).map_err(|_| missing())).collect()
    }

    /// The integer array under `key`, if present.
    pub(crate) fn integers(&self, key: &str) -> Option<Vec<u32>> {
        let values = self.value(key)?.to_vec().ok()?;
        values.iter().map(value_u32).collect()
    }
}

/// Any integer metadata value as `u32` (GGUF writers disagree on widths).
pub(crate) fn value_u32(value: &Value) -> Option<u32> {
    match *value {
        Value::U8(v) => Some(u32::from(v)),
        Value::I8(v) => u32::try_from(v).ok(),
        Value::U16(v) => Some(u32::from(v)),
        Value::I16(v) => u32::try_from(v).ok(),
        Value::U32(v) => Some(v),
        Value::I32(v) => u32::try_from(v).ok(),
        Value::U64(v) => u32::try_from(v).ok(),
        Value::I64(v) => u32::try_from(v).ok(),
        _ => None,
    }
}
