//! A server process the benchmark starts: in a process group of its own (so stopping it stops its
//! children too), its output in a log file, ready once it answers over HTTP.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::load::connection::{self, Endpoint};

/// A running server process.
pub struct Service {
    name: String,
    child: Child,
    address: SocketAddr,
    log: PathBuf,
}

impl Service {
    /// Starts `command` (which must listen on `address`) in a new process group, writing its output to
    /// `log`.
    pub fn spawn(name: &str, mut command: Command, address: SocketAddr, log: &Path) -> anyhow::Result<Self> {
        let output = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let errors = output.try_clone().context("sharing the log file")?;
        command.stdin(Stdio::null()).stdout(output).stderr(errors).process_group(0);
        let child = command.spawn().with_context(|| format!("starting {name}: {command:?}"))?;
        Ok(Self { name: name.to_owned(), child, address, log: log.to_owned() })
    }

    /// The pid of the process the benchmark started (the root of its process tree).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where the server listens.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint::local(self.address)
    }

    /// Its base URL (`http://127.0.0.1:port`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Waits until `GET path` answers 200, failing early (with the end of the log) if the process exits.
    pub async fn wait_ready(&mut self, path: &str, limit: Duration) -> anyhow::Result<()> {
        let give_up = Instant::now() + limit;
        let endpoint = self.endpoint();
        loop {
            if let Some(status) = self.child.try_wait().context("checking the process")? {
                bail!(
                    "{} exited ({status}) before answering; its log ends with:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            match connection::get(&endpoint, path, Duration::from_secs(2)).await {
                Ok((200, _)) => return Ok(()),
                Ok(_) | Err(_) if Instant::now() < give_up => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok((status, body)) => bail!(
                    "{} answers GET {path} with {status} after {limit:?}: {}",
                    self.name,
                    String::from_utf8_lossy(&body)
                ),
                Err(error) => bail!(
                    "{} does not answer GET {path} after {limit:?} ({error:#}); its log ends with:\n{}",
                    self.name,
                    self.log_tail()
                ),
            }
        }
    }

    /// How the process ended, if it has: `exited (exit status: 1)` or `was killed by signal 11 (SIGSEGV)`.
    pub fn exit_description(&mut self) -> Option<String> {
        let status = self.child.try_wait().ok().flatten()?;
        Some(match status.signal() {
            Some(11) => "was killed by signal 11 (SIGSEGV)".to_owned(),
            Some(9) => "was killed by signal 9 (SIGKILL)".to_owned(),
            Some(signal) => format!("was killed by signal {signal}"),
            None => format!("exited ({status})"),
        })
    }

    /// The last lines of the log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Stops the whole process group: SIGTERM, then SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            self.signal_group("KILL");
            return;
        }
        self.signal_group("TERM");
        let give_up = Instant::now() + grace;
        while Instant::now() < give_up {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                // The leader is gone; make sure no worker it spawned outlives it.
                self.signal_group("KILL");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.signal_group("KILL");
        let _ = self.child.wait();
    }

    fn signal_group(&self, signal: &str) {
        // The group id is the leader's pid (`process_group(0)`); `kill` signals every member.
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg("--")
            .arg(format!("-{}", self.child.id()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            self.stop(Duration::from_secs(5));
        }
    }
}

/// A free port on the loopback interface (the OS picks one; the server binds it a moment later).
pub fn free_local_address() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    listener.local_addr().context("reading the free port")
}
