//! `capibara-gateway-load`: the benchmark's load client on its own, one cell against any
//! OpenAI-compatible server (the fake upstream understands the `bench-<tokens>x<delay>ms` model names).

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use capibara_benches::cpu::{CpuMeter, ProcessTree};
use capibara_benches::load::{CellPlan, Endpoint, run_cell};
use capibara_benches::stats::CellStats;
use clap::Parser;

/// Runs n streamed chat completions at concurrency c and prints their timing.
#[derive(Debug, Parser)]
#[command(name = "capibara-gateway-load", version)]
struct Cli {
    /// Base URL of the server; streams go to `URL/v1/chat/completions`.
    #[arg(long)]
    url: String,
    /// Milliseconds between tokens (model `bench-<tokens>x<delay>ms`).
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Content chunks per answer.
    #[arg(long, default_value_t = 64)]
    tokens: u32,
    /// Streams in flight at once.
    #[arg(long, short = 'c', default_value_t = 1)]
    concurrency: usize,
    /// Streams to run.
    #[arg(long, short = 'n', default_value_t = 100)]
    streams: usize,
    /// No stream starts after this many seconds.
    #[arg(long, default_value_t = 20)]
    time_cap_secs: u64,
    /// Skip the unmeasured warm-up.
    #[arg(long)]
    no_warm_up: bool,
    /// Runtime threads of the client.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Also report the CPU time this process and its descendants use during the cell.
    #[arg(long)]
    pid: Option<u32>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(clean) if clean => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(2),
        Err(error) => {
            eprintln!("capibara-gateway-load: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the cell; `Ok(false)` when some streams failed.
fn run(cli: &Cli) -> anyhow::Result<bool> {
    let endpoint = Endpoint::parse(&cli.url)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads.max(1))
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let plan = CellPlan::new(
        cli.tokens,
        cli.delay_ms,
        cli.concurrency,
        cli.streams,
        Duration::from_secs(cli.time_cap_secs),
    );
    let (run, cpu) = runtime.block_on(async {
        if !cli.no_warm_up {
            run_cell(&endpoint, &plan.warm_up()).await;
        }
        let meter = cli.pid.map(|pid| CpuMeter::start(ProcessTree::new(pid)));
        let run = run_cell(&endpoint, &plan).await;
        (run, meter.map(CpuMeter::stop))
    });
    let stats = CellStats::from_run(&run, plan.tokens, cpu);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    // Written whole at the end, ignoring a closed pipe (`| head`) instead of panicking on it.
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{} × {} at c={}: {} done, {} errors, {} cut{} in {:.2} s = {:.1} streams/s",
        plan.streams,
        plan.model,
        plan.concurrency,
        stats.done,
        stats.errors,
        stats.cut,
        if stats.capped { " (time cap reached)" } else { "" },
        run.elapsed.as_secs_f64(),
        stats.streams_per_sec,
    );
    if let (Some(ttft), Some(total)) = (stats.ttft, stats.total) {
        let _ = writeln!(
            text,
            "TTFT p50 {:.2} ms, p99 {:.2} ms; total p50 {:.2} ms, p99 {:.2} ms",
            ms(ttft.p50),
            ms(ttft.p99),
            ms(total.p50),
            ms(total.p99)
        );
    }
    if let (Some(cpu), Some(per_stream)) = (stats.cpu, stats.cpu_ms_per_stream) {
        println!(
            "CPU of pid {} and its children: {:.1} ms, {per_stream:.3} ms per stream",
            cli.pid.unwrap_or(0),
            ms(cpu)
        );
    }
    for (kind, failure) in &stats.failures {
        let _ = writeln!(text, "{} × {kind}, e.g. {}", failure.count, failure.example);
    }
    let _ = std::io::stdout().write_all(text.as_bytes());
    Ok(!stats.flagged())
}
