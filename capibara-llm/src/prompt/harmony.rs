//! OpenAI Harmony, used by GPT-OSS: `<|start|>role<|message|>…<|end|>`.
//!
//! A fixed system message declares the channels; Capibara's system text goes in the `developer`
//! message, as Harmony prescribes. Earlier assistant answers are replayed on the `final` channel
//! without their reasoning. The prompt ends with `<|start|>assistant`, so the model opens its own
//! channel, and generation stops at `<|return|>` or `<|call|>`, never at `<|end|>`, which only
//! closes the analysis message.

use capibara_core::chat::{Message, Role};

pub(super) const STOP: &[&str] = &["<|return|>", "<|call|>"];

/// The Harmony system message: reasoning effort and the valid channels.
const SYSTEM: &str = include_str!("harmony_system.txt");

pub(super) fn render(messages: &[Message]) -> String {
    let mut prompt = String::new();
    message(&mut prompt, "system", None, SYSTEM);
    let instructions: Vec<&str> =
        messages.iter().filter(|m| m.role == Role::System).map(|m| m.content.trim()).collect();
    if !instructions.is_empty() {
        message(&mut prompt, "developer", None, &format!("# Instructions\n\n{}", instructions.join("\n\n")));
    }
    for (index, turn) in messages.iter().enumerate() {
        match turn.role {
            Role::System => {}
            Role::User => message(&mut prompt, "user", None, &turn.content),
            Role::Assistant => message(&mut prompt, "assistant", Some("final"), &turn.content),
            Role::Tool => {
                let author = format!("functions.{} to=assistant", tool_name(&messages[..index], turn));
                message(&mut prompt, &author, Some("commentary"), &turn.content);
            }
        }
    }
    prompt.push_str("<|start|>assistant");
    prompt
}

fn message(prompt: &mut String, author: &str, channel: Option<&str>, content: &str) {
    prompt.push_str("<|start|>");
    prompt.push_str(author);
    if let Some(channel) = channel {
        prompt.push_str("<|channel|>");
        prompt.push_str(channel);
    }
    prompt.push_str("<|message|>");
    prompt.push_str(content);
    prompt.push_str("<|end|>");
}

/// The function a tool result answers, found through the call id in the earlier messages.
fn tool_name<'a>(earlier: &'a [Message], result: &Message) -> &'a str {
    earlier
        .iter()
        .rev()
        .flat_map(|m| m.tool_calls.iter())
        .find(|call| Some(&call.id) == result.tool_call_id.as_ref())
        .map_or("tool", |call| call.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use capibara_core::chat::ToolCall;

    #[test]
    fn renders_developer_instructions_and_opens_the_assistant_turn() {
        let prompt = render(&[Message::system("Sé breve."), Message::user("Hola")]);
        assert!(prompt.starts_with("<|start|>system<|message|>Reasoning: medium"));
        assert!(prompt.contains("<|start|>developer<|message|># Instructions\n\nSé breve.<|end|>"));
        assert!(prompt.ends_with("<|start|>user<|message|>Hola<|end|><|start|>assistant"));
        assert!(!STOP.contains(&"<|end|>"));
    }

    #[test]
    fn tool_results_name_their_function() {
        let mut call = Message::assistant("");
        call.tool_calls = vec![ToolCall { id: "c1".into(), name: "clima".into(), arguments: "{}".into() }];
        let mut result = Message::new(Role::Tool, "22 °C");
        result.tool_call_id = Some("c1".into());
        let prompt = render(&[Message::user("¿Tiempo?"), call, result]);
        assert!(
            prompt.contains(
                "<|start|>functions.clima to=assistant<|channel|>commentary<|message|>22 °C<|end|>"
            )
        );
    }
}
