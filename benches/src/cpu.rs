//! The CPU time a target's processes use: every thread of the process and of all its descendants
//! (LiteLLM's workers are child processes), read from `/proc/<pid>/task/<tid>/schedstat` in
//! nanoseconds.
//!
//! A thread's counter disappears with the thread, so a [`CpuMeter`] samples the tree in the background
//! and keeps the last value of every thread it saw: a thread that exits during a cell loses at most one
//! sampling interval of its time, and threads and processes born during the cell count from zero.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a [`CpuMeter`] samples.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// A process and its descendants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessTree {
    root: u32,
    descendants: bool,
}

impl ProcessTree {
    /// The tree rooted at `root`.
    pub fn new(root: u32) -> Self {
        Self { root, descendants: true }
    }

    /// The process alone, without its children (the benchmark itself: the servers it starts are its
    /// children and are measured on their own).
    pub fn process(pid: u32) -> Self {
        Self { root: pid, descendants: false }
    }

    /// The root and every live descendant.
    pub fn pids(&self) -> Vec<u32> {
        if !self.descendants {
            return vec![self.root];
        }
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for entry in entries.flatten() {
                let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
                    continue;
                };
                if let Some(ppid) =
                    std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|s| parent_pid(&s))
                {
                    children.entry(ppid).or_default().push(pid);
                }
            }
        }
        let mut tree = vec![self.root];
        let mut next = 0;
        while let Some(&pid) = tree.get(next) {
            tree.extend(children.remove(&pid).unwrap_or_default());
            next += 1;
        }
        tree
    }

    /// CPU nanoseconds of every live thread of the tree, by thread id.
    pub fn thread_times(&self) -> HashMap<u32, u64> {
        let mut times = HashMap::new();
        for pid in self.pids() {
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { continue };
            for task in tasks.flatten() {
                let Some(tid) = task.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
                    continue;
                };
                if let Some(ns) =
                    std::fs::read_to_string(task.path().join("schedstat")).ok().and_then(|s| run_time_ns(&s))
                {
                    times.insert(tid, ns);
                }
            }
        }
        times
    }

    /// Total CPU time of the tree's live threads.
    pub fn total(&self) -> Duration {
        Duration::from_nanos(self.thread_times().values().sum())
    }
}

/// The parent pid in a `/proc/<pid>/stat` line (`pid (comm) state ppid …`; `comm` may hold spaces
/// and parentheses, so fields are counted from the last `)`).
pub fn parent_pid(stat: &str) -> Option<u32> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(1)?.parse().ok()
}

/// The first field of a `schedstat` line: time spent on a CPU, in nanoseconds.
pub fn run_time_ns(schedstat: &str) -> Option<u64> {
    schedstat.split_whitespace().next()?.parse().ok()
}

/// CPU time per thread at the start of a measurement and at its last sample.
#[derive(Debug, Default)]
struct Tally {
    baseline: HashMap<u32, u64>,
    latest: HashMap<u32, u64>,
}

impl Tally {
    fn record(&mut self, sample: HashMap<u32, u64>) {
        self.latest.extend(sample);
    }

    fn used(&self) -> Duration {
        let ns = self
            .latest
            .iter()
            .map(|(tid, &ns)| ns.saturating_sub(self.baseline.get(tid).copied().unwrap_or(0)))
            .sum();
        Duration::from_nanos(ns)
    }
}

/// Measures the CPU time a process tree uses from [`CpuMeter::start`] to [`CpuMeter::stop`].
pub struct CpuMeter {
    stopping: Arc<AtomicBool>,
    sampler: JoinHandle<Tally>,
}

impl CpuMeter {
    /// Takes the baseline and starts sampling every [`SAMPLE_INTERVAL`].
    pub fn start(tree: ProcessTree) -> Self {
        let baseline = tree.thread_times();
        let stopping = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stopping);
        let sampler = std::thread::spawn(move || {
            let mut tally = Tally { latest: baseline.clone(), baseline };
            while !flag.load(Ordering::Acquire) {
                std::thread::park_timeout(SAMPLE_INTERVAL);
                tally.record(tree.thread_times());
            }
            tally
        });
        Self { stopping, sampler }
    }

    /// Takes a last sample and returns the CPU time used since the start.
    pub fn stop(self) -> Duration {
        self.stopping.store(true, Ordering::Release);
        self.sampler.thread().unpark();
        self.sampler.join().map(|tally| tally.used()).unwrap_or_default()
    }
}

/// Waits until the tree uses less than `busy_fraction` of one core over a 250 ms window (a target
/// still finishing abandoned streams would otherwise charge them to the next cell), at most `limit`.
/// Returns whether it went quiet.
pub async fn wait_until_quiet(tree: ProcessTree, busy_fraction: f64, limit: Duration) -> bool {
    const WINDOW: Duration = Duration::from_millis(250);
    let give_up = Instant::now() + limit;
    let mut before = tree.total();
    while Instant::now() < give_up {
        tokio::time::sleep(WINDOW).await;
        let now = tree.total();
        if now.saturating_sub(before).as_secs_f64() < busy_fraction * WINDOW.as_secs_f64() {
            return true;
        }
        before = now;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_awkward_command_names() {
        assert_eq!(parent_pid("42 (python3) S 7 42 42 0 -1"), Some(7));
        assert_eq!(parent_pid("42 (a) b (c)) R 9 1 1"), Some(9));
        assert_eq!(parent_pid("garbage"), None);
        assert_eq!(run_time_ns("232296 409417 1\n"), Some(232_296));
    }

    #[test]
    fn exited_threads_keep_their_last_sample_and_new_ones_count_from_zero() {
        let mut tally = Tally { baseline: HashMap::from([(1, 100), (2, 50)]), latest: HashMap::new() };
        tally.latest = tally.baseline.clone();
        tally.record(HashMap::from([(1, 160), (2, 70), (3, 5)]));
        // Thread 2 exits: absent from the last sample, its 20 ns stay counted.
        tally.record(HashMap::from([(1, 200), (3, 30)]));
        assert_eq!(tally.used(), Duration::from_nanos(100 + 20 + 30));
    }
}
