//! Walking, limits and ids of loading, on files written to a temporary directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn write(dir: &Path, relative: &str, contents: &[u8]) {
    let path = dir.join(relative);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, contents).unwrap();
}

fn relatives(files: &[SourceFile]) -> Vec<&str> {
    files.iter().map(|f| f.relative.as_str()).collect()
}

#[test]
fn walking_is_sorted_recursive_and_skips_hidden_and_unsupported_files() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "b.md", b"# B");
    write(dir.path(), "a.txt", b"A");
    write(dir.path(), "sub/c.HTML", b"<p>C</p>");
    write(dir.path(), "sub/d.docx", b"no");
    write(dir.path(), ".oculto.txt", b"no");
    write(dir.path(), ".git/e.txt", b"no");
    write(dir.path(), "beir/corpus.jsonl", b"{\"_id\": \"1\", \"text\": \"uno\"}\n");
    write(dir.path(), "beir/queries.jsonl", b"{\"_id\": \"q\", \"text\": \"no\"}\n");
    let files = discover(&[dir.path().to_path_buf()]).unwrap();
    assert_eq!(relatives(&files), ["a.txt", "b.md", "beir/corpus.jsonl", "sub/c.HTML"]);
    assert_eq!(files[3].format, Format::Html);
    assert_eq!(files[0].bytes, 1);
    assert_eq!(files[0].path, dir.path().join("a.txt"));

    // A BEIR folder given directly yields its corpus only.
    let beir = discover(&[dir.path().join("beir")]).unwrap();
    assert_eq!(relatives(&beir), ["corpus.jsonl"]);
}

#[test]
fn given_files_are_taken_as_they_are_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), ".oculto.txt", b"visible when named");
    write(dir.path(), "foto.png", b"\x89PNG");
    let files = discover(&[dir.path().join(".oculto.txt")]).unwrap();
    assert_eq!(relatives(&files), [".oculto.txt"]);

    let err = discover(&[dir.path().join("foto.png")]).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)));
    assert!(err.to_string().contains("unsupported file type (`.png`)"), "{err}");
    assert!(err.to_string().contains(".txt, .md, .markdown, .html, .htm, .json, .jsonl, .pdf"), "{err}");

    let err = discover(&[dir.path().join("nada.txt")]).unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
}

#[test]
fn files_over_the_limit_are_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "grande.txt", &[b'a'; 3000]);
    let files = discover(&[dir.path().to_path_buf()]).unwrap();
    let err =
        load_file(&files[0], &LoadOptions { max_file_bytes: 2048, ..LoadOptions::default() }).unwrap_err();
    assert!(matches!(err, Error::TooLarge(_)), "{err}");
    assert!(err.to_string().contains("is 2.9 KiB (3000 bytes), over the 2.0 KiB limit"), "{err}");
    assert_eq!(
        load_file(&files[0], &LoadOptions { max_file_bytes: 3000, ..LoadOptions::default() }).unwrap().len(),
        1
    );
}

#[test]
fn binary_content_is_refused_whatever_the_extension() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "nul.txt", b"hola\0mundo");
    write(dir.path(), "latin1.md", b"ma\xf1ana");
    let files = discover(&[dir.path().to_path_buf()]).unwrap();
    let errors: Vec<String> =
        files.iter().map(|f| load_file(f, &LoadOptions::default()).unwrap_err().to_string()).collect();
    assert!(
        errors[0].contains(
            "latin1.md is a binary file, not text: it is not valid UTF-8 (first bad byte at offset 2)"
        ),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains("nul.txt is a binary file, not text: it has a NUL byte at offset 4"),
        "{}",
        errors[1]
    );
}

#[test]
fn document_ids_come_from_records_or_relative_paths() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    for dir in [first.path(), second.path()] {
        write(dir, "notas/a.txt", b"\xef\xbb\xbfUno.\r\n\r\n\r\nDos.\r\n");
        write(dir, "r.jsonl", b"{\"id\": 5, \"text\": \"cinco\"}\n{\"text\": \"sin id\"}\n");
        write(dir, "uno.json", b"{\"text\": \"solo\", \"title\": \"T\"}");
    }
    let load = |dir: &Path| load_paths(&[dir.to_path_buf()], &LoadOptions::default()).unwrap();
    let (a, b) = (load(first.path()), load(second.path()));
    let ids = |docs: &[Document]| docs.iter().map(|d| d.doc_id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&a), ids(&b), "the same tree elsewhere gets the same ids");
    assert_eq!(a.len(), 4);

    assert_eq!(a[0].text, "Uno.\n\nDos.");
    assert_eq!(a[0].doc_id, file_document_id("notas/a.txt"));
    assert_eq!(a[0].source, first.path().join("notas/a.txt").display().to_string());
    assert_eq!(a[1].doc_id, "5");
    assert_eq!(a[2].doc_id, record_document_id("r.jsonl", "sin id"));
    assert_eq!(a[3].doc_id, file_document_id("uno.json"));
    assert_eq!(a[3].title.as_deref(), Some("T"));

    // Editing a file keeps its id.
    write(first.path(), "notas/a.txt", b"Uno cambiado.\n\nDos.");
    assert_eq!(load(first.path())[0].doc_id, a[0].doc_id);
}
