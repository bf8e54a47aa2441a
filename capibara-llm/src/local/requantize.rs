//! Re-quantizing a GGUF file with candle's own reader and writer, and the default model.
//!
//! SmolLM2-135M-Instruct ships as Q4_1, for which candle has only a scalar kernel; Q8_0 and Q4_0
//! have SIMD kernels. Measured here (2 cores, one thread, greedy, same prompt; see
//! `benches/results/llm-*.md`): Q8_0 keeps the Q4_1 file's greedy output token for token while
//! Q4_0 drifts from it after a few tokens, and Q8_0 decodes at least as fast as Q4_0 on this
//! small model (the output head, tied to the Q8_0 embedding, dominates). So [`DEFAULT_QUANT`] is
//! Q8_0.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use candle_core::Device;
use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use capibara_core::models::{ModelStore, Progress, ProgressEvent, SMOLLM2_135M_INSTRUCT, sha256_file};
use capibara_core::{Error, Result};

use super::gguf::GgufFile;

/// Quantizations [`requantize`] can write: the ones with fast candle CPU kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuantType {
    /// 4-bit blocks of 32 with one scale (4.5 bits per weight).
    Q4_0,
    /// 8-bit blocks of 32 with one scale (8.5 bits per weight).
    Q8_0,
}

impl QuantType {
    /// The candle type.
    pub fn ggml(self) -> GgmlDType {
        match self {
            Self::Q4_0 => GgmlDType::Q4_0,
            Self::Q8_0 => GgmlDType::Q8_0,
        }
    }

    /// The name used in file names (`Q8_0`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Q4_0 => "Q4_0",
            Self::Q8_0 => "Q8_0",
        }
    }

    /// llama.cpp's `general.file_type` (`LLAMA_FTYPE_MOSTLY_*`).
    fn file_type(self) -> u32 {
        match self {
            Self::Q4_0 => 2,
            Self::Q8_0 => 7,
        }
    }
}

/// The quantization of the default model (see the module docs for why).
pub const DEFAULT_QUANT: QuantType = QuantType::Q8_0;

/// File name of the re-quantized default model, next to the shipped Q4_1 file.
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q8_0.gguf";

/// sha256 of [`DEFAULT_MODEL_FILE`]: re-quantizing is deterministic, so the output is pinned.
pub const DEFAULT_MODEL_SHA256: &str = "257696939ce6f79563f920bafae1e7f7a5495eb9385faf510b7a67622e1fa3e7";

/// The shipped file the default model is made from.
const SOURCE_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// Writes `src` re-quantized to `to` at `dst`, keeping every metadata entry (with
/// `general.file_type` updated) and the tensor order.
///
/// Weight matrices (rank 2, not F32) are converted unless already `to`; norms and other vectors
/// stay F32, and a Q8_0 `token_embd.weight` is kept as is (the embedding is dequantized at load
/// and, tied as the output head, is where precision matters most). The file is written to a
/// temporary name beside `dst` and renamed, so a reader never sees a partial file. Blocking.
pub fn requantize(src: &Path, dst: &Path, to: QuantType) -> Result<()> {
    let GgufFile { content, mut reader, .. } = GgufFile::open(src)?;
    let shown = src.display();
    let mut infos: Vec<(&String, &gguf_file::TensorInfo)> = content.tensor_infos.iter().collect();
    infos.sort_by_key(|(name, info)| (info.offset, name.as_str()));
    let mut tensors = Vec::with_capacity(infos.len());
    for (name, info) in infos {
        let tensor = content
            .tensor(&mut reader, name, &Device::Cpu)
            .map_err(|e| Error::invalid(format!("model file {shown}: tensor `{name}`: {e}")))?;
        let converted = if converts(name, info, to) {
            tensor
                .dequantize(&Device::Cpu)
                .and_then(|weights| QTensor::quantize(&weights, to.ggml()))
                .map_err(|e| Error::internal(format!("re-quantizing `{name}` to {}: {e}", to.name())))?
        } else {
            tensor
        };
        tensors.push((name.clone(), converted));
    }
    let mut metadata: Vec<(String, Value)> = content
        .metadata
        .iter()
        // The writer aligns to GGUF's default 32 bytes, whatever the source said.
        .filter(|(key, _)| key.as_str() != "general.alignment")
        .map(|(key, value)| {
            let value = if key == "general.file_type" { Value::U32(to.file_type()) } else { value.clone() };
            (key.clone(), value)
        })
        .collect();
    // Sorted keys make the output byte-for-byte reproducible (the reader keeps them in a hash map).
    metadata.sort_by(|a, b| a.0.cmp(&b.0));
    write_atomically(dst, |writer| {
        let metadata: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
        gguf_file::write(writer, &metadata, &tensors)
            .map_err(|e| Error::internal(format!("writing GGUF: {e}")))
    })
}

fn converts(name: &str, info: &gguf_file::TensorInfo, to: QuantType) -> bool {
    let dims = info.shape.dims();
    let fits = dims.last().is_some_and(|last| last % to.ggml().block_size() == 0);
    let keep_embedding = name == "token_embd.weight" && info.ggml_dtype == GgmlDType::Q8_0;
    dims.len() == 2
        && fits
        && info.ggml_dtype != GgmlDType::F32
        && info.ggml_dtype != to.ggml()
        && !keep_embedding
}

fn write_atomically(dst: &Path, write: impl FnOnce(&mut BufWriter<File>) -> Result<()>) -> Result<()> {
    let file_name = dst.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = dst.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    let io = |e: std::io::Error| Error::internal(format!("{}: {e}", temporary.display()));
    let result = (|| {
        let mut writer = BufWriter::new(File::create(&temporary).map_err(io)?);
        write(&mut writer)?;
        writer.flush().map_err(io)?;
        writer.get_ref().sync_all().map_err(io)?;
        drop(writer);
        std::fs::rename(&temporary, dst).map_err(|e| Error::internal(format!("{}: {e}", dst.display())))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

/// Installs SmolLM2-135M-Instruct through `store` (downloading it if needed) and makes its
/// re-quantized copy ([`DEFAULT_MODEL_FILE`], [`DEFAULT_QUANT`]) beside it when that is missing
/// or does not match [`DEFAULT_MODEL_SHA256`]. Returns the re-quantized file's path. Blocking.
pub fn ensure_default_model(store: &ModelStore, progress: &mut dyn Progress) -> Result<PathBuf> {
    let installed = store.ensure(&SMOLLM2_135M_INSTRUCT, progress)?;
    let target = installed.dir.join(DEFAULT_MODEL_FILE);
    let model = SMOLLM2_135M_INSTRUCT.name.to_owned();
    let reason = match target.exists() {
        true => match sha256_file(&target)? {
            sha256 if sha256 == DEFAULT_MODEL_SHA256 => {
                progress.report(ProgressEvent::Verified { file: DEFAULT_MODEL_FILE.to_owned(), sha256 });
                return Ok(target);
            }
            sha256 => format!("{DEFAULT_MODEL_FILE} has sha256 {sha256}, expected {DEFAULT_MODEL_SHA256}"),
        },
        false => format!("{DEFAULT_MODEL_FILE} is not made yet"),
    };
    progress.report(ProgressEvent::Refetching { model: model.clone(), reason });
    requantize(&installed.path(SOURCE_FILE), &target, DEFAULT_QUANT)?;
    let sha256 = sha256_file(&target)?;
    if sha256 != DEFAULT_MODEL_SHA256 {
        return Err(Error::internal(format!(
            "{}: re-quantized file has sha256 {sha256}, expected {DEFAULT_MODEL_SHA256} (did candle's quantizer change?)",
            target.display()
        )));
    }
    progress.report(ProgressEvent::Verified { file: DEFAULT_MODEL_FILE.to_owned(), sha256 });
    progress.report(ProgressEvent::Installed { model });
    Ok(target)
}
