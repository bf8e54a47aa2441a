//! Reading BEIR folders: the happy path and each kind of broken file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;

use super::*;

const CORPUS: &str = r#"{"_id": "d1", "title": "Capibara", "text": "El roedor más grande.", "metadata": {"k": 1}}
{"_id": 2, "text": "Sin título."}

{"_id": "d3", "title": null, "text": "Tercero.", "metadata": null}
"#;
const QUERIES: &str = "{\"_id\": \"q1\", \"text\": \"¿roedor?\", \"metadata\": {\"answers\": [\"x\"]}}\r\n\
                       {\"_id\": \"q2\", \"text\": \"otra\"}\r\n{\"_id\": \"q3\", \"text\": \"sin juicios\"}\r\n";
const QRELS: &str = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\t2\t2\nq2\td3\t0\n";

fn write_set(corpus: &str, queries: &str, qrels: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("corpus.jsonl"), corpus).unwrap();
    fs::write(dir.path().join("queries.jsonl"), queries).unwrap();
    fs::create_dir(dir.path().join("qrels")).unwrap();
    fs::write(dir.path().join("qrels/test.tsv"), qrels).unwrap();
    dir
}

fn invalid_message(result: Result<BeirDataset>) -> String {
    match result {
        Err(Error::InvalidInput(message)) => message,
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

#[test]
fn reads_a_well_formed_folder() {
    let dir = write_set(CORPUS, QUERIES, QRELS);
    let set = BeirDataset::load(dir.path()).unwrap();
    assert_eq!(set.corpus.len(), 3);
    assert_eq!(set.corpus[0].indexed_text(), "Capibara\nEl roedor más grande.");
    assert_eq!(set.corpus[0].metadata["k"], 1);
    assert_eq!(set.corpus[1].id, "2");
    assert_eq!(set.corpus[1].indexed_text(), "Sin título.");
    assert!(set.corpus[2].title.is_empty() && set.corpus[2].metadata.is_empty());
    assert_eq!(set.queries.len(), 3);
    assert_eq!(set.queries[0].metadata["answers"][0], "x");
    assert_eq!(set.queries[1].text, "otra");
    assert_eq!(set.qrels.len(), 2);
    assert_eq!(set.qrels.get("q2").unwrap().get("2"), Some(&2));
    assert_eq!(set.qrels.get("q2").unwrap().get("d3"), Some(&0));
    let judged: Vec<&str> = set.judged_queries().map(|q| q.id.as_str()).collect();
    assert_eq!(judged, ["q1", "q2"]);
}

#[test]
fn the_qrels_header_is_optional_and_other_splits_load() {
    let dir = write_set(CORPUS, QUERIES, "q1\td1\t1\n");
    fs::write(dir.path().join("qrels/dev.tsv"), "query-id\tcorpus-id\tscore\nq2\td3\t1\n").unwrap();
    assert_eq!(BeirDataset::load(dir.path()).unwrap().qrels.query_ids().collect::<Vec<_>>(), ["q1"]);
    assert_eq!(
        BeirDataset::load_split(dir.path(), "dev").unwrap().qrels.query_ids().collect::<Vec<_>>(),
        ["q2"]
    );
}

#[test]
fn missing_folder_and_files_are_not_found_with_their_path() {
    let dir = write_set(CORPUS, QUERIES, QRELS);
    let missing = dir.path().join("nope");
    let error = BeirDataset::load(&missing).unwrap_err();
    assert!(matches!(&error, Error::NotFound(m) if m.contains(&missing.display().to_string())), "{error:?}");

    for file in ["qrels/test.tsv", "queries.jsonl", "corpus.jsonl"] {
        fs::remove_file(dir.path().join(file)).unwrap();
        let error = BeirDataset::load(dir.path()).unwrap_err();
        assert!(matches!(&error, Error::NotFound(m) if m.contains(file)), "{file}: {error:?}");
    }
}

#[test]
fn malformed_lines_are_reported_with_file_and_line_number() {
    let cases = [
        (
            CORPUS.replace("\"text\": \"Tercero.\"", "\"txt\": \"Tercero.\""),
            QUERIES.to_owned(),
            QRELS,
            "corpus.jsonl:4:",
            "text",
        ),
        (CORPUS.replace("{\"_id\": 2,", "{\"_id\": 2"), QUERIES.to_owned(), QRELS, "corpus.jsonl:2:", ""),
        (CORPUS.replace("\"d3\"", "\"d1\""), QUERIES.to_owned(), QRELS, "corpus.jsonl:4:", "appears twice"),
        (CORPUS.replace("\"d3\"", "\"\""), QUERIES.to_owned(), QRELS, "corpus.jsonl:4:", "_id is empty"),
        (
            CORPUS.replace("\"d3\"", "1.5"),
            QUERIES.to_owned(),
            QRELS,
            "corpus.jsonl:4:",
            "string or an integer",
        ),
        (CORPUS.to_owned(), QUERIES.replace("\"q2\"", "\"q1\""), QRELS, "queries.jsonl:2:", "appears twice"),
        (CORPUS.to_owned(), QUERIES.replace("\"otra\"", "7"), QRELS, "queries.jsonl:2:", "invalid type"),
        (
            CORPUS.to_owned(),
            QUERIES.to_owned(),
            "query-id\tcorpus-id\tscore\nq1 d1 1\n",
            "test.tsv:2:",
            "3 tab-separated",
        ),
        (CORPUS.to_owned(), QUERIES.to_owned(), "q1\td1\t1\nq1\td3\tyes\n", "test.tsv:2:", "not an integer"),
        (CORPUS.to_owned(), QUERIES.to_owned(), "q1\td1\t1\nq1\td1\t2\n", "test.tsv:2:", "twice"),
        (CORPUS.to_owned(), QUERIES.to_owned(), "q1\t\t1\n", "test.tsv:1:", "empty"),
        (CORPUS.to_owned(), QUERIES.to_owned(), "q1\td1\t1\nq9\td1\t1\n", "test.tsv", "\"q9\""),
    ];
    for (corpus, queries, qrels, place, problem) in cases {
        let dir = write_set(&corpus, &queries, qrels);
        let message = invalid_message(BeirDataset::load(dir.path()));
        assert!(message.contains(place) && message.contains(problem), "{place} {problem}: {message}");
    }
}

#[test]
fn invalid_utf8_is_reported_with_its_line() {
    let dir = write_set(CORPUS, QUERIES, QRELS);
    fs::write(dir.path().join("queries.jsonl"), b"{\"_id\": \"q1\", \"text\": \"a\"}\n\xff\xfe\n").unwrap();
    let message = invalid_message(BeirDataset::load(dir.path()));
    assert!(message.contains("queries.jsonl:2: not valid UTF-8"), "{message}");
}
