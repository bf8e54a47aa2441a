//! The graph's bookkeeping under writes (node ↔ slot maps through replacements and swap-removes,
//! rebuilds when worn, the exact-scan threshold) and the graph file (round trip, and every reason
//! to refuse one).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use capibara_core::vector::{Filter, VectorQuery, VectorRecord};
use serde_json::json;

use super::*;
use crate::vector::hnsw::graph::{TOMBSTONE, UNINDEXED};

fn options() -> HnswStoreOptions {
    HnswStoreOptions { exact_below_rows: 50, ..HnswStoreOptions::default() }
}

fn vector(i: usize, version: usize) -> Vec<f32> {
    (0..8).map(|j| (((i * 31 + version * 7 + j * 13) % 29) as f32 - 14.0) / 14.0).collect()
}

fn record(i: usize, version: usize) -> VectorRecord {
    let metadata = json!({ "i": i, "even": i.is_multiple_of(2) }).as_object().cloned().unwrap();
    VectorRecord { id: format!("r{i}"), vector: vector(i, version), text: String::new(), metadata }
}

/// Every live slot has a node that points back at it, and no other node does.
fn assert_consistent(indexed: &Indexed) {
    let graph = indexed.graph.as_ref().expect("a graph");
    assert_eq!(graph.node_of_slot.len(), indexed.records.len());
    for (slot, node) in graph.node_of_slot.iter().enumerate() {
        assert_ne!(*node, UNINDEXED, "slot {slot} is not in the graph");
        assert_eq!(graph.slot_of_node[*node as usize], slot);
    }
    let live = graph.slot_of_node.iter().filter(|slot| **slot != TOMBSTONE).count();
    assert_eq!(live, indexed.records.len(), "tombstones are marked");
}

#[test]
fn small_collections_have_no_graph_until_they_grow() {
    let mut indexed = Indexed::load(Collection::new(8), &options(), None).unwrap();
    indexed.upsert((0..49).map(|i| record(i, 0)).collect());
    assert!(indexed.graph.is_none());
    assert_eq!(indexed.scan_rows(), 49);
    indexed.upsert(vec![record(49, 0)]);
    assert_consistent(&indexed);
    assert!(indexed.active_graph().is_some());
    // Below the threshold again: exact scans, the graph kept up to date.
    Apply::delete(&mut indexed, &["r3".to_owned()]);
    assert!(indexed.active_graph().is_none());
    assert_consistent(&indexed);
}

#[test]
fn nodes_follow_replacements_and_swap_removes_and_worn_graphs_are_rebuilt() {
    let mut indexed = Indexed::load(Collection::new(8), &options(), None).unwrap();
    indexed.upsert((0..100).map(|i| record(i, 0)).collect());
    assert_consistent(&indexed);
    let ids: Vec<String> = (0..10).map(|i| format!("r{}", i * 7)).collect();
    assert_eq!(Apply::delete(&mut indexed, &ids), 10);
    indexed.upsert((50..55).map(|i| record(i, 1)).collect());
    assert_consistent(&indexed);
    assert_eq!(indexed.graph.as_ref().unwrap().removed, 15);
    // 15 of 105 nodes removed; 9 more replaced (and r63 back) pass a fifth of 115.
    indexed.upsert((60..70).map(|i| record(i, 1)).collect());
    assert_consistent(&indexed);
    let graph = indexed.graph.as_ref().unwrap();
    assert_eq!((graph.removed, graph.slot_of_node.len()), (0, 91), "rebuilt from the 91 records");

    // Answers are the current records, each once, with exact scores.
    let query = VectorQuery { vector: vector(60, 1), k: 91, filter: None };
    let hits = indexed.search(&query).unwrap();
    assert_eq!(hits.len(), 91);
    let slots: Vec<usize> = hits.iter().map(|hit| hit.slot).collect();
    let exact: Vec<usize> = search::search(&indexed.records, &query).iter().map(|hit| hit.slot).collect();
    assert_eq!(slots, exact, "every record once, ranked by its exact score");
}

#[test]
fn filtered_searches_return_k_whichever_path_answers() {
    let options = HnswStoreOptions { filter_exact_rows: 0, filter_scan_factor: 0.0, ..options() };
    let mut indexed = Indexed::load(Collection::new(8), &options, None).unwrap();
    indexed.upsert((0..400).map(|i| record(i, 0)).collect());
    let even = Filter::Eq { field: "even".into(), value: json!(true) };
    let few = Filter::Range { field: "i".into(), gte: None, lte: Some(11.0) };
    for (filter, matching) in [(even, 200), (few, 12)] {
        for k in [1, 10, 12, 150, 300] {
            let query = VectorQuery { vector: vector(5, 3), k, filter: Some(filter.clone()) };
            let hits = indexed.search(&query).unwrap();
            assert_eq!(hits.len(), k.min(matching), "{filter:?}, k {k}");
            let metadata = indexed.records.metadata();
            assert!(hits.iter().all(|hit| filter::matches(&filter, &metadata[hit.slot])));
        }
    }
}

#[test]
fn the_graph_file_round_trips_and_is_refused_when_it_does_not_match() {
    let dir = tempfile::tempdir().unwrap();
    let mut indexed = Indexed::load(Collection::new(8), &options(), None).unwrap();
    indexed.upsert((0..120).map(|i| record(i, 0)).collect());
    Apply::delete(&mut indexed, &["r1".to_owned(), "r2".to_owned()]);
    indexed.compacted(dir.path(), 3).unwrap();

    let loaded = file::read(dir.path(), 3, &indexed.records, &options()).expect("the graph loads");
    let graph = indexed.graph.as_ref().unwrap();
    assert_eq!(loaded.node_of_slot, graph.node_of_slot);
    assert_eq!(loaded.slot_of_node, graph.slot_of_node);
    assert_eq!(loaded.removed, graph.removed);
    let reloaded = Indexed::load(indexed.records.clone(), &options(), Some((dir.path(), 3))).unwrap();
    let query = VectorQuery { vector: vector(9, 0), k: 5, filter: None };
    let slots = |hits: Vec<crate::vector::topk::Hit>| hits.iter().map(|hit| hit.slot).collect::<Vec<_>>();
    assert_eq!(slots(reloaded.search(&query).unwrap()), slots(indexed.search(&query).unwrap()));

    assert!(file::read(dir.path(), 4, &indexed.records, &options()).is_none(), "another generation");
    let other = HnswStoreOptions { m: 8, ..options() };
    assert!(file::read(dir.path(), 3, &indexed.records, &other).is_none(), "other build parameters");
    let mut fewer = indexed.records.clone();
    fewer.delete("r3");
    assert!(file::read(dir.path(), 3, &fewer, &options()).is_none(), "other records");
    let path = dir.path().join("graph");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[70] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    assert!(file::read(dir.path(), 3, &indexed.records, &options()).is_none(), "damaged");
    std::fs::write(&path, &bytes[..30]).unwrap();
    assert!(file::read(dir.path(), 3, &indexed.records, &options()).is_none(), "truncated");

    // Without a graph (too small) the file goes.
    let small = Indexed::load(Collection::new(8), &options(), None).unwrap();
    small.compacted(dir.path(), 5).unwrap();
    assert!(!path.exists());
}
