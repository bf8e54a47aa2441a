//! One cell of the matrix: `n` streams at concurrency `c` against one target, stopped after `n`
//! streams or a time cap, whichever comes first.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::connection::{Connection, Endpoint};
use super::stream::{StreamRecord, StreamSpec, run_stream};

/// Concurrency of the warm-up that precedes each cell: enough to open the target's paths and pools,
/// few enough that a slow target finishes it in a few seconds.
const WARM_UP_CONCURRENCY: usize = 50;

/// How one cell runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellPlan {
    /// Model name sent; the fake upstream reads the answer's shape from it (`bench-64x5ms`).
    pub model: String,
    /// Content chunks each answer has.
    pub tokens: u32,
    /// Streams in flight at once (one keep-alive connection each).
    pub concurrency: usize,
    /// Streams to run.
    pub streams: usize,
    /// No stream starts after this much time.
    pub time_cap: Duration,
    /// Streams still running this long after the cap are cut off (and counted as cut).
    pub drain: Duration,
    /// The connections start their first streams spread evenly over this time, so the chunks of `c`
    /// streams do not arrive in lockstep (as they would if every client started at the same instant).
    pub ramp_up: Duration,
}

impl CellPlan {
    /// A cell of `tokens`-token answers with `delay_ms` between tokens.
    pub fn new(tokens: u32, delay_ms: u64, concurrency: usize, streams: usize, time_cap: Duration) -> Self {
        Self {
            model: format!("bench-{tokens}x{delay_ms}ms"),
            tokens,
            concurrency: concurrency.max(1),
            streams,
            time_cap,
            drain: Duration::from_secs(10),
            // One answer's worth of token delays: each connection starts at a different phase of it.
            ramp_up: Duration::from_millis(delay_ms) * tokens,
        }
    }

    /// The short unmeasured run before this cell: same answers, at most [`WARM_UP_CONCURRENCY`] streams
    /// in flight, two rounds of streams, about two seconds.
    pub fn warm_up(&self) -> Self {
        let concurrency = self.concurrency.min(WARM_UP_CONCURRENCY);
        Self {
            model: self.model.clone(),
            tokens: self.tokens,
            concurrency,
            streams: concurrency * 2,
            time_cap: Duration::from_secs(2),
            drain: Duration::from_secs(10),
            ramp_up: self.ramp_up,
        }
    }
}

/// What a cell measured.
#[derive(Debug, Clone, Default)]
pub struct CellRun {
    /// One record per stream that ended (complete or failed), in the order they ended.
    pub records: Vec<StreamRecord>,
    /// Streams still running when the drain after the time cap ran out.
    pub cut: usize,
    /// Content chunks received, cut streams included.
    pub content_chunks: u64,
    /// From the start of the cell to the end of its last stream.
    pub elapsed: Duration,
    /// Whether the time cap stopped the cell before all its streams started.
    pub capped: bool,
}

struct Shared {
    spec: StreamSpec,
    endpoint: Endpoint,
    streams: usize,
    claimed: AtomicUsize,
    started: Instant,
    deadline: Instant,
    chunks_seen: AtomicU64,
    records: Mutex<Vec<StreamRecord>>,
}

/// Runs a cell: opens `concurrency` connections, then runs streams on each until the cell's streams
/// are all claimed or its time cap passes.
pub async fn run_cell(endpoint: &Endpoint, plan: &CellPlan) -> CellRun {
    let connections = open_connections(endpoint, plan.concurrency).await;
    let started = Instant::now();
    let shared = Arc::new(Shared {
        spec: StreamSpec::chat(&plan.model, plan.tokens),
        endpoint: endpoint.clone(),
        streams: plan.streams,
        claimed: AtomicUsize::new(0),
        started,
        deadline: started + plan.time_cap,
        chunks_seen: AtomicU64::new(0),
        records: Mutex::new(Vec::with_capacity(plan.streams)),
    });
    let mut workers = JoinSet::new();
    let count = u32::try_from(connections.len()).unwrap_or(u32::MAX).max(1);
    for (index, connection) in (0u32..).zip(connections) {
        let first_start = started + plan.ramp_up * index / count;
        workers.spawn(worker(Arc::clone(&shared), connection, first_start));
    }
    let hard_stop = shared.deadline + plan.drain;
    let all_ended =
        tokio::time::timeout_at(hard_stop.into(), async { while workers.join_next().await.is_some() {} })
            .await
            .is_ok();
    if !all_ended {
        // Dropping the workers closes their connections, which tells the target to stop those streams.
        workers.shutdown().await;
    }
    let records = std::mem::take(&mut *shared.records.lock().unwrap_or_else(PoisonError::into_inner));
    let claimed = shared.claimed.load(Ordering::Relaxed).min(plan.streams);
    let elapsed = records.iter().map(|r| r.ended_at).max().unwrap_or_else(|| started.elapsed());
    CellRun {
        cut: claimed.saturating_sub(records.len()),
        content_chunks: shared.chunks_seen.load(Ordering::Relaxed),
        elapsed,
        capped: claimed < plan.streams,
        records,
    }
}

/// Opens the cell's connections at once, before the clock starts; one that fails is retried (and
/// its failure recorded) by the stream that needs it.
async fn open_connections(endpoint: &Endpoint, count: usize) -> Vec<Option<Connection>> {
    let mut opening = JoinSet::new();
    for _ in 0..count {
        let endpoint = endpoint.clone();
        opening.spawn(async move { Connection::open(&endpoint).await.ok() });
    }
    let mut connections = Vec::with_capacity(count);
    while let Some(opened) = opening.join_next().await {
        connections.push(opened.ok().flatten());
    }
    connections
}

async fn worker(shared: Arc<Shared>, mut connection: Option<Connection>, first_start: Instant) {
    tokio::time::sleep_until(first_start.into()).await;
    loop {
        if Instant::now() >= shared.deadline {
            return;
        }
        if shared.claimed.fetch_add(1, Ordering::Relaxed) >= shared.streams {
            return;
        }
        let record =
            run_stream(&mut connection, &shared.endpoint, &shared.spec, shared.started, &shared.chunks_seen)
                .await;
        shared.records.lock().unwrap_or_else(PoisonError::into_inner).push(record);
    }
}
