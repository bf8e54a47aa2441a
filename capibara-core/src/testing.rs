//! In-memory implementations of the traits, for tests of any crate (feature `test-utils`).
//!
//! - [`ScriptedBackend`]: an [`LlmBackend`] that plays scripted replies and records requests.
//! - [`InMemoryConversationStore`]: a [`ConversationStore`] in a mutex-guarded map.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use uuid::Uuid;

use crate::chat::{ChatRequest, FinishReason, StreamEvent, Usage};
use crate::error::{Error, Result};
use crate::llm::{BackendHealth, Capabilities, ChatStream, HealthStatus, LlmBackend, ModelInfo};
use crate::store::{
    AppendOutcome, AppendRequest, Attachment, Conversation, ConversationStore, StoredMessage,
};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not hide the state from the others.
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One step of a scripted answer.
#[derive(Debug, Clone)]
pub enum Step {
    /// Emit an event.
    Event(StreamEvent),
    /// Wait before the next step.
    Sleep(Duration),
    /// End the stream with an error.
    Fail(Error),
}

/// How the scripted backend answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Start streaming these steps (the first step must be an event).
    Stream(Vec<Step>),
    /// Refuse before the first token.
    Refuse(Error),
}

impl Reply {
    /// Streams `text` word by word, then usage and `Done(Stop)`.
    pub fn text(text: &str) -> Self {
        let mut steps: Vec<Step> =
            text.split_inclusive(' ').map(|word| Step::Event(StreamEvent::content(word))).collect();
        let completion_tokens = u32::try_from(steps.len()).unwrap_or(u32::MAX);
        steps.push(Step::Event(StreamEvent::Usage { usage: Usage { prompt_tokens: 10, completion_tokens } }));
        steps.push(Step::Event(StreamEvent::done(FinishReason::Stop)));
        Self::Stream(steps)
    }
}

/// An [`LlmBackend`] that plays scripted replies, in order, then repeats its default reply.
pub struct ScriptedBackend {
    id: String,
    model: String,
    capabilities: Capabilities,
    replies: Mutex<VecDeque<Reply>>,
    default_reply: Reply,
    requests: Mutex<Vec<ChatRequest>>,
}

impl std::fmt::Debug for ScriptedBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedBackend").field("id", &self.id).finish_non_exhaustive()
    }
}

impl ScriptedBackend {
    /// A backend that answers every request with `text`.
    pub fn replying(text: &str) -> Self {
        Self {
            id: "scripted".into(),
            model: "scripted-model".into(),
            capabilities: Capabilities {
                streaming: true,
                reasoning: true,
                tools: false,
                max_context_tokens: 8192,
            },
            replies: Mutex::new(VecDeque::new()),
            default_reply: Reply::text(text),
            requests: Mutex::new(Vec::new()),
        }
    }

    /// Renames the backend.
    #[must_use]
    pub fn with_id(mut self, id: &str) -> Self {
        self.id = id.to_owned();
        self
    }

    /// Sets the context window it reports.
    #[must_use]
    pub fn with_context(mut self, tokens: u32) -> Self {
        self.capabilities.max_context_tokens = tokens;
        self
    }

    /// Queues a reply for the next request.
    pub fn push(&self, reply: Reply) {
        lock(&self.replies).push_back(reply);
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<ChatRequest> {
        lock(&self.requests).clone()
    }
}

#[async_trait]
impl LlmBackend for ScriptedBackend {
    fn id(&self) -> &str {
        &self.id
    }

    fn default_model(&self) -> &str {
        &self.model
    }

    fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream> {
        request.validate()?;
        let model = request.model.clone().unwrap_or_else(|| self.model.clone());
        lock(&self.requests).push(request);
        let reply = lock(&self.replies).pop_front().unwrap_or_else(|| self.default_reply.clone());
        let steps = match reply {
            Reply::Refuse(error) => return Err(error),
            Reply::Stream(steps) => steps,
        };
        let events = futures::stream::unfold(steps.into_iter(), |mut steps| async move {
            loop {
                match steps.next()? {
                    Step::Sleep(duration) => tokio::time::sleep(duration).await,
                    Step::Event(event) => return Some((Ok(event), steps)),
                    Step::Fail(error) => return Some((Err(error), Vec::new().into_iter())),
                }
            }
        });
        Ok(ChatStream::new(model, self.id.clone(), events))
    }

    async fn models(&self) -> Result<Vec<ModelInfo>> {
        Ok(vec![ModelInfo {
            id: self.model.clone(),
            backend: self.id.clone(),
            context_length: Some(self.capabilities.max_context_tokens),
            details: None,
        }])
    }

    async fn health(&self) -> BackendHealth {
        BackendHealth {
            backend: self.id.clone(),
            status: HealthStatus::Ok,
            location: "memory".into(),
            model: self.model.clone(),
            latency_ms: 0,
            detail: None,
        }
    }
}

#[derive(Default)]
struct StoreState {
    conversations: HashMap<Uuid, Conversation>,
    messages: HashMap<Uuid, Vec<StoredMessage>>,
    attachments: HashMap<Uuid, Vec<Attachment>>,
    dedupe_keys: HashSet<String>,
}

/// A [`ConversationStore`] in memory.
#[derive(Default, Clone)]
pub struct InMemoryConversationStore {
    state: Arc<Mutex<StoreState>>,
}

impl std::fmt::Debug for InMemoryConversationStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryConversationStore").finish_non_exhaustive()
    }
}

impl InMemoryConversationStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl ConversationStore for InMemoryConversationStore {
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome> {
        let mut state = lock(&self.state);
        let now = Utc::now();
        let created = !state.conversations.contains_key(&request.conversation_id);
        if created && !request.create_if_missing {
            return Err(Error::NotFound(format!("conversation {}", request.conversation_id)));
        }
        let mut conversation =
            state.conversations.get(&request.conversation_id).cloned().unwrap_or(Conversation {
                id: request.conversation_id,
                user_email: request.user_email.clone(),
                title: request.title.clone(),
                message_count: 0,
                created_at: now,
                updated_at: now,
            });
        let mut inserted = Vec::new();
        let mut duplicates = 0;
        let mut new_messages = Vec::new();
        let mut new_keys = Vec::new();
        for message in request.messages {
            if let Some(key) = &message.dedupe_key
                && (state.dedupe_keys.contains(key) || new_keys.contains(key))
            {
                duplicates += 1;
                continue;
            }
            let role = message.role.ok_or_else(|| Error::invalid("a stored message needs a role"))?;
            let id = Uuid::now_v7();
            conversation.message_count += 1;
            new_keys.extend(message.dedupe_key.clone());
            new_messages.push((
                StoredMessage {
                    id,
                    conversation_id: request.conversation_id,
                    seq: conversation.message_count,
                    role,
                    content: message.content,
                    reasoning: message.reasoning,
                    model: message.model,
                    usage: message.usage,
                    latency_ms: message.latency_ms,
                    finish_reason: message.finish_reason,
                    partial: message.partial,
                    created_at: message.created_at.unwrap_or(now),
                },
                message.attachments,
            ));
            inserted.push(id);
        }
        if created && new_messages.is_empty() {
            return Ok(AppendOutcome {
                conversation_id: request.conversation_id,
                created: false,
                inserted,
                duplicates,
            });
        }
        conversation.updated_at = now;
        state.conversations.insert(conversation.id, conversation);
        state.dedupe_keys.extend(new_keys);
        for (message, attachments) in new_messages {
            state.attachments.insert(message.id, attachments);
            state.messages.entry(request.conversation_id).or_default().push(message);
        }
        Ok(AppendOutcome { conversation_id: request.conversation_id, created, inserted, duplicates })
    }

    async fn conversation(&self, id: Uuid) -> Result<Conversation> {
        lock(&self.state)
            .conversations
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("conversation {id}")))
    }

    async fn recent_messages(&self, id: Uuid, limit: usize) -> Result<Vec<StoredMessage>> {
        let state = lock(&self.state);
        if !state.conversations.contains_key(&id) {
            return Err(Error::NotFound(format!("conversation {id}")));
        }
        let messages = state.messages.get(&id).map(Vec::as_slice).unwrap_or_default();
        Ok(messages[messages.len().saturating_sub(limit)..].to_vec())
    }

    async fn attachments(&self, message_id: Uuid) -> Result<Vec<Attachment>> {
        Ok(lock(&self.state).attachments.get(&message_id).cloned().unwrap_or_default())
    }

    async fn count_conversations(&self) -> Result<u64> {
        Ok(lock(&self.state).conversations.len() as u64)
    }
}
