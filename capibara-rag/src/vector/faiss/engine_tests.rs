//! The FAISS indexes' bookkeeping under writes (the flat index mirroring the collection's rows
//! through replacements and swap-removes; the HNSW node ↔ slot maps, tombstones and rebuilds) and
//! the HNSW graph files (round trip, and every reason to refuse them).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use capibara_core::vector::{Filter, VectorQuery, VectorRecord};
use serde_json::json;

use super::*;
use crate::vector::faiss::FaissHnsw;
use crate::vector::faiss::hnsw::{TOMBSTONE, UNINDEXED};

fn options(index: FaissIndex) -> FaissStoreOptions {
    FaissStoreOptions { exact_below_rows: 50, ..FaissStoreOptions::new(index) }
}

/// A pseudo-random value in [-1, 1) (splitmix64): no two records tie.
fn noise(seed: u64) -> f32 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 23) as f32 - 1.0
}

fn vector(i: usize, version: usize) -> Vec<f32> {
    (0..8).map(|j| noise(((i * 1_000 + version) * 8 + j) as u64)).collect()
}

fn record(i: usize, version: usize) -> VectorRecord {
    let metadata = json!({ "i": i, "even": i.is_multiple_of(2) }).as_object().cloned().unwrap();
    VectorRecord { id: format!("r{i}"), vector: vector(i, version), text: String::new(), metadata }
}

fn flat(collection: &FaissCollection) -> &FlatRows {
    match &collection.vectors {
        Some(Vectors::Flat(flat)) => flat,
        other => panic!("expected a flat index, got {other:?}"),
    }
}

fn graph(collection: &FaissCollection) -> &HnswGraph {
    match &collection.vectors {
        Some(Vectors::Hnsw(graph)) => graph,
        other => panic!("expected a graph, got {other:?}"),
    }
}

/// Every live slot has a node that points back at it, and no other node does.
fn assert_consistent(collection: &FaissCollection) {
    let graph = graph(collection);
    assert_eq!(graph.node_of_slot.len(), collection.records.len());
    for (slot, node) in graph.node_of_slot.iter().enumerate() {
        assert_ne!(*node, UNINDEXED, "slot {slot} is not in the graph");
        assert_eq!(graph.slot_of_node[*node as usize], slot);
    }
    let live = graph.slot_of_node.iter().filter(|slot| **slot != TOMBSTONE).count();
    assert_eq!(live, collection.records.len(), "tombstones are marked");
}

fn unfiltered(i: usize, k: usize) -> VectorQuery {
    VectorQuery { vector: vector(i, 9), k, filter: None }
}

/// The exact answer, as `ExactStore` gives it.
fn exact(collection: &FaissCollection, query: &VectorQuery) -> Vec<usize> {
    search::search(&collection.records, query).iter().map(|hit| hit.slot).collect()
}

fn slots(hits: &[Hit]) -> Vec<usize> {
    hits.iter().map(|hit| hit.slot).collect()
}

#[test]
fn the_flat_index_mirrors_the_rows_through_replacements_and_deletes() {
    let mut collection = FaissCollection::load(Collection::new(8), &options(FaissIndex::Flat), None).unwrap();
    assert_eq!(flat(&collection).len(), 0, "an empty collection has an empty flat index");
    collection.upsert((0..40).map(|i| record(i, 0)).collect());
    assert_eq!(flat(&collection).stored(), collection.records.matrix());
    // Replace some, add some, in one batch.
    collection.upsert((30..50).map(|i| record(i, 1)).collect());
    assert_eq!(flat(&collection).stored(), collection.records.matrix());
    // Deletes swap the last row into the hole, the last one itself included.
    let ids: Vec<String> = ["r3", "r49", "r0", "missing", "r48", "r17"].map(String::from).to_vec();
    assert_eq!(Apply::delete(&mut collection, &ids), 5);
    assert_eq!(collection.records.len(), 45);
    assert_eq!(flat(&collection).stored(), collection.records.matrix());
    for i in 0..10 {
        let query = unfiltered(i, 7);
        assert_eq!(slots(&collection.search(&query).unwrap()), exact(&collection, &query));
    }
    let every: Vec<String> = collection.records.ids().to_vec();
    assert_eq!(Apply::delete(&mut collection, &every), 45);
    assert_eq!(flat(&collection).len(), 0);
    assert!(collection.search(&unfiltered(1, 3)).unwrap().is_empty());
}

#[test]
fn small_hnsw_collections_have_no_graph_until_they_grow() {
    let options = options(FaissIndex::hnsw());
    let mut collection = FaissCollection::load(Collection::new(8), &options, None).unwrap();
    collection.upsert((0..49).map(|i| record(i, 0)).collect());
    assert!(collection.vectors.is_none());
    assert_eq!(collection.scan_rows(), 49);
    collection.upsert(vec![record(49, 0)]);
    assert_consistent(&collection);
    assert!(collection.active().is_some());
    // Below the threshold again: exact scans, the graph kept up to date.
    Apply::delete(&mut collection, &["r3".to_owned()]);
    assert!(collection.active().is_none());
    assert_consistent(&collection);
}

#[test]
fn hnsw_nodes_follow_replacements_and_swap_removes_and_worn_graphs_are_rebuilt() {
    let options = options(FaissIndex::hnsw());
    let mut collection = FaissCollection::load(Collection::new(8), &options, None).unwrap();
    collection.upsert((0..100).map(|i| record(i, 0)).collect());
    assert_consistent(&collection);
    let ids: Vec<String> = (0..10).map(|i| format!("r{}", i * 7)).collect();
    assert_eq!(Apply::delete(&mut collection, &ids), 10);
    collection.upsert((50..55).map(|i| record(i, 1)).collect());
    assert_consistent(&collection);
    assert_eq!(graph(&collection).removed, 15);
    assert_eq!(graph(&collection).slot_of_node.len(), 105, "replaced rows are new nodes");

    // Dead nodes are never returned, and the hits are the current records.
    for i in 0..20 {
        let hits = collection.search(&unfiltered(i, 20)).unwrap();
        assert_eq!(hits.len(), 20);
        for hit in &hits {
            let id = &collection.records.ids()[hit.slot];
            assert!(!ids.contains(id), "deleted {id} returned");
            let dot: f32 =
                collection.records.row(hit.slot).iter().zip(&vector(i, 9)).map(|(a, b)| a * b).sum();
            assert!((hit.score - dot).abs() < 1e-5, "the score is the current vector's");
        }
    }

    // 19 more replacements (and r63, deleted, back) pass 20 % of 125 nodes: the graph is rebuilt
    // without tombstones.
    collection.upsert((60..80).map(|i| record(i, 2)).collect());
    assert_eq!(graph(&collection).removed, 0);
    assert_eq!(graph(&collection).slot_of_node.len(), collection.records.len());
    assert_consistent(&collection);
}

#[test]
fn hnsw_filtered_searches_return_k_matching_rows() {
    // No exact scan of matches: the graph is searched with a bitmap of the matching nodes.
    let options =
        FaissStoreOptions { filter_exact_rows: 0, filter_scan_factor: 0.0, ..options(FaissIndex::hnsw()) };
    let mut collection = FaissCollection::load(Collection::new(8), &options, None).unwrap();
    collection.upsert((0..300).map(|i| record(i, 0)).collect());
    Apply::delete(&mut collection, &["r10".to_owned(), "r12".to_owned()]);
    let even = Filter::Eq { field: "even".into(), value: json!(true) };
    let few = Filter::Range { field: "i".into(), gte: Some(280.0), lte: None };
    for i in 0..10 {
        let query = VectorQuery { filter: Some(even.clone()), ..unfiltered(i, 10) };
        let hits = collection.search(&query).unwrap();
        assert_eq!(hits.len(), 10);
        assert!(hits.iter().all(|hit| collection.records.metadata()[hit.slot]["even"] == json!(true)));
        // 20 of 298 rows match: the graph may propose fewer than 15, then more are asked for, then
        // the matches scanned; never fewer than k, and only matches.
        let query = VectorQuery { filter: Some(few.clone()), ..unfiltered(i, 15) };
        let hits = collection.search(&query).unwrap();
        assert_eq!(hits.len(), 15);
        assert!(hits.iter().all(|hit| collection.records.metadata()[hit.slot]["i"].as_u64().unwrap() >= 280));
    }
    let batch: Vec<VectorQuery> = (0..12).map(|i| unfiltered(i, 1 + i)).collect();
    let many = collection.search_many(&batch).unwrap();
    for (query, hits) in batch.iter().zip(&many) {
        assert_eq!(slots(hits), slots(&collection.search(query).unwrap()));
    }
}

#[test]
fn hnsw_graph_files_round_trip_and_are_refused_when_they_do_not_match() {
    let dir = tempfile::tempdir().unwrap();
    let params = FaissHnsw::default();
    let options = options(FaissIndex::Hnsw(params.clone()));
    let mut collection = FaissCollection::load(Collection::new(8), &options, None).unwrap();
    collection.upsert((0..120).map(|i| record(i, 0)).collect());
    Apply::delete(&mut collection, &["r5".to_owned()]);
    collection.compacted(dir.path(), 3).unwrap();

    let loaded = file::read(dir.path(), 3, &collection.records, &params).expect("the saved graph");
    assert_eq!(loaded.node_of_slot, graph(&collection).node_of_slot);
    assert_eq!(loaded.removed, 1);
    let reloaded = FaissCollection {
        records: collection.records.clone(),
        vectors: Some(Vectors::Hnsw(loaded)),
        options,
    };
    for i in 0..10 {
        let query = unfiltered(i, 10);
        assert_eq!(slots(&reloaded.search(&query).unwrap()), slots(&collection.search(&query).unwrap()));
    }

    assert!(file::read(dir.path(), 4, &collection.records, &params).is_none(), "another generation");
    let other = FaissHnsw { m: 8, ..params };
    assert!(file::read(dir.path(), 3, &collection.records, &other).is_none(), "other build parameters");
    let mut fewer = collection.records.clone();
    fewer.delete("r1");
    assert!(file::read(dir.path(), 3, &fewer, &params).is_none(), "another row count");

    let index = dir.path().join("faiss-hnsw");
    let mut bytes = std::fs::read(&index).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&index, bytes).unwrap();
    assert!(file::read(dir.path(), 3, &collection.records, &params).is_none(), "a damaged index");

    file::remove(dir.path()).unwrap();
    assert!(!index.exists() && !dir.path().join("faiss-hnsw-map").exists());
    assert!(file::read(dir.path(), 3, &collection.records, &params).is_none());
}
