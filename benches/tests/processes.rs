#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Server processes and their CPU time, with real processes: a busy child counts towards its parent's
//! tree, stopping a service stops its children, and a service that dies at start-up says why.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use capibara_benches::cpu::{CpuMeter, ProcessTree};
use capibara_benches::service::{Service, free_local_address};

fn log_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("capibara-bench-{name}-{}.log", std::process::id()))
}

fn alive(pid: u32) -> bool {
    // A killed process may linger as a zombie until its new parent reaps it; that is not running.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| !stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

#[tokio::test]
async fn a_busy_child_counts_and_stopping_the_service_stops_it() {
    let mut command = Command::new("sh");
    // The parent only waits; the CPU is burnt by a child process, as in LiteLLM's workers.
    command.args(["-c", "(while :; do :; done) & wait"]);
    let mut service =
        Service::spawn("busy shell", command, free_local_address().unwrap(), &log_path("busy")).unwrap();
    let tree = ProcessTree::new(service.pid());
    let started = Instant::now();
    let pids = loop {
        let pids = tree.pids();
        if pids.len() >= 2 {
            break pids;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "the child never appeared");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    let meter = CpuMeter::start(tree);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let used = meter.stop();

    // One core busy for 600 ms, shared with whatever else runs on the machine.
    assert!(used >= Duration::from_millis(200), "measured {used:?}");
    assert!(used <= Duration::from_millis(1300), "measured {used:?}");
    service.stop(Duration::from_secs(2));
    let started = Instant::now();
    while pids.iter().any(|&pid| alive(pid)) {
        assert!(started.elapsed() < Duration::from_secs(5), "{pids:?} still running after stop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_idle_process_uses_almost_no_cpu() {
    let mut command = Command::new("sleep");
    command.arg("5");
    let mut service =
        Service::spawn("sleeper", command, free_local_address().unwrap(), &log_path("sleep")).unwrap();
    let meter = CpuMeter::start(ProcessTree::new(service.pid()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(meter.stop() < Duration::from_millis(20));
    service.stop(Duration::from_secs(2));
}

#[tokio::test]
async fn a_service_that_exits_at_start_up_reports_its_log() {
    let mut command = Command::new("sh");
    command.args(["-c", "echo 'cannot bind: address in use' >&2; exit 3"]);
    let mut service =
        Service::spawn("doomed", command, free_local_address().unwrap(), &log_path("doomed")).unwrap();
    let error = service.wait_ready("/health", Duration::from_secs(10)).await.unwrap_err().to_string();
    assert!(error.contains("doomed exited"), "{error}");
    assert!(error.contains("cannot bind: address in use"), "{error}");
}

#[tokio::test]
async fn how_a_service_ended_is_described() {
    let address = free_local_address().unwrap();
    let mut crashing = Command::new("sh");
    crashing.args(["-c", "kill -SEGV $$"]);
    let mut crashed = Service::spawn("crashing", crashing, address, &log_path("segv")).unwrap();
    let mut failing = Command::new("sh");
    failing.args(["-c", "exit 3"]);
    let mut failed = Service::spawn("failing", failing, address, &log_path("exit")).unwrap();
    let mut sleeping = Command::new("sleep");
    sleeping.arg("5");
    let mut running = Service::spawn("sleeping", sleeping, address, &log_path("running")).unwrap();

    tokio::time::sleep(Duration::from_millis(300)).await;

    assert_eq!(crashed.exit_description().as_deref(), Some("was killed by signal 11 (SIGSEGV)"));
    assert_eq!(failed.exit_description().as_deref(), Some("exited (exit status: 3)"));
    assert_eq!(running.exit_description(), None);
    running.stop(Duration::from_secs(2));
    assert_eq!(running.exit_description().as_deref(), Some("was killed by signal 15"));
}
