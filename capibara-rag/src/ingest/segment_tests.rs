//! Paragraph, sentence and word boundaries, with the Spanish cases the chunker relies on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn texts<'a>(text: &'a str, spans: &[Range<usize>]) -> Vec<&'a str> {
    spans.iter().map(|span| &text[span.clone()]).collect()
}

fn sentences(text: &str) -> Vec<&str> {
    texts(text, &sentence_spans(text))
}

#[test]
fn paragraphs_are_separated_by_blank_lines() {
    let text = "\n  Uno, línea uno.\nlínea dos.\n\n \t\nDos.\r\n\r\nTres  \n";
    assert_eq!(texts(text, &paragraph_spans(text)), vec!["Uno, línea uno.\nlínea dos.", "Dos.", "Tres"]);
    assert!(paragraph_spans("  \n\n \t").is_empty());
}

#[test]
fn spanish_questions_and_exclamations_are_sentences() {
    assert_eq!(
        sentences("¿Dónde viven las capibaras? En Sudamérica. ¡Son enormes! Pesan hasta 65 kg."),
        vec!["¿Dónde viven las capibaras?", "En Sudamérica.", "¡Son enormes!", "Pesan hasta 65 kg."]
    );
    // A question followed by a lowercase continuation is one sentence.
    assert_eq!(sentences("¿Vienes? dijo ella. Sí."), vec!["¿Vienes? dijo ella.", "Sí."]);
    // Mixed and repeated marks with closing quotes stay with their sentence.
    assert_eq!(
        sentences("Gritó «¡¿Qué?!» y se fue. Luego volvió..."),
        vec!["Gritó «¡¿Qué?!» y se fue.", "Luego volvió..."]
    );
}

#[test]
fn abbreviations_and_decimals_do_not_end_sentences() {
    assert_eq!(
        sentences("El Sr. García y la Dra. López llegaron. Hablaron de EE. UU. y de la U.E. en general."),
        vec!["El Sr. García y la Dra. López llegaron.", "Hablaron de EE. UU. y de la U.E. en general."]
    );
    assert_eq!(
        sentences("Algunos roedores, p. ej. la capibara, nadan bien. El pH es 3.5 aquí. Vale."),
        vec!["Algunos roedores, p. ej. la capibara, nadan bien.", "El pH es 3.5 aquí.", "Vale."]
    );
    assert_eq!(
        sentences("Lo escribió J. R. R. Tolkien. Ver pág. 12 del informe."),
        vec!["Lo escribió J. R. R. Tolkien.", "Ver pág. 12 del informe."]
    );
    // A number ending a sentence still ends it; so does "etc." before a capital.
    assert_eq!(
        sentences("Ocurrió en 1998. Frutas, hojas, etc. Todo vale."),
        vec!["Ocurrió en 1998.", "Frutas, hojas, etc.", "Todo vale."]
    );
}

#[test]
fn line_breaks_inside_a_paragraph_are_whitespace() {
    assert_eq!(
        sentences("Una frase partida\nen dos líneas. Otra\nfrase."),
        vec!["Una frase partida\nen dos líneas.", "Otra\nfrase."]
    );
}

#[test]
fn sentences_cover_text_without_terminators_and_trim_whitespace() {
    assert_eq!(sentences("  sin punto final  "), vec!["sin punto final"]);
    assert!(sentence_spans(" \n ").is_empty());
    assert_eq!(sentences("Fin.   "), vec!["Fin."]);
}

#[test]
fn words_are_runs_of_non_whitespace() {
    let text = " uno  dos\ttres\n¿cuatro? ";
    assert_eq!(texts(text, &word_spans(text)), vec!["uno", "dos", "tres", "¿cuatro?"]);
    assert!(word_spans("   ").is_empty());
}
