//! Streams one answer from any model server, keeping the model's reasoning apart from the answer.
//!
//! ```text
//! cargo run -p capibara-examples --example chat_stream -- ollama http://127.0.0.1:11434 "¿Qué es Rust?"
//! cargo run -p capibara-examples --example chat_stream -- openai http://127.0.0.1:8000/v1 "Hola" openai/gpt-oss-20b
//! cargo run -p capibara-examples --example chat_stream -- llamacpp http://127.0.0.1:8080 "Hola"
//! ```
//! Reasoning goes to stderr, the answer to stdout.

use std::io::Write;

use capibara_core::chat::{ChatRequest, Message, StreamEvent};
use futures::StreamExt;

#[tokio::main]
async fn main() -> capibara_core::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [kind, base_url, question, rest @ ..] = args.as_slice() else {
        eprintln!("usage: chat_stream <openai|ollama|llamacpp> <base_url> <question> [model]");
        std::process::exit(2);
    };
    let mut backend = format!("[[llm.backends]]\nkind = \"{kind}\"\nbase_url = \"{base_url}\"\n");
    if let Some(model) = rest.first() {
        backend.push_str(&format!("model = \"{model}\"\n"));
    }
    let config = capibara_server::settings::from_toml(&backend)?;
    let llm =
        capibara_llm::build_chain(&config.llm)?.ok_or_else(|| capibara_core::Error::invalid("no backend"))?;

    let mut answer = llm.chat_stream(ChatRequest::new(vec![Message::user(question.as_str())])).await?;
    eprintln!("[{} via {}]", answer.model, answer.backend);
    let mut stdout = std::io::stdout();
    while let Some(event) = answer.next().await {
        match event? {
            StreamEvent::Content { delta } => {
                print!("{delta}");
                let _ = stdout.flush();
            }
            StreamEvent::Reasoning { delta } => eprint!("\x1b[2m{delta}\x1b[0m"),
            StreamEvent::Usage { usage } => {
                eprintln!("\n[{} prompt + {} generated tokens]", usage.prompt_tokens, usage.completion_tokens)
            }
            StreamEvent::Done { finish_reason } => eprintln!("[finished: {}]", finish_reason.as_str()),
            StreamEvent::ToolCall { call } => eprintln!("[tool call {}({})]", call.name, call.arguments),
        }
    }
    println!();
    Ok(())
}
