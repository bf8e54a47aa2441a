//! `capibara ingest`'s progress: a bar over the bytes of the files found, with the indexing rate
//! in chunks per second and an ETA; plain lines instead when stderr is not a terminal.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use capibara_rag::ingest::{IngestEvent, IngestProgress};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the plain-line reporter prints.
const LINE_INTERVAL: Duration = Duration::from_secs(5);

/// Shows ingestion progress on stderr.
#[derive(Debug)]
pub struct IngestBar {
    bar: Option<ProgressBar>,
    started: Instant,
    last_line: Instant,
    files: usize,
    files_done: usize,
    bytes: u64,
    bytes_done: u64,
    chunks: usize,
}

impl IngestBar {
    /// A bar on stderr when it is a terminal (and `quiet` is not set), plain lines otherwise.
    pub fn stderr(quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} ({eta} left) {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        Self {
            bar,
            started: now,
            last_line: now,
            files: 0,
            files_done: 0,
            bytes: 0,
            bytes_done: 0,
            chunks: 0,
        }
    }

    fn rate(&self) -> f64 {
        let seconds = self.started.elapsed().as_secs_f64();
        if seconds > 0.0 { self.chunks as f64 / seconds } else { 0.0 }
    }

    fn status(&self) -> String {
        format!(
            "{}/{} files, {} chunks, {:.0} chunks/s",
            self.files_done,
            self.files,
            self.chunks,
            self.rate()
        )
    }

    fn line_if_due(&mut self) {
        if self.bar.is_none() && self.last_line.elapsed() >= LINE_INTERVAL {
            self.last_line = Instant::now();
            eprintln!("ingest: {} ({:.0}% of bytes)", self.status(), self.percent());
        }
    }

    fn percent(&self) -> f64 {
        if self.bytes == 0 { 100.0 } else { self.bytes_done as f64 * 100.0 / self.bytes as f64 }
    }

    /// Clears the bar (call before printing the report).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl IngestProgress for IngestBar {
    fn event(&mut self, event: IngestEvent) {
        match event {
            IngestEvent::Discovered { files, bytes } => {
                self.files = files;
                self.bytes = bytes;
                if let Some(bar) = &self.bar {
                    bar.set_length(bytes);
                }
            }
            IngestEvent::FileLoaded { bytes, .. } => {
                self.files_done += 1;
                self.bytes_done += bytes;
                if let Some(bar) = &self.bar {
                    bar.inc(bytes);
                }
            }
            IngestEvent::FileFailed { source, error } => {
                self.files_done += 1;
                match &self.bar {
                    Some(bar) => bar.println(format!("skipped {source}: {error}")),
                    None => eprintln!("ingest: skipped {source}: {error}"),
                }
            }
            IngestEvent::Indexed { chunks } => self.chunks += chunks,
        }
        let status = self.status();
        if let Some(bar) = &self.bar {
            bar.set_message(status);
        }
        self.line_if_due();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_the_events() {
        let mut bar = IngestBar::stderr(true);
        bar.event(IngestEvent::Discovered { files: 2, bytes: 100 });
        bar.event(IngestEvent::FileLoaded { source: "a.txt".into(), bytes: 60 });
        bar.event(IngestEvent::Indexed { chunks: 7 });
        bar.event(IngestEvent::FileFailed { source: "b.bin".into(), error: "binary".into() });
        assert_eq!((bar.files_done, bar.bytes_done, bar.chunks), (2, 60, 7));
        assert!(bar.status().starts_with("2/2 files, 7 chunks"), "{}", bar.status());
        assert!((bar.percent() - 60.0).abs() < 1e-9);
    }
}
