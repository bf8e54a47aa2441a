//! Retrieved passages put before the user's question, numbered so the answer can cite them.
//!
//! The block is part of the user message the model sees (not a second system message: many chat
//! templates accept only one, first), and the stored conversation keeps the question alone.

use super::budget::estimate_tokens;

/// Share of the prompt room (the budget left after the system prompt and the question) that
/// sources may fill; the rest stays for the conversation's history.
pub const SOURCES_SHARE_PERCENT: u32 = 60;

/// The instruction that opens a context block.
pub const CONTEXT_HEADER: &str = "Usa las siguientes fuentes para responder. Cítalas con su número entre corchetes, \
    por ejemplo [1]. Si las fuentes no contienen la respuesta, dilo.";

/// A retrieved passage given to the model with a turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextSource {
    /// How the source is named in the prompt (a title or a file name); may be empty.
    pub label: String,
    /// The passage.
    pub text: String,
}

/// The user text with as many `sources` as fit in `budget` tokens, in order, numbered from 1,
/// and how many were included. A source that does not fit ends the list: a later, weaker source
/// never takes the place of a stronger one. With no source included the question is returned as is.
pub fn with_sources(question: &str, sources: &[ContextSource], budget: u32) -> (String, usize) {
    let mut remaining =
        budget.saturating_sub(estimate_tokens(CONTEXT_HEADER) + estimate_tokens("Pregunta: "));
    let mut block = String::new();
    let mut used = 0;
    for (number, source) in sources.iter().enumerate() {
        let entry = entry(number + 1, source);
        let cost = estimate_tokens(&entry);
        if cost > remaining {
            break;
        }
        remaining -= cost;
        block.push_str(&entry);
        used += 1;
    }
    if used == 0 {
        return (question.to_owned(), 0);
    }
    (format!("{CONTEXT_HEADER}\n\n{block}Pregunta: {question}"), used)
}

fn entry(number: usize, source: &ContextSource) -> String {
    let label = source.label.trim();
    if label.is_empty() {
        format!("[{number}]\n{}\n\n", source.text.trim())
    } else {
        format!("[{number}] {label}\n{}\n\n", source.text.trim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(label: &str, text: &str) -> ContextSource {
        ContextSource { label: label.into(), text: text.into() }
    }

    #[test]
    fn sources_are_numbered_in_order_before_the_question() {
        let sources = [source("capibara.md", "El capibara es un roedor."), source("", "Vive en Sudamérica.")];
        let (text, used) = with_sources("¿Qué es un capibara?", &sources, 1_000);
        assert_eq!(used, 2);
        let first = text.find("[1] capibara.md\nEl capibara es un roedor.").unwrap();
        let second = text.find("[2]\nVive en Sudamérica.").unwrap();
        let question = text.find("Pregunta: ¿Qué es un capibara?").unwrap();
        assert!(text.starts_with(CONTEXT_HEADER) && first < second && second < question);
    }

    #[test]
    fn sources_stop_at_the_first_that_does_not_fit() {
        let sources =
            [source("a", &"uno ".repeat(30)), source("b", &"dos ".repeat(300)), source("c", "tres")];
        let (text, used) = with_sources("pregunta", &sources, 120);
        assert_eq!(used, 1);
        assert!(text.contains("[1] a") && !text.contains("[2]") && !text.contains("tres"));
        assert!(estimate_tokens(&text) <= 120 + estimate_tokens("pregunta"));
    }

    #[test]
    fn no_room_means_the_bare_question() {
        let (text, used) = with_sources("pregunta", &[source("a", "texto")], 10);
        assert_eq!((text.as_str(), used), ("pregunta", 0));
    }
}
