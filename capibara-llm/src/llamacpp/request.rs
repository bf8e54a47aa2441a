//! A [`ChatRequest`] as a llama.cpp `/completion` body: the conversation rendered into one
//! prompt in the configured format, with that format's end-of-turn stop strings.

use capibara_core::chat::ChatRequest;
use capibara_core::config::PromptFormat;

use crate::prompt;
use crate::wire::llamacpp::CompletionRequest;

/// The streaming request body.
pub(super) fn build(request: &ChatRequest, format: PromptFormat) -> CompletionRequest {
    let rendered = prompt::render(format, &request.messages);
    let options = &request.options;
    let mut stop: Vec<String> = rendered.stop.iter().map(|s| (*s).to_owned()).collect();
    stop.extend(options.stop.iter().filter(|s| !rendered.stop.contains(&s.as_str())).cloned());
    CompletionRequest {
        prompt: rendered.text,
        n_predict: options.max_tokens.map(|n| i32::try_from(n).unwrap_or(i32::MAX)),
        temperature: options.temperature,
        top_p: options.top_p,
        top_k: options.top_k,
        min_p: None,
        repeat_penalty: options.repeat_penalty,
        presence_penalty: options.presence_penalty,
        frequency_penalty: options.frequency_penalty,
        seed: options.seed.map(|seed| i64::try_from(seed).unwrap_or(i64::MAX)),
        stop: (!stop.is_empty()).then_some(stop),
        stream: Some(true),
        // Later turns of a conversation share the earlier prompt; llama.cpp reuses its KV cache.
        cache_prompt: Some(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capibara_core::chat::Message;

    #[test]
    fn transcript_prompt_with_its_stops_and_the_callers() {
        let mut request = ChatRequest::new(vec![Message::system("Eres Capibara6."), Message::user("Hola")]);
        request.options.max_tokens = Some(200);
        request.options.stop = vec!["Usuario:".into(), "FIN".into()];
        let body = build(&request, PromptFormat::Transcript);
        assert_eq!(body.prompt, "Eres Capibara6.\n\nUsuario: Hola\n\nCapibara6:");
        assert_eq!(body.stop, Some(vec!["Usuario:".to_owned(), "Capibara6:".to_owned(), "FIN".to_owned()]));
        assert_eq!(body.n_predict, Some(200));
        assert_eq!(body.stream, Some(true));
    }

    #[test]
    fn harmony_prompt_stops_at_return_and_call_only() {
        let body = build(&ChatRequest::new(vec![Message::user("Hola")]), PromptFormat::Harmony);
        assert!(body.prompt.ends_with("<|start|>assistant"));
        assert_eq!(body.stop, Some(vec!["<|return|>".to_owned(), "<|call|>".to_owned()]));
    }
}
