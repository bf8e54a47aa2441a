//! What every embedded store shares, whatever searches its collections: the collections by name,
//! the data directory and its lock, validation and limits, durable writes through the snapshot and
//! write-ahead log, and where work runs. A store is a [`Store`] over an [`Engine`], the in-memory
//! form of one collection: [`Collection`] itself for `ExactStore`, the records with a graph over
//! them for `HnswStore`.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use capibara_core::vector::{ScoredRecord, VectorQuery, VectorRecord, validate_collection_name};
use capibara_core::{Error, Result};

use super::collection::Collection;
use super::persist::{Durable, io_error};
use super::topk::Hit;
use super::wal::Apply;
use super::{BLOCKING_SCAN_ROWS, MAX_BATCH, MAX_DIMENSION, MAX_METADATA_BYTES, MAX_QUERIES, MAX_TEXT_BYTES};
use super::{ExactStoreOptions, filter, search};

/// The file in a data directory that one process at a time holds a lock on.
const LOCK_FILE: &str = "LOCK";

/// One collection in memory as a store searches it. Writes arrive through [`Apply`], validated
/// and deduplicated, after they are durable.
pub(crate) trait Engine: Apply + Send + Sync + Sized + 'static {
    /// What every collection of one store is made with: the store's options.
    type Settings: StoreOptions;
    /// Whether writes run on tokio's blocking threads even in memory (they do costly work).
    const BLOCKING_WRITES: bool;

    /// The engine over `records`. For a persisted collection `files` is its directory and the
    /// generation of the snapshot the records come from (the log is replayed afterwards).
    fn load(records: Collection, settings: &Self::Settings, files: Option<(&Path, u64)>) -> Result<Self>;
    /// The records.
    fn records(&self) -> &Collection;
    /// The best `query.k` records for an already validated query, best first.
    fn search(&self, query: &VectorQuery) -> Result<Vec<Hit>>;
    /// [`Engine::search`] for each query, in order.
    fn search_many(&self, queries: &[VectorQuery]) -> Result<Vec<Vec<Hit>>>;
    /// About how many rows one search scores; over [`BLOCKING_SCAN_ROWS`] it runs on a blocking
    /// thread.
    fn scan_rows(&self) -> usize;
    /// Called once a snapshot of `generation` is in `dir`, to write what belongs beside it.
    fn compacted(&self, _dir: &Path, _generation: u64) -> Result<()> {
        Ok(())
    }
}

/// What a store's options say about its files.
pub(crate) trait StoreOptions: Clone + Send + Sync + 'static {
    /// A collection is compacted once its log is larger than both its snapshot and this.
    fn compaction_min_wal_bytes(&self) -> u64;
}

impl StoreOptions for ExactStoreOptions {
    fn compaction_min_wal_bytes(&self) -> u64 {
        self.compaction_min_wal_bytes
    }
}

impl Engine for Collection {
    type Settings = ExactStoreOptions;
    const BLOCKING_WRITES: bool = false;

    fn load(records: Collection, _: &ExactStoreOptions, _: Option<(&Path, u64)>) -> Result<Self> {
        Ok(records)
    }
    fn records(&self) -> &Collection {
        self
    }
    fn search(&self, query: &VectorQuery) -> Result<Vec<Hit>> {
        Ok(search::search(self, query))
    }
    fn search_many(&self, queries: &[VectorQuery]) -> Result<Vec<Vec<Hit>>> {
        search::search_many(self, queries)
    }
    fn scan_rows(&self) -> usize {
        self.len()
    }
}

/// The collections of one store. Cloning is cheap and shares them.
pub(crate) struct Store<E: Engine> {
    inner: Arc<Inner<E>>,
}

impl<E: Engine> Clone for Store<E> {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner) }
    }
}

struct Inner<E: Engine> {
    root: Option<PathBuf>,
    compaction_min_wal_bytes: u64,
    settings: E::Settings,
    collections: RwLock<HashMap<String, Arc<Shared<E>>>>,
    /// Serialises creating collections (which may write files).
    creating: Mutex<()>,
    /// Held for the store's life: another process (or store) on the same directory is refused.
    _lock: Option<File>,
}

/// One collection and, when persisted, its files.
struct Shared<E> {
    name: String,
    dimension: usize,
    data: RwLock<E>,
    /// Taken before `data` by writers, so that log order is apply order.
    durable: Option<Mutex<Durable>>,
    compaction_min_wal_bytes: u64,
}

fn poisoned(what: &str) -> Error {
    Error::internal(format!("vector store: {what} lock poisoned by an earlier panic"))
}

fn read<T>(lock: &RwLock<T>) -> Result<RwLockReadGuard<'_, T>> {
    lock.read().map_err(|_| poisoned("collection"))
}

fn write<T>(lock: &RwLock<T>) -> Result<RwLockWriteGuard<'_, T>> {
    lock.write().map_err(|_| poisoned("collection"))
}

fn lock<T>(mutex: &Mutex<T>) -> Result<MutexGuard<'_, T>> {
    mutex.lock().map_err(|_| poisoned("store"))
}

/// Runs `task` on tokio's blocking threads when inside a runtime, else right here.
async fn run_blocking<T: Send + 'static>(task: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => runtime
            .spawn_blocking(task)
            .await
            .map_err(|error| Error::internal(format!("vector store task failed: {error}")))?,
        Err(_) => task(),
    }
}

impl<E: Engine> Store<E> {
    /// A store that keeps nothing on disk.
    pub(crate) fn in_memory(settings: E::Settings) -> Self {
        Self::new(None, settings, None)
    }

    /// Opens (creating it if missing) the data directory `dir` and loads every collection in it.
    /// Fails with [`Error::Unavailable`] when another process (or store) has the directory open,
    /// and with [`Error::Internal`] when a snapshot or a log header is damaged.
    pub(crate) fn open(dir: &Path, settings: E::Settings) -> Result<Self> {
        let root = dir.to_owned();
        let _span = tracing::info_span!("vector_store_open", path = %root.display()).entered();
        std::fs::create_dir_all(&root).map_err(|e| io_error("creating", &root, &e))?;
        let lock_path = root.join(LOCK_FILE);
        let lock_file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io_error("opening", &lock_path, &e))?;
        lock_file.try_lock().map_err(|error| match error {
            std::fs::TryLockError::WouldBlock => {
                Error::unavailable(format!("the vector store {} is open in another process", root.display()))
            }
            std::fs::TryLockError::Error(error) => io_error("locking", &lock_path, &error),
        })?;

        let compaction_min_wal_bytes = settings.compaction_min_wal_bytes();
        let store = Self::new(Some(root.clone()), settings, Some(lock_file));
        let entries = std::fs::read_dir(&root).map_err(|e| io_error("listing", &root, &e))?;
        let mut collections = HashMap::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error("listing", &root, &e))?;
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
            if !path.is_dir() || validate_collection_name(&name).is_err() {
                continue;
            }
            let started = std::time::Instant::now();
            let settings = &store.inner.settings;
            let load = |records, generation| E::load(records, settings, Some((&path, generation)));
            let Some((data, durable)) = Durable::open_into(&path, load)? else {
                tracing::warn!(path = %path.display(), "vector store: skipping a collection directory without a snapshot");
                continue;
            };
            tracing::info!(
                collection = %name,
                records = data.records().len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "vector store: collection loaded"
            );
            let shared = Shared {
                name: name.clone(),
                dimension: data.records().dimension(),
                data: RwLock::new(data),
                durable: Some(Mutex::new(durable)),
                compaction_min_wal_bytes,
            };
            collections.insert(name, Arc::new(shared));
        }
        *write(&store.inner.collections)? = collections;
        Ok(store)
    }

    fn new(root: Option<PathBuf>, settings: E::Settings, lock: Option<File>) -> Self {
        let inner = Inner {
            root,
            compaction_min_wal_bytes: settings.compaction_min_wal_bytes(),
            settings,
            collections: RwLock::default(),
            creating: Mutex::new(()),
            _lock: lock,
        };
        Self { inner: Arc::new(inner) }
    }

    /// The data directory, for a persisted store.
    pub(crate) fn path(&self) -> Option<&Path> {
        self.inner.root.as_deref()
    }

    /// The names of the collections, sorted.
    pub(crate) fn collections(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = read(&self.inner.collections)?.keys().cloned().collect();
        names.sort();
        Ok(names)
    }

    /// Compacts a persisted collection now (new snapshot, empty log); nothing for an in-memory one.
    pub(crate) async fn compact(&self, collection: &str) -> Result<()> {
        let shared = self.collection(collection)?;
        run_blocking(move || {
            let Some(durable) = &shared.durable else { return Ok(()) };
            let mut durable = lock(durable)?;
            compact(&mut durable, &*read(&shared.data)?)
        })
        .await
    }

    fn collection(&self, name: &str) -> Result<Arc<Shared<E>>> {
        validate_collection_name(name)?;
        read(&self.inner.collections)?
            .get(name)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("collection '{name}'")))
    }

    /// Creates the collection unless it exists; blocking when persisted.
    fn create(inner: &Inner<E>, name: &str, dimension: usize) -> Result<()> {
        let _creating = lock(&inner.creating)?;
        if let Some(existing) = read(&inner.collections)?.get(name) {
            return check_dimension(existing, dimension);
        }
        let durable = match &inner.root {
            Some(root) => Some(Durable::create(&root.join(name), dimension)?),
            None => None,
        };
        let files = durable.as_ref().map(|durable| (durable.dir(), durable.generation()));
        let data = E::load(Collection::new(dimension), &inner.settings, files)?;
        let shared = Shared {
            name: name.to_owned(),
            dimension,
            data: RwLock::new(data),
            durable: durable.map(Mutex::new),
            compaction_min_wal_bytes: inner.compaction_min_wal_bytes,
        };
        write(&inner.collections)?.insert(name.to_owned(), Arc::new(shared));
        Ok(())
    }

    /// [`VectorStore::ensure_collection`](capibara_core::vector::VectorStore::ensure_collection).
    pub(crate) async fn ensure_collection(&self, collection: &str, dimension: usize) -> Result<()> {
        validate_collection_name(collection)?;
        if !(1..=MAX_DIMENSION).contains(&dimension) {
            return Err(Error::invalid(format!(
                "dimension must be between 1 and {MAX_DIMENSION}, got {dimension}"
            )));
        }
        if let Some(existing) = read(&self.inner.collections)?.get(collection) {
            return check_dimension(existing, dimension);
        }
        let inner = Arc::clone(&self.inner);
        let name = collection.to_owned();
        if inner.root.is_some() {
            run_blocking(move || Self::create(&inner, &name, dimension)).await
        } else {
            Self::create(&inner, &name, dimension)
        }
    }

    /// [`VectorStore::upsert`](capibara_core::vector::VectorStore::upsert).
    pub(crate) async fn upsert(&self, collection: &str, records: Vec<VectorRecord>) -> Result<()> {
        let shared = self.collection(collection)?;
        check_batch("records", records.len(), MAX_BATCH)?;
        for record in &records {
            check_record(record, shared.dimension).map_err(|e| e.context(&shared.context()))?;
        }
        if records.is_empty() {
            return Ok(());
        }
        let records = last_wins(records);
        // Persisted writes wait for fsync; big in-memory ones copy megabytes: both off the workers.
        if E::BLOCKING_WRITES
            || shared.durable.is_some()
            || records.len() * shared.dimension > BLOCKING_SCAN_ROWS * 64
        {
            run_blocking(move || shared.upsert(records)).await
        } else {
            shared.upsert(records)
        }
    }

    /// [`VectorStore::search`](capibara_core::vector::VectorStore::search).
    pub(crate) async fn search(&self, collection: &str, query: &VectorQuery) -> Result<Vec<ScoredRecord>> {
        let shared = self.collection(collection)?;
        if read(&shared.data)?.scan_rows() <= BLOCKING_SCAN_ROWS {
            return shared.search(query);
        }
        let query = query.clone();
        run_blocking(move || shared.search(&query)).await
    }

    /// [`VectorStore::search_many`](capibara_core::vector::VectorStore::search_many).
    pub(crate) async fn search_many(
        &self,
        collection: &str,
        queries: &[VectorQuery],
    ) -> Result<Vec<Vec<ScoredRecord>>> {
        let shared = self.collection(collection)?;
        check_batch("queries", queries.len(), MAX_QUERIES)?;
        if read(&shared.data)?.scan_rows().saturating_mul(queries.len()) <= BLOCKING_SCAN_ROWS {
            return shared.search_many(queries);
        }
        let queries = queries.to_vec();
        run_blocking(move || shared.search_many(&queries)).await
    }

    /// [`VectorStore::get`](capibara_core::vector::VectorStore::get).
    pub(crate) async fn get(&self, collection: &str, ids: &[String]) -> Result<Vec<VectorRecord>> {
        let shared = self.collection(collection)?;
        check_batch("ids", ids.len(), MAX_BATCH)?;
        let data = read(&shared.data)?;
        let mut seen = std::collections::HashSet::with_capacity(ids.len());
        Ok(ids.iter().filter(|id| seen.insert(id.as_str())).filter_map(|id| data.records().get(id)).collect())
    }

    /// [`VectorStore::delete`](capibara_core::vector::VectorStore::delete).
    pub(crate) async fn delete(&self, collection: &str, ids: &[String]) -> Result<u64> {
        let shared = self.collection(collection)?;
        check_batch("ids", ids.len(), MAX_BATCH)?;
        if ids.is_empty() {
            return Ok(0);
        }
        if E::BLOCKING_WRITES || shared.durable.is_some() {
            let ids = ids.to_vec();
            run_blocking(move || shared.delete(&ids)).await
        } else {
            shared.delete(ids)
        }
    }

    /// [`VectorStore::count`](capibara_core::vector::VectorStore::count).
    pub(crate) async fn count(&self, collection: &str) -> Result<u64> {
        Ok(self.collection(collection)?.len()? as u64)
    }
}

/// A new snapshot of `data`, and then what the engine keeps beside it.
fn compact<E: Engine>(durable: &mut Durable, data: &E) -> Result<()> {
    durable.compact(data.records())?;
    data.compacted(durable.dir(), durable.generation())
}

fn check_dimension<E>(existing: &Shared<E>, dimension: usize) -> Result<()> {
    if existing.dimension == dimension {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "collection '{}' exists with dimension {}, not {dimension}",
        existing.name, existing.dimension
    )))
}

/// Counts bytes written (the size of serialised metadata without keeping it).
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Checks the store's per-record limits on top of [`VectorRecord::validate`].
fn check_record(record: &VectorRecord, dimension: usize) -> Result<()> {
    record.validate(dimension)?;
    if record.text.len() > MAX_TEXT_BYTES {
        return Err(Error::TooLarge(format!(
            "record {:?}: text has {} bytes, the limit is {MAX_TEXT_BYTES} (1 MiB)",
            record.id,
            record.text.len()
        )));
    }
    let mut size = ByteCount(0);
    serde_json::to_writer(&mut size, &record.metadata)?;
    if size.0 > MAX_METADATA_BYTES {
        return Err(Error::TooLarge(format!(
            "record {:?}: metadata has {} bytes as JSON, the limit is {MAX_METADATA_BYTES} (64 KiB)",
            record.id, size.0
        )));
    }
    Ok(())
}

pub(super) fn check_batch(what: &str, len: usize, limit: usize) -> Result<()> {
    if len > limit {
        return Err(Error::TooLarge(format!("{len} {what} in one call; the limit is {limit}")));
    }
    Ok(())
}

/// Keeps the last record of each id, in the order of those last occurrences.
pub(super) fn last_wins(records: Vec<VectorRecord>) -> Vec<VectorRecord> {
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        last.insert(&record.id, i);
    }
    if last.len() == records.len() {
        return records;
    }
    let keep: Vec<bool> =
        records.iter().enumerate().map(|(i, record)| last.get(record.id.as_str()) == Some(&i)).collect();
    records.into_iter().zip(keep).filter_map(|(record, keep)| keep.then_some(record)).collect()
}

impl<E: Engine> Shared<E> {
    fn len(&self) -> Result<usize> {
        Ok(read(&self.data)?.records().len())
    }

    fn context(&self) -> String {
        format!("collection '{}'", self.name)
    }

    fn upsert(&self, records: Vec<VectorRecord>) -> Result<()> {
        let Some(durable) = &self.durable else {
            write(&self.data)?.upsert(records);
            return Ok(());
        };
        let mut durable = lock(durable)?;
        let op = durable.log_upsert(records)?;
        op.apply(&mut *write(&self.data)?);
        self.compact_if_due(&mut durable);
        Ok(())
    }

    fn delete(&self, ids: &[String]) -> Result<u64> {
        let Some(durable) = &self.durable else {
            return Ok(write(&self.data)?.delete(ids));
        };
        let mut durable = lock(durable)?;
        // Writers hold `durable`, so the records cannot change between this look and the apply.
        let mut existing: Vec<String> = {
            let data = read(&self.data)?;
            ids.iter().filter(|id| data.records().contains(id)).cloned().collect()
        };
        existing.sort_unstable();
        existing.dedup();
        if existing.is_empty() {
            return Ok(0);
        }
        let op = durable.log_delete(existing)?;
        let deleted = op.apply(&mut *write(&self.data)?);
        self.compact_if_due(&mut durable);
        Ok(deleted)
    }

    /// Compacts when the log has grown enough; a failure is logged, not returned (the write
    /// itself is durable, and the next write tries again).
    fn compact_if_due(&self, durable: &mut Durable) {
        if !durable.should_compact(self.compaction_min_wal_bytes) {
            return;
        }
        let result = read(&self.data).and_then(|data| compact(durable, &*data));
        if let Err(error) = result {
            tracing::warn!(collection = %self.name, %error, "vector store: compaction failed");
        }
    }

    fn records(data: &Collection, hits: Vec<Hit>) -> Vec<ScoredRecord> {
        hits.into_iter().map(|hit| ScoredRecord { record: data.record(hit.slot), score: hit.score }).collect()
    }

    fn check_query(&self, data: &Collection, query: &VectorQuery) -> Result<()> {
        query.validate(self.dimension)?;
        match &query.filter {
            Some(filter) if data.len() > 0 => filter::check_fields(filter, data, &self.name),
            _ => Ok(()),
        }
    }

    fn search(&self, query: &VectorQuery) -> Result<Vec<ScoredRecord>> {
        let data = read(&self.data)?;
        self.check_query(data.records(), query).map_err(|e| e.context(&self.context()))?;
        let hits = data.search(query)?;
        Ok(Self::records(data.records(), hits))
    }

    fn search_many(&self, queries: &[VectorQuery]) -> Result<Vec<Vec<ScoredRecord>>> {
        let data = read(&self.data)?;
        for (i, query) in queries.iter().enumerate() {
            self.check_query(data.records(), query)
                .map_err(|e| e.context(&format!("{}, query {i}", self.context())))?;
        }
        let hits = data.search_many(queries)?;
        Ok(hits.into_iter().map(|hits| Self::records(data.records(), hits)).collect())
    }
}
