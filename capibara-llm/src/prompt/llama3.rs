//! Llama 3: `<|start_header_id|>role<|end_header_id|>\n\n…<|eot_id|>`. Tool results use the
//! `ipython` role, as Llama 3.1 expects.

use capibara_core::chat::{Message, Role};

pub(super) const STOP: &[&str] = &["<|eot_id|>", "<|eom_id|>", "<|start_header_id|>"];

pub(super) fn render(messages: &[Message]) -> String {
    let mut prompt = String::new();
    for message in messages {
        let role = if message.role == Role::Tool { "ipython" } else { message.role.as_str() };
        header(&mut prompt, role);
        prompt.push_str(&message.content);
        prompt.push_str("<|eot_id|>");
    }
    header(&mut prompt, "assistant");
    prompt
}

fn header(prompt: &mut String, role: &str) {
    prompt.push_str("<|start_header_id|>");
    prompt.push_str(role);
    prompt.push_str("<|end_header_id|>\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_turns() {
        let prompt = render(&[Message::user("U")]);
        assert_eq!(
            prompt,
            "<|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        );
    }
}
