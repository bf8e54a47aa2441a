//! Chat templates: the GGUF's `tokenizer.chat_template` (or an override) rendered with minijinja,
//! ChatML when the file has none.
//!
//! Hugging Face templates are Jinja written against Python objects, so the environment adds what
//! the common ones call: Python string and dict methods (`.strip()`, `.startswith()`,
//! `.items()`, … from minijinja-contrib's pycompat), `raise_exception`, `strftime_now` and the
//! `tojson` filter.

use capibara_core::chat::{Message, ToolSpec};
use capibara_core::{Error, Result};
use minijinja::{Environment, ErrorKind, Value, context};
use serde::Serialize;

/// Used when a GGUF carries no chat template: ChatML, which SmolLM, Qwen and many others speak.
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const TEMPLATE_NAME: &str = "chat";

/// A compiled chat template and the special-token texts it may refer to.
#[derive(Debug)]
pub(crate) struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
    /// Whether the template reads `tools` (so tool definitions reach the model).
    pub(crate) knows_tools: bool,
}

#[derive(Serialize)]
struct TemplateMessage<'a> {
    role: &'a str,
    content: &'a str,
}

#[derive(Serialize)]
struct TemplateTool<'a> {
    r#type: &'static str,
    function: &'a ToolSpec,
}

impl ChatTemplate {
    /// Compiles `source`; a syntax error is [`Error::InvalidInput`] naming where it came from.
    pub(crate) fn new(source: &str, origin: &str, bos_token: String, eos_token: String) -> Result<Self> {
        let mut env = Environment::new();
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |message: String| -> std::result::Result<Value, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
            },
        );
        env.add_function("strftime_now", |format: String| chrono::Local::now().format(&format).to_string());
        // Templates are written with Python's whitespace rules in mind.
        env.set_trim_blocks(false);
        env.set_lstrip_blocks(false);
        env.add_template_owned(TEMPLATE_NAME, source.to_owned())
            .map_err(|e| Error::invalid(format!("chat template ({origin}) does not compile: {e}")))?;
        let knows_tools = source.contains("tools");
        Ok(Self { env, bos_token, eos_token, knows_tools })
    }

    /// Renders `messages` ending with the opening of the assistant's turn.
    pub(crate) fn render(&self, messages: &[Message], tools: &[ToolSpec]) -> Result<String> {
        let messages: Vec<TemplateMessage<'_>> =
            messages.iter().map(|m| TemplateMessage { role: m.role.as_str(), content: &m.content }).collect();
        let tools: Option<Vec<TemplateTool<'_>>> = (!tools.is_empty())
            .then(|| tools.iter().map(|function| TemplateTool { r#type: "function", function }).collect());
        let template = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| Error::internal(format!("chat template: {e}")))?;
        template
            .render(context! {
                messages => messages,
                tools => tools,
                add_generation_prompt => true,
                bos_token => &self.bos_token,
                eos_token => &self.eos_token,
            })
            .map_err(|e| Error::invalid(format!("chat template: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(source: &str) -> ChatTemplate {
        ChatTemplate::new(source, "test", "<s>".into(), "</s>".into()).unwrap()
    }

    #[test]
    fn chatml_fallback_renders_turns() {
        let prompt =
            template(CHATML_TEMPLATE).render(&[Message::system("S"), Message::user("U")], &[]).unwrap();
        assert_eq!(
            prompt,
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn python_methods_and_helpers_work() {
        let source = "{{ bos_token }}{% for m in messages %}{% if m['content'].strip().startswith('¿') %}{{ m['role'].upper() }}:{{ m['content'].strip() }}{% endif %}{% endfor %}{{ messages[0] | tojson }}";
        let prompt = template(source).render(&[Message::user("  ¿Qué tal?  ")], &[]).unwrap();
        assert_eq!(prompt, "<s>USER:¿Qué tal?{\"role\":\"user\",\"content\":\"  ¿Qué tal?  \"}");
    }

    #[test]
    fn raise_exception_is_an_invalid_input() {
        let source =
            "{% if messages[0]['role'] != 'system' %}{{ raise_exception('system first') }}{% endif %}";
        let error = template(source).render(&[Message::user("hola")], &[]).unwrap_err();
        assert_eq!(error.code(), "invalid_input");
        assert!(error.to_string().contains("system first"), "{error}");
    }

    #[test]
    fn syntax_errors_name_the_origin() {
        let error = ChatTemplate::new("{% for %}", "options.chat_template", String::new(), String::new())
            .unwrap_err();
        assert!(error.to_string().contains("options.chat_template"), "{error}");
    }
}
