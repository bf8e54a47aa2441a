//! The gateway-overhead benchmark: the fake upstream started once, then for each target (direct,
//! Capibara, LiteLLM with 1 and 2 workers) every cell of token delay × concurrency, with the CPU time
//! the target's processes used during each cell.

use std::time::Duration;

use crate::cpu::{CpuMeter, ProcessTree, wait_until_quiet};
use crate::load::{CellPlan, Endpoint, run_cell};
use crate::service::Service;
use crate::stats::CellStats;
use crate::targets::{Installation, Target, start_proxy, start_upstream};

/// The cells each target runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// Content chunks per answer.
    pub tokens: u32,
    /// Milliseconds between chunks.
    pub delays_ms: Vec<u64>,
    /// Streams in flight at once.
    pub concurrencies: Vec<usize>,
    /// No stream of a cell starts after this much time.
    pub time_cap: Duration,
    /// Streams still running this long after the cap are cut off.
    pub drain: Duration,
    /// Multiplies every cell's stream count (1.0 for the reported run; less for a quick look).
    pub scale: f64,
}

impl Default for Matrix {
    /// The reported matrix: 64-token answers, {0, 5} ms × {1, 50, 500}, 20 s cap per cell.
    fn default() -> Self {
        Self {
            tokens: 64,
            delays_ms: vec![0, 5],
            concurrencies: vec![1, 50, 500],
            time_cap: Duration::from_secs(20),
            drain: Duration::from_secs(5),
            scale: 1.0,
        }
    }
}

impl Matrix {
    /// Streams per cell: enough rounds at each concurrency for stable percentiles, sized so the direct
    /// upstream and Capibara finish well inside the cap (LiteLLM hits it in the heavier cells).
    pub fn streams(&self, delay_ms: u64, concurrency: usize) -> usize {
        let base = match (delay_ms, concurrency) {
            // One stream at a time of 64 × 5 ms takes about a third of a second.
            (0, 1) => 1000,
            (_, 1) => 50,
            (0, c) => (c * 60).clamp(3000, 6000),
            (_, c) => (c * 30).clamp(1500, 5000),
        };
        ((base as f64 * self.scale).round() as usize).max(1)
    }

    /// Every cell, delays outermost.
    pub fn cells(&self) -> Vec<CellPlan> {
        let mut cells = Vec::new();
        for &delay in &self.delays_ms {
            for &concurrency in &self.concurrencies {
                let mut plan = CellPlan::new(
                    self.tokens,
                    delay,
                    concurrency,
                    self.streams(delay, concurrency),
                    self.time_cap,
                );
                plan.drain = self.drain;
                cells.push(plan);
            }
        }
        cells
    }
}

/// One measured cell.
#[derive(Debug, Clone, PartialEq)]
pub struct CellResult {
    /// Who was measured.
    pub target: Target,
    /// Milliseconds between tokens.
    pub delay_ms: u64,
    /// Streams in flight at once.
    pub concurrency: usize,
    /// Streams the cell asked for.
    pub planned: usize,
    /// What it measured.
    pub stats: CellStats,
    /// CPU time of everything the benchmark runs (load client, upstream, target) during the cell:
    /// how close the shared cores were to saturation.
    pub machine_cpu: Duration,
}

impl CellResult {
    /// Cores kept busy by the load client, the upstream and the target together, on average.
    pub fn busy_cores(&self) -> f64 {
        let seconds = self.stats.elapsed.as_secs_f64();
        if seconds > 0.0 { self.machine_cpu.as_secs_f64() / seconds } else { 0.0 }
    }
}

/// Everything a run measured.
#[derive(Debug, Clone, Default)]
pub struct Measurements {
    /// Every cell of every target that started, in run order.
    pub cells: Vec<CellResult>,
    /// Targets that could not be measured, with the reason.
    pub failed_targets: Vec<(Target, String)>,
    /// Targets that crashed during a cell (and were restarted for the next one).
    pub incidents: Vec<String>,
}

impl Measurements {
    /// The cell of `target` at (`delay_ms`, `concurrency`), if measured.
    pub fn cell(&self, target: Target, delay_ms: u64, concurrency: usize) -> Option<&CellResult> {
        self.cells
            .iter()
            .find(|c| c.target == target && c.delay_ms == delay_ms && c.concurrency == concurrency)
    }
}

/// Share of one core under which a target counts as idle between cells.
const QUIET_FRACTION: f64 = 0.05;

/// Runs the matrix against every target, calling `progress` with a line per step.
pub async fn run(
    installation: &Installation,
    matrix: &Matrix,
    targets: &[Target],
    mut progress: impl FnMut(String),
) -> anyhow::Result<Measurements> {
    std::fs::create_dir_all(&installation.work_dir)?;
    let mut upstream = start_upstream(installation).await?;
    progress(format!("fake upstream ready at {}", upstream.base_url()));
    let mut measurements = Measurements::default();
    for &target in targets {
        let mut session = TargetSession { target, installation, matrix, measurements: &mut measurements };
        if let Err(error) = session.run(&mut upstream, &mut progress).await {
            progress(format!("{target} failed: {error:#}"));
            measurements.failed_targets.push((target, format!("{error:#}")));
        }
    }
    upstream.stop(Duration::from_secs(5));
    Ok(measurements)
}

/// The processes whose CPU time a cell records.
#[derive(Debug, Clone, Copy)]
struct Processes {
    /// The server under test (for direct, the upstream).
    target: ProcessTree,
    /// The upstream behind a proxy; `None` when it is the target.
    upstream: Option<ProcessTree>,
    /// The benchmark itself.
    client: ProcessTree,
}

/// One target measured cell after cell.
struct TargetSession<'a> {
    target: Target,
    installation: &'a Installation,
    matrix: &'a Matrix,
    measurements: &'a mut Measurements,
}

impl TargetSession<'_> {
    async fn run(&mut self, upstream: &mut Service, progress: &mut impl FnMut(String)) -> anyhow::Result<()> {
        let target = self.target;
        progress(format!("starting {target}"));
        let mut proxy = start_proxy(target, self.installation, upstream).await?;
        // One stream end to end first: a target that cannot answer is reported as such, not as a table
        // of errors.
        let endpoint = proxy.as_ref().unwrap_or(upstream).endpoint();
        let probe = CellPlan::new(self.matrix.tokens, 0, 1, 1, Duration::from_secs(10));
        if let Some(failure) =
            run_cell(&endpoint, &probe).await.records.first().and_then(|r| r.failure.clone())
        {
            anyhow::bail!("the first stream failed: {failure}");
        }
        let cells = self.matrix.cells();
        for (index, plan) in cells.iter().enumerate() {
            let server = proxy.as_ref().unwrap_or(upstream);
            let processes = Processes {
                target: ProcessTree::new(server.pid()),
                upstream: proxy.as_ref().map(|_| ProcessTree::new(upstream.pid())),
                client: ProcessTree::process(std::process::id()),
            };
            let result = measure_cell(target, &server.endpoint(), processes, plan).await;
            progress(progress_line(target, &result, plan));
            let (delay_ms, concurrency) = (result.delay_ms, result.concurrency);
            self.measurements.cells.push(result);
            let exit = match proxy.as_mut() {
                Some(proxy) => proxy.exit_description(),
                None => upstream.exit_description(),
            };
            if let Some(exit) = exit {
                // A crash is a result too; restarting costs one cell instead of the rest of the matrix.
                let mut incident = format!("{target} {exit} during the cell {delay_ms} ms, c={concurrency}");
                if proxy.is_none() {
                    anyhow::bail!("{incident}; nothing else can be measured without the upstream");
                }
                if index + 1 < cells.len() {
                    incident.push_str("; restarted for the next cell");
                    progress(incident.clone());
                    self.measurements.incidents.push(incident);
                    proxy = start_proxy(target, self.installation, upstream).await?;
                } else {
                    progress(incident.clone());
                    self.measurements.incidents.push(incident);
                }
            }
        }
        if let Some(proxy) = proxy.as_mut() {
            proxy.stop(Duration::from_secs(10));
        }
        Ok(())
    }
}

/// Warm-up, a quiet target, then the measured cell with the CPU time of every process involved.
async fn measure_cell(
    target: Target,
    endpoint: &Endpoint,
    processes: Processes,
    plan: &CellPlan,
) -> CellResult {
    run_cell(endpoint, &plan.warm_up()).await;
    wait_until_quiet(processes.target, QUIET_FRACTION, Duration::from_secs(20)).await;
    let meter = CpuMeter::start(processes.target);
    let others: Vec<CpuMeter> =
        processes.upstream.into_iter().chain([processes.client]).map(CpuMeter::start).collect();
    let run = run_cell(endpoint, plan).await;
    let cpu = meter.stop();
    let machine_cpu = cpu + others.into_iter().map(CpuMeter::stop).sum::<Duration>();
    // Streams cut off at the cap may keep the target busy for a while; that is not the next cell's.
    wait_until_quiet(processes.target, QUIET_FRACTION, Duration::from_secs(20)).await;
    CellResult {
        target,
        delay_ms: delay_of(plan),
        concurrency: plan.concurrency,
        planned: plan.streams,
        stats: CellStats::from_run(&run, plan.tokens, Some(cpu)),
        machine_cpu,
    }
}

/// The delay encoded in a plan's model name (`bench-64x5ms` → 5).
fn delay_of(plan: &CellPlan) -> u64 {
    plan.model
        .rsplit_once('x')
        .and_then(|(_, delay)| delay.strip_suffix("ms"))
        .and_then(|delay| delay.parse().ok())
        .unwrap_or_default()
}

fn progress_line(target: Target, cell: &CellResult, plan: &CellPlan) -> String {
    let stats = &cell.stats;
    let ttft_p99 =
        stats.ttft.map_or_else(|| "-".to_owned(), |p| format!("{:.2} ms", p.p99.as_secs_f64() * 1e3));
    let cpu = stats.cpu_ms_per_stream.map_or_else(|| "-".to_owned(), |ms| format!("{ms:.2} ms"));
    format!(
        "{target:>18} | {} ms × c={:<3} | {}/{} done in {:.1} s, {} errors, {} cut | {:.1} streams/s | TTFT p99 {ttft_p99} | CPU {cpu}/stream",
        cell.delay_ms,
        cell.concurrency,
        stats.done,
        plan.streams,
        stats.elapsed.as_secs_f64(),
        stats.errors,
        stats.cut,
        stats.streams_per_sec,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_matrix_has_six_cells_with_the_delay_in_the_model() {
        let matrix = Matrix::default();
        let cells = matrix.cells();
        assert_eq!(cells.len(), 6);
        assert_eq!(cells.iter().map(delay_of).collect::<Vec<_>>(), vec![0, 0, 0, 5, 5, 5]);
        assert_eq!(cells[4].model, "bench-64x5ms");
        assert_eq!(cells[4].concurrency, 50);
        assert!(cells.iter().all(|c| c.streams >= c.concurrency * 2 || c.concurrency == 1));
        let quick = Matrix { scale: 0.1, ..Matrix::default() };
        assert_eq!(quick.streams(5, 1), 5);
        assert_eq!(quick.streams(0, 500), 600);
    }
}
