//! Ingestion of real files: every supported format from `tests/fixtures/ingest/`, the limits and
//! errors, and chunking of what was loaded.
//!
//! `docs/informe.pdf` was made with Ghostscript from `informe.ps` beside it (see its header); the
//! other PDFs are written byte by byte here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use capibara_core::Error;
use capibara_rag::ingest::ids::file_document_id;
use capibara_rag::ingest::segment::sentence_spans;
use capibara_rag::ingest::{ChunkOptions, Chunker, Document, LoadOptions, discover, load_file, load_paths};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ingest")
}

fn load(relative: &str) -> Vec<Document> {
    load_paths(&[fixtures().join(relative)], &LoadOptions::default()).unwrap()
}

fn load_one(relative: &str) -> Document {
    let mut docs = load(relative);
    assert_eq!(docs.len(), 1, "{relative}");
    docs.remove(0)
}

fn load_err(path: &Path) -> Error {
    load_paths(&[path.to_path_buf()], &LoadOptions::default()).unwrap_err()
}

#[test]
fn markdown_keeps_headings_as_paragraphs_and_drops_markup_noise() {
    let doc = load_one("docs/capibaras.md");
    assert_eq!(doc.title.as_deref(), Some("La capibara"));
    assert_eq!(doc.doc_id, file_document_id("capibaras.md"));
    let paragraphs: Vec<&str> = doc.text.split("\n\n").collect();
    assert_eq!(paragraphs[0], "La capibara");
    assert_eq!(
        paragraphs[1],
        "La capibara (Hydrochoerus hydrochaeris) es el roedor más grande del mundo. Vive en Sudamérica, \
         siempre cerca del agua. ¿Sabías que puede dormir dentro del agua? ¡Solo asoma la nariz!"
    );
    assert!(paragraphs.contains(&"Alimentación"));
    assert!(paragraphs.contains(&"Plantas acuáticas"));
    assert!(paragraphs.contains(&r#"capibara = {"peso_kg": 65, "pais": "Venezuela"}"#), "{paragraphs:?}");
    assert!(paragraphs.contains(&"Más información en una foto la guía de campo."));
    for noise in ["https://", "**", "*H", "#", "```", "`", "autor:", "Equipo Capibara"] {
        assert!(!doc.text.contains(noise), "{noise:?} left in {:?}", doc.text);
    }
}

#[test]
fn html_yields_visible_text_and_title_only() {
    let doc = load_one("docs/pagina.html");
    assert_eq!(doc.title.as_deref(), Some("Capibaras & compañía"));
    for hidden in
        ["SCRIPT_SECRETO", "COMENTARIO_OCULTO", "NOSCRIPT_OCULTO", "font-family", "display", "charset"]
    {
        assert!(!doc.text.contains(hidden), "{hidden} leaked into {:?}", doc.text);
    }
    let paragraphs: Vec<&str> = doc.text.split("\n\n").collect();
    assert_eq!(
        paragraphs,
        [
            "Inicio | Blog",
            "La capibara",
            "Es el roedor más grande del mundo: pesa hasta 65 kg.",
            "Vive en Sudamérica — cerca de ríos y lagunas.",
            "Nada muy bien.",
            "Vive en grupos.",
            "Peso",
            "65 kg",
        ]
    );
}

#[test]
fn json_lines_and_json_arrays_become_one_document_a_record() {
    let docs = load("docs/registros");
    let ids: Vec<&str> = docs.iter().map(|d| d.doc_id.as_str()).collect();
    assert_eq!(ids.len(), 5);
    assert_eq!(ids[..2], ["art-1", "2"]);
    assert_eq!(ids[3..], ["lista-1", "lista-2"]);
    assert_eq!(ids[2].len(), 32, "a record without an id gets a content hash");

    assert_eq!(docs[0].title.as_deref(), Some("Hábitat"));
    assert_eq!(docs[0].text, "La capibara vive en sabanas inundables y selvas.");
    assert_eq!(docs[0].metadata["lang"], "es");
    assert_eq!(docs[0].metadata["tema"], "habitat");
    assert_eq!(docs[1].text, "Come hierba y plantas acuáticas.", "`content` is the text field too");
    assert_eq!(docs[1].metadata["fuente"], "manual");
    assert_eq!(docs[2].title, None);
    assert_eq!(docs[4].title.as_deref(), Some("Depredadores"));
    assert!(docs[0].source.ends_with("articulos.jsonl"));
}

#[test]
fn a_beir_folder_ingests_its_corpus_only() {
    let docs = load("beir");
    let ids: Vec<&str> = docs.iter().map(|d| d.doc_id.as_str()).collect();
    assert_eq!(ids, ["d1", "d2", "d3"]);
    assert_eq!(docs[0].title.as_deref(), Some("Capibara"));
    assert_eq!(docs[0].metadata["url"], "https://es.wikipedia.org/wiki/Hydrochoerus_hydrochaeris");
    assert_eq!(docs[2].title, None, "an empty title is no title");
    assert!(docs.iter().all(|d| d.source.ends_with("corpus.jsonl")));
}

#[test]
fn pdf_text_is_extracted_page_by_page() {
    let doc = load_one("docs/informe.pdf");
    assert_eq!(doc.doc_id, file_document_id("informe.pdf"));
    assert!(doc.text.starts_with("Informe sobre la capibara"), "{:?}", doc.text);
    assert!(
        doc.text.contains("es el roedor más grande del mundo. Vive en Sudamérica, siempre cerca de ríos"),
        "{:?}",
        doc.text
    );
    assert!(doc.text.contains("¿Qué come? Hierba y plantas acuáticas; en la estación seca, cañas."));
    assert!(
        doc.text.ends_with("\n\nConclusión: la población de capibaras es estable en Colombia y Venezuela.")
    );
}

/// A one-page PDF with an uncompressed content stream and the standard Helvetica font.
fn minimal_pdf(content: &str) -> Vec<u8> {
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> \
         /Contents 4 0 R >>"
            .to_string(),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_string(),
    ];
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (index, body) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend(format!("{} 0 obj\n{body}\nendobj\n", index + 1).bytes());
    }
    let xref = pdf.len();
    pdf.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).bytes());
    for offset in offsets {
        pdf.extend(format!("{offset:010} 00000 n \n").bytes());
    }
    pdf.extend(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).bytes(),
    );
    pdf
}

#[test]
fn hand_written_pdfs_with_and_without_text() {
    let dir = tempfile::tempdir().unwrap();
    let with_text = dir.path().join("hola.pdf");
    fs::write(&with_text, minimal_pdf(r"BT /F1 12 Tf 72 720 Td (Hola desde un PDF m\355nimo.) Tj ET"))
        .unwrap();
    let docs = load_paths(&[with_text], &LoadOptions::default()).unwrap();
    assert_eq!(docs[0].text, "Hola desde un PDF mínimo.");

    let empty = dir.path().join("escaneado.pdf");
    fs::write(&empty, minimal_pdf("")).unwrap();
    let err = load_err(&empty);
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    assert!(err.to_string().contains("escaneado.pdf: the PDF has no extractable text (1 pages"), "{err}");

    let broken = dir.path().join("roto.pdf");
    fs::write(&broken, b"%PDF-1.4\nesto no es un PDF").unwrap();
    let err = load_err(&broken);
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    assert!(err.to_string().contains("roto.pdf: not a readable PDF"), "{err}");
}

#[test]
fn a_pdf_with_a_text_extension_is_read_as_a_pdf() {
    let dir = tempfile::tempdir().unwrap();
    let disguised = dir.path().join("informe.txt");
    fs::copy(fixtures().join("docs/informe.pdf"), &disguised).unwrap();
    let docs = load_paths(&[disguised], &LoadOptions::default()).unwrap();
    assert!(docs[0].text.starts_with("Informe sobre la capibara"));
}

#[test]
fn binary_files_are_refused() {
    let err = load_err(&fixtures().join("bad/binario.txt"));
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    assert!(err.to_string().contains("binario.txt is a binary file, not text"), "{err}");
}

#[test]
fn a_malformed_json_line_is_named() {
    let err = load_err(&fixtures().join("bad/roto.jsonl"));
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    assert!(err.to_string().contains("roto.jsonl: line 3: invalid JSON"), "{err}");
}

#[test]
fn unsupported_and_missing_files_are_clear_errors() {
    let err = load_err(&fixtures().join("informe.ps"));
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    assert!(err.to_string().contains("unsupported file type (`.ps`); supported: .txt, .md"), "{err}");
    assert!(matches!(load_err(&fixtures().join("no-existe.md")), Error::NotFound(_)));
}

/// The peak resident memory of this process, in bytes (Linux).
fn peak_rss() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[test]
fn a_file_over_the_limit_is_refused_without_being_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enorme.txt");
    // Sparse: 50 MB of size without 50 MB of disk or memory.
    File::create(&path).unwrap().set_len(50_000_000).unwrap();
    let files = discover(&[dir.path().to_path_buf()]).unwrap();
    assert_eq!(files[0].bytes, 50_000_000);
    let err = load_file(&files[0], &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, Error::TooLarge(_)), "{err}");
    assert!(
        err.to_string().contains("enorme.txt is 47.7 MiB (50000000 bytes), over the 20.0 MiB limit"),
        "{err}"
    );
    if let Some(peak) = peak_rss() {
        assert!(peak < 40 * 1024 * 1024, "peak memory {peak} bytes: the file was read");
    }
}

#[test]
fn walking_a_folder_is_deterministic_and_skips_hidden_files() {
    let first = load("docs");
    assert_eq!(first, load("docs"));
    let sources: Vec<String> = first
        .iter()
        .map(|d| Path::new(&d.source).strip_prefix(fixtures().join("docs")).unwrap().display().to_string())
        .collect();
    assert_eq!(
        sources,
        [
            "capibaras.md",
            "informe.pdf",
            "notas.txt",
            "pagina.html",
            "registros/articulos.jsonl",
            "registros/articulos.jsonl",
            "registros/articulos.jsonl",
            "registros/lista.json",
            "registros/lista.json",
        ]
    );
    assert!(first.iter().all(|d| !d.text.contains("Borrador")));
}

#[test]
fn loaded_documents_chunk_within_budget_with_stable_unique_ids() {
    let docs =
        load_paths(&[fixtures().join("docs"), fixtures().join("beir")], &LoadOptions::default()).unwrap();
    let chunker = Chunker::new(ChunkOptions::default()).unwrap();
    let chunks = chunker.chunk_all(&docs);
    assert!(chunks.len() >= docs.len());
    let ids: HashSet<&str> = chunks.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), chunks.len(), "chunk ids are unique");
    for chunk in &chunks {
        assert!(chunk.token_estimate <= 256);
        assert!(chunk.metadata.contains_key("source") && chunk.metadata.contains_key("chunk_index"));
    }
    let html_chunk =
        chunks.iter().find(|c| c.metadata["source"].as_str().unwrap().ends_with("pagina.html")).unwrap();
    assert_eq!(html_chunk.metadata["title"], "Capibaras & compañía");
    let beir_chunk = chunks.iter().find(|c| c.doc_id == "d1").unwrap();
    assert_eq!(beir_chunk.metadata["url"], "https://es.wikipedia.org/wiki/Hydrochoerus_hydrochaeris");

    // Ingesting again gives the same ids.
    let again = chunker.chunk_all(
        &load_paths(&[fixtures().join("docs"), fixtures().join("beir")], &LoadOptions::default()).unwrap(),
    );
    assert_eq!(
        chunks.iter().map(|c| &c.id).collect::<Vec<_>>(),
        again.iter().map(|c| &c.id).collect::<Vec<_>>()
    );
}

#[test]
fn a_small_budget_cuts_the_markdown_at_sentence_ends_with_overlap() {
    let doc = load_one("docs/capibaras.md");
    let chunker = Chunker::new(ChunkOptions { max_tokens: 48, overlap_tokens: 20 }).unwrap();
    let chunks = chunker.chunk(&doc);
    assert!(chunks.len() >= 4, "{}", chunks.len());
    let ends: HashSet<usize> = doc
        .text
        .split("\n\n")
        .scan(0, |at, paragraph| {
            let start = *at;
            *at += paragraph.len() + 2;
            Some(sentence_spans(paragraph).into_iter().map(move |s| start + s.end))
        })
        .flatten()
        .collect();
    let mut overlapping = 0;
    for (index, chunk) in chunks.iter().enumerate() {
        assert!(chunk.token_estimate <= 48);
        assert_eq!(chunk.text, doc.text[chunk.start_byte..chunk.end_byte]);
        assert!(ends.contains(&chunk.end_byte), "chunk {index} ends mid-sentence: {:?}", chunk.text);
        if index > 0 && chunk.start_byte < chunks[index - 1].end_byte {
            overlapping += 1;
        }
    }
    assert!(overlapping >= chunks.len() / 2, "{overlapping} of {} chunks overlap", chunks.len());
    // The abbreviations did not end a sentence.
    assert!(chunks.iter().all(|c| !c.text.ends_with("Sr.") && !c.text.ends_with("p. ej.")));
}

/// The real all-MiniLM-L6-v2 tokenizer as a [`TokenCounter`]: special tokens included, no
/// truncation, no padding.
#[cfg(feature = "local-embed")]
mod real_tokenizer {
    use super::*;
    use capibara_core::models::{MINILM_L6_V2, ModelStore, NoProgress};
    use capibara_rag::ingest::{ApproxTokenCounter, TokenCounter};

    struct MiniLm(tokenizers::Tokenizer);

    impl TokenCounter for MiniLm {
        fn count(&self, text: &str) -> usize {
            self.0.encode_fast(text, true).map(|e| e.get_ids().len()).unwrap_or(usize::MAX)
        }
    }

    fn minilm() -> MiniLm {
        let model = ModelStore::from_env()
            .ensure(&MINILM_L6_V2, &mut NoProgress)
            .unwrap_or_else(|e| panic!("all-MiniLM-L6-v2 is needed by this test: {e}"));
        let mut tokenizer = tokenizers::Tokenizer::from_file(model.dir.join("tokenizer.json")).unwrap();
        tokenizer.with_truncation(None).unwrap();
        tokenizer.with_padding(None);
        MiniLm(tokenizer)
    }

    #[test]
    fn the_approximation_never_under_counts_the_embedder_tokenizer() {
        let real = minilm();
        let docs =
            load_paths(&[fixtures().join("docs"), fixtures().join("beir")], &LoadOptions::default()).unwrap();
        let mut pieces = Vec::new();
        for budget in [32, 64, 256] {
            let chunker =
                Chunker::new(ChunkOptions { max_tokens: budget, overlap_tokens: budget / 4 }).unwrap();
            pieces.extend(chunker.chunk_all(&docs).into_iter().map(|c| c.text));
        }
        for text in &pieces {
            let (approx, exact) = (ApproxTokenCounter.count(text), real.count(text));
            assert!(approx >= exact, "{approx} < {exact} real tokens for {text:?}");
        }
    }

    #[test]
    fn the_real_tokenizer_plugs_in_as_the_counter() {
        let doc = load_one("docs/capibaras.md");
        let chunker =
            Chunker::with_counter(ChunkOptions { max_tokens: 40, overlap_tokens: 8 }, minilm()).unwrap();
        let chunks = chunker.chunk(&doc);
        assert!(chunks.len() > 1);
        let real = minilm();
        assert!(chunks.iter().all(|c| real.count(&c.text) <= 40 && c.token_estimate == real.count(&c.text)));
    }
}
