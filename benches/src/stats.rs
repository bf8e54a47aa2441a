//! From the records of a cell to the numbers of one table row.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::load::CellRun;

/// The median and the 99th percentile of a set of durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percentiles {
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
}

impl Percentiles {
    /// Nearest-rank percentiles; `None` for no values.
    pub fn of(mut values: Vec<Duration>) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        values.sort_unstable();
        Some(Self { p50: nearest_rank(&values, 0.50), p99: nearest_rank(&values, 0.99) })
    }
}

/// The smallest value with at least `quantile` of the values at or below it.
fn nearest_rank(sorted: &[Duration], quantile: f64) -> Duration {
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// How often one kind of failure happened, with one example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureCount {
    /// Streams that failed this way.
    pub count: usize,
    /// The first such failure, in words.
    pub example: String,
}

/// One row of the report: what a target did in one cell.
#[derive(Debug, Clone, PartialEq)]
pub struct CellStats {
    /// Complete answers with every content chunk.
    pub done: usize,
    /// Streams that failed (see [`Self::failures`]).
    pub errors: usize,
    /// Streams cut off after the time cap and its drain.
    pub cut: usize,
    /// Whether the time cap stopped the cell before all its streams started.
    pub capped: bool,
    /// From the start of the cell to the end of its last stream.
    pub elapsed: Duration,
    /// Complete answers per second of the cell.
    pub streams_per_sec: f64,
    /// Time to the first token of complete answers.
    pub ttft: Option<Percentiles>,
    /// Total time of complete answers.
    pub total: Option<Percentiles>,
    /// CPU time the target's processes used during the cell, when measured.
    pub cpu: Option<Duration>,
    /// That CPU time per answer delivered, counting answers as content chunks ÷ tokens per answer
    /// (so the work done on failed or cut streams is not charged to the complete ones).
    pub cpu_ms_per_stream: Option<f64>,
    /// Failures by kind.
    pub failures: BTreeMap<&'static str, FailureCount>,
}

impl CellStats {
    /// Summarises a cell whose answers have `tokens` content chunks each.
    pub fn from_run(run: &CellRun, tokens: u32, cpu: Option<Duration>) -> Self {
        let mut failures: BTreeMap<&'static str, FailureCount> = BTreeMap::new();
        let mut ttfts = Vec::with_capacity(run.records.len());
        let mut totals = Vec::with_capacity(run.records.len());
        for record in &run.records {
            match &record.failure {
                Some(failure) => {
                    failures
                        .entry(failure.kind())
                        .or_insert_with(|| FailureCount { count: 0, example: failure.to_string() })
                        .count += 1;
                }
                None => {
                    ttfts.extend(record.ttft);
                    totals.push(record.total);
                }
            }
        }
        let done = totals.len();
        let seconds = run.elapsed.as_secs_f64();
        let streams_delivered = run.content_chunks as f64 / f64::from(tokens.max(1));
        Self {
            done,
            errors: run.records.len() - done,
            cut: run.cut,
            capped: run.capped,
            elapsed: run.elapsed,
            streams_per_sec: if seconds > 0.0 { done as f64 / seconds } else { 0.0 },
            ttft: Percentiles::of(ttfts),
            total: Percentiles::of(totals),
            cpu,
            cpu_ms_per_stream: cpu
                .filter(|_| streams_delivered > 0.0)
                .map(|cpu| cpu.as_secs_f64() * 1e3 / streams_delivered),
            failures,
        }
    }

    /// Whether the row cannot be trusted as it stands: some streams failed.
    pub fn flagged(&self) -> bool {
        self.errors > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{StreamFailure, StreamRecord};

    fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    fn record(ttft: u64, total: u64, failure: Option<StreamFailure>) -> StreamRecord {
        StreamRecord {
            ttft: Some(ms(ttft)),
            total: ms(total),
            content_chunks: 64,
            ended_at: ms(total),
            failure,
        }
    }

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<Duration> = (1..=100).rev().map(ms).collect();
        assert_eq!(Percentiles::of(values), Some(Percentiles { p50: ms(50), p99: ms(99) }));
        assert_eq!(Percentiles::of(vec![ms(7)]), Some(Percentiles { p50: ms(7), p99: ms(7) }));
        assert_eq!(Percentiles::of(vec![ms(1), ms(2), ms(3)]).map(|p| (p.p50, p.p99)), Some((ms(2), ms(3))));
        assert_eq!(Percentiles::of(Vec::new()), None);
    }

    #[test]
    fn failed_streams_are_counted_apart_and_cpu_is_charged_per_delivered_answer() {
        let run = CellRun {
            records: vec![
                record(1, 10, None),
                record(3, 30, None),
                record(2, 20, Some(StreamFailure::ChunkCount { got: 10, expected: 64 })),
                record(2, 20, Some(StreamFailure::NoDone)),
                record(2, 20, Some(StreamFailure::NoDone)),
            ],
            cut: 1,
            // Two complete answers, 10 + 0 + 0 chunks of failed ones, 22 of the cut one.
            content_chunks: 2 * 64 + 10 + 22,
            elapsed: Duration::from_secs(2),
            capped: true,
        };
        let stats = CellStats::from_run(&run, 64, Some(ms(250)));
        assert_eq!((stats.done, stats.errors, stats.cut), (2, 3, 1));
        assert!(stats.flagged());
        assert_eq!(stats.streams_per_sec, 1.0);
        assert_eq!(stats.ttft, Some(Percentiles { p50: ms(1), p99: ms(3) }));
        assert_eq!(stats.failures["no [DONE]"].count, 2);
        assert_eq!(stats.failures["chunk count"].example, "10 content chunks instead of 64");
        // 160 chunks = 2.5 answers' worth of work.
        assert_eq!(stats.cpu_ms_per_stream, Some(100.0));
    }
}
