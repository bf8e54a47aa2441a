//! Summaries of measured latencies.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Percentiles of a set of measured durations.
///
/// Percentiles use the nearest-rank definition: the p-th percentile of `n` sorted samples is the
/// sample at 1-based rank `⌈p/100 · n⌉`, so every reported value is one that was measured.
///
/// ```
/// use std::time::Duration;
/// use capibara_rag::eval::LatencySummary;
///
/// let samples: Vec<Duration> = (1..=10).map(Duration::from_millis).collect();
/// let summary = LatencySummary::from_durations(&samples).unwrap();
/// assert_eq!(summary.p50, Duration::from_millis(5));
/// assert_eq!(summary.p90, Duration::from_millis(9));
/// assert_eq!(summary.max, Duration::from_millis(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Number of samples.
    pub count: usize,
    /// Arithmetic mean.
    pub mean: Duration,
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Slowest sample.
    pub max: Duration,
}

impl LatencySummary {
    /// Summarises `samples`; `None` when there are none.
    pub fn from_durations(samples: &[Duration]) -> Option<Self> {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let max = *sorted.last()?;
        let total: Duration = sorted.iter().sum();
        let count = sorted.len();
        let mean = total.div_f64(count as f64);
        let percentile = |p: usize| {
            // ⌈p · n / 100⌉ in integers, at least rank 1.
            let rank = (p * count).div_ceil(100).max(1);
            sorted.get(rank - 1).copied().unwrap_or(max)
        };
        Some(Self { count, mean, p50: percentile(50), p90: percentile(90), p99: percentile(99), max })
    }
}

impl std::fmt::Display for LatencySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "n={} mean={:?} p50={:?} p90={:?} p99={:?} max={:?}",
            self.count, self.mean, self.p50, self.p90, self.p99, self.max
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|&v| Duration::from_millis(v)).collect()
    }

    #[test]
    fn nearest_rank_percentiles() {
        // Unsorted input; 1..=100 ms.
        let mut samples = ms(&(1..=100).collect::<Vec<_>>());
        samples.reverse();
        let summary = LatencySummary::from_durations(&samples).unwrap();
        assert_eq!(summary.count, 100);
        assert_eq!(summary.p50, Duration::from_millis(50));
        assert_eq!(summary.p90, Duration::from_millis(90));
        assert_eq!(summary.p99, Duration::from_millis(99));
        assert_eq!(summary.max, Duration::from_millis(100));
        assert_eq!(summary.mean, Duration::from_micros(50_500));
    }

    #[test]
    fn small_sets() {
        let one = LatencySummary::from_durations(&ms(&[7])).unwrap();
        let seven = Duration::from_millis(7);
        assert_eq!([one.mean, one.p50, one.p90, one.p99, one.max], [seven; 5]);
        // n = 4: p50 → rank 2, p90 → rank 4, p99 → rank 4.
        let four = LatencySummary::from_durations(&ms(&[40, 10, 30, 20])).unwrap();
        assert_eq!(four.p50, Duration::from_millis(20));
        assert_eq!(four.p90, Duration::from_millis(40));
        assert_eq!(four.p99, Duration::from_millis(40));
        assert_eq!(four.mean, Duration::from_millis(25));
        assert!(LatencySummary::from_durations(&[]).is_none());
        assert!(four.to_string().starts_with("n=4 mean=25ms p50=20ms"));
    }
}
