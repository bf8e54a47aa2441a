#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The `capibara` binary as users run it: `serve` with embedded defaults and environment overrides,
//! `check`, and clear failures for bad configuration.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_capibara");

/// A running `capibara serve`; killed on drop.
struct Served {
    child: Child,
    url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `capibara serve --port 0` in `dir` with extra environment, waits for its "listening on" line.
fn serve(dir: &std::path::Path, env: &[(&str, &str)]) -> Served {
    let mut command = Command::new(BIN);
    command.args(["serve", "--port", "0"]).current_dir(dir).stdout(Stdio::null()).stderr(Stdio::piped());
    command.env_remove("RUST_LOG").env("NO_COLOR", "1");
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(at) = line.find("listening on http://") {
                let _ = tx.send(line[at + "listening on ".len()..].trim().to_owned());
            }
        }
    });
    let url = rx.recv_timeout(Duration::from_secs(30)).expect("capibara serve did not start");
    Served { child, url }
}

/// Environment that turns the embedded models off.
const NO_LOCAL_MODELS: [(&str, &str); 2] =
    [("CAPIBARA_LLM__LOCAL_DEFAULT", "false"), ("CAPIBARA_EMBEDDINGS__KIND", "none")];

#[tokio::test]
async fn serve_with_embedded_defaults_chats_with_the_local_model() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path(), &[]);
    let client = reqwest::Client::new();
    let body: serde_json::Value = client
        .post(format!("{}/v1/chat/completions", served.url))
        .json(&serde_json::json!({"model": "capibara", "messages": [{"role": "user", "content": "Hi!"}], "max_tokens": 8}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body["model"].as_str().is_some_and(|m| m.to_lowercase().contains("smollm2")), "{body}");
    assert!(!body["choices"][0]["message"]["content"].as_str().unwrap().is_empty(), "{body}");
    let embedded: serde_json::Value = client
        .post(format!("{}/v1/embeddings", served.url))
        .json(&serde_json::json!({"model": "", "input": "hola"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(embedded["data"][0]["embedding"].as_array().map(Vec::len), Some(384), "{embedded}");
}

#[test]
fn models_list_pull_and_verify() {
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let output = Command::new(BIN).args(args).env("CAPIBARA_HOME", home.path()).output().unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (ok, listed, _) = run(&["models", "list"]);
    assert!(ok);
    assert!(listed.contains("all-minilm-l6-v2") && listed.contains("not installed"), "{listed}");

    let (ok, _, stderr) = run(&["models", "verify"]);
    assert!(!ok && stderr.contains("capibara models pull"), "{stderr}");

    let (ok, _, stderr) = run(&["models", "pull", "all-minilm-l6-v2"]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("downloading") && stderr.contains("sha256 53aa5117"), "{stderr}");

    let (ok, listed, _) = run(&["models", "list"]);
    assert!(ok);
    assert!(listed.contains("ok      ") && listed.contains("86.7 MB"), "{listed}");
    let (ok, _, stderr) = run(&["models", "verify", "all-minilm-l6-v2"]);
    assert!(ok && stderr.contains("ready"), "{stderr}");
    let (ok, _, stderr) = run(&["models", "pull", "gpt-5"]);
    assert!(!ok && stderr.contains("no model `gpt-5`"), "{stderr}");
}

#[tokio::test]
async fn serve_without_any_model_answers_503_explaining_how_to_add_one() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path(), &NO_LOCAL_MODELS);
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{}/api/chat", served.url))
        .json(&serde_json::json!({"message": "hola"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    let message = body["error"].as_str().unwrap();
    assert!(message.contains("[[llm.backends]]") && message.contains("CAPIBARA_LLM__BACKENDS"), "{message}");
    // The embedded database was created in the working directory's data dir.
    assert!(dir.path().join("capibara-data/capibara.db").exists());
    let health: serde_json::Value =
        client.get(format!("{}/api/health", served.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["database"], "ok");
}

#[tokio::test]
async fn environment_variables_configure_the_backend() {
    let upstream =
        capibara_testkit::upstream::FakeUpstream::start(capibara_testkit::upstream::Protocol::Ollama).await;
    upstream.set_default(capibara_testkit::upstream::FakeReply::text("Hola desde Ollama."));
    let dir = tempfile::tempdir().unwrap();
    let backends = format!(r#"[{{kind="ollama", base_url="{}"}}]"#, upstream.base_url());
    let served = serve(
        dir.path(),
        &[
            ("CAPIBARA_LLM__BACKENDS", &backends),
            ("CAPIBARA_HOME", "/ignored"),
            ("CAPIBARA_EMBEDDINGS__KIND", "none"),
        ],
    );
    let body: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/api/chat", served.url))
        .json(&serde_json::json!({"message": "hola"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["response"], "Hola desde Ollama.", "{body}");
    assert_eq!(body["model"], "gpt-oss:20b");
}

#[test]
fn bad_configuration_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("capibara.toml"), "[server]\nprot = 8080\n").unwrap();
    let output = Command::new(BIN).arg("check").current_dir(dir.path()).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("prot"), "{stderr}");

    let output = Command::new(BIN)
        .args(["check", "--config", "missing.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("does not exist"));

    let output = Command::new(BIN)
        .arg("check")
        .current_dir(dir.path())
        .env("CAPIBARA_CONFIG", dir.path().join("nothing-here.toml"))
        .output()
        .unwrap();
    assert!(!output.status.success());
}

#[test]
fn check_reports_the_database_and_the_missing_backend() {
    let dir = tempfile::tempdir().unwrap();
    let output =
        Command::new(BIN).arg("check").envs(NO_LOCAL_MODELS).current_dir(dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("configuration: ok"));
    assert!(stdout.contains("database: ok (0 conversations)"));
    assert!(stdout.contains("chat backend: none"));
}

/// Writes a three-document BEIR folder whose queries each name one document's rare words.
fn tiny_beir(dir: &std::path::Path) -> std::path::PathBuf {
    let set = dir.join("tiny");
    std::fs::create_dir_all(set.join("qrels")).unwrap();
    std::fs::write(
        set.join("corpus.jsonl"),
        concat!(
            r#"{"_id": "d1", "title": "", "text": "El capibara es el roedor más grande del mundo."}"#,
            "\n",
            r#"{"_id": "d2", "title": "", "text": "La llama vive en los Andes y come hierba."}"#,
            "\n",
            r#"{"_id": "d3", "title": "", "text": "El volcán Teide está en Tenerife."}"#,
            "\n"
        ),
    )
    .unwrap();
    std::fs::write(
        set.join("queries.jsonl"),
        concat!(
            r#"{"_id": "q1", "text": "¿Cuál es el roedor más grande?"}"#,
            "\n",
            r#"{"_id": "q2", "text": "¿Dónde vive la llama?"}"#,
            "\n",
            r#"{"_id": "q3", "text": "¿En qué isla está el Teide?"}"#,
            "\n"
        ),
    )
    .unwrap();
    std::fs::write(
        set.join("qrels/test.tsv"),
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq3\td3\t1\n",
    )
    .unwrap();
    set
}

fn eval(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(BIN);
    command.arg("eval").args(args).current_dir(dir).env_remove("RUST_LOG");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

#[test]
fn eval_reports_bm25_dense_and_hybrid_on_a_beir_folder() {
    let dir = tempfile::tempdir().unwrap();
    let set = tiny_beir(dir.path());
    let output = eval(dir.path(), &["--dataset", set.to_str().unwrap(), "--json", "--sweep"], &[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["documents"], 3);
    assert_eq!(report["queries"], 3);
    let methods: Vec<&str> =
        report["methods"].as_array().unwrap().iter().map(|m| m["method"].as_str().unwrap()).collect();
    assert_eq!(methods, ["bm25", "dense", "hybrid"]);
    assert_eq!(report["methods"][0]["at_10"]["ndcg"], 1.0, "each query names its document's words");
    assert_eq!(report["methods"][2]["at_10"]["ndcg"], 1.0);
    assert_eq!(report["sweep"].as_array().unwrap().len(), 22, "two fusions × 11 weights");
}

#[test]
fn eval_fails_clearly_without_a_dataset_or_an_embedder() {
    let dir = tempfile::tempdir().unwrap();
    let output = eval(dir.path(), &["--dataset", "no-such-folder"], &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no-such-folder"), "{stderr}");

    let set = tiny_beir(dir.path());
    let output =
        eval(dir.path(), &["--dataset", set.to_str().unwrap()], &[("CAPIBARA_EMBEDDINGS__KIND", "none")]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no embedding model"), "{stderr}");

    let output = eval(dir.path(), &["--dataset", set.to_str().unwrap(), "--dense-weight", "-1"], &[]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("fusion weights"),
        "negative weights are refused"
    );
}
