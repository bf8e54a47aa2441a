//! The chunker's promises: budget, boundaries, overlap, coverage and stable ids.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;

use super::*;

const SENTENCES: &[&str] = &[
    "La capibara es el roedor más grande del mundo.",
    "¿Dónde vive? En las sabanas y selvas de Sudamérica, siempre cerca del agua.",
    "¡Nada muy bien y puede aguantar cinco minutos bajo el agua!",
    "El Sr. Pérez, p. ej., contó 3.5 capibaras por hectárea en EE. UU. durante su estudio.",
    "Come hierba, plantas acuáticas y, en la estación seca, cañas y cortezas.",
    "Vive en grupos de diez a veinte individuos, con un macho dominante.",
];

/// A paragraph of `n` sentences, starting at a different sentence for each `seed`.
fn paragraph(n: usize, seed: usize) -> String {
    (0..n).map(|i| SENTENCES[(seed + i) % SENTENCES.len()]).collect::<Vec<_>>().join(" ")
}

fn document(text: &str) -> Document {
    Document::new("memoria/capibaras.txt", "doc-1", text)
}

fn chunker(max_tokens: usize, overlap_tokens: usize) -> Chunker {
    Chunker::new(ChunkOptions { max_tokens, overlap_tokens }).unwrap()
}

/// Every chunk is a non-empty slice of the text within the budget, and together they cover every
/// word of the text.
fn assert_well_formed(chunker: &Chunker, doc: &Document, chunks: &[Chunk]) {
    let budget = chunker.options().max_tokens;
    let mut covered = vec![false; doc.text.len()];
    for (index, chunk) in chunks.iter().enumerate() {
        assert_eq!(chunk.index, index);
        assert!(!chunk.text.trim().is_empty());
        assert_eq!(chunk.text, doc.text[chunk.start_byte..chunk.end_byte]);
        assert_eq!(chunk.text, chunk.text.trim(), "chunks start and end on non-whitespace");
        assert_eq!(chunk.token_estimate, ApproxTokenCounter.count(&chunk.text));
        assert!(
            chunk.token_estimate <= budget,
            "chunk {index} has {} > {budget} tokens",
            chunk.token_estimate
        );
        covered[chunk.start_byte..chunk.end_byte].iter_mut().for_each(|c| *c = true);
    }
    for (at, c) in doc.text.char_indices() {
        assert!(c.is_whitespace() || covered[at], "byte {at} ({c:?}) is in no chunk");
    }
}

#[test]
fn fitting_prefix_finds_the_boundary_for_every_size() {
    for n in 0..40 {
        for boundary in 0..=n {
            let probes = std::cell::Cell::new(0);
            let found = fitting_prefix(n, |i| {
                probes.set(probes.get() + 1);
                i < boundary
            });
            assert_eq!(found, boundary, "n {n}, boundary {boundary}");
            assert!(probes.get() <= 2 * (usize::BITS - n.leading_zeros()) as usize + 2);
        }
    }
}

#[test]
fn options_are_validated() {
    assert!(ChunkOptions::default().validate().is_ok());
    assert_eq!(ChunkOptions::default(), ChunkOptions { max_tokens: 256, overlap_tokens: 32 });
    let err = Chunker::new(ChunkOptions { max_tokens: 15, overlap_tokens: 0 }).unwrap_err();
    assert!(err.to_string().contains("at least 16"), "{err}");
    let err = Chunker::new(ChunkOptions { max_tokens: 128, overlap_tokens: 64 }).unwrap_err();
    assert!(err.to_string().contains("less than half"), "{err}");
    assert!(Chunker::new(ChunkOptions { max_tokens: 128, overlap_tokens: 63 }).is_ok());
    assert!(Chunker::new(ChunkOptions { max_tokens: 16, overlap_tokens: 0 }).is_ok());
}

#[test]
fn empty_and_whitespace_documents_have_no_chunks() {
    let chunker = chunker(64, 8);
    assert!(chunker.chunk(&document("")).is_empty());
    assert!(chunker.chunk(&document(" \n\n\t \n")).is_empty());
}

#[test]
fn a_short_document_is_one_chunk_with_metadata() {
    let mut doc = document("  Hola, capibara.\n\nAdiós.  ");
    doc.title = Some("Saludos".into());
    doc.metadata.insert("lang".into(), "es".into());
    doc.metadata.insert("source".into(), "overridden".into());
    let chunks = Chunker::new(ChunkOptions::default()).unwrap().chunk(&doc);
    assert_eq!(chunks.len(), 1);
    let chunk = &chunks[0];
    assert_eq!(chunk.text, "Hola, capibara.\n\nAdiós.");
    assert_eq!((chunk.start_byte, chunk.end_byte), (2, 2 + chunk.text.len()));
    assert_eq!(chunk.doc_id, "doc-1");
    assert_eq!(chunk.metadata["lang"], "es");
    assert_eq!(chunk.metadata["source"], "memoria/capibaras.txt");
    assert_eq!(chunk.metadata["title"], "Saludos");
    assert_eq!(chunk.metadata["doc_id"], "doc-1");
    assert_eq!(chunk.metadata["chunk_index"], 0);
}

#[test]
fn long_documents_respect_the_budget_and_cover_the_text() {
    let text = (0..30).map(|i| paragraph(1 + i % 7, i)).collect::<Vec<_>>().join("\n\n");
    let doc = document(&text);
    for (max, overlap) in [(16, 0), (40, 8), (100, 32), (256, 32), (256, 0)] {
        let chunker = chunker(max, overlap);
        let chunks = chunker.chunk(&doc);
        assert!(chunks.len() > 1, "{max}/{overlap}");
        assert_well_formed(&chunker, &doc, &chunks);
    }
}

#[test]
fn chunks_of_a_long_paragraph_end_at_sentence_ends() {
    let doc = document(&paragraph(40, 0));
    let sentence_ends: HashSet<usize> = sentence_spans(&doc.text).into_iter().map(|s| s.end).collect();
    let sentence_starts: HashSet<usize> = sentence_spans(&doc.text).into_iter().map(|s| s.start).collect();
    for overlap in [20, 0] {
        let chunker = chunker(100, overlap);
        let chunks = chunker.chunk(&doc);
        assert!(chunks.len() >= 4, "{}", chunks.len());
        assert_well_formed(&chunker, &doc, &chunks);
        for chunk in &chunks {
            assert!(sentence_ends.contains(&chunk.end_byte), "ends mid-sentence: {:?}", chunk.text);
            // With overlap, a chunk may start inside a sentence too long to repeat whole.
            if overlap == 0 {
                assert!(sentence_starts.contains(&chunk.start_byte), "starts mid-sentence: {:?}", chunk.text);
            }
            // The abbreviations did not split the Sr. Pérez sentence.
            assert!(!chunk.text.ends_with("Sr.") && !chunk.text.ends_with("EE."), "{:?}", chunk.text);
        }
    }
}

#[test]
fn consecutive_chunks_overlap_by_whole_sentences_within_the_overlap_budget() {
    // One-sentence paragraphs, each short enough to repeat whole.
    let doc = document(&(0..30).map(|i| paragraph(1, i)).collect::<Vec<_>>().join("\n\n"));
    let chunker = chunker(120, 50);
    let chunks = chunker.chunk(&doc);
    assert!(chunks.len() >= 3);
    let sentence_starts: HashSet<usize> = paragraph_spans(&doc.text)
        .into_iter()
        .flat_map(|p| within(&p, sentence_spans(&doc.text[p.clone()])))
        .map(|s| s.start)
        .collect();
    for pair in chunks.windows(2) {
        let (previous, next) = (&pair[0], &pair[1]);
        assert!(
            next.start_byte < previous.end_byte,
            "no overlap between {} and {}",
            previous.index,
            next.index
        );
        assert!(next.start_byte > previous.start_byte);
        assert!(sentence_starts.contains(&next.start_byte), "overlap starts mid-sentence: {:?}", next.text);
        let overlap = &doc.text[next.start_byte..previous.end_byte];
        assert!(ApproxTokenCounter.count(overlap) <= 50, "overlap {overlap:?}");
        assert!(next.end_byte > previous.end_byte, "every chunk brings new text");
    }
}

#[test]
fn without_overlap_chunks_are_disjoint() {
    let doc = document(&(0..12).map(|i| paragraph(3, i)).collect::<Vec<_>>().join("\n\n"));
    let chunks = chunker(120, 0).chunk(&doc);
    for pair in chunks.windows(2) {
        assert!(pair[1].start_byte > pair[0].end_byte);
    }
}

#[test]
fn a_sentence_over_the_budget_splits_at_words_and_a_word_over_it_at_characters() {
    let long_sentence = "palabra ".repeat(60) + "fin";
    let blob = "x".repeat(200);
    let doc = document(&format!("{long_sentence}\n\n{blob}"));
    let chunker = chunker(20, 4);
    let chunks = chunker.chunk(&doc);
    assert_well_formed(&chunker, &doc, &chunks);
    let text = doc.text.as_bytes();
    for chunk in chunks.iter().filter(|c| c.end_byte <= long_sentence.len()) {
        assert!(chunk.start_byte == 0 || text[chunk.start_byte - 1] == b' ', "cut inside a word");
        assert!(text[chunk.end_byte] == b' ' || text[chunk.end_byte] == b'\n', "cut inside a word");
    }
    let blob_chunks: Vec<_> = chunks.iter().filter(|c| c.text.starts_with('x')).collect();
    assert!(blob_chunks.len() > 1);
    assert_eq!(blob_chunks.iter().map(|c| c.text.len()).sum::<usize>(), 200, "runs of a word do not overlap");
}

#[test]
fn ids_are_stable_and_an_edit_changes_only_the_chunks_holding_it() {
    let paragraphs: Vec<String> = (0..12).map(|i| paragraph(4, i)).collect();
    let original = document(&paragraphs.join("\n\n"));
    let chunker = chunker(200, 32);
    let before = chunker.chunk(&original);
    assert_eq!(before, chunker.chunk(&document(&paragraphs.join("\n\n"))), "same input, same chunks and ids");
    assert!(before.len() >= 4);
    let ids: HashSet<&str> = before.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), before.len(), "ids are unique");

    // Edit one word of paragraph 6, keeping its size.
    let mut edited_paragraphs = paragraphs.clone();
    edited_paragraphs[6] = edited_paragraphs[6].replacen("agua", "ríos", 1);
    assert_ne!(edited_paragraphs[6], paragraphs[6]);
    let edited = document(&edited_paragraphs.join("\n\n"));
    let after = chunker.chunk(&edited);
    assert_eq!(after.len(), before.len());

    let edit_at = paragraph_spans(&edited.text)[6].clone();
    let mut changed = 0;
    for (old, new) in before.iter().zip(&after) {
        let holds_edit = new.start_byte < edit_at.end && edit_at.start < new.end_byte;
        if holds_edit && old.text != new.text {
            assert_ne!(old.id, new.id);
            changed += 1;
        } else {
            assert_eq!(old.id, new.id, "chunk {} changed id without holding the edit", new.index);
        }
    }
    assert!(changed >= 1 && changed < before.len() / 2, "{changed} of {} chunks changed", before.len());

    // Re-wrapping whitespace keeps every id.
    let rewrapped = document(&original.text.replace(". ", ".\n"));
    let rewrapped_ids: Vec<_> = chunker.chunk(&rewrapped).into_iter().map(|c| c.id).collect();
    assert_eq!(rewrapped_ids, before.iter().map(|c| c.id.clone()).collect::<Vec<_>>());
}

#[test]
fn repeated_chunks_get_distinct_ids() {
    let doc = document("Aviso legal importante.\n\nTexto primero.\n\nAviso legal importante.");
    let chunks = chunker(16, 0).chunk(&doc);
    let texts: Vec<_> = chunks.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(texts, ["Aviso legal importante.", "Texto primero.", "Aviso legal importante."]);
    assert_ne!(chunks[0].id, chunks[2].id);
    assert_eq!(chunks[0].id, crate::ingest::ids::chunk_id("doc-1", "Aviso legal importante.", 0));
}

/// Counts whitespace-separated words, no special tokens.
struct Words;

impl TokenCounter for Words {
    fn count(&self, text: &str) -> usize {
        text.split_whitespace().count()
    }
}

#[test]
fn a_plugged_in_counter_sets_the_budget() {
    let text = (1..=100).map(|i| format!("p{i}.")).collect::<Vec<_>>().join(" ");
    let doc = document(&text);
    let counter: std::sync::Arc<dyn TokenCounter> = std::sync::Arc::new(Words);
    let chunker = Chunker::with_counter(ChunkOptions { max_tokens: 20, overlap_tokens: 5 }, counter).unwrap();
    let chunks = chunker.chunk(&doc);
    // One lowercase-joined "sentence" of 100 words: 20 words a chunk, the last 5 words repeated,
    // so 15 new words a chunk after the first.
    assert_eq!(chunks.len(), 7);
    assert!(chunks.iter().all(|c| c.token_estimate <= 20));
    assert_eq!(chunks[0].token_estimate, 20);
    assert!(chunks[1].text.starts_with("p16. p17."), "{}", chunks[1].text);
    assert!(chunks[6].text.ends_with("p100."));
}
