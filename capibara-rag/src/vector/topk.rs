//! Bounded selection of the best `k` scores: a min-heap of the kept hits, so each further score
//! costs one comparison unless it beats the worst kept one.
//!
//! "Better" means a higher score, then (for equal scores) an earlier insertion: results are the
//! same whatever order the rows are scanned in, and the same on every run.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Scores [`TopK::extend`] rejects at once when none reaches the floor.
const SKIP_BLOCK: usize = 32;

/// One kept hit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hit {
    /// Inner product with the query (a NaN, which only overflowing vectors produce, is kept as
    /// −∞ so that it ranks last).
    pub(crate) score: f32,
    /// The record's insertion sequence number.
    pub(crate) seq: u64,
    /// The record's slot in the collection.
    pub(crate) slot: usize,
}

impl Hit {
    /// `Less` when `self` is better than `other`: the heap's greatest element is the worst hit.
    fn rank(&self, other: &Self) -> Ordering {
        other.score.total_cmp(&self.score).then(self.seq.cmp(&other.seq))
    }
}

impl PartialEq for Hit {
    fn eq(&self, other: &Self) -> bool {
        self.rank(other) == Ordering::Equal
    }
}

impl Eq for Hit {}

impl PartialOrd for Hit {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Hit {
    fn cmp(&self, other: &Self) -> Ordering {
        self.rank(other)
    }
}

/// The best `k` hits pushed so far.
#[derive(Debug)]
pub(crate) struct TopK {
    k: usize,
    heap: BinaryHeap<Hit>,
    /// The worst kept score once `k` hits are kept; lower scores are rejected without a heap look.
    floor: f32,
}

impl TopK {
    /// Keeps the best `k` hits.
    pub(crate) fn new(k: usize) -> Self {
        Self { k, heap: BinaryHeap::with_capacity(k.saturating_add(1).min(4096)), floor: f32::NEG_INFINITY }
    }

    /// Offers one hit.
    #[inline]
    pub(crate) fn push(&mut self, mut hit: Hit) {
        if hit.score.is_nan() {
            hit.score = f32::NEG_INFINITY;
        }
        if self.heap.len() < self.k {
            self.heap.push(hit);
            if self.heap.len() == self.k {
                self.floor = self.heap.peek().map_or(f32::NEG_INFINITY, |worst| worst.score);
            }
            return;
        }
        if self.k == 0 || hit.score < self.floor {
            return;
        }
        if let Some(mut worst) = self.heap.peek_mut()
            && hit < *worst
        {
            *worst = hit;
        }
        self.floor = self.heap.peek().map_or(f32::NEG_INFINITY, |worst| worst.score);
    }

    /// The score a hit needs to be kept: −∞ until `k` hits are kept, then the worst kept score (a
    /// hit equal to it may still win on insertion order).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn threshold(&self) -> f32 {
        if self.heap.len() < self.k { f32::NEG_INFINITY } else { self.floor }
    }

    /// Offers `scores[i]` for the row `slots(i)` for every `i`.
    #[inline]
    pub(crate) fn extend(&mut self, scores: &[f32], seqs: &[u64], slot_of: impl Fn(usize) -> usize) {
        for (block, chunk) in scores.chunks(SKIP_BLOCK).enumerate() {
            // Once k hits are kept, most blocks hold no score at or above the floor: one
            // vectorised comparison rejects the whole block (a NaN compares false, ranking last).
            if self.heap.len() == self.k
                && !chunk.iter().fold(false, |any, score| any | (*score >= self.floor))
            {
                continue;
            }
            let base = block * SKIP_BLOCK;
            for (i, score) in chunk.iter().enumerate() {
                let score = if score.is_nan() { f32::NEG_INFINITY } else { *score };
                if self.heap.len() == self.k && score < self.floor {
                    continue;
                }
                let slot = slot_of(base + i);
                self.push(Hit { score, seq: seqs[slot], slot });
            }
        }
    }

    /// The kept hits, best first.
    pub(crate) fn into_sorted(self) -> Vec<Hit> {
        // The heap's order puts the best first when sorted ascending.
        self.heap.into_sorted_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(k: usize, scores: &[f32], seqs: &[u64]) -> Vec<usize> {
        let mut top = TopK::new(k);
        top.extend(scores, seqs, |i| i);
        top.into_sorted().iter().map(|hit| hit.slot).collect()
    }

    #[test]
    fn keeps_the_best_k_best_first() {
        let scores = [0.1, 0.9, -0.5, 0.7, 0.3, 0.8];
        let seqs = [0, 1, 2, 3, 4, 5];
        assert_eq!(run(3, &scores, &seqs), vec![1, 5, 3]);
        assert_eq!(run(10, &scores, &seqs), vec![1, 5, 3, 4, 0, 2]);
        assert!(run(0, &scores, &seqs).is_empty());
    }

    #[test]
    fn ties_go_to_the_earliest_insertion_whatever_the_scan_order() {
        // Slots are not in insertion order (deletes swap records around); seqs are.
        let scores = [0.5, 0.5, 0.5, 0.5, 0.9];
        let seqs = [7, 2, 9, 4, 11];
        assert_eq!(run(3, &scores, &seqs), vec![4, 1, 3]);
        assert_eq!(run(5, &scores, &seqs), vec![4, 1, 3, 0, 2]);
    }

    #[test]
    fn blocks_below_the_floor_are_skipped_without_losing_later_hits_or_ties() {
        // 100 scores: the best ones sit late, in several blocks, one tying the floor.
        let mut scores: Vec<f32> = (0..100).map(|i| (i % 10) as f32 * 0.01).collect();
        scores[70] = 0.9;
        scores[99] = 0.8;
        scores[45] = 0.09; // ties the 0.09 of slot 9, inserted later (seq 45 > 9)
        let mut seqs: Vec<u64> = (0..100).collect();
        seqs[45] = 3; // ... but with an earlier insertion: it wins the tie
        let top = run(4, &scores, &seqs);
        assert_eq!(top, vec![70, 99, 45, 9]);
        let brute: Vec<usize> = {
            let mut all: Vec<usize> = (0..100).collect();
            all.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]).then(seqs[*a].cmp(&seqs[*b])));
            all.truncate(12);
            all
        };
        assert_eq!(run(12, &scores, &seqs), brute);
    }

    #[test]
    fn nan_scores_rank_last() {
        let scores = [f32::NAN, 0.1, f32::NAN, -3.0];
        let seqs = [0, 1, 2, 3];
        assert_eq!(run(2, &scores, &seqs), vec![1, 3]);
        assert_eq!(run(4, &scores, &seqs)[..2], [1, 3]);
    }
}
