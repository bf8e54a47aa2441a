//! The text layer of a PDF, with the pure-Rust `pdf-extract` (on `lopdf`).
//!
//! `pdf-extract` ignores the text operators `'` and `"` (move to the next line, then show a
//! string), which Ghostscript and other producers write for every line after the first of a text
//! block; each page's content stream and each form XObject is rewritten to the equivalent `T*` and
//! `Tj` (and `Tw`, `Tc`) before extraction, or those lines would be lost.
//!
//! Limits: only text that the PDF stores as text is found — scanned pages are images and need OCR,
//! which Capibara does not do; encrypted PDFs are read only when their user password is empty;
//! reading order is the order of the content streams, which for multi-column layouts may interleave
//! columns. `pdf-extract` panics on some malformed files; the panic is caught and reported as
//! [`Error::InvalidInput`], and a page that fails is skipped when others have text.

use std::panic::{AssertUnwindSafe, catch_unwind};

use capibara_core::{Error, Result};
use pdf_extract::content::{Content, Operation};
use pdf_extract::{Document as PdfDocument, Object, ObjectId};

use super::normalize::normalize_text;

/// The text of a PDF file's bytes: pages separated by a blank line, lines wrapped inside a
/// paragraph joined with a space, words hyphenated across a line break joined again. `name` names
/// the file in errors.
pub(crate) fn pdf_to_text(name: &str, bytes: &[u8]) -> Result<String> {
    if !bytes.starts_with(b"%PDF-") {
        return Err(Error::invalid(format!("{name} is not a PDF: it does not start with `%PDF-`")));
    }
    let mut doc = catch_unwind(AssertUnwindSafe(|| PdfDocument::load_mem(bytes)))
        .map_err(|_| Error::invalid(format!("{name}: not a readable PDF (the PDF reader failed on it)")))?
        .map_err(|e| Error::invalid(format!("{name}: not a readable PDF: {e}")))?;
    if doc.is_encrypted() {
        doc.decrypt("")
            .map_err(|e| Error::invalid(format!("{name}: the PDF is encrypted with a password: {e}")))?;
    }
    spell_out_next_line_operators(&mut doc);

    let page_numbers: Vec<u32> = doc.get_pages().keys().copied().collect();
    let mut pages = Vec::with_capacity(page_numbers.len());
    let mut failures = Vec::new();
    for number in &page_numbers {
        match catch_unwind(AssertUnwindSafe(|| page_text(&doc, *number))) {
            Ok(Ok(text)) => pages.push(unwrap_lines(&normalize_text(&text))),
            Ok(Err(e)) => failures.push(format!("page {number}: {e}")),
            Err(_) => failures.push(format!("page {number}: the PDF reader failed on it")),
        }
    }
    let text = normalize_text(&pages.join("\n\n"));
    if text.is_empty() {
        if let Some(first) = failures.first() {
            return Err(Error::invalid(format!("{name}: not a readable PDF: {first}")));
        }
        return Err(Error::invalid(format!(
            "{name}: the PDF has no extractable text ({} pages; scanned pages are images and need OCR)",
            page_numbers.len()
        )));
    }
    if !failures.is_empty() {
        tracing::warn!(file = name, skipped = ?failures, "PDF pages skipped");
    }
    Ok(text)
}

fn page_text(doc: &PdfDocument, number: u32) -> std::result::Result<String, pdf_extract::OutputError> {
    let mut text = String::new();
    pdf_extract::output_doc_page(doc, &mut pdf_extract::PlainTextOutput::new(&mut text), number)?;
    Ok(text)
}

/// Rewrites `'` and `"` in every page content stream and form XObject as `T*` + `Tj` (with `Tw`
/// and `Tc` for `"`), which is what they mean (ISO 32000-1, 9.4.3). Streams that do not parse are
/// left alone.
fn spell_out_next_line_operators(doc: &mut PdfDocument) {
    let pages: Vec<ObjectId> = doc.get_pages().into_values().collect();
    for page in pages {
        if let Ok(content) = doc.get_and_decode_page_content(page)
            && let Some(rewritten) = spelled_out(&content.operations)
            && let Ok(encoded) = (Content { operations: rewritten }).encode()
        {
            let _ = doc.change_page_content(page, encoded);
        }
    }
    for object in doc.objects.values_mut() {
        let Object::Stream(stream) = object else { continue };
        let is_form = stream.dict.get(b"Subtype").and_then(Object::as_name).is_ok_and(|n| n == b"Form");
        if !is_form {
            continue;
        }
        if let Ok(plain) = stream.get_plain_content()
            && let Ok(content) = Content::decode(&plain)
            && let Some(rewritten) = spelled_out(&content.operations)
            && let Ok(encoded) = (Content { operations: rewritten }).encode()
        {
            stream.set_plain_content(encoded);
        }
    }
}

/// The operations with `'` and `"` spelled out, or `None` when there are none.
fn spelled_out(operations: &[Operation]) -> Option<Vec<Operation>> {
    if !operations.iter().any(|op| op.operator == "'" || op.operator == "\"") {
        return None;
    }
    let mut out = Vec::with_capacity(operations.len() + 8);
    for op in operations {
        match (op.operator.as_str(), op.operands.as_slice()) {
            ("'", [string]) => {
                out.push(Operation::new("T*", vec![]));
                out.push(Operation::new("Tj", vec![string.clone()]));
            }
            ("\"", [word_spacing, char_spacing, string]) => {
                out.push(Operation::new("Tw", vec![word_spacing.clone()]));
                out.push(Operation::new("Tc", vec![char_spacing.clone()]));
                out.push(Operation::new("T*", vec![]));
                out.push(Operation::new("Tj", vec![string.clone()]));
            }
            _ => out.push(op.clone()),
        }
    }
    Some(out)
}

/// Joins the lines of each paragraph of `text` with spaces, and `infor-` + `mación` into
/// `información` when a line ends in a hyphen after a letter and the next starts with a lowercase
/// letter (`Costa-` + `Rica` keeps its hyphen). Blank lines stay paragraph breaks.
fn unwrap_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split('\n') {
        let line = line.trim();
        if line.is_empty() {
            if !out.ends_with("\n\n") && !out.is_empty() {
                out.push_str("\n\n");
            }
            continue;
        }
        let ends_in_hyphen =
            out.strip_suffix('-').is_some_and(|before| before.ends_with(char::is_alphabetic));
        if ends_in_hyphen && line.starts_with(char::is_lowercase) {
            out.pop();
        } else if !ends_in_hyphen && !out.is_empty() && !out.ends_with('\n') {
            out.push(' ');
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_lines_and_hyphenation_are_joined() {
        assert_eq!(
            unwrap_lines("La infor-\nmación está\npartida.\n\nOtro párrafo\nen dos.\n\nCosta-\nRica"),
            "La información está partida.\n\nOtro párrafo en dos.\n\nCosta-Rica"
        );
    }

    #[test]
    fn next_line_operators_are_spelled_out() {
        let string = Object::string_literal("hola");
        let operations = vec![
            Operation::new("BT", vec![]),
            Operation::new("'", vec![string.clone()]),
            Operation::new("\"", vec![1.into(), 2.into(), string]),
            Operation::new("ET", vec![]),
        ];
        let names: Vec<String> =
            spelled_out(&operations).unwrap().into_iter().map(|op| op.operator).collect();
        assert_eq!(names, ["BT", "T*", "Tj", "Tw", "Tc", "T*", "Tj", "ET"]);
        assert!(spelled_out(&operations[..1]).is_none());
    }

    #[test]
    fn non_pdf_bytes_are_rejected_before_parsing() {
        let err = pdf_to_text("x.pdf", b"hola").unwrap_err();
        assert!(err.to_string().contains("x.pdf is not a PDF"), "{err}");
        let err = pdf_to_text("y.pdf", b"%PDF-1.4\ngarbage").unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    }
}
