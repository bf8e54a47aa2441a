//! Time from starting `capibara serve` (embedded defaults, models already installed) to the first
//! streamed token of a `/v1/chat/completions` answer, and to the port accepting connections.
//!
//! ```text
//! capibara-startup-bench --bin target/release/capibara --runs 5 --out benches/results/startup.md
//! ```

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;

/// Measures process start → listening → first served token.
#[derive(Debug, Parser)]
struct Args {
    /// The `capibara` binary (built with `--features embedded`).
    #[arg(long)]
    bin: PathBuf,
    /// Starts to measure.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Markdown report to write.
    #[arg(long)]
    out: Option<PathBuf>,
}

struct Run {
    listening: Duration,
    first_token: Duration,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut runs = Vec::with_capacity(args.runs);
    for index in 0..args.runs {
        let run = measure(&args.bin).with_context(|| format!("run {index}"))?;
        eprintln!(
            "run {index}: listening after {:.0} ms, first token after {:.0} ms",
            ms(run.listening),
            ms(run.first_token)
        );
        runs.push(run);
    }
    let report = report(&runs);
    print!("{report}");
    if let Some(out) = args.out {
        std::fs::write(&out, &report).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}

fn measure(bin: &PathBuf) -> anyhow::Result<Run> {
    let data = tempfile::tempdir()?;
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let started = Instant::now();
    let mut child = Command::new(bin)
        .args(["serve", "--port", &port.to_string()])
        .current_dir(data.path())
        .env("CAPIBARA_MODELS__AUTO_PULL", "false")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting capibara")?;
    let result = (|| {
        let listening = loop {
            if TcpStream::connect(address).is_ok() {
                break started.elapsed();
            }
            if let Some(status) = child.try_wait()? {
                bail!(
                    "capibara exited ({status}) before listening; are the models installed (`capibara models pull`)?"
                );
            }
            if started.elapsed() > Duration::from_secs(120) {
                bail!("capibara did not listen within 120 s");
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let first_token = first_token(address, started)?;
        Ok(Run { listening, first_token })
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// Sends a streamed chat completion and returns when the first non-empty content delta arrives.
fn first_token(address: SocketAddr, started: Instant) -> anyhow::Result<Duration> {
    let body = r#"{"model":"capibara","stream":true,"max_tokens":8,"messages":[{"role":"user","content":"Hello!"}]}"#;
    let mut stream = TcpStream::connect(address)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        stream,
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let read = stream.read(&mut buffer)?;
        if read == 0 {
            bail!("the answer ended without content: {}", String::from_utf8_lossy(&seen));
        }
        seen.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&seen);
        if !text.starts_with("HTTP/1.1 200") && text.contains("\r\n\r\n") {
            bail!("capibara answered {}", text.lines().next().unwrap_or_default());
        }
        // A content delta with at least one character.
        if text.contains("\"content\":\"")
            && !text.split("\"content\":\"").skip(1).all(|rest| rest.starts_with('"'))
        {
            return Ok(started.elapsed());
        }
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn report(runs: &[Run]) -> String {
    let listening: Vec<f64> = runs.iter().map(|r| ms(r.listening)).collect();
    let first: Vec<f64> = runs.iter().map(|r| ms(r.first_token)).collect();
    let row = |name: &str, values: &[f64]| {
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(0.0, f64::max);
        format!("| {name} | {:.0} | {min:.0} | {max:.0} |\n", median(values.to_vec()))
    };
    format!(
        "# Start to first token\n\n`capibara serve` with embedded defaults (SmolLM2-135M-Instruct Q8_0 and all-MiniLM-L6-v2 \
         already installed, page cache warm), a fresh data dir per start, {} starts.\n\n\
         | from process start to | median ms | min ms | max ms |\n|---|---|---|---|\n{}{}",
        runs.len(),
        row("port accepting connections", &listening),
        row("first streamed token (`/v1/chat/completions`)", &first)
    )
}
