//! Plain HTTP reading of the fakes, shared by the test files.

#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use serde_json::Value;

/// POSTs a JSON body.
pub async fn post(url: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new().post(url).json(body).send().await.unwrap()
}

/// GETs a URL.
pub async fn get(url: &str) -> reqwest::Response {
    reqwest::get(url).await.unwrap()
}

/// The whole body split into SSE frames (each without its blank-line terminator); checks every frame
/// ends with a blank line.
pub async fn sse_frames(response: reqwest::Response) -> Vec<String> {
    let text = response.text().await.unwrap();
    assert!(text.ends_with("\n\n"), "the SSE body must end with a blank line: {text:?}");
    text.trim_end_matches("\n\n").split("\n\n").map(str::to_owned).collect()
}

/// The JSON of a `data: …` frame.
pub fn data(frame: &str) -> Value {
    let json = frame.strip_prefix("data: ").unwrap_or_else(|| panic!("not a data frame: {frame:?}"));
    assert!(!json.contains('\n'), "a data frame is one line: {frame:?}");
    serde_json::from_str(json).unwrap_or_else(|e| panic!("frame {frame:?} is not JSON: {e}"))
}

/// The whole body split into NDJSON lines; checks it ends with a newline.
pub async fn ndjson_lines(response: reqwest::Response) -> Vec<String> {
    let text = response.text().await.unwrap();
    assert!(text.ends_with('\n'), "the NDJSON body must end with a newline: {text:?}");
    text.trim_end_matches('\n').split('\n').map(str::to_owned).collect()
}

/// Reads the body chunk by chunk, noting when each arrived (relative to `since`).
pub async fn timed_chunks(
    mut response: reqwest::Response,
    since: Instant,
) -> (Vec<(Duration, String)>, Option<reqwest::Error>) {
    let mut chunks = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(bytes)) => chunks.push((since.elapsed(), String::from_utf8(bytes.to_vec()).unwrap())),
            Ok(None) => return (chunks, None),
            Err(error) => return (chunks, Some(error)),
        }
    }
}

/// Waits until `condition` holds, up to `limit`.
pub async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    condition()
}
