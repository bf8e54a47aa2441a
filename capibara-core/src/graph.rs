//! The [`GraphStore`] trait: entities and relations, queried with parameters only.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::vector::Metadata;

/// A node of the knowledge graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    /// Stable id.
    pub id: String,
    /// Kind of entity (`person`, `product`, …).
    pub kind: String,
    /// Display name, used for lookup.
    pub name: String,
    /// Properties.
    #[serde(default)]
    pub properties: Metadata,
}

/// A directed, typed edge between two entities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Relation {
    /// Source entity id.
    pub from: String,
    /// Target entity id.
    pub to: String,
    /// Relation type (`created_by`, `runs_on`, …).
    pub kind: String,
    /// Properties.
    #[serde(default)]
    pub properties: Metadata,
}

/// A neighbourhood around an entity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Subgraph {
    /// Entities reached.
    pub entities: Vec<Entity>,
    /// Relations traversed.
    pub relations: Vec<Relation>,
}

/// Entities and relations with properties.
#[async_trait]
pub trait GraphStore: Send + Sync {
    /// Inserts or replaces entities by id.
    async fn upsert_entities(&self, entities: Vec<Entity>) -> Result<()>;
    /// Inserts or replaces relations by (from, kind, to).
    async fn upsert_relations(&self, relations: Vec<Relation>) -> Result<()>;
    /// Entities whose name matches, case- and accent-insensitively.
    async fn find_by_name(&self, name: &str, limit: usize) -> Result<Vec<Entity>>;
    /// Everything within `hops` edges of the entity, at most `limit` entities.
    async fn neighbours(&self, entity_id: &str, hops: u8, limit: usize) -> Result<Subgraph>;
}
