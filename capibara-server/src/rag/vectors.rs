//! The vector store `[retrieval.store]` names, opened over its directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use capibara_core::config::VectorStoreConfig;
use capibara_core::vector::VectorStore;
use capibara_core::{Error, Result};
use capibara_rag::vector::ExactStore;

/// Opens the configured store; relative or missing paths are under `data_dir`. Opening the
/// embedded stores reads snapshots and logs from disk, so it runs on a blocking thread; Milvus is
/// connected to (`Unavailable` when it does not answer).
pub async fn open(config: &VectorStoreConfig, data_dir: &Path) -> Result<Arc<dyn VectorStore>> {
    if let VectorStoreConfig::Milvus(settings) = config {
        return open_milvus(settings).await;
    }
    let config = config.clone();
    let data_dir = data_dir.to_owned();
    tokio::task::spawn_blocking(move || open_blocking(&config, &data_dir))
        .await
        .map_err(|e| Error::internal(format!("opening the vector store failed: {e}")))?
}

fn open_blocking(config: &VectorStoreConfig, data_dir: &Path) -> Result<Arc<dyn VectorStore>> {
    match config {
        VectorStoreConfig::Exact { path } => {
            let dir = resolve(path.as_deref(), data_dir, "vectors");
            Ok(Arc::new(ExactStore::open(&dir).map_err(|e| e.context("retrieval.store (exact)"))?))
        }
        VectorStoreConfig::Hnsw { path, m, ef_construction, ef_search } => {
            let dir = resolve(path.as_deref(), data_dir, "vectors-hnsw");
            open_hnsw(&dir, *m, *ef_construction, *ef_search)
        }
        VectorStoreConfig::Faiss { path, index, m, ef_construction, ef_search } => {
            let dir = resolve(path.as_deref(), data_dir, "vectors-faiss");
            open_faiss(&dir, *index, *m, *ef_construction, *ef_search)
        }
        VectorStoreConfig::Milvus(_) => Err(Error::internal("Milvus is opened asynchronously")),
    }
}

#[cfg(feature = "faiss")]
fn open_faiss(
    dir: &Path,
    index: capibara_core::config::FaissIndexKind,
    m: usize,
    ef_construction: usize,
    ef_search: usize,
) -> Result<Arc<dyn VectorStore>> {
    use capibara_core::config::FaissIndexKind;
    use capibara_rag::vector::{FaissHnsw, FaissIndex, FaissStore};
    let index = match index {
        FaissIndexKind::Flat => FaissIndex::Flat,
        FaissIndexKind::Hnsw => FaissIndex::Hnsw(FaissHnsw { m, ef_construction, ef_search }),
    };
    Ok(Arc::new(FaissStore::open(dir, index).map_err(|e| e.context("retrieval.store (faiss)"))?))
}

#[cfg(not(feature = "faiss"))]
fn open_faiss(
    _: &Path,
    _: capibara_core::config::FaissIndexKind,
    _: usize,
    _: usize,
    _: usize,
) -> Result<Arc<dyn VectorStore>> {
    Err(Error::unavailable(
        "retrieval.store kind \"faiss\" needs a build with the `faiss` feature \
         (cargo build -p capibara-server --features faiss)",
    ))
}

#[cfg(feature = "milvus")]
async fn open_milvus(settings: &serde_json::Map<String, serde_json::Value>) -> Result<Arc<dyn VectorStore>> {
    use capibara_rag::vector::{MilvusConfig, MilvusStore};
    let mut settings = settings.clone();
    // The defaults layer of the configuration holds `path = null` for the embedded store: not a key
    // anyone wrote, so not an unknown one.
    if settings.get("path").is_some_and(serde_json::Value::is_null) {
        settings.remove("path");
    }
    let config: MilvusConfig = serde_json::from_value(serde_json::Value::Object(settings))
        .map_err(|e| Error::invalid(format!("retrieval.store (milvus): {e}")))?;
    config.validate()?;
    Ok(Arc::new(MilvusStore::connect(config).await.map_err(|e| e.context("retrieval.store (milvus)"))?))
}

#[cfg(not(feature = "milvus"))]
async fn open_milvus(_: &serde_json::Map<String, serde_json::Value>) -> Result<Arc<dyn VectorStore>> {
    Err(Error::unavailable(
        "retrieval.store kind \"milvus\" needs a build with the `milvus` feature \
         (cargo build -p capibara-server --features milvus)",
    ))
}

fn resolve(path: Option<&Path>, data_dir: &Path, default: &str) -> PathBuf {
    match path {
        Some(path) if path.is_absolute() => path.to_owned(),
        Some(path) => data_dir.join(path),
        None => data_dir.join(default),
    }
}

#[cfg(feature = "hnsw")]
fn open_hnsw(dir: &Path, m: usize, ef_construction: usize, ef_search: usize) -> Result<Arc<dyn VectorStore>> {
    use capibara_rag::vector::{HnswStore, HnswStoreOptions};
    let options = HnswStoreOptions { m, ef_construction, ef_search, ..HnswStoreOptions::default() };
    Ok(Arc::new(HnswStore::open_with(dir, options).map_err(|e| e.context("retrieval.store (hnsw)"))?))
}

#[cfg(not(feature = "hnsw"))]
fn open_hnsw(_: &Path, _: usize, _: usize, _: usize) -> Result<Arc<dyn VectorStore>> {
    Err(Error::unavailable(
        "retrieval.store kind \"hnsw\" needs a build with the `hnsw` feature \
         (cargo build -p capibara-server --features hnsw)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_default_under_the_data_dir() {
        let data = Path::new("/srv/capibara");
        assert_eq!(resolve(None, data, "vectors"), data.join("vectors"));
        assert_eq!(resolve(Some(Path::new("v2")), data, "vectors"), data.join("v2"));
        assert_eq!(resolve(Some(Path::new("/mnt/v")), data, "vectors"), PathBuf::from("/mnt/v"));
    }

    #[cfg(all(feature = "faiss", feature = "hnsw"))]
    #[tokio::test]
    async fn every_embedded_kind_opens_from_its_configuration() {
        let dir = tempfile::tempdir().unwrap();
        for (text, subdir) in [
            ("kind = \"hnsw\"\nef_search = 32", "vectors-hnsw"),
            ("kind = \"faiss\"", "vectors-faiss"),
            ("kind = \"faiss\"\nindex = \"hnsw\"\npath = \"faiss-hnsw\"", "faiss-hnsw"),
        ] {
            let config: VectorStoreConfig = toml::from_str(text).unwrap();
            let store = open(&config, dir.path()).await.unwrap();
            store.ensure_collection("docs", 4).await.unwrap();
            assert!(dir.path().join(subdir).join("docs").exists(), "{text}");
        }
    }

    #[tokio::test]
    async fn the_exact_store_opens_and_persists_under_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&VectorStoreConfig::default(), dir.path()).await.unwrap();
        store.ensure_collection("docs", 4).await.unwrap();
        drop(store);
        assert!(dir.path().join("vectors").join("docs").exists());
        let reopened = open(&VectorStoreConfig::default(), dir.path()).await.unwrap();
        assert_eq!(reopened.count("docs").await.unwrap(), 0);
    }
}
