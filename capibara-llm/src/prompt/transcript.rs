//! The original Capibara6 transcript: the system text, then `Usuario: …` and `Capibara6: …` turns
//! separated by blank lines, ending with `Capibara6:` for the model to continue.

use capibara_core::chat::{Message, Role};

pub(super) const STOP: &[&str] = &["Usuario:", "Capibara6:"];

pub(super) fn render(messages: &[Message]) -> String {
    let mut blocks: Vec<String> = Vec::with_capacity(messages.len() + 2);
    let system: Vec<&str> =
        messages.iter().filter(|m| m.role == Role::System).map(|m| m.content.trim()).collect();
    if !system.is_empty() {
        blocks.push(system.join("\n\n"));
    }
    for message in messages {
        let speaker = match message.role {
            Role::System => continue,
            Role::User => "Usuario",
            Role::Assistant => "Capibara6",
            Role::Tool => "Herramienta",
        };
        blocks.push(format!("{speaker}: {}", message.content.trim()));
    }
    blocks.push("Capibara6:".to_owned());
    blocks.join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_turn_matches_the_original_template() {
        let prompt = render(&[Message::system("Eres Capibara6."), Message::user("Hola")]);
        assert_eq!(prompt, "Eres Capibara6.\n\nUsuario: Hola\n\nCapibara6:");
    }

    #[test]
    fn multi_turn_without_system() {
        let prompt =
            render(&[Message::user("Hola"), Message::assistant("¡Hola!"), Message::user("¿Qué tal?")]);
        assert_eq!(prompt, "Usuario: Hola\n\nCapibara6: ¡Hola!\n\nUsuario: ¿Qué tal?\n\nCapibara6:");
    }
}
