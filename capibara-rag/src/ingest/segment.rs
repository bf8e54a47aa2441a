//! Paragraphs, sentences and words of a text, as byte ranges into it.
//!
//! - A paragraph is a run of lines between blank lines.
//! - A sentence ends at `.`, `!`, `?` or `…` (with any closing quotes or brackets after it) when
//!   whitespace follows and the next word does not start with a lowercase letter. Spanish opening
//!   marks (`¿`, `¡`) start a sentence; a period after a known abbreviation (`Sr.`, `Dra.`,
//!   `p. ej.`, `EE. UU.`, …), a single letter (`J. R. R. Tolkien`) or dotted letters (`a.m.`) does
//!   not end one, and neither does a period inside a number (`3.5`), since no whitespace follows it.
//!   Line breaks inside a paragraph are ordinary whitespace: hard-wrapped text would otherwise
//!   split mid-sentence.
//! - A word is a run of non-whitespace characters.
//!
//! Every range starts and ends on non-whitespace, and ranges are in text order.

use std::ops::Range;

/// Words after which a period does not end a sentence, lowercased and without their dots.
/// `no`, `etc` and month names are left out on purpose: they end sentences too often.
const ABBREVIATIONS: &[&str] = &[
    // Spanish titles and forms of address.
    "sr", "sra", "srta", "sres", "sras", "srs", "dr", "dra", "drs", "dras", "d", "dña", "ud", "uds", "vd",
    "vds", "lic", "licda", "ing", "arq", "prof", "profa", "mtro", "mtra", "gral", "cnel", "tte", "sgto",
    "sto", "sta", "fr", "mons", "excmo", "excma", "ilmo", "ilma", "hno", "hna", "hnos",
    // Spanish references and places.
    "pág", "págs", "pag", "pp", "ej", "núm", "nro", "nº", "art", "arts", "cap", "caps", "vol", "vols", "fig",
    "figs", "tel", "tlf", "telf", "av", "avda", "col", "dpto", "depto", "apdo", "admón", "aprox", "cía",
    "ee", "uu", "ss", "vs", "cf", "cfr", "ibíd", "op", "cit", "ed", "eds", "trad", "coord", "máx", "mín",
    "izq", "dcha", "esq", "pza", "pl", // English.
    "mr", "mrs", "ms", "st", "jr", "inc", "ltd", "co", "corp", "dept", "approx", "gen", "gov", "est",
];

/// Paragraphs of `text`: runs of lines separated by blank (whitespace-only) lines.
pub fn paragraph_spans(text: &str) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    let mut current: Option<Range<usize>> = None;
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        let start = line_start;
        line_start += line.len();
        let trimmed = line.trim();
        if trimmed.is_empty() {
            spans.extend(current.take());
            continue;
        }
        let lead = line.len() - line.trim_start().len();
        let range = start + lead..start + lead + trimmed.len();
        current = Some(match current {
            Some(open) => open.start..range.end,
            None => range,
        });
    }
    spans.extend(current);
    spans
}

/// Sentences of `text` (see the module docs for the rules).
pub fn sentence_spans(text: &str) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    let Some(mut start) = next_non_space(text, 0) else {
        return spans;
    };
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if at < start || !is_terminator(c) {
            continue;
        }
        // The run of terminators and closers that ends here ("?!", "...", ".»", ".)").
        let mut end = at + c.len_utf8();
        let mut only_periods = c == '.';
        while let Some(&(next_at, next)) = chars.peek() {
            if !(is_terminator(next) || is_closer(next)) {
                break;
            }
            only_periods &= next == '.' || is_closer(next);
            end = next_at + next.len_utf8();
            chars.next();
        }
        let Some(&(_, after)) = chars.peek() else { break };
        if !after.is_whitespace() {
            continue;
        }
        let Some(next_start) = next_non_space(text, end) else { break };
        let next_char = text[next_start..].chars().next().unwrap_or(' ');
        if next_char.is_lowercase() || (only_periods && is_abbreviation(&text[start..at])) {
            continue;
        }
        spans.push(start..end);
        start = next_start;
    }
    let end = text.trim_end().len();
    if start < end {
        spans.push(start..end);
    }
    spans
}

/// Words of `text`: runs of non-whitespace characters.
pub fn word_spans(text: &str) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    let mut open: Option<usize> = None;
    for (at, c) in text.char_indices() {
        match (c.is_whitespace(), open) {
            (true, Some(start)) => {
                spans.push(start..at);
                open = None;
            }
            (false, None) => open = Some(at),
            _ => {}
        }
    }
    if let Some(start) = open {
        spans.push(start..text.len());
    }
    spans
}

fn next_non_space(text: &str, from: usize) -> Option<usize> {
    text[from..].char_indices().find(|(_, c)| !c.is_whitespace()).map(|(at, _)| from + at)
}

fn is_terminator(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '…')
}

fn is_closer(c: char) -> bool {
    matches!(c, '"' | '\'' | '»' | '”' | '’' | ')' | ']')
}

/// Whether the word just before a period at the end of `sentence_so_far` is an abbreviation.
fn is_abbreviation(sentence_so_far: &str) -> bool {
    let word = sentence_so_far.rsplit(char::is_whitespace).next().unwrap_or("");
    let word = word.trim_start_matches(|c: char| !c.is_alphanumeric());
    if word.is_empty() {
        return false;
    }
    // Dotted letters: "a.m", "S.A", "p.ej", "EE.UU".
    let dotted_letters =
        word.split('.').all(|part| part.chars().count() <= 2 && part.chars().all(char::is_alphabetic));
    if word.contains('.') && dotted_letters {
        return true;
    }
    let mut letters = word.chars();
    if let (Some(first), None) = (letters.next(), letters.next()) {
        return first.is_alphabetic();
    }
    let lower = word.to_lowercase();
    ABBREVIATIONS.contains(&lower.as_str())
}

#[cfg(test)]
#[path = "segment_tests.rs"]
mod tests;
