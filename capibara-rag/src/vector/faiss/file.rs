//! The HNSW graph files beside a collection's snapshot, so that opening a large collection loads
//! its graph instead of building it again. Two files, because FAISS writes and reads its indexes
//! only by file name:
//!
//! ```text
//! faiss-hnsw        FAISS's own serialisation of the IndexHNSWFlat (graph and vectors)
//! faiss-hnsw-map    "CAPIFHNS" · version u32 · generation u64 · dimension u32 · m u32
//!                   · ef_construction u32 · nodes u64 · rows u64 · removed u64
//!                   · index length u64 · index crc32 u32 · rows × u64 (the node of each slot)
//!                   · crc32 of everything before it
//! ```
//!
//! Both are written after each compaction, each atomically (a temporary file, fsynced, renamed),
//! the index first. The map names the index's length and checksum, so a crash between the two
//! renames leaves a pair that does not match, and the graph is built from the records. The files
//! are only a cache: they are used when the generation, dimension, build parameters, row count and
//! both checksums match the snapshot just read; otherwise the graph is built, with a warning when
//! files were there.

use std::io::Write;
use std::path::Path;

use capibara_core::{Error, Result};

use super::super::codec::{self, Cursor};
use super::super::collection::Collection;
use super::super::persist::{io_error, replace_file, sync_dir};
use super::FaissHnsw;
use super::flat::faiss_error;
use super::hnsw::{HnswGraph, TOMBSTONE, UNINDEXED, set_breadth};

const INDEX_FILE: &str = "faiss-hnsw";
const MAP_FILE: &str = "faiss-hnsw-map";
const MAGIC: &[u8; 8] = b"CAPIFHNS";
const VERSION: u32 = 1;

fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .ok_or_else(|| Error::internal(format!("vector store: path {} is not UTF-8", path.display())))
}

/// Writes `graph`, which reflects the snapshot of `generation` in `dir`.
pub(super) fn write(dir: &Path, generation: u64, graph: &HnswGraph, params: &FaissHnsw) -> Result<()> {
    let started = std::time::Instant::now();
    let index_path = dir.join(INDEX_FILE);
    let temp = index_path.with_extension("tmp");
    faiss::write_index(graph.index(), path_str(&temp)?).map_err(|e| faiss_error("saving the graph", e))?;
    let bytes = std::fs::read(&temp).map_err(|e| io_error("reading", &temp, &e))?;
    std::fs::File::open(&temp)
        .and_then(|file| file.sync_all())
        .map_err(|e| io_error("syncing", &temp, &e))?;
    std::fs::rename(&temp, &index_path).map_err(|e| io_error("renaming", &temp, &e))?;
    sync_dir(dir)?;

    let mut map = Vec::with_capacity(72 + graph.node_of_slot.len() * 8);
    map.extend_from_slice(MAGIC);
    codec::put_u32(&mut map, VERSION);
    codec::put_u64(&mut map, generation);
    codec::put_u32(&mut map, graph.dimension() as u32);
    codec::put_u32(&mut map, params.m as u32);
    codec::put_u32(&mut map, params.ef_construction as u32);
    codec::put_u64(&mut map, graph.slot_of_node.len() as u64);
    codec::put_u64(&mut map, graph.node_of_slot.len() as u64);
    codec::put_u64(&mut map, graph.removed as u64);
    codec::put_u64(&mut map, bytes.len() as u64);
    codec::put_u32(&mut map, crc32fast::hash(&bytes));
    graph.node_of_slot.iter().for_each(|node| codec::put_u64(&mut map, *node));
    let crc = crc32fast::hash(&map);
    replace_file(&dir.join(MAP_FILE), |file| {
        file.write_all(&map)?;
        file.write_all(&crc.to_le_bytes())
    })?;
    tracing::info!(
        path = %index_path.display(),
        bytes = bytes.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "vector store: FAISS HNSW graph saved"
    );
    Ok(())
}

/// Removes the graph files of `dir`, if any (the collection has no graph).
pub(super) fn remove(dir: &Path) -> Result<()> {
    for name in [MAP_FILE, INDEX_FILE] {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                return Err(io_error("removing", &path, &error));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The graph saved in `dir` for the snapshot of `generation` holding `records`; `None` (with a
/// warning when files were there but cannot be used) when it must be built instead.
pub(super) fn read(
    dir: &Path,
    generation: u64,
    records: &Collection,
    params: &FaissHnsw,
) -> Option<HnswGraph> {
    for leftover in [INDEX_FILE, MAP_FILE].map(|name| dir.join(name).with_extension("tmp")) {
        if leftover.exists() {
            let _ = std::fs::remove_file(&leftover);
        }
    }
    let map_path = dir.join(MAP_FILE);
    let map = std::fs::read(&map_path).ok()?;
    let started = std::time::Instant::now();
    match parse(dir, &map, generation, records, params) {
        Ok(graph) => {
            tracing::info!(
                path = %map_path.display(),
                rows = records.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "vector store: FAISS HNSW graph loaded"
            );
            Some(graph)
        }
        Err(reason) => {
            tracing::warn!(path = %map_path.display(), reason, "vector store: FAISS HNSW graph not used; rebuilding it");
            None
        }
    }
}

fn parse(
    dir: &Path,
    map: &[u8],
    generation: u64,
    records: &Collection,
    params: &FaissHnsw,
) -> std::result::Result<HnswGraph, String> {
    let (body, trailer) = map.split_at_checked(map.len().saturating_sub(4)).ok_or("too short")?;
    if trailer.len() != 4 || crc32fast::hash(body).to_le_bytes() != trailer {
        return Err("map checksum mismatch".into());
    }
    let mut cursor = Cursor::new(body);
    if cursor.take(8) != Some(MAGIC.as_slice()) || cursor.u32() != Some(VERSION) {
        return Err("not a graph map of this version".into());
    }
    let short = || "truncated map".to_owned();
    let file_generation = cursor.u64().ok_or_else(short)?;
    let dimension = cursor.u32().ok_or_else(short)? as usize;
    let m = cursor.u32().ok_or_else(short)? as usize;
    let ef_construction = cursor.u32().ok_or_else(short)? as usize;
    let nodes = cursor.u64().ok_or_else(short)? as usize;
    let rows = cursor.u64().ok_or_else(short)? as usize;
    let removed = cursor.u64().ok_or_else(short)? as usize;
    let index_len = cursor.u64().ok_or_else(short)?;
    let index_crc = cursor.u32().ok_or_else(short)?;
    if file_generation != generation {
        return Err(format!("graph of generation {file_generation}, snapshot of {generation}"));
    }
    if (dimension, rows) != (records.dimension(), records.len()) {
        return Err(format!(
            "graph of {rows} rows × {dimension}, snapshot of {} × {}",
            records.len(),
            records.dimension()
        ));
    }
    if (m, ef_construction) != (params.m, params.ef_construction) {
        return Err(format!("graph built with m {m}, ef_construction {ef_construction}; options differ"));
    }
    let mut slot_of_node = vec![TOMBSTONE; nodes];
    let mut node_of_slot = Vec::with_capacity(rows);
    for slot in 0..rows {
        let node = cursor.u64().ok_or_else(short)?;
        let entry = slot_of_node.get_mut(node as usize).ok_or("node out of range")?;
        if node == UNINDEXED || *entry != TOMBSTONE {
            return Err("inconsistent node map".into());
        }
        *entry = slot;
        node_of_slot.push(node);
    }
    if !cursor.is_empty() {
        return Err("trailing bytes in the map".into());
    }
    let index_path = dir.join(INDEX_FILE);
    let bytes = std::fs::read(&index_path).map_err(|e| format!("index unreadable: {e}"))?;
    if bytes.len() as u64 != index_len || crc32fast::hash(&bytes) != index_crc {
        return Err("the index file is not the one the map was written with".into());
    }
    drop(bytes);
    let index =
        faiss::read_index(path_str(&index_path).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    if faiss::Index::metric_type(&index) != faiss::MetricType::InnerProduct {
        return Err("the index does not rank by inner product".into());
    }
    if faiss::Index::ntotal(&index) as usize != nodes || faiss::Index::d(&index) as usize != dimension {
        return Err(format!("the index holds {} nodes, its map {nodes}", faiss::Index::ntotal(&index)));
    }
    // Searches use the options' breadth, whatever the file says.
    set_breadth(&index, params).map_err(|e| e.to_string())?;
    Ok(HnswGraph::around(index, dimension, slot_of_node, node_of_slot, removed))
}
