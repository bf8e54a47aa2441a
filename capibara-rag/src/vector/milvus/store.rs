//! [`MilvusStore`]: connecting, the collections this store has opened, and the writes.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use capibara_core::vector::{ScoredRecord, VectorQuery, VectorRecord, VectorStore, validate_collection_name};
use capibara_core::{Error, Result};
use milvus::v2::prelude::*;

use super::errors::{map, timed};
use super::expr::{ID_FIELD, ids_expr};
use super::{MilvusConfig, MilvusConsistency, MilvusIndex, records, schema};
use crate::vector::store::{check_batch, last_wins};
use crate::vector::{MAX_BATCH, MAX_DIMENSION};

/// The most bytes of records sent in one upsert request; bigger batches are split.
const MAX_REQUEST_BYTES: usize = 8 << 20;

/// The most ids listed in one get or delete expression.
pub(super) const IDS_PER_REQUEST: usize = 256;

/// The most bytes of records one answer is planned to hold: the client refuses answers over
/// 4 MiB, so reads are sized from the largest record seen to stay below.
const ANSWER_BUDGET: usize = 3 << 20;

/// The client's limit on one answer.
pub(super) const ANSWER_LIMIT: usize = 4 << 20;

/// A [`VectorStore`] on a Milvus 2.3+ server; see the [module docs](crate::vector::milvus) for the mapping of
/// records to fields, filters to expressions, and consistency. Cloning is cheap and shares the
/// connection.
#[derive(Clone)]
pub struct MilvusStore {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) client: ClientV2,
    pub(super) config: MilvusConfig,
    /// The collections opened so far: their dimension and what this store learnt about them.
    collections: RwLock<HashMap<String, Arc<Collection>>>,
}

/// What this store knows about one collection.
#[derive(Debug)]
pub(super) struct Collection {
    pub(super) name: String,
    pub(super) dimension: usize,
    /// The index searches are parameterised for (the one the collection has).
    pub(super) index: MilvusIndex,
    /// Whether this store has written to it: its reads then wait for those writes.
    written: AtomicBool,
    /// Metadata fields some record is known to carry (grows only; see the module docs).
    known_fields: RwLock<HashSet<String>>,
    /// The largest record seen, in bytes on the wire (a guess until one is written or an answer
    /// turns out too large).
    record_bytes: AtomicUsize,
}

impl Collection {
    pub(super) fn read_level(&self, consistency: MilvusConsistency) -> ConsistencyLevel {
        consistency.read_level(self.written.load(Ordering::Acquire))
    }

    pub(super) fn knows_field(&self, field: &str) -> bool {
        self.known_fields.read().is_ok_and(|fields| fields.contains(field))
    }

    pub(super) fn learn_fields<'a>(&self, fields: impl IntoIterator<Item = &'a str>) {
        if let Ok(mut known) = self.known_fields.write() {
            for field in fields {
                if !known.contains(field) {
                    known.insert(field.to_owned());
                }
            }
        }
    }

    /// Records a record of about `bytes` bytes.
    pub(super) fn note_record_bytes(&self, bytes: usize) {
        self.record_bytes.fetch_max(bytes, Ordering::Relaxed);
    }

    /// How many records one answer can carry.
    pub(super) fn records_per_answer(&self) -> usize {
        (ANSWER_BUDGET / self.record_bytes.load(Ordering::Relaxed).max(1)).max(1)
    }

    pub(super) fn context(&self) -> String {
        format!("collection '{}'", self.name)
    }
}

impl std::fmt::Debug for MilvusStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MilvusStore").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

/// `host:port` of an `http(s)://host[:port][/…]` URL (80 or 443 without a port, as the client does).
fn socket_address(url: &str) -> String {
    let (rest, default_port) = match url.strip_prefix("https://") {
        Some(rest) => (rest, 443),
        None => (url.strip_prefix("http://").unwrap_or(url), 80),
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    let has_port = authority.rsplit_once(':').is_some_and(|(_, port)| port.parse::<u16>().is_ok())
        && !authority.ends_with(']');
    if has_port { authority.to_owned() } else { format!("{authority}:{default_port}") }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl MilvusStore {
    /// Connects to the server `config.url` names.
    ///
    /// Fails with [`Error::Unavailable`] naming the cause (connection refused, no answer within
    /// `config.timeout`, …) when the server cannot be reached: the address is first tried with a
    /// plain TCP connection, so that a closed port fails at once instead of after the client's
    /// retries.
    pub async fn connect(config: MilvusConfig) -> Result<Self> {
        config.validate()?;
        let timeout = config.timeout;
        let unreachable = |cause: String| {
            Error::unavailable(format!("Milvus at {} cannot be reached: {cause}", config.url))
        };
        let address = socket_address(&config.url);
        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&address)).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => return Err(unreachable(format!("connecting to {address}: {error}"))),
            Err(_) => {
                return Err(unreachable(format!("{address} did not accept a connection within {timeout:?}")));
            }
        }
        let connect = ConnectConfig::new()
            .uri(config.url.clone())
            .connect_timeout(timeout)
            .rpc_timeout(timeout)
            .retry(RetryConfig::new().max_attempts(3).max_retry_timeout(timeout))
            .telemetry(TelemetryConfig::new().enabled(false));
        let client = match tokio::time::timeout(timeout, Box::pin(ClientV2::new(&connect))).await {
            Ok(Ok(client)) => client,
            Ok(Err(error)) => return Err(unreachable(map(error).to_string())),
            Err(_) => return Err(unreachable(format!("no answer to the handshake within {timeout:?}"))),
        };
        tracing::info!(url = %config.url, "connected to Milvus");
        Ok(Self { inner: Arc::new(Inner { client, config, collections: RwLock::default() }) })
    }

    /// The configuration the store was connected with.
    pub fn config(&self) -> &MilvusConfig {
        &self.inner.config
    }

    /// The names of the server's collections (in the default database), sorted.
    pub async fn collections(&self) -> Result<Vec<String>> {
        let request = ListCollectionsRequest::builder().build().map_err(map)?;
        let response =
            timed(self.timeout(), "list_collections", self.inner.client.list_collections(request)).await?;
        let mut names = response.collection_names().to_vec();
        names.sort();
        Ok(names)
    }

    /// Drops a collection and everything in it; nothing when it does not exist.
    pub async fn drop_collection(&self, collection: &str) -> Result<()> {
        validate_collection_name(collection)?;
        self.forget(collection);
        let request = DropCollectionRequest::builder().collection_name(collection).build().map_err(map)?;
        match timed(self.timeout(), "drop_collection", self.inner.client.drop_collection(request)).await {
            Err(Error::NotFound(_)) | Ok(()) => Ok(()),
            Err(error) => Err(error),
        }
    }

    pub(super) fn timeout(&self) -> Duration {
        self.inner.config.timeout
    }

    pub(super) fn forget(&self, collection: &str) {
        if let Ok(mut collections) = self.inner.collections.write() {
            collections.remove(collection);
        }
    }

    /// The collection's description from the server, `None` when it does not exist.
    async fn describe(&self, collection: &str) -> Result<Option<usize>> {
        let request =
            DescribeCollectionRequest::builder().collection_name(collection).build().map_err(map)?;
        match timed(self.timeout(), "describe_collection", self.inner.client.describe_collection(request))
            .await
        {
            Ok(response) => schema::dimension_of(response.description(), collection).map(Some),
            Err(Error::NotFound(_)) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Makes `collection` searchable and remembers it.
    async fn open(&self, collection: &str, dimension: usize) -> Result<Arc<Collection>> {
        let index = schema::make_searchable(&self.inner.client, &self.inner.config, collection).await?;
        let opened = Arc::new(Collection {
            name: collection.to_owned(),
            dimension,
            index,
            written: AtomicBool::new(false),
            known_fields: RwLock::default(),
            record_bytes: AtomicUsize::new(4 * dimension + 2048),
        });
        let mut collections =
            self.inner.collections.write().map_err(|_| Error::internal("collections lock"))?;
        Ok(Arc::clone(collections.entry(collection.to_owned()).or_insert(opened)))
    }

    /// An existing collection (opened on first use), or [`Error::NotFound`].
    pub(super) async fn collection(&self, collection: &str) -> Result<Arc<Collection>> {
        validate_collection_name(collection)?;
        if let Some(known) = self.inner.collections.read().ok().and_then(|c| c.get(collection).cloned()) {
            return Ok(known);
        }
        match self.describe(collection).await? {
            Some(dimension) => self.open(collection, dimension).await,
            None => Err(Error::NotFound(format!("collection '{collection}'"))),
        }
    }

    /// Runs `call` on `collection`; a not-found answer (the collection was dropped elsewhere)
    /// makes the store forget it.
    pub(super) async fn on<T>(&self, collection: &str, call: impl Future<Output = Result<T>>) -> Result<T> {
        let result = call.await;
        if let Err(Error::NotFound(_)) = &result {
            self.forget(collection);
        }
        result
    }

    async fn ensure(&self, collection: &str, dimension: usize) -> Result<()> {
        validate_collection_name(collection)?;
        if !(1..=MAX_DIMENSION).contains(&dimension) {
            return Err(Error::invalid(format!(
                "dimension must be between 1 and {MAX_DIMENSION}, got {dimension}"
            )));
        }
        let existing = match self.inner.collections.read().ok().and_then(|c| c.get(collection).cloned()) {
            Some(known) if known.dimension == dimension => return Ok(()),
            Some(known) => Some(known.dimension),
            None => self.describe(collection).await?,
        };
        match existing {
            Some(existing) if existing != dimension => Err(Error::invalid(format!(
                "collection '{collection}' exists with dimension {existing}, not {dimension}"
            ))),
            Some(_) => self.open(collection, dimension).await.map(drop),
            None => {
                schema::create(&self.inner.client, self.timeout(), collection, dimension).await?;
                tracing::info!(collection, dimension, "Milvus collection created");
                self.open(collection, dimension).await.map(drop)
            }
        }
    }

    async fn write(&self, collection: &Collection, records: Vec<VectorRecord>) -> Result<()> {
        check_batch("records", records.len(), MAX_BATCH)?;
        for record in &records {
            records::check(record, collection.dimension).map_err(|e| e.context(&collection.context()))?;
        }
        let mut chunks: Vec<Vec<VectorRecord>> = Vec::new();
        let mut fields: HashSet<String> = HashSet::new();
        let mut bytes = usize::MAX;
        for record in last_wins(records) {
            let size = records::check(&record, collection.dimension)?;
            if bytes.saturating_add(size) > MAX_REQUEST_BYTES {
                chunks.push(Vec::new());
                bytes = 0;
            }
            bytes += size;
            collection.note_record_bytes(size);
            fields.extend(record.metadata.keys().cloned());
            if let Some(chunk) = chunks.last_mut() {
                chunk.push(record);
            }
        }
        if chunks.is_empty() {
            return Ok(());
        }
        // Set before writing: a batch that fails half way has still written its first chunks.
        collection.written.store(true, Ordering::Release);
        let now = now_ms();
        for chunk in chunks {
            let insert = InsertRequest::builder()
                .collection_name(collection.name.as_str())
                .columns(records::columns(chunk, now))
                .build()
                .map_err(map)?;
            let request = UpsertRequest::builder().insert(insert).build().map_err(map)?;
            timed(self.timeout(), "upsert", self.inner.client.upsert(request)).await?;
        }
        collection.learn_fields(fields.iter().map(String::as_str));
        Ok(())
    }

    async fn remove(&self, collection: &Collection, ids: &[String]) -> Result<u64> {
        check_batch("ids", ids.len(), MAX_BATCH)?;
        let mut seen = HashSet::with_capacity(ids.len());
        let unique: Vec<&str> = ids.iter().map(String::as_str).filter(|id| seen.insert(*id)).collect();
        let existing = self.existing_ids(collection, &unique).await?;
        if existing.is_empty() {
            return Ok(0);
        }
        collection.written.store(true, Ordering::Release);
        for chunk in existing.chunks(IDS_PER_REQUEST) {
            let request = DeleteRequest::builder()
                .collection_name(collection.name.as_str())
                .filter(ids_expr(chunk.iter().map(String::as_str)))
                .build()
                .map_err(map)?;
            timed(self.timeout(), "delete", self.inner.client.delete(request)).await?;
        }
        // Milvus 2.3 answers a delete without its timestamp, so later session reads would not
        // wait for it: one strong read here waits until the server shows the ids gone.
        let chunk = &existing[..existing.len().min(IDS_PER_REQUEST)];
        let request = QueryRequest::builder()
            .collection_name(collection.name.as_str())
            .filter(ids_expr(chunk.iter().map(String::as_str)))
            .output_fields([ID_FIELD])
            .consistency_level(ConsistencyLevel::Strong)
            .build()
            .map_err(map)?;
        let left = timed(self.timeout(), "query", self.inner.client.query(request)).await?;
        if left.results().get_row_count() > 0 {
            return Err(Error::upstream(500, "Milvus still holds records it acknowledged deleting"));
        }
        Ok(existing.len() as u64)
    }

    /// Which of `ids` the collection holds.
    async fn existing_ids(&self, collection: &Collection, ids: &[&str]) -> Result<Vec<String>> {
        let mut existing = Vec::new();
        for chunk in ids.chunks(IDS_PER_REQUEST) {
            let request = QueryRequest::builder()
                .collection_name(collection.name.as_str())
                .filter(ids_expr(chunk.iter().copied()))
                .output_fields([ID_FIELD])
                .consistency_level(collection.read_level(self.inner.config.consistency))
                .build()
                .map_err(map)?;
            let response = timed(self.timeout(), "query", self.inner.client.query(request)).await?;
            if let Some(FieldData::VarChar { values, .. }) = response.results().get_output_field(ID_FIELD) {
                existing.extend(values.iter().cloned());
            }
        }
        Ok(existing)
    }
}

#[async_trait]
impl VectorStore for MilvusStore {
    async fn ensure_collection(&self, collection: &str, dimension: usize) -> Result<()> {
        self.on(collection, self.ensure(collection, dimension)).await
    }
    async fn upsert(&self, collection: &str, records: Vec<VectorRecord>) -> Result<()> {
        self.on(collection, async { self.write(&*self.collection(collection).await?, records).await }).await
    }
    async fn search(&self, collection: &str, query: &VectorQuery) -> Result<Vec<ScoredRecord>> {
        self.on(collection, async { self.search_one(&*self.collection(collection).await?, query).await })
            .await
    }
    async fn search_many(&self, collection: &str, queries: &[VectorQuery]) -> Result<Vec<Vec<ScoredRecord>>> {
        self.on(collection, async { self.search_batch(&*self.collection(collection).await?, queries).await })
            .await
    }
    async fn get(&self, collection: &str, ids: &[String]) -> Result<Vec<VectorRecord>> {
        self.on(collection, async { self.fetch(&*self.collection(collection).await?, ids).await }).await
    }
    async fn delete(&self, collection: &str, ids: &[String]) -> Result<u64> {
        self.on(collection, async { self.remove(&*self.collection(collection).await?, ids).await }).await
    }
    async fn count(&self, collection: &str) -> Result<u64> {
        self.on(collection, async { self.count_rows(&*self.collection(collection).await?).await }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_addresses_default_the_port_like_the_client() {
        assert_eq!(socket_address("http://127.0.0.1:19530"), "127.0.0.1:19530");
        assert_eq!(socket_address("http://milvus/"), "milvus:80");
        assert_eq!(socket_address("https://milvus.example.com/x"), "milvus.example.com:443");
        assert_eq!(socket_address("http://[::1]:19530"), "[::1]:19530");
        assert_eq!(socket_address("http://[::1]"), "[::1]:80");
    }
}
