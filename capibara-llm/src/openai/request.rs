//! A [`ChatRequest`] as an OpenAI `/v1/chat/completions` body.

use capibara_core::chat::{ChatRequest, Message, Role, ToolSpec};

use crate::wire::openai::{
    ChatCompletionRequest, FunctionCall, FunctionDefinition, MessageContent, RequestMessage, Stop,
    StreamOptions, Tool, ToolCall,
};

/// The streaming request body for `model`.
pub(super) fn build(request: &ChatRequest, model: &str, stream_usage: bool) -> ChatCompletionRequest {
    let options = &request.options;
    ChatCompletionRequest {
        model: model.to_owned(),
        messages: request.messages.iter().map(message).collect(),
        stream: Some(true),
        stream_options: stream_usage.then_some(StreamOptions { include_usage: Some(true) }),
        max_tokens: options.max_tokens,
        temperature: options.temperature,
        top_p: options.top_p,
        stop: (!options.stop.is_empty()).then(|| Stop::Many(options.stop.clone())),
        seed: options.seed,
        presence_penalty: options.presence_penalty,
        frequency_penalty: options.frequency_penalty,
        tools: (!request.tools.is_empty()).then(|| request.tools.iter().map(tool).collect()),
        top_k: options.top_k,
        repetition_penalty: options.repeat_penalty,
        ..ChatCompletionRequest::default()
    }
}

/// One message; reasoning is never sent back, and an assistant turn that only calls tools has no
/// content, as OpenAI expects.
fn message(message: &Message) -> RequestMessage {
    let only_calls =
        message.role == Role::Assistant && message.content.is_empty() && !message.tool_calls.is_empty();
    RequestMessage {
        role: message.role.as_str().to_owned(),
        content: (!only_calls).then(|| MessageContent::Text(message.content.clone())),
        name: None,
        tool_calls: (!message.tool_calls.is_empty()).then(|| {
            message
                .tool_calls
                .iter()
                .map(|call| ToolCall {
                    id: call.id.clone(),
                    kind: "function".to_owned(),
                    function: FunctionCall { name: call.name.clone(), arguments: call.arguments.clone() },
                })
                .collect()
        }),
        tool_call_id: message.tool_call_id.clone(),
    }
}

fn tool(spec: &ToolSpec) -> Tool {
    Tool {
        kind: "function".to_owned(),
        function: FunctionDefinition {
            name: spec.name.clone(),
            description: spec.description.clone(),
            parameters: (!spec.parameters.is_null()).then(|| spec.parameters.clone()),
            strict: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capibara_core::chat::ToolCall as CoreToolCall;
    use serde_json::json;

    #[test]
    fn options_tools_and_history_are_carried() {
        let mut call = Message::assistant("");
        call.tool_calls =
            vec![CoreToolCall { id: "c1".into(), name: "clima".into(), arguments: "{}".into() }];
        call.reasoning = Some("oculto".into());
        let mut result = Message::new(Role::Tool, "22 °C");
        result.tool_call_id = Some("c1".into());
        let mut request =
            ChatRequest::new(vec![Message::system("S"), Message::user("¿Tiempo?"), call, result]);
        request.options.max_tokens = Some(100);
        request.options.stop = vec!["FIN".into()];
        request.options.top_k = Some(40);
        request.tools =
            vec![ToolSpec { name: "clima".into(), description: None, parameters: json!({"type":"object"}) }];
        let body = serde_json::to_value(build(&request, "m", true)).unwrap();
        assert_eq!(body["stream"], json!(true));
        assert_eq!(body["stream_options"], json!({"include_usage": true}));
        assert_eq!(body["max_tokens"], json!(100));
        assert_eq!(body["stop"], json!(["FIN"]));
        assert_eq!(body["top_k"], json!(40));
        assert_eq!(body["tools"][0]["function"]["name"], json!("clima"));
        assert_eq!(body["messages"][2].get("content"), None, "a calls-only turn has no content");
        assert_eq!(body["messages"][2]["tool_calls"][0]["id"], json!("c1"));
        assert_eq!(body["messages"][3]["tool_call_id"], json!("c1"));
        assert!(!body.to_string().contains("oculto"));
        assert_eq!(body.get("temperature"), None);
    }
}
