//! Scenarios about what the backend sends and asks: sampling options in the protocol's own field
//! names, the conversation text, the model list and health.

use capibara_core::chat::SamplingOptions;
use capibara_core::llm::HealthStatus;
use serde_json::Value;

use super::events::{SYSTEM_TEXT, USER_TEXT, question, stream_whole};
use super::{Subject, Tuning};
use crate::upstream::{Protocol, closed_port_url};

/// Where each option lands in the request body of a protocol (JSON pointers).
struct OptionFields {
    max_tokens: &'static str,
    temperature: &'static str,
    top_p: &'static str,
    stop: &'static str,
    seed: &'static str,
}

fn option_fields(protocol: Protocol) -> OptionFields {
    match protocol {
        Protocol::OpenAi => OptionFields {
            max_tokens: "/max_tokens",
            temperature: "/temperature",
            top_p: "/top_p",
            stop: "/stop",
            seed: "/seed",
        },
        Protocol::Ollama => OptionFields {
            max_tokens: "/options/num_predict",
            temperature: "/options/temperature",
            top_p: "/options/top_p",
            stop: "/options/stop",
            seed: "/options/seed",
        },
        Protocol::LlamaCpp => OptionFields {
            max_tokens: "/n_predict",
            temperature: "/temperature",
            top_p: "/top_p",
            stop: "/stop",
            seed: "/seed",
        },
    }
}

/// Stop strings of a body at `pointer`: OpenAI accepts one string or an array.
fn stops(body: &Value, pointer: &str) -> Vec<String> {
    match body.pointer(pointer) {
        Some(Value::String(stop)) => vec![stop.clone()],
        Some(Value::Array(stops)) => stops.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

/// Sampling options reach the upstream in the protocol's own field names; no request carries a blank
/// line as a stop string unless asked; the conversation's text reaches the upstream.
pub async fn sampling_options_reach_the_upstream(subject: &Subject) {
    let rig = subject.rig(Tuning::default()).await;
    let mut request = question();
    request.options = SamplingOptions {
        temperature: Some(0.25),
        top_p: Some(0.5),
        max_tokens: Some(77),
        stop: vec!["FIN".to_owned()],
        seed: Some(1234),
        ..SamplingOptions::default()
    };
    let transcript = stream_whole(rig.backend.as_ref(), request, "a request with options").await;
    assert!(transcript.error.is_none(), "the answer failed: {:?}", transcript.error);
    stream_whole(rig.backend.as_ref(), question(), "a request without options").await;

    let requests = rig.fake.requests();
    assert_eq!(requests.len(), 2, "one upstream request per answer expected");
    let fields = option_fields(subject.protocol);
    let body = &requests[0].body;
    let number = |pointer: &str| body.pointer(pointer).and_then(Value::as_f64);
    assert_eq!(
        number(fields.max_tokens),
        Some(77.0),
        "max_tokens must be sent as `{}`: {body}",
        fields.max_tokens
    );
    assert_eq!(
        number(fields.temperature),
        Some(0.25),
        "temperature must be sent as `{}`: {body}",
        fields.temperature
    );
    assert_eq!(number(fields.top_p), Some(0.5), "top_p must be sent as `{}`: {body}", fields.top_p);
    assert_eq!(number(fields.seed), Some(1234.0), "seed must be sent as `{}`: {body}", fields.seed);
    assert!(
        stops(body, fields.stop).contains(&"FIN".to_owned()),
        "stop must be sent as `{}`: {body}",
        fields.stop
    );

    for recorded in &requests {
        let text = recorded.body.to_string();
        assert!(
            text.contains(SYSTEM_TEXT) && text.contains(USER_TEXT),
            "the conversation must reach the upstream: {text}"
        );
        for stop in stops(&recorded.body, fields.stop) {
            assert!(
                !(stop.contains("\n\n") && stop.trim().is_empty()),
                "a blank-line stop string cuts answers at their first paragraph: {:?}",
                recorded.body
            );
        }
    }
}

/// `models()` lists the fake's model; `health()` is `Ok` while the fake is healthy, `Down` when it
/// answers 503 and when nothing listens.
pub async fn models_and_health_follow_the_upstream(subject: &Subject) {
    let rig = subject.rig(Tuning::default()).await;
    // One answer first, so the fake reports the model the backend asks for.
    stream_whole(rig.backend.as_ref(), question(), "a first answer").await;
    let expected = rig.fake.model();
    match rig.backend.models().await {
        Ok(models) => assert!(
            models.iter().any(|model| model.id == expected),
            "models() must list the upstream's `{expected}`, got {models:?}"
        ),
        Err(error) => panic!("models() failed: {error}"),
    }
    let health = rig.backend.health().await;
    assert_eq!(health.status, HealthStatus::Ok, "a healthy upstream: {health:?}");
    rig.fake.set_healthy(false);
    let health = rig.backend.health().await;
    assert_eq!(health.status, HealthStatus::Down, "an upstream answering 503: {health:?}");

    let mut base_url = closed_port_url().await;
    if subject.protocol == Protocol::OpenAi {
        base_url.push_str("/v1");
    }
    let health = (subject.make)(&base_url, &Tuning::default()).health().await;
    assert_eq!(health.status, HealthStatus::Down, "nothing listening: {health:?}");
}
