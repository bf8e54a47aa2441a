//! [`MilvusConfig`]: where the server is, which index new collections get, how fresh reads are, and
//! how long any call may take. Plain serde data, so that a configuration file can embed it.

use std::collections::HashMap;
use std::time::Duration;

use capibara_core::{Error, Result};
use milvus::v2::prelude::{ConsistencyLevel, IndexParam, IndexType, MetricType};
use serde::{Deserialize, Serialize};

/// The address of a Milvus standalone server on this machine, on its default port.
pub const DEFAULT_URL: &str = "http://127.0.0.1:19530";

/// The largest `timeout` accepted (one hour).
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// How to reach a Milvus server and what [`MilvusStore`](super::MilvusStore) creates there.
///
/// ```toml
/// url = "http://127.0.0.1:19530"
/// consistency = "bounded"
/// timeout = "10s"
/// ready_timeout = "5m"
/// index = { type = "HNSW", m = 16, ef_construction = 200, ef = 64 }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MilvusConfig {
    /// The server's gRPC address, `http://host:port` (default [`DEFAULT_URL`]); without a port,
    /// 80 for `http` and 443 for `https`.
    pub url: String,
    /// The vector index of collections this store creates (existing collections keep theirs).
    pub index: MilvusIndex,
    /// The similarity of the index: inner product, the score every Capibara store returns.
    pub metric: MilvusMetric,
    /// How fresh reads of other clients' writes are; this store's own writes are always visible
    /// to its next read (see [`MilvusConsistency`]).
    pub consistency: MilvusConsistency,
    /// The longest any one call to the server may take, connecting included (default 10 s).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// The longest opening a collection waits for the server to build its index and load it
    /// (default 5 min: indexing an existing large collection takes minutes; an empty one loads
    /// in about 2.5 s).
    #[serde(with = "humantime_serde")]
    pub ready_timeout: Duration,
}

impl Default for MilvusConfig {
    fn default() -> Self {
        Self {
            url: DEFAULT_URL.to_owned(),
            index: MilvusIndex::default(),
            metric: MilvusMetric::Ip,
            consistency: MilvusConsistency::default(),
            timeout: Duration::from_secs(10),
            ready_timeout: Duration::from_secs(300),
        }
    }
}

impl MilvusConfig {
    /// The default configuration for the server at `url`.
    pub fn at(url: impl Into<String>) -> Self {
        Self { url: url.into(), ..Self::default() }
    }

    /// Checks the URL's scheme, the timeout and the index parameters.
    pub fn validate(&self) -> Result<()> {
        let rest = self.url.strip_prefix("http://").or_else(|| self.url.strip_prefix("https://"));
        if rest.is_none_or(|rest| rest.is_empty() || rest.starts_with('/')) {
            return Err(Error::invalid(format!(
                "milvus.url must be http://host:port or https://host:port, got {:?}",
                self.url
            )));
        }
        for (name, timeout) in [("timeout", self.timeout), ("ready_timeout", self.ready_timeout)] {
            if timeout.is_zero() || timeout > MAX_TIMEOUT {
                return Err(Error::invalid(format!(
                    "milvus.{name} must be above zero and at most one hour, got {timeout:?}"
                )));
            }
        }
        self.index.validate()
    }
}

/// The vector index of a collection, by Milvus' names (`type = "FLAT" | "IVF_FLAT" | "HNSW"`,
/// with that type's parameters and no others).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "IndexTable", into = "IndexTable")]
pub enum MilvusIndex {
    /// Every search compares the query with every matching record: exact, and slow past a few
    /// hundred thousand records.
    Flat,
    /// Vectors clustered into `nlist` lists; a search scans the `nprobe` nearest lists.
    IvfFlat {
        /// Number of clusters (1..=65536; default 1024).
        nlist: u32,
        /// Clusters scanned per search (1..=nlist; default 16); more is slower and closer to exact.
        nprobe: u32,
    },
    /// A navigable small-world graph (the default).
    Hnsw {
        /// Links per node (2..=2048; default 16).
        m: u32,
        /// Candidates kept while building (1..=32768; default 200).
        ef_construction: u32,
        /// Candidates kept while searching (1..=32768; default 64); raised to `k` when a search
        /// asks for more.
        ef: u32,
    },
}

/// [`MilvusIndex`] as written in a configuration file.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IndexTable {
    #[serde(rename = "type")]
    kind: IndexKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nlist: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nprobe: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    m: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ef_construction: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ef: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum IndexKind {
    Flat,
    IvfFlat,
    Hnsw,
}

impl TryFrom<IndexTable> for MilvusIndex {
    type Error = String;

    fn try_from(table: IndexTable) -> std::result::Result<Self, String> {
        let given = [
            ("nlist", table.nlist),
            ("nprobe", table.nprobe),
            ("m", table.m),
            ("ef_construction", table.ef_construction),
            ("ef", table.ef),
        ];
        let allowed: &[&str] = match table.kind {
            IndexKind::Flat => &[],
            IndexKind::IvfFlat => &["nlist", "nprobe"],
            IndexKind::Hnsw => &["m", "ef_construction", "ef"],
        };
        if let Some((name, _)) = given.iter().find(|(name, value)| value.is_some() && !allowed.contains(name))
        {
            return Err(format!("index type {:?} has no parameter `{name}`", table.kind));
        }
        Ok(match table.kind {
            IndexKind::Flat => Self::Flat,
            IndexKind::IvfFlat => Self::IvfFlat {
                nlist: table.nlist.unwrap_or_else(default_nlist),
                nprobe: table.nprobe.unwrap_or_else(default_nprobe),
            },
            IndexKind::Hnsw => Self::Hnsw {
                m: table.m.unwrap_or_else(default_m),
                ef_construction: table.ef_construction.unwrap_or_else(default_ef_construction),
                ef: table.ef.unwrap_or_else(default_ef),
            },
        })
    }
}

impl From<MilvusIndex> for IndexTable {
    fn from(index: MilvusIndex) -> Self {
        let table = Self {
            kind: IndexKind::Flat,
            nlist: None,
            nprobe: None,
            m: None,
            ef_construction: None,
            ef: None,
        };
        match index {
            MilvusIndex::Flat => table,
            MilvusIndex::IvfFlat { nlist, nprobe } => {
                Self { kind: IndexKind::IvfFlat, nlist: Some(nlist), nprobe: Some(nprobe), ..table }
            }
            MilvusIndex::Hnsw { m, ef_construction, ef } => Self {
                kind: IndexKind::Hnsw,
                m: Some(m),
                ef_construction: Some(ef_construction),
                ef: Some(ef),
                ..table
            },
        }
    }
}

fn default_nlist() -> u32 {
    1024
}
fn default_nprobe() -> u32 {
    16
}
fn default_m() -> u32 {
    16
}
fn default_ef_construction() -> u32 {
    200
}
fn default_ef() -> u32 {
    64
}

impl Default for MilvusIndex {
    fn default() -> Self {
        Self::Hnsw { m: default_m(), ef_construction: default_ef_construction(), ef: default_ef() }
    }
}

impl MilvusIndex {
    /// Checks the parameters against Milvus' ranges.
    pub fn validate(&self) -> Result<()> {
        let check = |name: &str, value: u32, low: u32, high: u32| {
            if (low..=high).contains(&value) {
                Ok(())
            } else {
                Err(Error::invalid(format!("milvus.index.{name} must be {low}..={high}, got {value}")))
            }
        };
        match *self {
            Self::Flat => Ok(()),
            Self::IvfFlat { nlist, nprobe } => {
                check("nlist", nlist, 1, 65_536)?;
                check("nprobe", nprobe, 1, nlist)
            }
            Self::Hnsw { m, ef_construction, ef } => {
                check("m", m, 2, 2048)?;
                check("ef_construction", ef_construction, 1, 32_768)?;
                check("ef", ef, 1, 32_768)
            }
        }
    }

    /// The index as the server builds it on the field `field`.
    pub(super) fn param(&self, field: &str) -> IndexParam {
        let (index_type, params): (IndexType, &[(&str, u32)]) = match self {
            Self::Flat => (IndexType::Flat, &[]),
            Self::IvfFlat { nlist, .. } => (IndexType::IvfFlat, &[("nlist", *nlist)]),
            Self::Hnsw { m, ef_construction, .. } => {
                (IndexType::Hnsw, &[("M", *m), ("efConstruction", *ef_construction)])
            }
        };
        let params: HashMap<String, String> =
            params.iter().map(|(key, value)| ((*key).to_owned(), value.to_string())).collect();
        IndexParam::new()
            .field_name(field)
            .index_type(index_type)
            .metric_type(MetricType::Ip)
            .extra_params(params)
    }

    /// The search parameters for a top-`k` search.
    pub(super) fn search_params(&self, k: usize) -> HashMap<String, String> {
        match *self {
            Self::Flat => HashMap::new(),
            Self::IvfFlat { nprobe, .. } => HashMap::from([("nprobe".to_owned(), nprobe.to_string())]),
            // HNSW refuses an `ef` below `k`.
            Self::Hnsw { ef, .. } => HashMap::from([("ef".to_owned(), (ef as usize).max(k).to_string())]),
        }
    }
}

/// The similarity a collection is indexed with. Inner product only: every Capibara store scores
/// by inner product, higher is better (cosine for unit vectors).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum MilvusMetric {
    /// Inner product.
    #[default]
    #[serde(rename = "IP")]
    Ip,
}

/// How fresh reads (search, get, count) are with respect to writes of *other* clients. Writes
/// through this store are always visible to its own later reads: once a collection has been
/// written here, its reads wait for the server to have applied this store's last write (Milvus'
/// session consistency), whatever the level below says — except `strong`, which waits for more.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MilvusConsistency {
    /// Every write acknowledged before the read started, by anyone. Each read waits for the
    /// server's next time tick: about 3 reads per second per client.
    #[serde(alias = "Strong")]
    Strong,
    /// This client's own writes only (the same as `eventually` for collections it has not written).
    #[serde(alias = "Session")]
    Session,
    /// Other clients' writes older than the server's staleness bound (5 s by default). The default.
    #[default]
    #[serde(alias = "Bounded")]
    Bounded,
    /// Whatever the server has applied so far.
    #[serde(alias = "Eventually")]
    Eventually,
}

impl MilvusConsistency {
    /// The level of a read of a collection this store has (`written`) or has not written.
    pub(super) fn read_level(self, written: bool) -> ConsistencyLevel {
        match self {
            Self::Strong => ConsistencyLevel::Strong,
            _ if written => ConsistencyLevel::Session,
            Self::Session => ConsistencyLevel::Session,
            Self::Bounded => ConsistencyLevel::Bounded,
            Self::Eventually => ConsistencyLevel::Eventually,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn defaults_and_a_full_table_deserialize() {
        let config: MilvusConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config, MilvusConfig::default());
        assert_eq!(config.url, "http://127.0.0.1:19530");
        assert_eq!(config.consistency, MilvusConsistency::Bounded);
        let config: MilvusConfig = serde_json::from_value(serde_json::json!({
            "url": "http://milvus:19530",
            "index": {"type": "IVF_FLAT", "nlist": 128},
            "metric": "IP",
            "consistency": "Eventually",
            "timeout": "2s 500ms",
        }))
        .unwrap();
        assert_eq!(config.index, MilvusIndex::IvfFlat { nlist: 128, nprobe: 16 });
        assert_eq!(config.consistency, MilvusConsistency::Eventually);
        assert_eq!(config.timeout, Duration::from_millis(2500));
        config.validate().unwrap();
        let again: MilvusConfig = serde_json::from_value(serde_json::to_value(&config).unwrap()).unwrap();
        assert_eq!(again, config);
    }

    #[test]
    fn unknown_keys_and_metrics_are_refused() {
        for bad in [
            serde_json::json!({"uri": "http://x:1"}),
            serde_json::json!({"metric": "L2"}),
            serde_json::json!({"index": {"type": "FLAT", "nlist": 4}}),
            serde_json::json!({"index": {"type": "DISKANN"}}),
            serde_json::json!({"index": {"type": "HNSW", "nprobe": 4}}),
        ] {
            assert!(serde_json::from_value::<MilvusConfig>(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_names_the_bad_value() {
        let bad_url = MilvusConfig::at("127.0.0.1:19530").validate().unwrap_err();
        assert!(bad_url.to_string().contains("127.0.0.1:19530"), "{bad_url}");
        let config = MilvusConfig { timeout: Duration::ZERO, ..MilvusConfig::default() };
        assert!(config.validate().unwrap_err().to_string().contains("timeout"));
        let index = MilvusIndex::IvfFlat { nlist: 8, nprobe: 9 };
        assert!(index.validate().unwrap_err().to_string().contains("nprobe"));
    }

    #[test]
    fn own_writes_raise_every_level_but_strong_to_session() {
        use MilvusConsistency::*;
        assert!(matches!(Bounded.read_level(false), ConsistencyLevel::Bounded));
        assert!(matches!(Bounded.read_level(true), ConsistencyLevel::Session));
        assert!(matches!(Eventually.read_level(true), ConsistencyLevel::Session));
        assert!(matches!(Strong.read_level(true), ConsistencyLevel::Strong));
    }

    #[test]
    fn hnsw_search_raises_ef_to_k() {
        let index = MilvusIndex::default();
        assert_eq!(index.search_params(10)["ef"], "64");
        assert_eq!(index.search_params(500)["ef"], "500");
        assert!(MilvusIndex::Flat.search_params(10).is_empty());
    }
}
