//! Embedded defaults: which local models a configuration needs, and making sure they are installed.
//!
//! A configuration that names no chat backend gets the local default model (when this build has
//! local-model support and `llm.local_default` is on); local backends and the local embedder
//! without a `path` get the default files from the model store, fetched on first use when
//! `models.auto_pull` allows it.

use capibara_core::config::{BackendConfig, Config, EmbeddingsConfig, LocalLlmConfig};
use capibara_core::models::{
    CATALOG, MINILM_L6_V2, ModelKind, ModelSpec, ModelStore, Progress, ProgressEvent, find,
};
use capibara_core::{Error, Result};

/// Whether this build runs chat models in-process.
pub const HAS_LOCAL_LLM: bool = cfg!(feature = "local-llm");
/// Whether this build runs the embedding model in-process.
pub const HAS_LOCAL_EMBED: bool = cfg!(feature = "local-embed");

/// Fills in the embedded defaults and the paths of default model files, installing what is missing
/// (when `models.auto_pull` allows it). Blocking: pip and hashing run on this thread.
pub fn resolve(config: &mut Config, progress: &mut dyn Progress) -> Result<()> {
    if config.llm.backends.is_empty() && config.llm.local_default && HAS_LOCAL_LLM {
        config.llm.backends.push(BackendConfig::Local(LocalLlmConfig::default()));
    }
    let store = config.models.store();
    let auto_pull = config.models.auto_pull;
    for backend in &mut config.llm.backends {
        if let BackendConfig::Local(local) = backend
            && local.path.is_none()
        {
            local.path = Some(default_chat_model(&store, auto_pull, progress)?);
        }
    }
    if let EmbeddingsConfig::Local(local) = &mut config.embeddings
        && local.path.is_none()
        && HAS_LOCAL_EMBED
    {
        local.path = Some(installed(&store, &MINILM_L6_V2, auto_pull, progress)?.dir);
    }
    Ok(())
}

/// The thread count candle's process-wide pools need for this configuration: the largest
/// `threads` of its local chat backends (1 when unset), or `None` when no local chat model will
/// run. Candle sizes its pools once, from `CANDLE_NUM_THREADS`/`RAYON_NUM_THREADS`, so a program
/// sets them from this before it starts any thread (see `capibara_llm::local::threads`).
pub fn candle_threads(config: &Config) -> Option<usize> {
    if !HAS_LOCAL_LLM {
        return None;
    }
    if config.llm.backends.is_empty() && config.llm.local_default {
        return Some(1);
    }
    config
        .llm
        .backends
        .iter()
        .filter_map(|backend| match backend {
            BackendConfig::Local(local) => Some(local.threads.unwrap_or(1)),
            _ => None,
        })
        .max()
}

/// `capibara models pull [NAME…]`: installs the named catalog models, or all of them; the chat
/// model is also re-quantized for fast CPU inference when this build runs it.
pub fn pull(store: &ModelStore, names: &[String], progress: &mut dyn Progress) -> Result<()> {
    for spec in selected(names)? {
        if spec.kind == ModelKind::Chat && HAS_LOCAL_LLM {
            default_chat_model(store, true, progress)?;
        } else {
            store.ensure(spec, progress)?;
        }
    }
    Ok(())
}

/// `capibara models verify [NAME…]`: re-hashes the installed files of the named (or all
/// installed) models against their pins.
pub fn verify(store: &ModelStore, names: &[String], progress: &mut dyn Progress) -> Result<()> {
    let specs = if names.is_empty() {
        store.list()?.into_iter().filter(|(_, installed)| installed.is_some()).map(|(spec, _)| spec).collect()
    } else {
        selected(names)?
    };
    if specs.is_empty() {
        return Err(Error::NotFound("no model is installed; run `capibara models pull`".to_owned()));
    }
    for spec in specs {
        store.verify(spec, progress)?;
        progress.report(ProgressEvent::Installed { model: spec.name.to_owned() });
    }
    Ok(())
}

/// `capibara models list`: every catalog model, whether it is installed, where, sizes and hashes.
pub fn list(store: &ModelStore) -> Result<String> {
    use std::fmt::Write as _;
    let mut out = format!("model store: {}\n", store.home().display());
    for (spec, installed) in store.list()? {
        let status = if installed.is_some() { "installed" } else { "not installed" };
        let _ = writeln!(
            out,
            "\n{} ({:?}, {}) — {}\n  from PyPI {}=={}, licence {}",
            spec.name, spec.kind, spec.model_id, status, spec.package, spec.version, spec.license
        );
        let dir = store.model_dir(spec);
        for file in spec.files {
            let present = installed.as_ref().is_some_and(|m| m.files.iter().any(|f| f.name == file.name));
            let mark = if present { "ok" } else { "missing" };
            let _ = writeln!(
                out,
                "  {mark:7} {:>9}  {}  {}",
                human_size(file.size),
                file.sha256,
                dir.join(file.name).display()
            );
        }
        for derived in derived_files(spec) {
            let path = dir.join(derived.0);
            let size = std::fs::metadata(&path).map(|m| m.len()).ok();
            let mark = if size.is_some() { "made" } else { "missing" };
            let size = size.map_or_else(|| "-".to_owned(), human_size);
            let _ = writeln!(out, "  {mark:7} {size:>9}  {}  {}", derived.1, path.display());
        }
    }
    Ok(out)
}

fn selected(names: &[String]) -> Result<Vec<&'static ModelSpec>> {
    if names.is_empty() {
        return Ok(CATALOG.to_vec());
    }
    names
        .iter()
        .map(|name| {
            find(name).ok_or_else(|| {
                let known: Vec<&str> = CATALOG.iter().map(|s| s.name).collect();
                Error::NotFound(format!("no model `{name}` in the catalog; known: {}", known.join(", ")))
            })
        })
        .collect()
}

/// Files made from a model at install time (name, pinned sha256).
fn derived_files(spec: &ModelSpec) -> Vec<(&'static str, &'static str)> {
    #[cfg(feature = "local-llm")]
    if spec.kind == ModelKind::Chat {
        use capibara_llm::local::{DEFAULT_MODEL_FILE, DEFAULT_MODEL_SHA256};
        return vec![(DEFAULT_MODEL_FILE, DEFAULT_MODEL_SHA256)];
    }
    let _ = spec;
    Vec::new()
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1} kB", b as f64 / f64::from(1 << 10)),
        b => format!("{b} B"),
    }
}

fn installed(
    store: &ModelStore,
    spec: &'static ModelSpec,
    auto_pull: bool,
    progress: &mut dyn Progress,
) -> Result<capibara_core::models::InstalledModel> {
    if auto_pull {
        return store.ensure(spec, progress);
    }
    store.installed(spec)?.ok_or_else(|| not_installed(store, spec))
}

#[cfg(feature = "local-llm")]
fn default_chat_model(
    store: &ModelStore,
    auto_pull: bool,
    progress: &mut dyn Progress,
) -> Result<std::path::PathBuf> {
    use capibara_core::models::SMOLLM2_135M_INSTRUCT;
    if !auto_pull && store.installed(&SMOLLM2_135M_INSTRUCT)?.is_none() {
        return Err(not_installed(store, &SMOLLM2_135M_INSTRUCT));
    }
    // Only re-quantizes (locally) when the download is already there.
    capibara_llm::local::ensure_default_model(store, progress)
}

#[cfg(not(feature = "local-llm"))]
fn default_chat_model(
    _store: &ModelStore,
    _auto_pull: bool,
    _progress: &mut dyn Progress,
) -> Result<std::path::PathBuf> {
    Err(Error::invalid(
        "a local chat backend without `path` needs the default model, which this build cannot run: \
         rebuild with `--features local-llm` (as `make run` does)",
    ))
}

fn not_installed(store: &ModelStore, spec: &ModelSpec) -> Error {
    Error::unavailable(format!(
        "model `{}` is not installed in {} and models.auto_pull is off: run `capibara models pull`",
        spec.name,
        store.home().display()
    ))
}

/// Progress as lines: one per step, one per 10 % of a long file; to stderr (the CLI) or to the log
/// (the server's first-run pull).
#[derive(Debug, Default)]
pub struct LineProgress {
    last_percent: u64,
    to_log: bool,
}

impl LineProgress {
    /// Lines on stderr.
    pub fn stderr() -> Self {
        Self::default()
    }

    /// Lines as `info` log events.
    pub fn log() -> Self {
        Self { last_percent: 0, to_log: true }
    }
}

impl Progress for LineProgress {
    fn report(&mut self, event: ProgressEvent) {
        let line = match event {
            ProgressEvent::AlreadyInstalled { model } => format!("{model}: installed"),
            ProgressEvent::Refetching { model, reason } => format!("{model}: fetching ({reason})"),
            ProgressEvent::Downloading { package, bytes } => {
                format!("{package}: downloading {:.0} MB with pip", bytes as f64 / 1e6)
            }
            ProgressEvent::Downloaded { package, seconds } => {
                format!("{package}: downloaded in {seconds:.1} s")
            }
            ProgressEvent::Bytes { file, done, total } => {
                let percent = (done * 100).checked_div(total).unwrap_or(100);
                if percent / 10 == self.last_percent / 10 && percent != 100 {
                    return;
                }
                self.last_percent = if percent == 100 { 0 } else { percent };
                format!("  {file}: {percent}% of {:.0} MB", total as f64 / 1e6)
            }
            ProgressEvent::Verified { file, sha256 } => format!("  {file}: sha256 {sha256} ok"),
            ProgressEvent::Installed { model } => format!("{model}: ready"),
        };
        if self.to_log {
            tracing::info!(target: "capibara::models", "{}", line.trim_start());
        } else {
            eprintln!("{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_backend_list_is_left_alone() {
        let mut config =
            crate::settings::from_toml("[[llm.backends]]\nkind = \"ollama\"\n[embeddings]\nkind = \"none\"")
                .unwrap();
        let before = config.clone();
        resolve(&mut config, &mut capibara_core::models::NoProgress).unwrap();
        assert_eq!(config, before);
    }

    #[test]
    fn without_auto_pull_a_missing_model_says_how_to_get_it() {
        let home = tempfile::tempdir().unwrap();
        let mut config = crate::settings::from_toml(&format!(
            "[models]\nhome = \"{}\"\nauto_pull = false\n[llm]\nlocal_default = false",
            home.path().display()
        ))
        .unwrap();
        let result = resolve(&mut config, &mut capibara_core::models::NoProgress);
        if HAS_LOCAL_EMBED {
            let err = result.unwrap_err();
            assert!(err.to_string().contains("capibara models pull"), "{err}");
        } else {
            result.unwrap();
        }
    }

    #[test]
    fn candle_pools_follow_the_local_backends() {
        let remote = crate::settings::from_toml("[[llm.backends]]\nkind = \"ollama\"").unwrap();
        assert_eq!(candle_threads(&remote), None);
        let none = crate::settings::from_toml("[llm]\nlocal_default = false").unwrap();
        assert_eq!(candle_threads(&none), None);
        let default = crate::settings::from_toml("").unwrap();
        let mixed = crate::settings::from_toml(
            "[[llm.backends]]\nkind = \"local\"\npath = \"/m/a.gguf\"\n\
             [[llm.backends]]\nkind = \"local\"\npath = \"/m/b.gguf\"\nthreads = 2\n\
             [[llm.backends]]\nkind = \"ollama\"",
        )
        .unwrap();
        if HAS_LOCAL_LLM {
            assert_eq!(candle_threads(&default), Some(1));
            assert_eq!(candle_threads(&mixed), Some(2));
        } else {
            assert_eq!(candle_threads(&default), None);
            assert_eq!(candle_threads(&mixed), None);
        }
    }
}
