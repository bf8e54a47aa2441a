//! What every fake does over the socket whatever its protocol: real delays, cut connections, counting
//! abandoned streams, recording requests, shutting down on drop.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use capibara_testkit::upstream::{Beat, FakeReply, FakeUpstream, Protocol, closed_port_url};
use serde_json::{Value, json};
use support::{eventually, post, timed_chunks};

/// A streaming chat request and its URL for each protocol.
fn streaming_request(fake: &FakeUpstream) -> (String, Value) {
    let messages = json!([{ "role": "user", "content": "Hola" }]);
    match fake.protocol() {
        Protocol::OpenAi => (
            format!("{}/chat/completions", fake.base_url()),
            json!({ "model": "m", "messages": messages, "stream": true }),
        ),
        Protocol::Ollama => {
            (format!("{}/api/chat", fake.url()), json!({ "model": "m", "messages": messages }))
        }
        Protocol::LlamaCpp => {
            (format!("{}/completion", fake.url()), json!({ "prompt": "Hola", "stream": true }))
        }
    }
}

const PROTOCOLS: [Protocol; 3] = [Protocol::OpenAi, Protocol::Ollama, Protocol::LlamaCpp];

#[tokio::test]
async fn delays_really_hold_the_rest_of_the_stream_back() {
    for protocol in PROTOCOLS {
        let fake = FakeUpstream::start(protocol).await;
        fake.push(FakeReply::Stream(vec![
            Beat::Content("Primero".into()),
            Beat::Delay(Duration::from_millis(600)),
            Beat::Content("Segundo".into()),
            Beat::Finish("stop".into()),
        ]));
        let (url, body) = streaming_request(&fake);
        let started = Instant::now();
        let (chunks, error) = timed_chunks(post(&url, &body).await, started).await;
        assert!(error.is_none(), "{protocol:?}: {error:?}");
        let arrival = |word: &str| chunks.iter().find(|(_, text)| text.contains(word)).unwrap().0;
        let first = arrival("Primero");
        let second = arrival("Segundo");
        // The first beat reached the client a whole delay before the second was written: not buffered.
        assert!(second >= first + Duration::from_millis(550), "{protocol:?}: {first:?} then {second:?}");
        assert!(first < Duration::from_millis(500), "{protocol:?}: the first beat took {first:?}");
    }
}

#[tokio::test]
async fn disconnect_leaves_the_client_with_a_broken_body() {
    for protocol in PROTOCOLS {
        let fake = FakeUpstream::start(protocol).await;
        fake.push(FakeReply::Stream(vec![Beat::Content("Hola".into()), Beat::Disconnect]));
        let (url, body) = streaming_request(&fake);
        let (chunks, error) = timed_chunks(post(&url, &body).await, Instant::now()).await;
        assert!(chunks.iter().any(|(_, text)| text.contains("Hola")), "{protocol:?}: {chunks:?}");
        let error = error.unwrap_or_else(|| panic!("{protocol:?}: the body ended cleanly"));
        assert!(error.is_body() || error.is_decode(), "{protocol:?}: {error:?}");
        assert_eq!(fake.abandoned_streams(), 0, "{protocol:?}: a scripted cut is not the client's doing");
    }
}

#[tokio::test]
async fn disconnect_before_a_non_streamed_answer_fails_the_request() {
    let fake = FakeUpstream::start(Protocol::OpenAi).await;
    fake.push(FakeReply::Stream(vec![Beat::Content("Hola".into()), Beat::Disconnect]));
    let url = format!("{}/chat/completions", fake.base_url());
    let result =
        reqwest::Client::new().post(&url).json(&json!({ "model": "m", "messages": [] })).send().await;
    let failed = match result {
        Err(_) => true,
        Ok(response) => response.bytes().await.is_err(),
    };
    assert!(failed);
}

#[tokio::test]
async fn dropping_the_response_midway_counts_an_abandoned_stream() {
    for protocol in PROTOCOLS {
        let fake = FakeUpstream::start(protocol).await;
        let mut beats = vec![Beat::Content("uno ".into())];
        for _ in 0..40 {
            beats.push(Beat::Delay(Duration::from_millis(100)));
            beats.push(Beat::Content("más ".into()));
        }
        beats.push(Beat::Finish("stop".into()));
        fake.push(FakeReply::Stream(beats));
        let (url, body) = streaming_request(&fake);
        let mut response = post(&url, &body).await;
        let first = response.chunk().await.unwrap().unwrap();
        assert!(String::from_utf8_lossy(&first).contains("uno"));
        drop(response);
        let counted = eventually(Duration::from_secs(2), || fake.abandoned_streams() == 1).await;
        assert!(counted, "{protocol:?}: abandoned {}", fake.abandoned_streams());
    }
}

#[tokio::test]
async fn streams_read_to_the_end_are_not_abandoned() {
    let fake = FakeUpstream::start(Protocol::OpenAi).await;
    let (url, body) = streaming_request(&fake);
    for _ in 0..3 {
        post(&url, &body).await.text().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(fake.abandoned_streams(), 0);
    assert_eq!(fake.requests().len(), 3);
}

#[tokio::test]
async fn requests_are_recorded_with_headers_and_body() {
    let fake = FakeUpstream::start(Protocol::OpenAi).await;
    fake.push(FakeReply::status(500, "boom"));
    let url = format!("{}/chat/completions", fake.base_url());
    let body =
        json!({ "model": "m", "messages": [{ "role": "user", "content": "¿Qué tal?" }], "temperature": 0.5 });
    let response = reqwest::Client::new()
        .post(&url)
        .bearer_auth("sk-prueba")
        .header("X-Trace", "t1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let recorded = fake.requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].method, "POST");
    assert_eq!(recorded[0].path, "/v1/chat/completions");
    assert_eq!(recorded[0].header("authorization"), Some("Bearer sk-prueba"));
    assert_eq!(recorded[0].header("x-trace"), Some("t1"));
    assert_eq!(recorded[0].body, body);
    // The queue is used first, then the default reply, which can be replaced.
    fake.set_default(FakeReply::text("Siempre lo mismo"));
    let text =
        post(&url, &json!({ "model": "m", "messages": [], "stream": false })).await.text().await.unwrap();
    assert!(text.contains("Siempre lo mismo"), "{text}");
}

#[tokio::test]
async fn bodies_that_are_not_json_are_recorded_and_refused() {
    let fake = FakeUpstream::start(Protocol::Ollama).await;
    let response = reqwest::Client::new()
        .post(format!("{}/api/chat", fake.url()))
        .body("no soy json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(fake.requests()[0].body, Value::String("no soy json".into()));
}

#[tokio::test]
async fn the_default_reply_is_a_short_spanish_answer() {
    let fake = FakeUpstream::start(Protocol::Ollama).await;
    let lines =
        support::ndjson_lines(post(&format!("{}/api/chat", fake.url()), &json!({ "model": "m" })).await)
            .await;
    let text: String = lines
        .iter()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["message"]["content"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(text, "Hola, soy un modelo de prueba.");
    assert_eq!(lines.len(), 7, "one line per word and a final line: {lines:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_fake_stops_the_server() {
    let fake = FakeUpstream::start(Protocol::LlamaCpp).await;
    let url = format!("{}/health", fake.url());
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 200);
    drop(fake);
    let stopped = {
        let mut stopped = false;
        for _ in 0..50 {
            if reqwest::Client::new().get(&url).send().await.is_err() {
                stopped = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stopped
    };
    assert!(stopped, "the fake still answers after being dropped");
}

#[tokio::test]
async fn closed_port_refuses_connections() {
    let url = closed_port_url().await;
    let error = reqwest::get(format!("{url}/health")).await.unwrap_err();
    assert!(error.is_connect(), "{error:?}");
}
