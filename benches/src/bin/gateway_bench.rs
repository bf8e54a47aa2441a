//! `capibara-gateway-bench`: the gateway-overhead benchmark. Starts the fake upstream, then each
//! target in turn, runs every cell, prints the report and writes it to `RESULTS_DIR/gateway-<date>.md`.
//! `benches/gateway/run` builds everything and calls it with the right paths.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use capibara_benches::environment::Environment;
use capibara_benches::gateway::{self, Matrix};
use capibara_benches::report;
use capibara_benches::targets::{Installation, Target};
use clap::Parser;

/// Measures what Capibara and LiteLLM add to streamed chat completions over the direct upstream.
#[derive(Debug, Parser)]
#[command(name = "capibara-gateway-bench", version)]
struct Cli {
    /// Directory with the release binaries `capibara` and `capibara-fake-upstream`.
    #[arg(long)]
    bin_dir: PathBuf,
    /// Python virtual environment with `litellm[proxy]`.
    #[arg(long)]
    venv: PathBuf,
    /// Scratch directory for configuration, data and server logs.
    #[arg(long)]
    work_dir: PathBuf,
    /// Where to write `gateway-<YYYY-MM-DD>.md`; the report is only printed without it.
    #[arg(long)]
    results_dir: Option<PathBuf>,
    /// The Capibara checkout (for the revision in the report).
    #[arg(long, default_value = ".")]
    repository: PathBuf,
    /// Targets to measure, in order.
    #[arg(long, value_delimiter = ',', default_value = "direct,capibara,litellm-1w,litellm-2w")]
    targets: Vec<Target>,
    /// Multiplies every cell's stream count (e.g. 0.1 for a quick look; the report says so).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// No stream of a cell starts after this many seconds.
    #[arg(long, default_value_t = 20)]
    time_cap_secs: u64,
    /// Runtime threads of the load client.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("capibara-gateway-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let installation = Installation { bin_dir: cli.bin_dir, venv: cli.venv, work_dir: cli.work_dir };
    let matrix =
        Matrix { time_cap: Duration::from_secs(cli.time_cap_secs), scale: cli.scale, ..Matrix::default() };
    let client_threads = cli.client_threads.max(1);
    let environment = Environment::probe(&cli.repository, &installation.venv, client_threads);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(client_threads)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let measurements = runtime.block_on(gateway::run(&installation, &matrix, &cli.targets, |line| {
        eprintln!("{line}");
    }))?;
    let mut text = report::render(&environment, &matrix, &measurements);
    if (matrix.scale - 1.0).abs() > f64::EPSILON {
        text.push_str(&format!(
            "\nStream counts scaled by {} (not the reported configuration).\n",
            matrix.scale
        ));
    }
    // A closed pipe (`| head`) must not keep the report from being written below.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), format!("{text}\n").as_bytes());
    if let Some(dir) = cli.results_dir {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("gateway-{}.md", environment.date));
        std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("report written to {}", path.display());
    }
    Ok(())
}
