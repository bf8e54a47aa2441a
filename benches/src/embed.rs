//! The embedding-throughput benchmark: Capibara's `LocalEmbedder` against sentence-transformers on the
//! same sentences, batch size and thread counts (feature `local-embed`).
//!
//! The binary `capibara-embed-bench` (started by `benches/embed/run`) measures both sides; this
//! module holds what can be tested without a model: the sentence mix, the statistics and the report.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// One sentence in this many is a passage; the others are questions.
const PASSAGE_EVERY: usize = 5;

/// A fixed mix of passages (`corpus.jsonl`) and questions (`queries.jsonl`) from an xquad-style
/// directory: sentence `i` is the next passage when `i % 5 == 0`, else the next question, both in
/// file order. 1,000 sentences are 200 passages and 800 questions.
pub fn load_sentences(data_dir: &Path, count: usize) -> Result<Vec<String>> {
    let passages = texts_of(&data_dir.join("corpus.jsonl"))?;
    let questions = texts_of(&data_dir.join("queries.jsonl"))?;
    let wanted_passages = count.div_ceil(PASSAGE_EVERY);
    if passages.len() < wanted_passages || questions.len() < count - wanted_passages {
        bail!(
            "{} has {} passages and {} questions; {count} sentences need {wanted_passages} and {}",
            data_dir.display(),
            passages.len(),
            questions.len(),
            count - wanted_passages
        );
    }
    let (mut passages, mut questions) = (passages.into_iter(), questions.into_iter());
    Ok((0..count)
        .filter_map(|i| if i % PASSAGE_EVERY == 0 { passages.next() } else { questions.next() })
        .collect())
}

/// The `text` field of every line of a JSON-lines file.
fn texts_of(path: &Path) -> Result<Vec<String>> {
    #[derive(Deserialize)]
    struct Line {
        text: String,
    }
    let content = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    content
        .lines()
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(n, line)| {
            let line: Line =
                serde_json::from_str(line).with_context(|| format!("{}:{}", path.display(), n + 1))?;
            Ok(line.text)
        })
        .collect()
}

/// The repetitions of one engine at one thread count.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// `Capibara (candle)` or `sentence-transformers`.
    pub engine: String,
    /// Compute threads.
    pub threads: usize,
    /// Sentences per second of each repetition.
    pub rates: Vec<f64>,
}

impl Measurement {
    /// Median sentences per second (mean of the middle two for an even count).
    pub fn median(&self) -> f64 {
        median(&self.rates)
    }
}

/// Median of `values` (0 for none).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// What a report says besides the numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    /// `YYYY-MM-DD HH:MM UTC`.
    pub started: String,
    /// CPU model.
    pub cpu: String,
    /// Cores available to the process.
    pub cores: usize,
    /// Kernel release.
    pub kernel: String,
    /// Capibara commit (with `+changes` for a dirty tree).
    pub revision: String,
    /// `name version` of the Python side, in order.
    pub python_versions: Vec<(String, String)>,
    /// The sentences measured and where they came from.
    pub sentences: usize,
    /// Data directory.
    pub data_dir: String,
    /// Tokens of all sentences after truncation at 256 (from the reference tokenizer).
    pub tokens_total: usize,
    /// Longest sentence in tokens after truncation.
    pub tokens_max: usize,
    /// Sentences per batch on both sides.
    pub batch_size: usize,
    /// Timed repetitions per cell.
    pub repetitions: usize,
    /// Largest absolute difference between the two engines' vectors, over every component.
    pub max_abs_diff: f32,
}

/// The Markdown report: set-up, the table, the ratios.
pub fn report(info: &RunInfo, measurements: &[Measurement]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Embedding throughput: Capibara (candle) vs sentence-transformers\n");
    let _ = writeln!(
        out,
        "Run {} on {} ({} cores, Linux {}), Capibara {}.\n",
        info.started, info.cpu, info.cores, info.kernel, info.revision
    );
    let _ = writeln!(
        out,
        "all-MiniLM-L6-v2 (max 256 tokens, mean pooling, normalised), batch size {}, {} sentences from `{}` \
         (one passage in five, the rest questions; {} tokens in all, {:.1} per sentence, longest {}), the whole \
         list per `embed`/`encode` call; one warm-up, then {} timed repetitions per cell, median reported. Both \
         sides agree to {:.1e} (largest absolute difference of any vector component).\n",
        info.batch_size,
        info.sentences,
        info.data_dir,
        info.tokens_total,
        info.tokens_total as f64 / info.sentences.max(1) as f64,
        info.tokens_max,
        info.repetitions,
        info.max_abs_diff
    );
    let versions: Vec<String> = info.python_versions.iter().map(|(n, v)| format!("{n} {v}")).collect();
    let _ = writeln!(
        out,
        "Python side: {} (torch on the CPU, `torch.set_num_threads(n)`).\n",
        versions.join(", ")
    );
    let _ = writeln!(out, "| engine | threads | sentences/s (median) | min | max |");
    let _ = writeln!(out, "|---|---:|---:|---:|---:|");
    for m in measurements {
        let (min, max) = m.rates.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
        let _ =
            writeln!(out, "| {} | {} | {:.1} | {:.1} | {:.1} |", m.engine, m.threads, m.median(), min, max);
    }
    let _ = writeln!(out, "\n| threads | Capibara ÷ sentence-transformers |");
    let _ = writeln!(out, "|---:|---:|");
    for (threads, ratio) in ratios(measurements) {
        let _ = writeln!(out, "| {threads} | {ratio:.2}× |");
    }
    out
}

/// Capibara's median over sentence-transformers' at each thread count measured by both.
pub fn ratios(measurements: &[Measurement]) -> Vec<(usize, f64)> {
    let side = |engine: &str, threads: usize| {
        measurements
            .iter()
            .find(|m| m.threads == threads && m.engine.starts_with(engine))
            .map(Measurement::median)
    };
    let mut threads: Vec<usize> = measurements.iter().map(|m| m.threads).collect();
    threads.dedup();
    threads
        .into_iter()
        .filter_map(|t| Some((t, side("Capibara", t)? / side("sentence-transformers", t)?)))
        .collect()
}

/// CPU model, kernel and the Capibara revision of `repository`.
pub fn machine(repository: &Path) -> (String, String, String) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".to_owned(), |k| k.trim().to_owned());
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(repository)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let revision = match (git(&["rev-parse", "--short", "HEAD"]), git(&["status", "--porcelain"])) {
        (Some(rev), Some(status)) if !status.is_empty() => format!("{rev}+changes"),
        (Some(rev), _) => rev,
        (None, _) => "unknown".to_owned(),
    };
    (cpu, kernel, revision)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_is_one_passage_in_five_in_file_order() {
        let dir = tempfile_dir();
        let corpus: String =
            (0..3).map(|i| format!("{{\"_id\":\"p{i}\",\"text\":\"passage {i}\"}}\n")).collect();
        let queries: String =
            (0..9).map(|i| format!("{{\"_id\":\"q{i}\",\"text\":\"question {i}\"}}\n")).collect();
        std::fs::write(dir.join("corpus.jsonl"), corpus).unwrap();
        std::fs::write(dir.join("queries.jsonl"), queries).unwrap();
        let sentences = load_sentences(&dir, 7).unwrap();
        assert_eq!(
            sentences,
            ["passage 0", "question 0", "question 1", "question 2", "question 3", "passage 1", "question 4"]
        );
        assert!(load_sentences(&dir, 20).is_err(), "not enough passages");
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("capibara-embed-mix-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn medians_ratios_and_report() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
        let m = |engine: &str, threads, rates: &[f64]| Measurement {
            engine: engine.into(),
            threads,
            rates: rates.to_vec(),
        };
        let all = [
            m("Capibara (candle)", 1, &[100.0, 120.0, 110.0]),
            m("sentence-transformers", 1, &[100.0, 100.0, 100.0]),
            m("Capibara (candle)", 2, &[200.0]),
            m("sentence-transformers", 2, &[250.0]),
        ];
        assert_eq!(ratios(&all), [(1, 1.1), (2, 0.8)]);
        let info = RunInfo {
            started: "2026-11-24 12:00 UTC".into(),
            cpu: "AMD EPYC".into(),
            cores: 2,
            kernel: "6.1".into(),
            revision: "abc".into(),
            python_versions: vec![("torch".into(), "2.15.0".into())],
            sentences: 1000,
            data_dir: "/data".into(),
            tokens_total: 50_000,
            tokens_max: 256,
            batch_size: 32,
            repetitions: 3,
            max_abs_diff: 1e-6,
        };
        let text = report(&info, &all);
        assert!(text.contains("| Capibara (candle) | 1 | 110.0 | 100.0 | 120.0 |"), "{text}");
        assert!(text.contains("| 2 | 0.80× |"), "{text}");
        assert!(text.contains("50.0 per sentence"), "{text}");
    }
}
