//! The one text shape every format is brought to before chunking.

/// `raw` with a leading byte-order mark removed, `\r\n` and `\r` turned into `\n`, control
/// characters and no-break spaces turned into spaces, trailing spaces cut from every line, blank
/// lines between paragraphs reduced to one, and the ends trimmed.
pub(crate) fn normalize_text(raw: &str) -> String {
    let raw = raw.strip_prefix('\u{feff}').unwrap_or(raw);
    let unified = raw.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(unified.len());
    let mut blank_before = false;
    for line in unified.split('\n') {
        let cleaned: String = line
            .chars()
            .map(|c| if (c.is_control() && c != '\t') || c == '\u{a0}' { ' ' } else { c })
            .collect();
        let cleaned = cleaned.trim_end();
        if cleaned.is_empty() {
            blank_before = true;
            continue;
        }
        if out.is_empty() {
            out.push_str(cleaned.trim_start());
        } else {
            out.push_str(if blank_before { "\n\n" } else { "\n" });
            out.push_str(cleaned);
        }
        blank_before = false;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ends_blank_lines_and_controls_are_normalized() {
        assert_eq!(
            normalize_text("\u{feff}uno  \r\ndos\r\rtres\n\n\n\ncuatro\n"),
            "uno\ndos\n\ntres\n\ncuatro"
        );
        assert_eq!(normalize_text("  sangría\u{a0}y\u{c}más \n   sigue"), "sangría y más\n   sigue");
        assert_eq!(normalize_text(" \n \n"), "");
        assert_eq!(normalize_text("a\r\nb"), "a\nb");
    }
}
