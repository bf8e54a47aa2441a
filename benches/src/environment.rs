//! What the numbers were measured on: the machine, the Capibara revision, the LiteLLM version.

use std::path::Path;
use std::process::Command;

/// The facts printed at the top of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    /// When the run started (UTC, `YYYY-MM-DD HH:MM`).
    pub started: String,
    /// The date part, for the report's file name.
    pub date: String,
    /// CPU model.
    pub cpu: String,
    /// Cores the OS lets this process use.
    pub cores: usize,
    /// Kernel release.
    pub kernel: String,
    /// The Capibara commit measured (with `+changes` when the work tree differs from it).
    pub capibara_revision: String,
    /// LiteLLM's version in the benchmark's virtual environment.
    pub litellm_version: String,
    /// Runtime threads of the load client.
    pub client_threads: usize,
}

impl Environment {
    /// Reads the facts of this machine; `repository` is the Capibara checkout, `venv` LiteLLM's.
    pub fn probe(repository: &Path, venv: &Path, client_threads: usize) -> Self {
        let now = chrono::Utc::now();
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|line| line.starts_with("model name"))
                    .and_then(|line| line.split_once(':'))
                    .map(|(_, model)| model.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".to_owned());
        let revision =
            output(Command::new("git").arg("-C").arg(repository).args(["rev-parse", "--short", "HEAD"]));
        let changed = output(Command::new("git").arg("-C").arg(repository).args(["status", "--porcelain"]))
            .is_some_and(|status| !status.is_empty());
        let litellm = output(
            Command::new(venv.join("bin").join("python"))
                .args(["-c", "import importlib.metadata as m; print(m.version('litellm'))"]),
        );
        Self {
            started: now.format("%Y-%m-%d %H:%M UTC").to_string(),
            date: now.format("%Y-%m-%d").to_string(),
            cpu,
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or_else(|_| "unknown".to_owned(), |release| release.trim().to_owned()),
            capibara_revision: match revision {
                Some(revision) if changed => format!("{revision}+changes"),
                Some(revision) => revision,
                None => "unknown".to_owned(),
            },
            litellm_version: litellm.unwrap_or_else(|| "not installed".to_owned()),
            client_threads,
        }
    }
}

/// A command's trimmed standard output, if it ran and succeeded.
fn output(command: &mut Command) -> Option<String> {
    let out = command.output().ok().filter(|out| out.status.success())?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
