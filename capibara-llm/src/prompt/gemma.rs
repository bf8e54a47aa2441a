//! Gemma: `<start_of_turn>user\n…<end_of_turn>` and `model` turns. Gemma has no system role, so
//! system text opens the first user turn; tool results are given as user turns.

use capibara_core::chat::{Message, Role};

pub(super) const STOP: &[&str] = &["<end_of_turn>", "<start_of_turn>", "<eos>"];

pub(super) fn render(messages: &[Message]) -> String {
    let system: Vec<&str> =
        messages.iter().filter(|m| m.role == Role::System).map(|m| m.content.trim()).collect();
    let mut pending_system = (!system.is_empty()).then(|| system.join("\n\n"));
    let mut prompt = String::new();
    for message in messages.iter().filter(|m| m.role != Role::System) {
        let role = if message.role == Role::Assistant { "model" } else { "user" };
        prompt.push_str("<start_of_turn>");
        prompt.push_str(role);
        prompt.push('\n');
        if role == "user"
            && let Some(system) = pending_system.take()
        {
            prompt.push_str(&system);
            prompt.push_str("\n\n");
        }
        prompt.push_str(&message.content);
        prompt.push_str("<end_of_turn>\n");
    }
    if let Some(system) = pending_system {
        prompt.insert_str(0, &format!("<start_of_turn>user\n{system}<end_of_turn>\n"));
    }
    prompt.push_str("<start_of_turn>model\n");
    prompt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_text_opens_the_first_user_turn() {
        let prompt = render(&[Message::system("S"), Message::user("U"), Message::assistant("A")]);
        assert_eq!(
            prompt,
            "<start_of_turn>user\nS\n\nU<end_of_turn>\n<start_of_turn>model\nA<end_of_turn>\n<start_of_turn>model\n"
        );
    }
}
