//! `capibara-llm-bench`: the Capibara side of the local LLM benchmark and its report.
//! `benches/llm/run` builds it and calls every subcommand with the right paths and environment.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use capibara_benches::llm::{self, Prompt, QuantResult, ReportContext, Sample};
use capibara_core::models::{ModelStore, ProgressEvent};
use clap::{Parser, Subcommand};

/// Measures Capibara's local GGUF backend and writes the comparison with llama.cpp.
#[derive(Debug, Parser)]
#[command(name = "capibara-llm-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Installs the default model (SmolLM2-135M-Instruct, re-quantized) and prints its path.
    Model,
    /// Writes the benchmark prompt (rendered chat template and token ids) as JSON.
    Prompt {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Measures prefill and decode; one JSON sample per repetition on stdout. Needs
    /// CANDLE_NUM_THREADS and RAYON_NUM_THREADS equal to --threads.
    Run {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        threads: usize,
        #[arg(long, default_value_t = 128)]
        decode_tokens: u32,
        #[arg(long, default_value_t = 5)]
        repetitions: usize,
    },
    /// Re-quantizes the shipped Q4_1 file to Q4_0 and Q8_0 and compares speed and greedy output.
    Quant {
        #[arg(long)]
        source: PathBuf,
        #[arg(long)]
        work_dir: PathBuf,
        #[arg(long, default_value_t = 48)]
        tokens: u32,
        #[arg(long, default_value_t = 3)]
        repetitions: usize,
        #[arg(long)]
        out: PathBuf,
    },
    /// Writes the Markdown report from the samples (JSON lines) and the quantization results.
    Report {
        #[arg(long)]
        samples: PathBuf,
        #[arg(long)]
        quant: Option<PathBuf>,
        #[arg(long)]
        started: String,
        #[arg(long)]
        machine: String,
        #[arg(long)]
        revision: String,
        #[arg(long)]
        llama_cpp_python: String,
        #[arg(long)]
        model: String,
        #[arg(long)]
        load_before: String,
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("capibara-llm-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Model => {
            let mut progress = |event: ProgressEvent| eprintln!("{event:?}");
            let path = capibara_llm::local::ensure_default_model(&ModelStore::from_env(), &mut progress)?;
            println!("{}", path.display());
        }
        Command::Prompt { model, out } => {
            let llm = capibara_llm::local::LocalLlm::load(capibara_llm::local::LocalLlmOptions::new(model))?;
            let prompt = llm::prompt(&llm)?;
            std::fs::write(&out, serde_json::to_string(&prompt)?)?;
            eprintln!("benchmark prompt: {} tokens", prompt.ids.len());
        }
        Command::Run { model, threads, decode_tokens, repetitions } => {
            let llm = llm::load(&model, threads)?;
            let runtime = runtime()?;
            let Prompt { ids, .. } = llm::prompt(&llm)?;
            eprintln!("capibara: {} prompt tokens, {threads} thread(s)", ids.len());
            for repetition in 0..=repetitions {
                let request = llm::greedy_request(llm::messages(), decode_tokens);
                let sample = runtime.block_on(llm::measure(&llm, request, repetition))?;
                if repetition > 0 {
                    println!("{}", serde_json::to_string(&sample)?);
                }
            }
        }
        Command::Quant { source, work_dir, tokens, repetitions, out } => {
            let results =
                runtime()?.block_on(llm::compare_quantizations(&source, &work_dir, tokens, repetitions))?;
            std::fs::write(&out, serde_json::to_string_pretty(&results)?)?;
            for result in &results {
                eprintln!("{result:?}");
            }
        }
        Command::Report {
            samples,
            quant,
            started,
            machine,
            revision,
            llama_cpp_python,
            model,
            load_before,
            out,
        } => {
            let samples: Vec<Sample> = std::fs::read_to_string(&samples)
                .with_context(|| format!("reading {}", samples.display()))?
                .lines()
                .filter(|line| !line.trim().is_empty())
                .map(serde_json::from_str)
                .collect::<Result<_, _>>()?;
            let quants: Vec<QuantResult> = match quant {
                Some(path) => serde_json::from_str(&std::fs::read_to_string(path)?)?,
                None => Vec::new(),
            };
            let context = ReportContext { started, machine, revision, llama_cpp_python, model, load_before };
            let text = llm::report(&context, &samples, &quants);
            std::fs::write(&out, &text)?;
            print!("{text}");
        }
    }
    Ok(())
}
