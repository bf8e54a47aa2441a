//! A Capibara server on a real socket for integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use capibara_core::config::Config;
use capibara_core::llm::LlmBackend;
use capibara_core::store::ConversationStore;
use capibara_core::testing::InMemoryConversationStore;
use capibara_server::{Capibara, serve};
use tokio::sync::oneshot;

/// A server listening on 127.0.0.1 with an ephemeral port; stops when dropped or on [`TestServer::stop`].
pub struct TestServer {
    pub url: String,
    pub app: Capibara,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<capibara_core::Result<()>>>,
}

impl TestServer {
    /// Serves an already composed app.
    pub async fn start(app: Capibara) -> Self {
        let mut config = app.config().clone();
        config.server.port = 0;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve::serve_until(app.clone(), listener, async move {
            let _ = stopped.await;
        }));
        Self { url, app, stop: Some(stop), task: Some(task) }
    }

    /// A server over the given backend, an in-memory store and a temporary data dir.
    pub async fn with_backend(
        llm: Option<Arc<dyn LlmBackend>>,
        data_dir: &std::path::Path,
    ) -> (Self, InMemoryConversationStore) {
        Self::with_config(llm, data_dir, |_| {}).await
    }

    /// Same, with configuration changes.
    pub async fn with_config(
        llm: Option<Arc<dyn LlmBackend>>,
        data_dir: &std::path::Path,
        adjust: impl FnOnce(&mut Config),
    ) -> (Self, InMemoryConversationStore) {
        let mut config = Config::default();
        config.storage.data_dir = data_dir.to_path_buf();
        adjust(&mut config);
        let store = InMemoryConversationStore::new();
        let app =
            Capibara::with_components(config, llm, Arc::new(store.clone()) as Arc<dyn ConversationStore>);
        (Self::start(app).await, store)
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Stops accepting, waits for the server task to end.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Reads an SSE body into its `data:` payloads, parsed as JSON.
pub fn sse_data(body: &str) -> Vec<serde_json::Value> {
    body.split("\n\n")
        .filter_map(|frame| frame.strip_prefix("data: "))
        .filter(|data| *data != "[DONE]")
        .map(|data| serde_json::from_str(data).unwrap_or_else(|e| panic!("bad frame {data:?}: {e}")))
        .collect()
}

/// POSTs `body` as JSON and reads the answer as JSON, whatever its status.
pub async fn post_json(url: String, body: &serde_json::Value) -> serde_json::Value {
    client().post(url).json(body).send().await.unwrap().json().await.unwrap()
}

/// POSTs `body` as JSON and reads the answer as text (an SSE stream, say).
pub async fn post_text(url: String, body: &serde_json::Value) -> String {
    client().post(url).json(body).send().await.unwrap().text().await.unwrap()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build().unwrap()
}

/// The backend of the matching kind, pointed at a fake upstream, with short timeouts for tests.
pub fn backend_for(upstream: &capibara_testkit::upstream::FakeUpstream) -> Arc<dyn LlmBackend> {
    use capibara_testkit::upstream::Protocol;
    let kind = match upstream.protocol() {
        Protocol::OpenAi => {
            r#"kind = "openai"
model = "fake-model""#
        }
        Protocol::Ollama => r#"kind = "ollama""#,
        Protocol::LlamaCpp => {
            r#"kind = "llamacpp"
prompt_format = "harmony""#
        }
    };
    let config = capibara_server::settings::from_toml(&format!(
        r#"[[llm.backends]]
{kind}
base_url = "{}"
timeouts = {{ first_token = "10s", idle = "10s", total = "30s" }}
retry = {{ max_retries = 1, initial_backoff = "10ms" }}
"#,
        upstream.base_url()
    ))
    .unwrap();
    capibara_llm::build_chain(&config.llm).unwrap().unwrap()
}
