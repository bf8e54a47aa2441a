//! A multi-turn conversation through the same pipeline the server runs: history loaded from the
//! database, trimmed to the model's context, the exchange stored when each answer ends.
//!
//! ```text
//! cargo run -p capibara-examples --example conversation -- capibara.toml
//! ```
//! Type a message per line; an empty line ends. Conversations land in the configured database
//! (a SQLite file under `capibara-data/` by default) and survive restarts.

use std::io::{BufRead, Write};

use capibara_core::chat::StreamEvent;
use capibara_core::turn::{TurnEvent, TurnInput};
use capibara_server::{Capibara, settings};
use futures::StreamExt;

#[tokio::main]
async fn main() -> capibara_core::Result<()> {
    let file = std::env::args().nth(1).map(std::path::PathBuf::from);
    let app = Capibara::build(settings::load(file.as_deref())?).await?;
    let turns = app.turns()?;
    let mut conversation = None;
    let stdin = std::io::stdin();
    loop {
        print!("> ");
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        if stdin.lock().read_line(&mut line).map_err(|e| capibara_core::Error::internal(e.to_string()))? == 0
            || line.trim().is_empty()
        {
            break;
        }
        let input = TurnInput { conversation_id: conversation, message: line, ..TurnInput::default() };
        let mut answer = turns.stream(input).await?;
        conversation = Some(answer.conversation_id);
        while let Some(event) = answer.next().await {
            match event? {
                TurnEvent::Delta(StreamEvent::Content { delta }) => {
                    print!("{delta}");
                    let _ = std::io::stdout().flush();
                }
                TurnEvent::Delta(_) => {}
                TurnEvent::Finished(summary) => {
                    println!("\n[{} ms, stored in {}]", summary.latency_ms, summary.conversation_id)
                }
            }
        }
    }
    Ok(())
}
