//! The wire formats of the upstream model servers, shared by the backends (which speak them as
//! clients) and by the HTTP server (which serves the OpenAI and Ollama protocols itself).
//!
//! - [`sse`]: incremental Server-Sent Events parser (OpenAI and llama.cpp streams).
//! - [`ndjson`]: incremental line splitter (Ollama streams).
//! - [`openai`]: `/v1/chat/completions` requests, answers, stream chunks, model lists, errors.
//! - [`ollama`]: `/api/chat`, `/api/generate`, `/api/tags` requests and answers.
//! - [`llamacpp`]: llama.cpp server's native `/completion` and `/health`.
//!
//! Every type derives both `Serialize` and `Deserialize`, ignores unknown fields when reading and
//! leaves out `None` fields when writing. Stream chunk types borrow their text from the frame being
//! parsed (`Cow<str>`), so decoding a chunk allocates nothing unless the text has JSON escapes.

pub mod llamacpp;
pub mod ndjson;
pub mod ollama;
pub mod openai;
pub mod sse;

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};

/// Reads an optional string borrowing it from the input when it has no escapes.
///
/// serde's derive borrows a bare `Cow<str>` field but always allocates inside an `Option`, which
/// would cost an allocation per stream chunk; this keeps the borrow.
pub(crate) fn borrow_opt_str<'de: 'a, 'a, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Cow<'a, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Text<'b>(#[serde(borrow)] Cow<'b, str>);
    Ok(Option::<Text<'de>>::deserialize(deserializer)?.map(|text| text.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Probe<'a> {
        #[serde(borrow, default, deserialize_with = "borrow_opt_str")]
        text: Option<Cow<'a, str>>,
    }

    #[test]
    fn optional_text_is_borrowed_unless_escaped() {
        let probe: Probe<'_> = serde_json::from_str(r#"{"text":"hola"}"#).unwrap();
        assert!(matches!(probe.text, Some(Cow::Borrowed("hola"))));
        let probe: Probe<'_> = serde_json::from_str(r#"{"text":"a\nb"}"#).unwrap();
        assert!(matches!(probe.text, Some(Cow::Owned(ref s)) if s == "a\nb"));
        let probe: Probe<'_> = serde_json::from_str(r#"{"text":null}"#).unwrap();
        assert!(probe.text.is_none());
        let probe: Probe<'_> = serde_json::from_str("{}").unwrap();
        assert!(probe.text.is_none());
    }
}
