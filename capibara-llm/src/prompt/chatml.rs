//! ChatML (Qwen, SmolLM and many others): `<|im_start|>role\n…<|im_end|>`.

use capibara_core::chat::Message;

pub(super) const STOP: &[&str] = &["<|im_end|>", "<|im_start|>", "<|endoftext|>"];

pub(super) fn render(messages: &[Message]) -> String {
    let mut prompt = String::new();
    for message in messages {
        prompt.push_str("<|im_start|>");
        prompt.push_str(message.role.as_str());
        prompt.push('\n');
        prompt.push_str(&message.content);
        prompt.push_str("<|im_end|>\n");
    }
    prompt.push_str("<|im_start|>assistant\n");
    prompt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_turns() {
        let prompt = render(&[Message::system("S"), Message::user("U")]);
        assert_eq!(
            prompt,
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
        );
    }
}
