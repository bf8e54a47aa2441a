#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! One set of inputs through every face — the Rust API, the HTTP server, the Python binding and the
//! Node binding — gives identical results: the same vectors, the same ranked sources with the same
//! scores, the same ingestion counts and the same answer.
//!
//! Each face builds its own composition from the same configuration (its own data dir) and the
//! same fake upstream. The bindings run as child processes from their installed packages:
//! `CAPIBARA_PYTHON` names a Python with the `capibara` package installed, and the Node module
//! must be built in `bindings/node` (`npm ci && npm run build`). `make test` does both first.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use capibara_server::Capibara;
use capibara_server::rag::{DocumentInput, SearchOptions};
use capibara_testkit::upstream::{FakeReply, FakeUpstream, Protocol};
use serde_json::{Value, json};
use support::{TestServer, post_json};

const ANSWER: &str = "El capibara vive cerca de ríos y lagunas de Sudamérica.";

fn inputs() -> Value {
    json!({
        "documents": [
            {"id": "capibara", "title": "El capibara", "metadata": {"tema": "animales"},
             "text": "El capibara es el roedor más grande del mundo. Vive en grupos cerca de ríos, lagunas y esteros de Sudamérica."},
            {"id": "teide", "source": "geografia.txt", "metadata": {"tema": "geografía"},
             "text": "El Teide es un volcán de Tenerife. Con 3.715 metros es el pico más alto de España."},
            {"id": "paella", "text": "La paella es un plato de arroz de la Comunidad Valenciana, con azafrán."}
        ],
        "texts": ["El capibara es un roedor.", "¿Cuál es el pico más alto de España?"],
        "searches": [
            {"query": "¿Dónde vive el roedor más grande?", "mode": "hybrid", "k": 3},
            {"query": "volcán de Canarias", "mode": "dense", "k": 2},
            {"query": "arroz con azafrán", "mode": "lexical", "k": 3},
            {"query": "¿Dónde vive el roedor más grande?", "mode": "guided"},
            {"query": "pico más alto", "mode": "dense", "filter": {"eq": {"field": "tema", "value": "geografía"}}}
        ],
        "chat": [{"role": "system", "content": "Responde breve."}, {"role": "user", "content": "¿Dónde vive el capibara?"}]
    })
}

fn config(upstream: &FakeUpstream, data_dir: &Path) -> Value {
    json!({
        "llm": {"backends": [{"kind": "openai", "base_url": upstream.base_url(), "model": "fake-model"}]},
        "storage": {"data_dir": data_dir}
    })
}

/// A value as the HTTP API writes it (f32 in their shortest form), so faces compare exactly.
fn as_json(value: &impl serde::Serialize) -> Value {
    serde_json::from_str(&serde_json::to_string(value).unwrap()).unwrap()
}

/// What a face returned, without what legitimately differs between runs (timings, cache hits) or
/// between encodings (absent and empty fields).
fn comparable(mut results: Value) -> Value {
    fn strip(value: &mut Value) {
        match value {
            Value::Object(map) => {
                for key in ["took_ms", "seconds", "cached"] {
                    map.remove(key);
                }
                // A typed object (Node) always has its list fields; JSON leaves empty ones out.
                map.retain(|_, item| {
                    !item.is_null() && item.as_array().is_none_or(|items| !items.is_empty())
                });
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut results);
    results
}

async fn rust_face(upstream: &FakeUpstream, dir: &Path) -> Value {
    let input = inputs();
    let config = capibara_server::settings::from_value(&config(upstream, dir)).unwrap();
    let app = Capibara::build(config).await.unwrap();
    let documents: Vec<DocumentInput> = serde_json::from_value(input["documents"].clone()).unwrap();
    let texts: Vec<String> = serde_json::from_value(input["texts"].clone()).unwrap();
    let ingest = app.ingest_documents(documents).await.unwrap();
    let embeddings = app.embed(&texts).await.unwrap();
    let mut searches = Vec::new();
    for search in input["searches"].as_array().unwrap() {
        let options: SearchOptions = serde_json::from_value(json!({
            "mode": search["mode"], "k": search.get("k"), "filter": search.get("filter")
        }))
        .unwrap();
        let found = app.search(search["query"].as_str().unwrap(), &options).await.unwrap();
        searches.push(as_json(&found));
    }
    let messages = serde_json::from_value(input["chat"].clone()).unwrap();
    let chat = app.chat(capibara_server::operations::ChatOptions::default().request(messages)).await.unwrap();
    comparable(json!({
        "ingest": as_json(&ingest), "embeddings": as_json(&embeddings), "searches": searches, "chat": chat.content
    }))
}

async fn http_face(upstream: &FakeUpstream, dir: &Path) -> Value {
    let input = inputs();
    let config = capibara_server::settings::from_value(&config(upstream, dir)).unwrap();
    let server = TestServer::start(Capibara::build(config).await.unwrap()).await;
    let ingest = post_json(server.at("/api/v1/rag/ingest"), &json!({"documents": input["documents"]})).await;
    let embedded = post_json(server.at("/api/v1/embeddings"), &json!({"texts": input["texts"]})).await;
    let mut searches = Vec::new();
    for search in input["searches"].as_array().unwrap() {
        searches.push(post_json(server.at("/api/v1/rag/search"), search).await);
    }
    let chat =
        post_json(server.at("/v1/chat/completions"), &json!({"model": "", "messages": input["chat"]})).await;
    let out = comparable(json!({
        "ingest": ingest,
        "embeddings": embedded["embeddings"],
        "searches": searches,
        "chat": chat["choices"][0]["message"]["content"],
    }));
    server.stop().await;
    out
}

/// Where two values first differ (a JSON path and both values), if they do.
fn first_difference(face: &Value, rust: &Value, path: &str) -> Option<String> {
    match (face, rust) {
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(x, y, &format!("{path}[{i}]"))),
        (Value::Object(a), Value::Object(b)) if a.len() == b.len() => {
            a.iter().find_map(|(key, x)| match b.get(key) {
                Some(y) => first_difference(x, y, &format!("{path}.{key}")),
                None => Some(format!("{path}.{key} is missing from the Rust result")),
            })
        }
        // Scores and vectors are f32: two decimal texts of the same f32 are the same value.
        (Value::Number(a), Value::Number(b))
            if a.as_f64().map(|x| x as f32) == b.as_f64().map(|y| y as f32) =>
        {
            None
        }
        _ if face == rust => None,
        _ => Some(format!("at {path}: {face} instead of {rust}")),
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Runs a binding's probe with the configuration and the inputs; returns what it printed.
fn probe(program: &str, script: &Path, upstream: &FakeUpstream, dir: &Path) -> Value {
    let request = dir.join("request.json");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(&request, json!({"config": config(upstream, dir), "inputs": inputs()}).to_string())
        .unwrap();
    let output = Command::new(program)
        .arg(script)
        .arg(&request)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "{} failed:\n{}\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    comparable(serde_json::from_slice(&output.stdout).unwrap())
}

fn python() -> String {
    std::env::var("CAPIBARA_PYTHON").unwrap_or_else(|_| {
        panic!(
            "CAPIBARA_PYTHON is not set: it must name a Python with the binding installed \
             (`pip install ./bindings/python`); `make test` sets it up"
        )
    })
}

fn node_module() -> PathBuf {
    let dir = workspace().join("bindings/node");
    let built = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .any(|entry| entry.file_name().to_string_lossy().ends_with(".node"));
    assert!(built, "the Node binding is not built: run `npm ci && npm run build` in {}", dir.display());
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn every_face_gives_the_same_results_for_the_same_inputs() {
    let upstream = FakeUpstream::start(Protocol::OpenAi).await;
    upstream.set_default(FakeReply::text(ANSWER));
    let dirs = tempfile::tempdir().unwrap();
    let rust = rust_face(&upstream, &dirs.path().join("rust")).await;
    let http = http_face(&upstream, &dirs.path().join("http")).await;
    let python_script = workspace().join("bindings/python/tests/cross_face_probe.py");
    let python = probe(&python(), &python_script, &upstream, &dirs.path().join("python"));
    let node_script = node_module().join("tests/cross_face_probe.mjs");
    let node = probe("node", &node_script, &upstream, &dirs.path().join("node"));

    assert_eq!(rust["chat"], ANSWER);
    assert_eq!(rust["ingest"]["documents"], 3, "{}", rust["ingest"]);
    let found = &rust["searches"][0]["results"][0];
    assert_eq!(found["metadata"]["doc_id"], "capibara", "{found}");
    for (face, results) in [("HTTP", &http), ("Python", &python), ("Node", &node)] {
        for part in ["ingest", "embeddings", "searches", "chat"] {
            if let Some(difference) = first_difference(&results[part], &rust[part], part) {
                panic!("{face} differs from the Rust API: {difference}");
            }
        }
    }
}
