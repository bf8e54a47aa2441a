//! Markdown to plain text: headings kept as their own paragraphs, markup noise removed.
//!
//! Parsed with `pulldown-cmark` (CommonMark plus tables, footnotes, strikethrough, task lists and
//! YAML front matter). Link and image URLs, emphasis markers, heading hashes, raw HTML and list
//! bullets are dropped; link texts, image alt texts, inline code and fenced code (as text) are
//! kept. Block elements (headings, paragraphs, list items, quotes, code blocks, table rows) are
//! separated by a blank line so the chunker sees them as paragraphs.

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use super::normalize::normalize_text;

/// The text and title of a Markdown file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MarkdownText {
    /// The front matter's `title`, else the first level-1 heading.
    pub(crate) title: Option<String>,
    /// The plain text.
    pub(crate) text: String,
}

/// Converts Markdown source to plain text.
pub(crate) fn markdown_to_text(source: &str) -> MarkdownText {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS;
    let mut out = String::with_capacity(source.len());
    let mut front_matter_title = None;
    let mut in_front_matter = false;
    let mut first_h1: Option<String> = None;
    let mut heading: Option<(HeadingLevel, String)> = None;
    let mut in_html_block = false;

    for event in Parser::new_ext(source, options) {
        match event {
            Event::Start(Tag::MetadataBlock(_)) => in_front_matter = true,
            Event::End(TagEnd::MetadataBlock(_)) => in_front_matter = false,
            Event::Text(text) if in_front_matter => {
                front_matter_title = front_matter_title.or_else(|| yaml_title(&text));
            }
            Event::Start(Tag::HtmlBlock) => in_html_block = true,
            Event::End(TagEnd::HtmlBlock) => in_html_block = false,
            Event::Html(_) | Event::InlineHtml(_) => {}
            _ if in_html_block => {}
            Event::Start(Tag::Heading { level, .. }) => {
                block_break(&mut out);
                heading = Some((level, String::new()));
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some((level, text)) = heading.take()
                    && level == HeadingLevel::H1
                    && first_h1.is_none()
                {
                    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
                    first_h1 = (!text.is_empty()).then_some(text);
                }
                block_break(&mut out);
            }
            Event::Start(
                Tag::Paragraph
                | Tag::CodeBlock(_)
                | Tag::BlockQuote(_)
                | Tag::Item
                | Tag::TableRow
                | Tag::TableHead
                | Tag::FootnoteDefinition(_),
            ) => block_break(&mut out),
            Event::End(
                TagEnd::Paragraph
                | TagEnd::CodeBlock
                | TagEnd::BlockQuote(_)
                | TagEnd::Item
                | TagEnd::TableRow
                | TagEnd::TableHead
                | TagEnd::List(_)
                | TagEnd::FootnoteDefinition,
            )
            | Event::Rule => block_break(&mut out),
            Event::Start(Tag::TableCell) if !out.is_empty() && !out.ends_with('\n') => out.push_str(" | "),
            Event::Text(text) | Event::Code(text) | Event::InlineMath(text) | Event::DisplayMath(text) => {
                if let Some((_, heading_text)) = heading.as_mut() {
                    heading_text.push_str(&text);
                }
                out.push_str(&text);
            }
            Event::SoftBreak => out.push(' '),
            Event::HardBreak => out.push('\n'),
            _ => {}
        }
    }
    MarkdownText { title: front_matter_title.or(first_h1), text: normalize_text(&out) }
}

/// Ends the current block with a blank line, unless one already ends the output.
fn block_break(out: &mut String) {
    if !out.is_empty() && !out.ends_with("\n\n") {
        out.push_str(if out.ends_with('\n') { "\n" } else { "\n\n" });
    }
}

/// The `title:` of a YAML front matter block, quotes removed.
fn yaml_title(block: &str) -> Option<String> {
    block.lines().find_map(|line| {
        let value = line.strip_prefix("title:")?.trim();
        let value = value.trim_matches(|c| c == '"' || c == '\'').trim();
        (!value.is_empty()).then(|| value.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_become_paragraphs_and_markup_goes() {
        let source = "# Las capibaras\n\nSon **roedores** _enormes_ de [Sudamérica](https://es.wikipedia.org/wiki/Capibara).\n\n## Dieta\n\n- Hierba\n- Plantas `acuáticas`\n\n![Una capibara](foto.png)\n";
        let md = markdown_to_text(source);
        assert_eq!(md.title.as_deref(), Some("Las capibaras"));
        assert_eq!(
            md.text,
            "Las capibaras\n\nSon roedores enormes de Sudamérica.\n\nDieta\n\nHierba\n\nPlantas acuáticas\n\nUna capibara"
        );
    }

    #[test]
    fn code_fences_are_kept_as_text_and_html_dropped() {
        let source = "Antes.\n\n```rust\nfn main() {}\n```\n\n<div class=\"x\">oculto</div>\n\nDespués <b>en</b> línea.\n";
        let md = markdown_to_text(source);
        assert_eq!(md.title, None);
        assert_eq!(md.text, "Antes.\n\nfn main() {}\n\nDespués en línea.");
    }

    #[test]
    fn front_matter_gives_the_title_and_is_not_text() {
        let source = "---\ntitle: \"Guía de campo\"\nautor: Ana\n---\n\n# Otra cosa\n\nTexto.\n";
        let md = markdown_to_text(source);
        assert_eq!(md.title.as_deref(), Some("Guía de campo"));
        assert_eq!(md.text, "Otra cosa\n\nTexto.");
    }

    #[test]
    fn tables_keep_cells_on_one_line_per_row() {
        let md = markdown_to_text("| Animal | Peso |\n|---|---|\n| Capibara | 65 kg |\n");
        assert_eq!(md.text, "Animal | Peso\n\nCapibara | 65 kg");
    }
}
