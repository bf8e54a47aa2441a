//! A [`ChatRequest`] as an Ollama `/api/chat` or `/api/generate` body.

use capibara_core::chat::{ChatRequest, Message, Role, SamplingOptions};
use capibara_core::config::{OllamaConfig, PromptFormat};

use crate::prompt;
use crate::wire::ollama::{
    ChatRequest as WireChat, FunctionCall, GenerateRequest, Message as WireMessage, Options, ToolCall,
};
use crate::wire::openai::{FunctionDefinition, Tool};

/// The streaming `/api/chat` body.
pub(super) fn chat(request: &ChatRequest, model: &str, config: &OllamaConfig) -> WireChat {
    WireChat {
        model: model.to_owned(),
        messages: request
            .messages
            .iter()
            .enumerate()
            .map(|(i, m)| message(&request.messages[..i], m))
            .collect(),
        tools: (!request.tools.is_empty()).then(|| {
            request
                .tools
                .iter()
                .map(|spec| Tool {
                    kind: "function".to_owned(),
                    function: FunctionDefinition {
                        name: spec.name.clone(),
                        description: spec.description.clone(),
                        parameters: (!spec.parameters.is_null()).then(|| spec.parameters.clone()),
                        strict: None,
                    },
                })
                .collect()
        }),
        stream: Some(true),
        format: None,
        options: Some(options(&request.options, config, &[])),
        think: config.think.clone(),
        keep_alive: keep_alive(config),
    }
}

/// The streaming `/api/generate` body: system messages go to `system`, a single user message is
/// the prompt as is (Ollama applies the model's template), and a longer conversation is rendered
/// as a transcript, with the transcript's speaker stop strings.
pub(super) fn generate(request: &ChatRequest, model: &str, config: &OllamaConfig) -> GenerateRequest {
    let system: Vec<&str> =
        request.messages.iter().filter(|m| m.role == Role::System).map(|m| m.content.trim()).collect();
    let turns: Vec<Message> = request.messages.iter().filter(|m| m.role != Role::System).cloned().collect();
    let (prompt, stop) = match turns.as_slice() {
        [only] if only.role == Role::User => (only.content.clone(), &[][..]),
        _ => {
            let rendered = prompt::render(PromptFormat::Transcript, &turns);
            (rendered.text, rendered.stop)
        }
    };
    GenerateRequest {
        model: model.to_owned(),
        prompt,
        system: (!system.is_empty()).then(|| system.join("\n\n")),
        stream: Some(true),
        options: Some(options(&request.options, config, stop)),
        think: config.think.clone(),
        keep_alive: keep_alive(config),
        ..GenerateRequest::default()
    }
}

/// `keep_alive` as Ollama reads it: a duration string (`"5m"`), or a number of seconds (`-1`: keep
/// the model loaded forever), which Ollama accepts only as a JSON number.
fn keep_alive(config: &OllamaConfig) -> Option<serde_json::Value> {
    let text = config.keep_alive.as_deref()?.trim();
    Some(match text.parse::<i64>() {
        Ok(seconds) => serde_json::Value::from(seconds),
        Err(_) => serde_json::Value::String(text.to_owned()),
    })
}

fn options(sampling: &SamplingOptions, config: &OllamaConfig, format_stop: &[&str]) -> Options {
    let mut stop: Vec<String> = format_stop.iter().map(|s| (*s).to_owned()).collect();
    stop.extend(sampling.stop.iter().filter(|s| !format_stop.contains(&s.as_str())).cloned());
    Options {
        num_ctx: Some(config.context_window),
        num_predict: sampling.max_tokens.map(|n| i32::try_from(n).unwrap_or(i32::MAX)),
        temperature: sampling.temperature,
        top_p: sampling.top_p,
        top_k: sampling.top_k,
        min_p: None,
        repeat_penalty: sampling.repeat_penalty,
        presence_penalty: sampling.presence_penalty,
        frequency_penalty: sampling.frequency_penalty,
        seed: sampling.seed.map(|seed| i64::try_from(seed).unwrap_or(i64::MAX)),
        stop: (!stop.is_empty()).then_some(stop),
    }
}

/// One chat message; tool results name their function, found through the call id.
fn message(earlier: &[Message], message: &Message) -> WireMessage {
    let tool_name = message.tool_call_id.as_ref().and_then(|id| {
        earlier
            .iter()
            .rev()
            .flat_map(|m| m.tool_calls.iter())
            .find(|call| &call.id == id)
            .map(|call| call.name.clone())
    });
    WireMessage {
        role: message.role.as_str().to_owned(),
        content: message.content.clone(),
        thinking: None,
        images: None,
        tool_calls: (!message.tool_calls.is_empty()).then(|| {
            message
                .tool_calls
                .iter()
                .map(|call| ToolCall {
                    id: Some(call.id.clone()),
                    function: FunctionCall {
                        index: None,
                        name: call.name.clone(),
                        // Ollama wants the arguments as an object; text that is not JSON is kept as a string.
                        arguments: serde_json::from_str(&call.arguments)
                            .unwrap_or_else(|_| serde_json::Value::String(call.arguments.clone())),
                    },
                })
                .collect()
        }),
        tool_name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> OllamaConfig {
        serde_json::from_value(json!({"think": "high", "keep_alive": "10m", "context_window": 16384}))
            .unwrap()
    }

    #[test]
    fn chat_passes_think_keep_alive_and_context_window() {
        let mut request = ChatRequest::new(vec![Message::user("Hola")]);
        request.options.max_tokens = Some(64);
        let body = serde_json::to_value(chat(&request, "gpt-oss:20b", &config())).unwrap();
        assert_eq!(body["think"], json!("high"));
        assert_eq!(body["keep_alive"], json!("10m"));
        assert_eq!(body["options"], json!({"num_ctx": 16384, "num_predict": 64}));
        assert_eq!(body["stream"], json!(true));
    }

    #[test]
    fn keep_alive_in_seconds_is_a_number() {
        let mut config = config();
        config.keep_alive = Some("-1".into());
        let body =
            serde_json::to_value(chat(&ChatRequest::new(vec![Message::user("Hola")]), "m", &config)).unwrap();
        assert_eq!(body["keep_alive"], json!(-1));
    }

    #[test]
    fn generate_with_one_user_message_sends_it_as_is() {
        let request = ChatRequest::new(vec![Message::system("Sé breve."), Message::user("Hola")]);
        let body = generate(&request, "m", &config());
        assert_eq!(body.prompt, "Hola");
        assert_eq!(body.system.as_deref(), Some("Sé breve."));
        assert_eq!(body.options.unwrap().stop, None, "never a blank-line stop, nor speaker stops here");
    }

    #[test]
    fn generate_renders_a_conversation_as_a_transcript() {
        let request = ChatRequest::new(vec![
            Message::system("S"),
            Message::user("Hola"),
            Message::assistant("¡Hola!"),
            Message::user("¿Qué tal?"),
        ]);
        let body = generate(&request, "m", &config());
        assert_eq!(body.prompt, "Usuario: Hola\n\nCapibara6: ¡Hola!\n\nUsuario: ¿Qué tal?\n\nCapibara6:");
        assert_eq!(body.system.as_deref(), Some("S"));
        assert_eq!(body.options.unwrap().stop, Some(vec!["Usuario:".to_owned(), "Capibara6:".to_owned()]));
    }
}
