//! One conversational turn: load history, fit it to the model, stream the answer, store the exchange.
//!
//! Written only against [`LlmBackend`] and [`ConversationStore`], so every face (HTTP, Python, Node)
//! runs the same turn. The answer is pumped by a task of its own: when the caller goes away the
//! upstream is cancelled and what was produced so far is stored, marked partial; when the upstream
//! fails mid-answer the partial answer is stored too. A turn that fails before its first token
//! stores nothing, so the caller can simply retry.

pub mod budget;
pub mod context;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::chat::{
    AnswerBuilder, ChatRequest, FinishReason, Message, Role, SamplingOptions, StreamEvent, Usage,
};
use crate::config::ChatConfig;
use crate::error::{Error, Result};
use crate::llm::{ChatStream, LlmBackend};
use crate::store::{AppendRequest, Attachment, ConversationStore, NewMessage, title_from};

pub use context::ContextSource;

/// The built-in Spanish system prompt.
pub const DEFAULT_SYSTEM_PROMPT: &str = include_str!("system_prompt_es.txt");

/// Events buffered between the answer pump and a slow reader.
const TURN_CHANNEL_CAPACITY: usize = 64;

/// A file that came with the user's message.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnAttachment {
    /// The stored file.
    pub attachment: Attachment,
    /// Its text, when it is a text file; given to the model.
    pub text: Option<String>,
    /// The text was cut to the configured limit.
    pub truncated: bool,
}

/// What the user sends in one turn.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TurnInput {
    /// Conversation to continue; `None` starts a new one.
    pub conversation_id: Option<Uuid>,
    /// Who is talking; `None` for anonymous users.
    pub user_email: Option<String>,
    /// The message.
    pub message: String,
    /// Files attached to it.
    pub attachments: Vec<TurnAttachment>,
    /// Model to ask; the backend's default when `None`.
    pub model: Option<String>,
    /// Sampling options; unset ones take the configured defaults.
    pub options: SamplingOptions,
    /// Saving a turn twice with the same key stores it once.
    pub idempotency_key: Option<String>,
    /// Retrieved passages to answer from, best first; as many as fit the model's budget are put
    /// before the question, numbered ([`context`]). The stored message is the question alone.
    pub sources: Vec<ContextSource>,
}

/// A finished (or interrupted and stored) turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnSummary {
    /// The conversation, new or continued.
    pub conversation_id: Uuid,
    /// The stored assistant message.
    pub message_id: Option<Uuid>,
    /// The whole visible answer.
    pub content: String,
    /// The model's reasoning, kept apart.
    pub reasoning: Option<String>,
    /// Token accounting, when reported.
    pub usage: Option<Usage>,
    /// Why generation stopped.
    pub finish_reason: FinishReason,
    /// The model that answered.
    pub model: String,
    /// The backend that answered.
    pub backend: String,
    /// Time from the request to the end of the answer.
    pub latency_ms: u64,
}

/// One item of a streamed turn.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnEvent {
    /// A piece of the answer as the model produced it.
    Delta(StreamEvent),
    /// The answer is complete and stored.
    Finished(TurnSummary),
}

/// Settings of a turn, from [`ChatConfig`].
#[derive(Debug, Clone, PartialEq)]
pub struct TurnSettings {
    /// System prompt put before every conversation.
    pub system_prompt: String,
    /// `max_tokens` when the request gives none.
    pub default_max_tokens: u32,
    /// Temperature when the request gives none.
    pub default_temperature: f32,
    /// Most stored messages loaded before trimming.
    pub history_messages: usize,
    /// Longest message accepted, in characters.
    pub max_message_chars: usize,
}

impl From<&ChatConfig> for TurnSettings {
    fn from(config: &ChatConfig) -> Self {
        Self {
            system_prompt: config
                .system_prompt
                .clone()
                .unwrap_or_else(|| DEFAULT_SYSTEM_PROMPT.trim().to_owned()),
            default_max_tokens: config.default_max_tokens,
            default_temperature: config.default_temperature,
            history_messages: config.history_messages,
            max_message_chars: config.max_message_chars,
        }
    }
}

/// Runs conversational turns against one backend and one store.
#[derive(Clone)]
pub struct ChatTurn {
    llm: Arc<dyn LlmBackend>,
    store: Arc<dyn ConversationStore>,
    settings: Arc<TurnSettings>,
}

impl std::fmt::Debug for ChatTurn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTurn").field("llm", &self.llm.id()).finish_non_exhaustive()
    }
}

/// A streamed turn: deltas as they come, then [`TurnEvent::Finished`] once stored, or an error.
pub struct TurnStream {
    /// The conversation, known before the first token.
    pub conversation_id: Uuid,
    /// The model that answers.
    pub model: String,
    /// How many of [`TurnInput::sources`] fit in the prompt (the first ones).
    pub sources_used: usize,
    receiver: mpsc::Receiver<Result<TurnEvent>>,
}

impl std::fmt::Debug for TurnStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnStream").field("conversation_id", &self.conversation_id).finish_non_exhaustive()
    }
}

impl Stream for TurnStream {
    type Item = Result<TurnEvent>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.receiver.poll_recv(cx)
    }
}

impl TurnStream {
    /// Waits for the end of the turn and returns its summary.
    pub async fn finish(mut self) -> Result<TurnSummary> {
        while let Some(event) = self.next().await {
            if let TurnEvent::Finished(summary) = event? {
                return Ok(summary);
            }
        }
        Err(Error::internal("the turn ended without a summary"))
    }
}

impl ChatTurn {
    /// A turn runner over a backend and a store.
    pub fn new(llm: Arc<dyn LlmBackend>, store: Arc<dyn ConversationStore>, settings: TurnSettings) -> Self {
        Self { llm, store, settings: Arc::new(settings) }
    }

    /// The backend answering the turns.
    pub fn llm(&self) -> &Arc<dyn LlmBackend> {
        &self.llm
    }

    /// The store keeping the conversations.
    pub fn store(&self) -> &Arc<dyn ConversationStore> {
        &self.store
    }

    /// Runs a turn to its end and returns the stored answer.
    pub async fn complete(&self, input: TurnInput) -> Result<TurnSummary> {
        self.stream(input).await?.finish().await
    }

    /// Starts a turn. Returns once the model produced its first event; errors before that store nothing.
    pub async fn stream(&self, input: TurnInput) -> Result<TurnStream> {
        let started = Instant::now();
        let message = self.validate(&input)?;
        let (conversation_id, history, is_new) = match input.conversation_id {
            Some(id) => {
                let stored = self.store.recent_messages(id, self.settings.history_messages).await?;
                let history = stored
                    .into_iter()
                    .filter(|m| matches!(m.role, Role::User | Role::Assistant) && !m.content.is_empty())
                    .map(|m| Message::new(m.role, m.content))
                    .collect();
                (id, history, false)
            }
            None => (Uuid::now_v7(), Vec::new(), true),
        };

        let mut options = input.options.clone();
        options.max_tokens.get_or_insert(self.settings.default_max_tokens);
        options.temperature.get_or_insert(self.settings.default_temperature);
        let context = self.llm.capabilities().max_context_tokens;
        let answer_reserve = options.max_tokens.unwrap_or(self.settings.default_max_tokens).min(context / 2);
        let prompt_budget = context.saturating_sub(answer_reserve);
        let question = prompt_text(&message, &input.attachments);
        let system =
            (!self.settings.system_prompt.is_empty()).then(|| Message::system(&self.settings.system_prompt));
        let (user_text, sources_used) = if input.sources.is_empty() {
            (question, 0)
        } else {
            let fixed = budget::estimate_tokens(&question)
                + system.as_ref().map_or(0, |s| budget::estimate_tokens(&s.content))
                + 2 * budget::FRAMING_TOKENS;
            let room = prompt_budget.saturating_sub(fixed) / 100 * context::SOURCES_SHARE_PERCENT;
            context::with_sources(&question, &input.sources, room)
        };
        let messages = budget::fit_history(system, history, Message::user(user_text), prompt_budget)?;

        let request = ChatRequest { model: input.model.clone(), messages, options, tools: Vec::new() };
        let stream = self.llm.chat_stream(request).await?;
        let model = stream.model.clone();
        let backend = stream.backend.clone();

        let (sender, receiver) = mpsc::channel(TURN_CHANNEL_CAPACITY);
        let pending = PendingExchange {
            store: Arc::clone(&self.store),
            conversation_id,
            is_new,
            user_email: input.user_email.clone(),
            user_message: message,
            attachments: input.attachments.into_iter().map(|a| a.attachment).collect(),
            idempotency_key: input.idempotency_key,
            model: model.clone(),
            backend,
            started,
        };
        tokio::spawn(pump(stream, sender, pending));
        Ok(TurnStream { conversation_id, model, sources_used, receiver })
    }

    fn validate(&self, input: &TurnInput) -> Result<String> {
        let message = input.message.trim();
        if message.is_empty() {
            return Err(Error::invalid("message is required and must not be empty"));
        }
        let chars = message.chars().count();
        if chars > self.settings.max_message_chars {
            return Err(Error::TooLarge(format!(
                "message has {chars} characters; the limit is {}",
                self.settings.max_message_chars
            )));
        }
        if let Some(email) = &input.user_email {
            validate_email(email)?;
        }
        input.options.validate()?;
        Ok(message.to_owned())
    }
}

/// The user text the model sees: the message plus attachment contents and names.
fn prompt_text(message: &str, attachments: &[TurnAttachment]) -> String {
    let mut text = message.to_owned();
    for attached in attachments {
        if let Some(content) = &attached.text {
            text.push_str(&format!(
                "\n\n[Archivo adjunto: {}]\n{}",
                attached.attachment.original_name, content
            ));
            if attached.truncated {
                text.push_str("\n[… archivo recortado]");
            }
        }
    }
    let others: Vec<&str> = attachments
        .iter()
        .filter(|a| a.text.is_none())
        .map(|a| a.attachment.original_name.as_str())
        .collect();
    if !others.is_empty() {
        text.push_str(&format!(
            "\n\n[El usuario ha adjuntado los siguientes archivos: {}]",
            others.join(", ")
        ));
    }
    text
}

/// Accepts `local@domain` addresses up to 254 characters; the empty string means anonymous upstream.
pub fn validate_email(email: &str) -> Result<()> {
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !email.contains(char::is_whitespace);
    if valid { Ok(()) } else { Err(Error::invalid(format!("`{email}` is not a valid e-mail address"))) }
}

/// What is needed to store the exchange once the answer ends.
struct PendingExchange {
    store: Arc<dyn ConversationStore>,
    conversation_id: Uuid,
    is_new: bool,
    user_email: Option<String>,
    user_message: String,
    attachments: Vec<Attachment>,
    idempotency_key: Option<String>,
    model: String,
    backend: String,
    started: Instant,
}

/// How the answer ended.
enum Ending {
    Done(FinishReason),
    ReaderGone,
    Failed(Error),
}

/// Forwards the answer to the reader and stores the exchange when it ends, however it ends.
async fn pump(mut stream: ChatStream, sender: mpsc::Sender<Result<TurnEvent>>, pending: PendingExchange) {
    let mut answer = AnswerBuilder::default();
    let ending = loop {
        let next = tokio::select! {
            biased;
            () = sender.closed() => break Ending::ReaderGone,
            next = stream.next() => next,
        };
        match next {
            Some(Ok(StreamEvent::Done { finish_reason })) => break Ending::Done(finish_reason),
            Some(Ok(event)) => {
                answer.push(&event);
                if sender.send(Ok(TurnEvent::Delta(event))).await.is_err() {
                    break Ending::ReaderGone;
                }
            }
            Some(Err(error)) => break Ending::Failed(error),
            None => {
                break Ending::Failed(Error::upstream(502, "the answer stream ended without a final event"));
            }
        }
    };
    // Stop the upstream now rather than when this task ends.
    drop(stream);
    let latency = pending.started.elapsed();

    let (finish_reason, partial, failure) = match ending {
        Ending::Done(reason) => (reason, false, None),
        Ending::ReaderGone => (FinishReason::Cancelled, true, None),
        Ending::Failed(error) => (FinishReason::Other("error".into()), true, Some(error)),
    };
    let produced =
        !answer.content.is_empty() || !answer.reasoning.is_empty() || !answer.tool_calls.is_empty();
    let stored = if partial && !produced {
        // Nothing was generated: store nothing, so a retry does not leave a dangling question.
        Ok(None)
    } else {
        store_exchange(&pending, &answer, &finish_reason, partial, latency).await
    };

    let outcome = match (failure, stored) {
        (Some(error), Err(store_error)) => {
            tracing::error!(%store_error, "could not store the partial answer of a failed turn");
            Err(error)
        }
        (Some(error), Ok(_)) => Err(error),
        (None, Err(store_error)) => Err(store_error.context("the answer could not be stored")),
        (None, Ok(message_id)) => Ok(TurnEvent::Finished(TurnSummary {
            conversation_id: pending.conversation_id,
            message_id,
            content: answer.content.clone(),
            reasoning: answer.reasoning(),
            usage: answer.usage,
            finish_reason,
            model: pending.model.clone(),
            backend: pending.backend.clone(),
            latency_ms: millis(latency),
        })),
    };
    // The reader may be gone; then the exchange is stored and nobody needs the summary.
    let _ = sender.send(outcome).await;
}

async fn store_exchange(
    pending: &PendingExchange,
    answer: &AnswerBuilder,
    finish_reason: &FinishReason,
    partial: bool,
    latency: Duration,
) -> Result<Option<Uuid>> {
    let dedupe = |suffix: &str| pending.idempotency_key.as_ref().map(|key| format!("{key}:{suffix}"));
    let mut user = NewMessage::new(Role::User, pending.user_message.clone());
    user.dedupe_key = dedupe("user");
    user.attachments = pending.attachments.clone();
    let mut assistant = NewMessage::new(Role::Assistant, answer.content.clone());
    assistant.reasoning = answer.reasoning();
    assistant.model = Some(pending.model.clone());
    assistant.usage = answer.usage;
    assistant.latency_ms = Some(millis(latency));
    assistant.finish_reason = Some(finish_reason.clone());
    assistant.partial = partial;
    assistant.dedupe_key = dedupe("assistant");
    let outcome = pending
        .store
        .append(AppendRequest {
            conversation_id: pending.conversation_id,
            create_if_missing: pending.is_new,
            user_email: pending.user_email.clone(),
            title: title_from(&pending.user_message),
            messages: vec![user, assistant],
        })
        .await?;
    Ok(outcome.inserted.last().copied())
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
