#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The server with `[retrieval.store] kind = "milvus"`: ingestion, search and the bridge against
//! the real Milvus 2.3.5 that `scripts/ensure-milvus` starts (`make test` does; the URL can be
//! changed with `CAPIBARA_TEST_MILVUS_URL`), and a Milvus that does not answer: the server starts,
//! retrieval answers 503 `unavailable` with the cause, everything else keeps working.

mod support;

use capibara_server::Capibara;
use serde_json::{Value, json};
use support::{TestServer, client, post_json};

fn milvus_url() -> String {
    std::env::var("CAPIBARA_TEST_MILVUS_URL").unwrap_or_else(|_| "http://127.0.0.1:19530".to_owned())
}

async fn server(collection: &str, url: &str) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = capibara_server::settings::from_toml(&format!(
        r#"[retrieval]
collection = "{collection}"
[retrieval.store]
kind = "milvus"
url = "{url}"
timeout = "3s"
index = {{ type = "FLAT" }}
"#
    ))
    .unwrap();
    config.llm.local_default = false;
    config.storage.data_dir = dir.path().to_path_buf();
    let app = Capibara::build(config).await.unwrap_or_else(|e| panic!("the server must start: {e}"));
    (TestServer::start(app).await, dir)
}

#[tokio::test(flavor = "multi_thread")]
async fn documents_ingested_into_milvus_are_searched_and_described() {
    let collection = format!("capibara_test_{}_server", std::process::id());
    let (server, _dir) = server(&collection, &milvus_url()).await;
    if let Err(error) = server.app.rag() {
        panic!(
            "no Milvus answers at {}: {error}. Start one with scripts/ensure-milvus (make test does).",
            milvus_url()
        );
    }
    let report = post_json(
        server.at("/api/v1/rag/ingest"),
        &json!({"documents": [
            {"id": "capibara", "text": "El capibara es el roedor más grande del mundo y vive en Sudamérica."},
            {"id": "teide", "text": "El Teide es un volcán de Tenerife, el pico más alto de España."},
        ]}),
    )
    .await;
    assert_eq!(report["documents"], 2, "{report}");
    for mode in ["dense", "hybrid", "mini"] {
        let found = post_json(
            server.at("/api/v1/rag/search"),
            &json!({"query": "¿Cuál es el volcán más alto?", "mode": mode}),
        )
        .await;
        assert_eq!(found["results"][0]["metadata"]["doc_id"], "teide", "{mode}: {found}");
    }
    let stats: Value =
        client().get(server.at("/api/v1/rag/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!((stats["chunks"].as_u64(), stats["vectors"].as_u64()), (Some(2), Some(2)), "{stats}");
    let described: Value = client()
        .get(server.at(&format!("/api/v1/milvus/collection/{collection}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(described["row_count"], 2, "{described}");
    // Leave the shared server clean.
    let everything =
        post_json(server.at("/api/v1/rag/search"), &json!({"query": "capibara teide", "mode": "lexical"}))
            .await;
    let chunk_ids: Vec<String> = everything["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(server.app.rag().unwrap().index().remove(&chunk_ids).await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_milvus_that_does_not_answer_leaves_the_server_up_and_retrieval_unavailable() {
    let closed = capibara_testkit::upstream::closed_port_url().await;
    let (server, _dir) = server("capibara_down", &closed).await;
    for (path, body) in [
        ("/api/v1/rag/search", json!({"query": "capibara"})),
        ("/api/v1/rag/ingest", json!({"documents": [{"text": "hola"}]})),
        ("/api/v1/milvus/search", json!({"vector": [1.0, 0.0]})),
    ] {
        let response = client().post(server.at(path)).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 503, "{path}");
        let envelope: Value = response.json().await.unwrap();
        assert_eq!(envelope["code"], "unavailable", "{path}: {envelope}");
        assert!(envelope["error"].as_str().unwrap().contains("milvus"), "{path}: {envelope}");
    }
    let health = client().get(server.at("/api/health")).send().await.unwrap();
    assert_eq!(health.status(), 200, "the rest of the server stays up");
    let embeddings = post_json(server.at("/api/v1/embeddings"), &json!({"text": "hola"})).await;
    assert_eq!(embeddings["dimension"], 384, "{embeddings}");
}
