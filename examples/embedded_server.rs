//! Embeds Capibara's HTTP server in your own program, with configuration built in code.
//!
//! ```text
//! cargo run -p capibara-examples --example embedded_server -- http://127.0.0.1:11434
//! curl -N localhost:5001/api/chat/stream -H 'content-type: application/json' -d '{"message":"Hola"}'
//! ```

use capibara_server::{Capibara, serve, settings};

#[tokio::main]
async fn main() -> capibara_core::Result<()> {
    let ollama = std::env::args().nth(1).unwrap_or_else(|| "http://127.0.0.1:11434".to_owned());
    let mut config =
        settings::from_toml(&format!("[[llm.backends]]\nkind = \"ollama\"\nbase_url = \"{ollama}\"\n"))?;
    config.chat.system_prompt = Some("Eres un asistente breve. Responde en español.".to_owned());
    config.server.port = 5001;

    let app = Capibara::build(config).await?;
    let listener = serve::bind(&app).await?;
    println!(
        "serving on http://{}",
        listener.local_addr().map_err(|e| capibara_core::Error::internal(e.to_string()))?
    );
    serve::serve_until(app, listener, serve::shutdown_signal()).await
}
