//! A Python virtual environment with the official `openai` and `ollama` client libraries, for tests
//! that prove Capibara serves them unchanged.
//!
//! Built once per target directory (pinned by `python/requirements.txt`) with `python3 -m venv` and
//! `pip install`, under a lock so parallel test processes build it only once. Missing Python or an
//! unreachable package index fails loudly, naming what is missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const REQUIREMENTS: &str = include_str!("../python/requirements.txt");

/// Longest the build may take before another process treats its lock as abandoned.
const STALE_LOCK: Duration = Duration::from_secs(600);

/// Path of the venv's Python interpreter, building the venv first if needed.
///
/// `cache_dir` is where the venv lives (pass `env!("CARGO_TARGET_TMPDIR")` from an integration test).
pub fn interpreter(cache_dir: &str) -> PathBuf {
    let digest = REQUIREMENTS
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let venv = Path::new(cache_dir).join(format!("python-clients-{digest:016x}"));
    let python = venv.join("bin/python");
    let ready = venv.join(".ready");
    if ready.exists() {
        return python;
    }
    let lock = venv.with_extension("lock");
    std::fs::create_dir_all(cache_dir).expect("cannot create the test cache dir");
    let started = Instant::now();
    loop {
        match std::fs::create_dir(&lock) {
            Ok(()) => break,
            Err(_) if ready.exists() => return python,
            Err(_) => {
                let age =
                    std::fs::metadata(&lock).and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
                if age.is_some_and(|age| age > STALE_LOCK) {
                    let _ = std::fs::remove_dir(&lock);
                } else if started.elapsed() > STALE_LOCK {
                    panic!("timed out waiting for another process to build {}", venv.display());
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
    let built = std::panic::catch_unwind(|| build(&venv, &python, &ready));
    let _ = std::fs::remove_dir(&lock);
    if let Err(panic) = built {
        std::panic::resume_unwind(panic);
    }
    python
}

fn build(venv: &Path, python: &Path, ready: &Path) {
    if ready.exists() {
        return;
    }
    let _ = std::fs::remove_dir_all(venv);
    run(Command::new("python3").args(["-m", "venv"]).arg(venv), "python3 -m venv (is Python 3 installed?)");
    let requirements = venv.join("requirements.txt");
    std::fs::write(&requirements, REQUIREMENTS).expect("cannot write requirements");
    run(
        Command::new(python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements),
        "pip install of the openai and ollama clients (is the package index reachable?)",
    );
    std::fs::write(ready, b"ok").expect("cannot mark the venv ready");
}

fn run(command: &mut Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        output.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs a Python script with the client libraries; returns stdout, panicking with stderr on failure.
pub fn run_script(cache_dir: &str, script: &Path, args: &[&str]) -> String {
    let python = interpreter(cache_dir);
    let output = Command::new(python)
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "{} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
