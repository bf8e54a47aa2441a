//! Fitting a conversation into a model's context window.
//!
//! Remote backends do not expose their tokenizer, so sizes are estimated conservatively: one token
//! per three characters (GPT-style BPE averages about four for Spanish and English) plus a few
//! tokens of per-message framing. Over-estimating only drops history a little early; under-estimating
//! would make the upstream reject the request.

use crate::chat::Message;
use crate::error::{Error, Result};

/// Tokens of role markers and separators around each message.
pub const FRAMING_TOKENS: u32 = 4;

/// Conservative token estimate of a text.
pub fn estimate_tokens(text: &str) -> u32 {
    let chars = u32::try_from(text.chars().count()).unwrap_or(u32::MAX);
    chars.div_ceil(3)
}

fn message_tokens(message: &Message) -> u32 {
    estimate_tokens(&message.content).saturating_add(FRAMING_TOKENS)
}

/// Builds `system + newest history that fits + user`, dropping the oldest history first.
///
/// `prompt_budget` is the context window minus the tokens reserved for the answer. Fails with
/// [`Error::ContextTooLong`] when the system prompt and the new message alone do not fit.
pub fn fit_history(
    system: Option<Message>,
    history: Vec<Message>,
    user: Message,
    prompt_budget: u32,
) -> Result<Vec<Message>> {
    let fixed = system.as_ref().map_or(0, message_tokens).saturating_add(message_tokens(&user));
    if fixed > prompt_budget {
        return Err(Error::ContextTooLong(format!(
            "the message needs about {fixed} tokens but the model leaves {prompt_budget} for the prompt; \
             shorten it or lower max_tokens"
        )));
    }
    let mut remaining = prompt_budget - fixed;
    let mut kept = Vec::new();
    for message in history.into_iter().rev() {
        let cost = message_tokens(&message);
        if cost > remaining {
            break;
        }
        remaining -= cost;
        kept.push(message);
    }
    kept.reverse();
    // A history that starts with an assistant turn confuses chat templates; start at a user turn.
    let first_user = kept.iter().position(|m| m.role == crate::chat::Role::User).unwrap_or(kept.len());
    let mut messages = Vec::with_capacity(kept.len() - first_user + 2);
    messages.extend(system);
    messages.extend(kept.into_iter().skip(first_user));
    messages.push(user);
    Ok(messages)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turns(n: usize) -> Vec<Message> {
        (0..n)
            .map(|i| {
                if i % 2 == 0 {
                    Message::user(format!("pregunta {i}"))
                } else {
                    Message::assistant("respuesta")
                }
            })
            .collect()
    }

    #[test]
    fn everything_fits_in_a_large_budget() {
        let out =
            fit_history(Some(Message::system("sys")), turns(6), Message::user("nueva"), 10_000).unwrap();
        assert_eq!(out.len(), 8);
        assert_eq!(out[0].content, "sys");
        assert_eq!(out.last().unwrap().content, "nueva");
    }

    #[test]
    fn oldest_history_is_dropped_first_and_starts_with_a_user_turn() {
        let history = turns(40);
        let out = fit_history(None, history.clone(), Message::user("nueva"), 60).unwrap();
        assert!(out.len() < 41);
        assert_eq!(out.first().unwrap().role, crate::chat::Role::User);
        // The kept history is the newest suffix, in order.
        let kept = &out[..out.len() - 1];
        assert_eq!(kept, &history[history.len() - kept.len()..]);
    }

    #[test]
    fn a_message_larger_than_the_budget_is_context_too_long() {
        let error = fit_history(None, vec![], Message::user("x".repeat(3000)), 100).unwrap_err();
        assert_eq!(error.code(), "context_too_long");
    }
}
