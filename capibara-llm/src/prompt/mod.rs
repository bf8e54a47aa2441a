//! Rendering a conversation into one prompt for completion-style endpoints (llama.cpp's
//! `/completion`, Ollama's `/api/generate` for multi-turn conversations).
//!
//! One file per [`PromptFormat`]; each knows its own turn markup and the stop strings that end
//! the model's turn. No format stops at a blank line: answers keep their paragraphs.
//!
//! Beginning-of-sequence tokens (`<bos>`, `<|begin_of_text|>`) are left out because llama.cpp adds
//! the model's own when it tokenises the prompt.

mod chatml;
mod gemma;
mod harmony;
mod llama3;
mod transcript;

use capibara_core::chat::Message;
use capibara_core::config::PromptFormat;

/// A rendered prompt and the stop strings of its format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedPrompt {
    /// The whole prompt, ending where the model's answer starts.
    pub text: String,
    /// Strings that mark the end of the model's turn in this format.
    pub stop: &'static [&'static str],
}

/// Renders `messages` (oldest first) in `format`, ending with the opening of the assistant's turn.
pub fn render(format: PromptFormat, messages: &[Message]) -> RenderedPrompt {
    let text = match format {
        PromptFormat::Transcript => transcript::render(messages),
        PromptFormat::Chatml => chatml::render(messages),
        PromptFormat::Gemma => gemma::render(messages),
        PromptFormat::Llama3 => llama3::render(messages),
        PromptFormat::Harmony => harmony::render(messages),
    };
    RenderedPrompt { text, stop: stop_strings(format) }
}

/// The end-of-turn stop strings of `format`.
pub fn stop_strings(format: PromptFormat) -> &'static [&'static str] {
    match format {
        PromptFormat::Transcript => transcript::STOP,
        PromptFormat::Chatml => chatml::STOP,
        PromptFormat::Gemma => gemma::STOP,
        PromptFormat::Llama3 => llama3::STOP,
        PromptFormat::Harmony => harmony::STOP,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [PromptFormat; 5] = [
        PromptFormat::Transcript,
        PromptFormat::Chatml,
        PromptFormat::Gemma,
        PromptFormat::Llama3,
        PromptFormat::Harmony,
    ];

    #[test]
    fn no_format_stops_at_a_blank_line() {
        for format in ALL {
            assert!(!stop_strings(format).iter().any(|stop| stop.trim().is_empty()), "{format:?}");
        }
    }

    #[test]
    fn only_the_transcript_stops_at_speaker_names() {
        for format in ALL {
            let speaker_stops = stop_strings(format).contains(&"Usuario:");
            assert_eq!(speaker_stops, format == PromptFormat::Transcript, "{format:?}");
        }
    }

    #[test]
    fn every_format_keeps_every_message_and_leaves_reasoning_out() {
        let mut answer = Message::assistant("Respuesta previa");
        answer.reasoning = Some("razonamiento oculto".into());
        let messages = vec![
            Message::system("Instrucciones"),
            Message::user("Primera pregunta"),
            answer,
            Message::user("Segunda pregunta"),
        ];
        for format in ALL {
            let prompt = render(format, &messages).text;
            for text in ["Instrucciones", "Primera pregunta", "Respuesta previa", "Segunda pregunta"] {
                assert!(prompt.contains(text), "{format:?} lost {text}: {prompt}");
            }
            assert!(!prompt.contains("razonamiento oculto"), "{format:?}");
        }
    }
}
