//! Reading JSON bodies with errors that name the offending field (`max_tokens: invalid type …`).

use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Parses a JSON body; syntax errors are `invalid_json`, wrong shapes `invalid_input` with the field path.
pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_data() {
            let field = if path == "." { String::new() } else { format!("{path}: ") };
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_input",
                format!("invalid request: {field}{inner}"),
            )
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", format!("invalid JSON body: {inner}"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Probe {
        #[allow(dead_code)]
        options: Options,
    }
    #[derive(Debug, serde::Deserialize)]
    struct Options {
        #[allow(dead_code)]
        max_tokens: u32,
    }

    #[test]
    fn errors_name_the_field() {
        let error = parse::<Probe>(br#"{"options": {"max_tokens": "many"}}"#).unwrap_err();
        assert_eq!(error.code, "invalid_input");
        assert!(error.message.contains("options.max_tokens"), "{}", error.message);
        assert_eq!(parse::<Probe>(b"{oops").unwrap_err().code, "invalid_json");
    }
}
