//! The servers the benchmark compares, and how each is started: the fake upstream itself (the direct
//! baseline), `capibara serve` in front of it, and the LiteLLM proxy in front of it with one or two
//! workers.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::service::{Service, free_local_address};

/// One server the load client talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// The fake upstream itself: the baseline every proxy is compared with.
    Direct,
    /// `capibara serve` proxying to the upstream.
    Capibara,
    /// The LiteLLM proxy with this many uvicorn workers.
    LiteLlm {
        /// Worker processes (`--num_workers`).
        workers: u8,
    },
}

impl Target {
    /// Every target, in the order they run and are reported.
    pub const ALL: [Target; 4] =
        [Target::Direct, Target::Capibara, Target::LiteLlm { workers: 1 }, Target::LiteLlm { workers: 2 }];

    /// The short name used on the command line (`direct`, `capibara`, `litellm-1w`, `litellm-2w`).
    pub fn key(self) -> String {
        match self {
            Self::Direct => "direct".to_owned(),
            Self::Capibara => "capibara".to_owned(),
            Self::LiteLlm { workers } => format!("litellm-{workers}w"),
        }
    }

    /// The HTTP path that answers 200 once the server is ready.
    fn ready_path(self) -> &'static str {
        match self {
            Self::Direct | Self::Capibara => "/health",
            Self::LiteLlm { .. } => "/health/liveliness",
        }
    }

    /// How long the server may take to start (LiteLLM imports for several seconds per worker).
    fn start_limit(self) -> Duration {
        match self {
            Self::Direct | Self::Capibara => Duration::from_secs(30),
            Self::LiteLlm { .. } => Duration::from_secs(180),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Direct => f.write_str("direct"),
            Self::Capibara => f.write_str("Capibara"),
            Self::LiteLlm { workers: 1 } => f.write_str("LiteLLM 1 worker"),
            Self::LiteLlm { workers } => write!(f, "LiteLLM {workers} workers"),
        }
    }
}

impl FromStr for Target {
    type Err = anyhow::Error;

    fn from_str(value: &str) -> anyhow::Result<Self> {
        match value {
            "direct" => Ok(Self::Direct),
            "capibara" => Ok(Self::Capibara),
            other => {
                let workers = other
                    .strip_prefix("litellm-")
                    .and_then(|rest| rest.strip_suffix('w'))
                    .and_then(|n| n.parse::<u8>().ok())
                    .filter(|&n| n > 0);
                match workers {
                    Some(workers) => Ok(Self::LiteLlm { workers }),
                    None => bail!("unknown target `{other}` (direct, capibara, litellm-<N>w)"),
                }
            }
        }
    }
}

/// Where the programs under test are.
#[derive(Debug, Clone)]
pub struct Installation {
    /// Directory with the release binaries `capibara` and `capibara-fake-upstream`.
    pub bin_dir: PathBuf,
    /// The Python virtual environment with LiteLLM's proxy.
    pub venv: PathBuf,
    /// Scratch directory for configuration files, data and logs.
    pub work_dir: PathBuf,
}

/// Starts the fake upstream (one runtime thread, the same for every target) and waits until it answers.
pub async fn start_upstream(installation: &Installation) -> anyhow::Result<Service> {
    let address = free_local_address()?;
    let mut command = Command::new(installation.bin_dir.join("capibara-fake-upstream"));
    command.args(["--port", &address.port().to_string(), "--bind", "127.0.0.1", "--threads", "1"]);
    let log = installation.work_dir.join("upstream.log");
    let mut upstream = Service::spawn("the fake upstream", command, address, &log)?;
    upstream.wait_ready(Target::Direct.ready_path(), Target::Direct.start_limit()).await?;
    Ok(upstream)
}

/// Starts a proxy target in front of `upstream` and waits until it answers; `None` for
/// [`Target::Direct`], whose server is the upstream itself.
pub async fn start_proxy(
    target: Target,
    installation: &Installation,
    upstream: &Service,
) -> anyhow::Result<Option<Service>> {
    let upstream_v1 = format!("{}/v1", upstream.base_url());
    let address = free_local_address()?;
    let port = address.port().to_string();
    let work = &installation.work_dir;
    let command = match target {
        Target::Direct => return Ok(None),
        Target::Capibara => {
            let config = write_capibara_config(work, &upstream_v1)?;
            let mut command = Command::new(installation.bin_dir.join("capibara"));
            command.arg("--config").arg(&config).args(["serve", "--port", &port, "--bind", "127.0.0.1"]);
            command.env("RUST_LOG", "warn");
            command
        }
        Target::LiteLlm { workers } => {
            let config = write_litellm_config(work, &upstream_v1)?;
            let mut command = Command::new(installation.venv.join("bin").join("litellm"));
            command.arg("--config").arg(&config).args(["--host", "127.0.0.1", "--port", &port]);
            command.args(["--num_workers", &workers.to_string()]).current_dir(work);
            // Logging at ERROR, the bundled model price list instead of a download at start-up, no .env
            // file, no admin UI; no master key (no database either), like Capibara's open /v1 route.
            command.env("LITELLM_LOG", "ERROR");
            command.env("LITELLM_LOCAL_MODEL_COST_MAP", "True");
            command.env("LITELLM_MODE", "PRODUCTION");
            command.env("DISABLE_ADMIN_UI", "True");
            command.env("LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY", "true");
            command.env_remove("DATABASE_URL").env_remove("LITELLM_MASTER_KEY");
            command
        }
    };
    let log = work.join(format!("{}.log", target.key()));
    let mut service = Service::spawn(&target.to_string(), command, address, &log)?;
    service.wait_ready(target.ready_path(), target.start_limit()).await?;
    Ok(Some(service))
}

/// `capibara.toml` for the benchmark: one OpenAI-compatible backend, no practical concurrency limit,
/// its data in the scratch directory.
fn write_capibara_config(work: &Path, upstream_v1: &str) -> anyhow::Result<PathBuf> {
    let data_dir = work.join("capibara-data");
    let config = format!(
        "[server]\nmax_concurrent_requests = 10000\n\n[storage]\ndata_dir = {data}\n\n\
         [[llm.backends]]\nkind = \"openai\"\nbase_url = {base}\nmodel = \"bench-64x0ms\"\n",
        data = toml_string(&data_dir.to_string_lossy()),
        base = toml_string(upstream_v1),
    );
    let path = work.join("capibara.toml");
    std::fs::write(&path, config).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// LiteLLM's proxy configuration: every model name routed to the upstream.
fn write_litellm_config(work: &Path, upstream_v1: &str) -> anyhow::Result<PathBuf> {
    // JSON is YAML, and serde_json quotes every string correctly.
    let config = serde_json::json!({
        "model_list": [{
            "model_name": "*",
            "litellm_params": { "model": "openai/*", "api_base": upstream_v1, "api_key": "unused" },
        }],
        "litellm_settings": { "set_verbose": false },
    });
    let path = work.join("litellm.yaml");
    std::fs::write(&path, serde_json::to_string_pretty(&config)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// A TOML basic string (JSON string escapes are valid TOML escapes).
fn toml_string(value: &str) -> String {
    serde_json::Value::from(value).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_keys_round_trip() {
        for target in Target::ALL {
            assert_eq!(target.key().parse::<Target>().unwrap(), target);
        }
        assert_eq!("litellm-4w".parse::<Target>().unwrap(), Target::LiteLlm { workers: 4 });
        assert!("litellm-0w".parse::<Target>().is_err());
        assert!("nginx".parse::<Target>().is_err());
        assert_eq!(Target::LiteLlm { workers: 2 }.to_string(), "LiteLLM 2 workers");
    }

    #[test]
    fn the_capibara_config_is_one_capibara_accepts() {
        let dir = std::env::temp_dir().join(format!("capibara-bench-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = write_capibara_config(&dir, "http://127.0.0.1:9/v1").unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        // The server's own config type rejects unknown keys, so a typo here fails the test.
        let config: capibara_core::config::Config = toml::from_str(&text).unwrap();
        config.validate().unwrap();
        assert_eq!(config.server.max_concurrent_requests, 10000);
        assert_eq!(config.storage.data_dir, dir.join("capibara-data"));
        match &config.llm.backends[..] {
            [capibara_core::config::BackendConfig::Openai(backend)] => {
                assert_eq!(backend.base_url, "http://127.0.0.1:9/v1");
            }
            other => panic!("expected one OpenAI backend, got {other:?}"),
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
