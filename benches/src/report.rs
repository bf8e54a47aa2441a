//! The report, as Markdown (printed and written to `benches/results/`): every cell, Capibara's three
//! targets, the proxies against direct, Capibara against LiteLLM, and what failed.

use std::fmt::Write as _;
use std::time::Duration;

use crate::environment::Environment;
use crate::gateway::{CellResult, Matrix, Measurements};
use crate::targets::Target;

/// Concurrency at which target (a) is judged.
const TTFT_TARGET_CONCURRENCY: usize = 50;
/// Most TTFT p99 Capibara may add over direct, in ms (target a).
const TTFT_TARGET_MS: f64 = 1.0;
/// Most CPU per stream Capibara may spend, in ms (target b).
const CPU_TARGET_MS: f64 = 1.0;
/// The cell of target (c): 5 ms tokens at c = 500.
const THROUGHPUT_TARGET_CELL: (u64, usize) = (5, 500);
/// Share of direct's streams/s Capibara must keep there (target c).
const THROUGHPUT_TARGET_RATIO: f64 = 0.9;
/// Below this, a TTFT overhead is within the noise and no ratio is computed from it.
const OVERHEAD_NOISE_MS: f64 = 0.05;

/// One of Capibara's targets, judged.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// What is promised.
    pub promise: String,
    /// What was measured.
    pub measured: String,
    /// Kept (`Some(true)`), missed (`Some(false)`) or not measured (`None`).
    pub kept: Option<bool>,
}

/// The whole report.
pub fn render(environment: &Environment, matrix: &Matrix, measurements: &Measurements) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Gateway overhead: Capibara vs direct upstream vs LiteLLM\n");
    let _ = writeln!(
        out,
        "Run {} on {} ({} cores, Linux {}). Capibara {}, LiteLLM {}; load client with {} runtime thread(s), \
         on the same machine as the upstream and the proxy.\n",
        environment.started,
        environment.cpu,
        environment.cores,
        environment.kernel,
        environment.capibara_revision,
        environment.litellm_version,
        environment.client_threads,
    );
    let _ = writeln!(
        out,
        "Each cell: streams of {} one-token chunks from the fake upstream, at concurrency c (one keep-alive \
         connection per stream in flight, first streams started spread over one answer's token delays), \
         after an unmeasured warm-up; no stream starts after {} s and streams still running {} s later are \
         cut. CPU is the target's whole process tree (every thread, child processes included) during the \
         cell, per answer delivered.\n",
        matrix.tokens,
        matrix.time_cap.as_secs(),
        matrix.drain.as_secs(),
    );
    out.push_str("## Every cell\n\n");
    out.push_str(&cell_table(measurements));
    let _ = writeln!(
        out,
        "\n`⚠` the cell had failed streams (see Failures). `†` the time cap stopped the cell before all its \
         streams started; `cut` streams were still running after the drain. TTFT is the time from sending \
         the request to the first chunk with content; total, to the end of the body. Percentiles are over \
         complete answers only. The direct row's CPU is the upstream's own. `busy cores`: CPU time of the \
         load client, the upstream and the target together ÷ the cell's duration (of {} cores).\n",
        environment.cores,
    );
    out.push_str("## Capibara's targets\n\n");
    let verdicts = capibara_verdicts(measurements, matrix);
    let rows = verdicts
        .iter()
        .map(|v| {
            let kept = match v.kept {
                Some(true) => "kept",
                Some(false) => "**missed**",
                None => "not measured",
            };
            vec![v.promise.clone(), v.measured.clone(), kept.to_owned()]
        })
        .collect();
    out.push_str(&table(&["promise", "measured", "verdict"], rows));
    out.push_str("\n## The three proxies against direct\n\n");
    out.push_str(&against_direct_table(measurements));
    out.push_str("\n## Capibara vs LiteLLM\n\n");
    out.push_str(&peer_table(measurements));
    out.push_str(
        "\nstreams/s: Capibara's ÷ LiteLLM's; CPU/stream: LiteLLM's ÷ Capibara's; TTFT p99 added over direct: \
         LiteLLM's and Capibara's, and their ratio when Capibara's is above the noise (0.05 ms).\n",
    );
    out.push_str(&failures(measurements));
    out
}

fn cell_table(measurements: &Measurements) -> String {
    let rows = measurements
        .cells
        .iter()
        .map(|cell| {
            let stats = &cell.stats;
            let direct = measurements.cell(Target::Direct, cell.delay_ms, cell.concurrency);
            let added = match (cell.target, direct) {
                (Target::Direct, _) => "—".to_owned(),
                (_, Some(direct)) => ttft_p99_added(cell, direct).map_or_else(|| "—".to_owned(), signed_ms),
                (_, None) => "—".to_owned(),
            };
            vec![
                cell.target.to_string(),
                format!("{} ms", cell.delay_ms),
                cell.concurrency.to_string(),
                format!("{}{}", stats.done, if stats.capped { " †" } else { "" }),
                format!("{}{}", stats.errors, if stats.flagged() { " ⚠" } else { "" }),
                stats.cut.to_string(),
                format!("{:.1}", stats.streams_per_sec),
                optional_ms(stats.ttft.map(|p| p.p50)),
                optional_ms(stats.ttft.map(|p| p.p99)),
                optional_ms(stats.total.map(|p| p.p50)),
                optional_ms(stats.total.map(|p| p.p99)),
                stats.cpu_ms_per_stream.map_or_else(|| "—".to_owned(), |ms| format!("{ms:.3}")),
                added,
                format!("{:.2}", cell.busy_cores()),
            ]
        })
        .collect();
    table(
        &[
            "target",
            "delay",
            "c",
            "done",
            "errors",
            "cut",
            "streams/s",
            "TTFT p50 ms",
            "TTFT p99 ms",
            "total p50 ms",
            "total p99 ms",
            "CPU ms/stream",
            "TTFT p99 added ms",
            "busy cores",
        ],
        rows,
    )
}

/// TTFT p99 of `cell` minus direct's in the same cell, in ms.
fn ttft_p99_added(cell: &CellResult, direct: &CellResult) -> Option<f64> {
    let (ours, theirs) = (cell.stats.ttft?, direct.stats.ttft?);
    Some((ours.p99.as_secs_f64() - theirs.p99.as_secs_f64()) * 1e3)
}

/// Judges Capibara's three targets against the direct upstream.
pub fn capibara_verdicts(measurements: &Measurements, matrix: &Matrix) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    for &delay in &matrix.delays_ms {
        let pair = (
            measurements.cell(Target::Capibara, delay, TTFT_TARGET_CONCURRENCY),
            measurements.cell(Target::Direct, delay, TTFT_TARGET_CONCURRENCY),
        );
        let added = match pair {
            (Some(capibara), Some(direct)) => ttft_p99_added(capibara, direct).map(|ms| (ms, capibara)),
            _ => None,
        };
        verdicts.push(Verdict {
            promise: format!(
                "(a) adds < {TTFT_TARGET_MS} ms to TTFT p99 at c={TTFT_TARGET_CONCURRENCY}, {delay} ms tokens"
            ),
            measured: added.map_or_else(|| "—".to_owned(), |(ms, cell)| with_flag(signed_ms(ms), cell)),
            kept: added.map(|(ms, _)| ms < TTFT_TARGET_MS),
        });
    }
    let capibara_cpu: Vec<(f64, &CellResult)> = measurements
        .cells
        .iter()
        .filter(|cell| cell.target == Target::Capibara)
        .filter_map(|cell| cell.stats.cpu_ms_per_stream.map(|ms| (ms, cell)))
        .collect();
    let worst = capibara_cpu.iter().copied().max_by(|a, b| a.0.total_cmp(&b.0));
    let within = capibara_cpu.iter().filter(|(ms, _)| *ms < CPU_TARGET_MS).count();
    verdicts.push(Verdict {
        promise: format!("(b) spends < {CPU_TARGET_MS} ms of CPU per stream (worst cell)"),
        measured: worst.map_or_else(
            || "—".to_owned(),
            |(ms, cell)| {
                let text = format!(
                    "{ms:.3} ms ({} ms tokens, c={}); < {CPU_TARGET_MS} ms in {within} of {} cells",
                    cell.delay_ms,
                    cell.concurrency,
                    capibara_cpu.len()
                );
                with_flag(text, cell)
            },
        ),
        kept: worst.map(|(ms, _)| ms < CPU_TARGET_MS),
    });
    let (delay, concurrency) = THROUGHPUT_TARGET_CELL;
    let pair = (
        measurements.cell(Target::Capibara, delay, concurrency),
        measurements.cell(Target::Direct, delay, concurrency),
    );
    let throughput = match pair {
        (Some(capibara), Some(direct)) if direct.stats.streams_per_sec > 0.0 => {
            Some((capibara.stats.streams_per_sec / direct.stats.streams_per_sec, capibara, direct))
        }
        _ => None,
    };
    verdicts.push(Verdict {
        promise: format!(
            "(c) keeps ≥ {THROUGHPUT_TARGET_RATIO}× direct's streams/s at c={concurrency}, {delay} ms tokens"
        ),
        measured: throughput.map_or_else(
            || "—".to_owned(),
            |(ratio, capibara, direct)| {
                let text = format!(
                    "{:.1} ÷ {:.1} = {ratio:.3}×",
                    capibara.stats.streams_per_sec, direct.stats.streams_per_sec
                );
                with_flag(text, capibara)
            },
        ),
        kept: throughput.map(|(ratio, ..)| ratio >= THROUGHPUT_TARGET_RATIO),
    });
    verdicts
}

fn with_flag(text: String, cell: &CellResult) -> String {
    if cell.stats.flagged() { format!("{text} ⚠ {} errors", cell.stats.errors) } else { text }
}

fn proxies(measurements: &Measurements) -> Vec<Target> {
    let mut proxies: Vec<Target> =
        measurements.cells.iter().map(|c| c.target).filter(|t| *t != Target::Direct).collect();
    proxies.sort();
    proxies.dedup();
    proxies
}

fn cell_keys(measurements: &Measurements) -> Vec<(u64, usize)> {
    let mut keys: Vec<(u64, usize)> =
        measurements.cells.iter().map(|c| (c.delay_ms, c.concurrency)).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

fn against_direct_table(measurements: &Measurements) -> String {
    let mut rows = Vec::new();
    for (delay, concurrency) in cell_keys(measurements) {
        let Some(direct) = measurements.cell(Target::Direct, delay, concurrency) else { continue };
        for target in proxies(measurements) {
            let Some(cell) = measurements.cell(target, delay, concurrency) else { continue };
            let ratio = (direct.stats.streams_per_sec > 0.0)
                .then(|| cell.stats.streams_per_sec / direct.stats.streams_per_sec);
            rows.push(vec![
                format!("{delay} ms"),
                concurrency.to_string(),
                target.to_string(),
                ratio.map_or_else(|| "—".to_owned(), |r| format!("{r:.3}×")),
                ttft_p99_added(cell, direct).map_or_else(|| "—".to_owned(), signed_ms),
                cell.stats.cpu_ms_per_stream.map_or_else(|| "—".to_owned(), |ms| format!("{ms:.3}")),
            ]);
        }
    }
    table(&["delay", "c", "target", "streams/s vs direct", "TTFT p99 added ms", "CPU ms/stream"], rows)
}

fn peer_table(measurements: &Measurements) -> String {
    let mut rows = Vec::new();
    let peers: Vec<Target> =
        proxies(measurements).into_iter().filter(|t| matches!(t, Target::LiteLlm { .. })).collect();
    for (delay, concurrency) in cell_keys(measurements) {
        let Some(capibara) = measurements.cell(Target::Capibara, delay, concurrency) else { continue };
        let direct = measurements.cell(Target::Direct, delay, concurrency);
        for &peer in &peers {
            let Some(other) = measurements.cell(peer, delay, concurrency) else { continue };
            let throughput = (other.stats.streams_per_sec > 0.0)
                .then(|| capibara.stats.streams_per_sec / other.stats.streams_per_sec);
            let cpu = match (capibara.stats.cpu_ms_per_stream, other.stats.cpu_ms_per_stream) {
                (Some(ours), Some(theirs)) if ours > 0.0 => Some(theirs / ours),
                _ => None,
            };
            let added = direct.and_then(|d| Some((ttft_p99_added(other, d)?, ttft_p99_added(capibara, d)?)));
            let ttft = added.map_or_else(
                || "—".to_owned(),
                |(theirs, ours)| {
                    let ratio = if ours > OVERHEAD_NOISE_MS {
                        format!(" ({:.0}×)", theirs / ours)
                    } else {
                        String::new()
                    };
                    format!("{} vs {}{ratio}", signed_ms(theirs), signed_ms(ours))
                },
            );
            rows.push(vec![
                format!("{delay} ms"),
                concurrency.to_string(),
                peer.to_string(),
                throughput.map_or_else(|| "—".to_owned(), |r| format!("{r:.1}×")),
                cpu.map_or_else(|| "—".to_owned(), |r| format!("{r:.0}×")),
                ttft,
            ]);
        }
    }
    table(&["delay", "c", "peer", "streams/s", "CPU/stream", "TTFT p99 added ms (peer vs Capibara)"], rows)
}

fn failures(measurements: &Measurements) -> String {
    let mut out = String::new();
    let flagged: Vec<&CellResult> = measurements.cells.iter().filter(|c| c.stats.flagged()).collect();
    if flagged.is_empty() && measurements.failed_targets.is_empty() && measurements.incidents.is_empty() {
        return out;
    }
    out.push_str("\n## Failures\n\n");
    for incident in &measurements.incidents {
        let _ = writeln!(out, "- {incident}");
    }
    for (target, why) in &measurements.failed_targets {
        let _ = writeln!(out, "- {target} was not measured: {}", why.replace('\n', " "));
    }
    for cell in flagged {
        for (kind, failure) in &cell.stats.failures {
            let _ = writeln!(
                out,
                "- {}, {} ms, c={}: {} × {kind}, e.g. {}",
                cell.target,
                cell.delay_ms,
                cell.concurrency,
                failure.count,
                failure.example.replace('\n', " ")
            );
        }
    }
    out
}

fn optional_ms(duration: Option<Duration>) -> String {
    duration.map_or_else(|| "—".to_owned(), |d| format!("{:.2}", d.as_secs_f64() * 1e3))
}

fn signed_ms(ms: f64) -> String {
    if ms < 0.0 { format!("−{:.2}", -ms) } else { format!("+{ms:.2}") }
}

/// A Markdown table with padded columns, readable as printed.
fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, value) in widths.iter_mut().zip(row) {
            *width = (*width).max(value.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, &width)| format!("{cell}{}", " ".repeat(width - cell.chars().count())))
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let mut out = line(header.iter().map(|h| (*h).to_owned()).collect());
    out.push_str(&line(widths.iter().map(|&w| "-".repeat(w)).collect()));
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{CellStats, Percentiles};

    fn cell(
        target: Target,
        delay_ms: u64,
        concurrency: usize,
        ttft_p99_ms: f64,
        rate: f64,
        cpu: f64,
    ) -> CellResult {
        let p99 = Duration::from_secs_f64(ttft_p99_ms / 1e3);
        CellResult {
            target,
            delay_ms,
            concurrency,
            planned: 100,
            stats: CellStats {
                done: 100,
                errors: 0,
                cut: 0,
                capped: false,
                elapsed: Duration::from_secs(1),
                streams_per_sec: rate,
                ttft: Some(Percentiles { p50: p99 / 2, p99 }),
                total: Some(Percentiles { p50: p99 * 10, p99: p99 * 20 }),
                cpu: None,
                cpu_ms_per_stream: Some(cpu),
                failures: Default::default(),
            },
            machine_cpu: Duration::from_millis(1500),
        }
    }

    fn measurements() -> Measurements {
        let litellm = Target::LiteLlm { workers: 1 };
        Measurements {
            cells: vec![
                cell(Target::Direct, 0, 50, 1.0, 1000.0, 0.2),
                cell(Target::Direct, 5, 50, 2.0, 150.0, 0.2),
                cell(Target::Direct, 5, 500, 3.0, 1200.0, 0.2),
                cell(Target::Capibara, 0, 50, 1.5, 900.0, 0.4),
                cell(Target::Capibara, 5, 50, 3.5, 150.0, 1.2),
                cell(Target::Capibara, 5, 500, 3.2, 1000.0, 0.5),
                cell(litellm, 5, 50, 12.0, 25.0, 40.0),
            ],
            failed_targets: vec![(Target::LiteLlm { workers: 2 }, "exited".to_owned())],
            incidents: vec![
                "LiteLLM 1 worker was killed by signal 11 (SIGSEGV) during the cell 5 ms, c=50".into(),
            ],
        }
    }

    #[test]
    fn verdicts_compare_capibara_with_direct() {
        let verdicts = capibara_verdicts(&measurements(), &Matrix::default());
        let kept: Vec<Option<bool>> = verdicts.iter().map(|v| v.kept).collect();
        // (a) +0.5 ms kept, +1.5 ms missed; (b) worst 1.2 ms missed; (c) 1000/1200 < 0.9 missed.
        assert_eq!(kept, vec![Some(true), Some(false), Some(false), Some(false)]);
        assert_eq!(verdicts[1].measured, "+1.50");
        assert_eq!(verdicts[2].measured, "1.200 ms (5 ms tokens, c=50); < 1 ms in 2 of 3 cells");
        assert_eq!(verdicts[3].measured, "1000.0 ÷ 1200.0 = 0.833×");
        assert_eq!(capibara_verdicts(&Measurements::default(), &Matrix::default())[0].kept, None);
    }

    #[test]
    fn the_report_has_every_row_ratios_and_failures() {
        let environment = Environment {
            started: "2025-01-01 00:00 UTC".into(),
            date: "2025-01-01".into(),
            cpu: "cpu".into(),
            cores: 2,
            kernel: "6".into(),
            capibara_revision: "abc".into(),
            litellm_version: "1.106.10".into(),
            client_threads: 1,
        };
        let report = render(&environment, &Matrix::default(), &measurements());
        assert_eq!(report.lines().filter(|l| l.starts_with("| Capibara ")).count(), 3);
        // LiteLLM at 5 ms, c=50: 150/25 = 6× the streams/s, 40/1.2 = 33× the CPU, +10 ms vs +1.5 ms.
        assert!(report.contains("| 6.0×"), "{report}");
        assert!(report.contains("| 33× "), "{report}");
        assert!(report.contains("+10.00 vs +1.50 (7×)"), "{report}");
        assert!(report.contains("LiteLLM 2 workers was not measured: exited"));
        assert!(
            report
                .contains("- LiteLLM 1 worker was killed by signal 11 (SIGSEGV) during the cell 5 ms, c=50")
        );
    }

    #[test]
    fn tables_are_padded_markdown() {
        let text = table(&["a", "bb"], vec![vec!["ccc".into(), "×".into()]]);
        assert_eq!(text, "| a   | bb |\n| --- | -- |\n| ccc | ×  |\n");
    }
}
