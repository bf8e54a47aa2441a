//! The `capibara` command: parses arguments and calls the library. Nothing else lives here.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use capibara_server::telemetry::{self, LogFormat};
use capibara_server::{Capibara, serve, settings};
use clap::{Parser, Subcommand};

/// Capibara: a Spanish-first AI assistant platform in one server.
#[derive(Debug, Parser)]
#[command(name = "capibara", version, about)]
struct Cli {
    /// Configuration file (TOML). Defaults to ./capibara.toml when it exists.
    #[arg(long, short, global = true, env = "CAPIBARA_CONFIG")]
    config: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve every route on one port (5001 by default).
    Serve {
        /// Port to listen on (overrides `server.port`).
        #[arg(long, short)]
        port: Option<u16>,
        /// Address to bind (overrides `server.bind`; 127.0.0.1 by default).
        #[arg(long, short)]
        bind: Option<IpAddr>,
    },
    /// Load and validate the configuration, connect to the database and probe the chat backends.
    Check,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("capibara: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> capibara_core::Result<()> {
    let file = cli.config.or_else(|| {
        let local = PathBuf::from("capibara.toml");
        local.is_file().then_some(local)
    });
    let mut config = settings::load(file.as_deref())?;
    match cli.command {
        Command::Serve { port, bind } => {
            if let Some(port) = port {
                config.server.port = port;
            }
            if let Some(bind) = bind {
                config.server.bind = bind;
            }
            let app = Capibara::build(config).await?;
            let listener = serve::bind(&app).await?;
            let address = listener.local_addr().map_err(|e| capibara_core::Error::internal(e.to_string()))?;
            match app.llm() {
                Ok(llm) => tracing::info!(backend = llm.id(), "chat backend ready"),
                Err(_) => tracing::warn!("no chat backend configured: chat routes answer 503 until one is"),
            }
            tracing::info!("listening on http://{address}");
            serve::serve_until(app, listener, serve::shutdown_signal()).await
        }
        Command::Check => {
            let app = Capibara::build(config).await?;
            println!("configuration: ok");
            println!("database: {}", app.config().storage.effective_database_url_redacted());
            app.store().ping().await?;
            println!("database: ok ({} conversations)", app.store().count_conversations().await?);
            match app.llm() {
                Ok(llm) => {
                    let health = llm.health().await;
                    println!(
                        "chat backend {}: {:?} {}",
                        health.backend,
                        health.status,
                        health.detail.unwrap_or_default()
                    );
                }
                Err(error) => println!("chat backend: none ({error})"),
            }
            Ok(())
        }
    }
}
