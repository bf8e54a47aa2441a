//! The streaming conformance suite every HTTP [`LlmBackend`] must pass.
//!
//! Each scenario starts a fresh [`FakeUpstream`] of the subject's protocol, builds the backend under
//! test against it with [`Subject::make`], scripts the upstream and asserts what the backend's callers
//! observe through `chat_stream`, `chat`, `models` and `health`.
//!
//! ```no_run
//! use capibara_testkit::conformance::{self, MakeBackend, Subject};
//! use capibara_testkit::upstream::{Protocol, ReasoningStyle};
//!
//! async fn check_openai_backend(make: MakeBackend) {
//!     let subject = Subject {
//!         name: "openai".into(),
//!         protocol: Protocol::OpenAi,
//!         make,
//!         reasoning_styles: vec![ReasoningStyle::ReasoningContent, ReasoningStyle::Reasoning],
//!     };
//!     conformance::run(&subject).await;
//!     // or, while debugging, one scenario: conformance::keep_alives_are_ignored(&subject).await
//! }
//! ```

mod events;
mod failures;
mod requests;
mod streaming;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use capibara_core::llm::LlmBackend;
use futures::FutureExt as _;

use crate::upstream::{FakeUpstream, Protocol, ReasoningStyle};

pub use failures::{
    connection_refused_is_unavailable, dropping_the_stream_cancels_the_upstream,
    first_token_timeout_is_a_timeout, idle_timeout_is_a_timeout, retries_follow_the_status,
};
pub use requests::{models_and_health_follow_the_upstream, sampling_options_reach_the_upstream};
pub use streaming::{
    content_arrives_token_by_token, disconnect_ends_the_stream_with_an_error,
    error_frame_ends_the_stream_with_an_error, first_event_is_not_held_back, keep_alives_are_ignored,
    malformed_frame_is_an_upstream_error, reasoning_is_kept_apart, usage_and_done_close_the_stream,
};

/// Timeouts and retries the backend under test is built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// From sending the request to the first event.
    pub first_token_timeout: Duration,
    /// Longest silence between two events.
    pub idle_timeout: Duration,
    /// The whole answer.
    pub total_timeout: Duration,
    /// Attempts after the first one, before the first event.
    pub max_retries: u32,
    /// Wait before the first retry.
    pub initial_backoff: Duration,
}

impl Default for Tuning {
    /// Short, so the suite runs in seconds: first token 2 s, idle 1 s, total 10 s, 2 retries, 20 ms backoff.
    fn default() -> Self {
        Self {
            first_token_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(1),
            total_timeout: Duration::from_secs(10),
            max_retries: 2,
            initial_backoff: Duration::from_millis(20),
        }
    }
}

/// Builds the backend under test pointed at `base_url` (FakeUpstream::base_url()) with the given tuning.
pub type MakeBackend = Arc<dyn Fn(&str, &Tuning) -> Arc<dyn LlmBackend> + Send + Sync>;

/// A backend to put through the suite.
#[derive(Clone)]
pub struct Subject {
    /// Names the subject in failure messages.
    pub name: String,
    /// The wire protocol the backend speaks.
    pub protocol: Protocol,
    /// Builds the backend.
    pub make: MakeBackend,
    /// Styles this backend must understand for reasoning, e.g. both OpenAI fields; empty means the
    /// protocol's default style.
    pub reasoning_styles: Vec<ReasoningStyle>,
}

impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subject")
            .field("name", &self.name)
            .field("protocol", &self.protocol)
            .field("reasoning_styles", &self.reasoning_styles)
            .finish_non_exhaustive()
    }
}

/// A fresh fake of the subject's protocol and the backend built against it.
struct Rig {
    fake: FakeUpstream,
    backend: Arc<dyn LlmBackend>,
    tuning: Tuning,
}

impl Subject {
    async fn rig(&self, tuning: Tuning) -> Rig {
        let fake = FakeUpstream::start(self.protocol).await;
        let backend = (self.make)(&fake.base_url(), &tuning);
        Rig { fake, backend, tuning }
    }

    /// The reasoning styles to check: the declared ones, or the protocol's default.
    fn styles(&self) -> Vec<ReasoningStyle> {
        if self.reasoning_styles.is_empty() {
            vec![self.protocol.default_reasoning_style()]
        } else {
            self.reasoning_styles.clone()
        }
    }
}

/// Runs every scenario, each against a fresh FakeUpstream; panics naming the failed scenarios.
pub async fn run(subject: &Subject) {
    let mut failures = Vec::new();
    macro_rules! scenario {
        ($($name:ident),* $(,)?) => {$(
            if let Err(panic) = AssertUnwindSafe($name(subject)).catch_unwind().await {
                failures.push(format!("{}: {}", stringify!($name), panic_message(panic.as_ref())));
            }
        )*};
    }
    scenario!(
        content_arrives_token_by_token,
        first_event_is_not_held_back,
        reasoning_is_kept_apart,
        usage_and_done_close_the_stream,
        keep_alives_are_ignored,
        error_frame_ends_the_stream_with_an_error,
        disconnect_ends_the_stream_with_an_error,
        malformed_frame_is_an_upstream_error,
        retries_follow_the_status,
        first_token_timeout_is_a_timeout,
        idle_timeout_is_a_timeout,
        connection_refused_is_unavailable,
        dropping_the_stream_cancels_the_upstream,
        sampling_options_reach_the_upstream,
        models_and_health_follow_the_upstream,
    );
    if !failures.is_empty() {
        panic!(
            "`{}` failed {} conformance scenario(s):\n- {}",
            subject.name,
            failures.len(),
            failures.join("\n- ")
        );
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_owned()))
        .unwrap_or_else(|| "panicked".to_owned())
}
