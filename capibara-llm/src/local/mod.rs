//! [`LocalLlm`]: a GGUF model (llama architecture) run in-process with candle (feature
//! `local-llm`).
//!
//! ```no_run
//! use capibara_core::chat::{ChatRequest, Message};
//! use capibara_core::llm::LlmBackend;
//! use capibara_core::models::{ModelStore, NoProgress};
//! use capibara_llm::local::{LocalLlm, LocalLlmOptions, ensure_default_model};
//!
//! # async fn demo() -> capibara_core::Result<()> {
//! // Blocking: downloads SmolLM2-135M-Instruct once and re-quantizes it (see `requantize`).
//! let path = ensure_default_model(&ModelStore::from_env(), &mut NoProgress)?;
//! let llm = tokio::task::spawn_blocking(move || LocalLlm::load(LocalLlmOptions::new(path)))
//!     .await
//!     .map_err(|e| capibara_core::Error::internal(e.to_string()))??;
//! let answer = llm.chat(ChatRequest::new(vec![Message::user("What is Rust?")])).await?;
//! println!("{}", answer.content);
//! # Ok(())
//! # }
//! ```
//!
//! - [`LocalLlmOptions`]: the file, threads, concurrency, queue, context window, template.
//! - The tokenizer is rebuilt from the GGUF's metadata (byte-level BPE) and the prompt is the
//!   GGUF's own chat template rendered with minijinja (ChatML when it has none).
//! - Generation runs on dedicated OS threads, one KV cache each, behind a bounded queue; tokens
//!   stream as they are sampled; `<think>` reasoning is split off like the other backends do.
//! - [`threads`]: how candle picks its thread count and what a program must set.
//! - [`requantize()`] and [`ensure_default_model`]: the default model, re-quantized for candle's
//!   fast kernels.

mod decode;
mod engine;
mod gguf;
mod linear;
mod model;
pub mod options;
mod q8;
mod requantize;
mod sampler;
mod template;
mod text;
pub mod threads;
mod vocab;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use candle_core::quantized::GgmlDType;
use capibara_core::chat::ChatRequest;
use capibara_core::llm::{BackendHealth, Capabilities, ChatStream, HealthStatus, LlmBackend, ModelInfo};
use capibara_core::{Error, Result};
use futures::StreamExt as _;

pub use gguf::SUPPORTED_ARCHITECTURES;
pub use options::{DEFAULT_DENSE_PREFILL_BYTES, LocalLlmOptions, MAX_CONTEXT_WINDOW};
pub use requantize::{
    DEFAULT_MODEL_FILE, DEFAULT_MODEL_SHA256, DEFAULT_QUANT, QuantType, ensure_default_model, requantize,
};
pub use template::CHATML_TEMPLATE;
pub use threads::CandleThreads;
pub use vocab::SUPPORTED_PRE_TOKENIZERS;

use engine::{Engine, Job};
use gguf::GgufFile;
use model::{Session, Weights};
use sampler::SamplerConfig;
use template::ChatTemplate;
use vocab::Vocab;

/// Context window used when a GGUF declares none.
const FALLBACK_CONTEXT_WINDOW: u32 = 2048;

/// A local GGUF chat model; see the [module docs](self).
#[derive(Debug)]
pub struct LocalLlm {
    id: String,
    model_name: String,
    path: PathBuf,
    architecture: String,
    quantization: String,
    file_size: u64,
    context_window: u32,
    default_max_tokens: u32,
    threads: CandleThreads,
    vocab: Arc<Vocab>,
    template: ChatTemplate,
    weights: Arc<Weights>,
    engine: Engine,
}

impl LocalLlm {
    /// Reads the GGUF file, rebuilds its tokenizer and chat template, loads the weights once and
    /// starts the generation threads.
    ///
    /// Blocking (reads the whole file; about a second for a 100 MB model): call it from
    /// `tokio::task::spawn_blocking` or before the runtime starts. Fails with
    /// [`Error::NotFound`] for a missing file and [`Error::InvalidInput`] for a file that is not
    /// GGUF, is truncated, or holds an architecture or tokenizer this backend does not run.
    pub fn load(options: LocalLlmOptions) -> Result<Self> {
        options.validate()?;
        let started = Instant::now();
        let gguf = GgufFile::open(&options.model_path)?;
        let architecture = gguf.architecture()?;
        let vocab = Arc::new(Vocab::from_gguf(&gguf)?);
        let shown = options.model_path.display().to_string();
        let stem = options
            .model_path
            .file_stem()
            .map_or_else(|| shown.clone(), |s| s.to_string_lossy().into_owned());
        let model_name = options
            .model_name
            .clone()
            .or_else(|| gguf.string("general.name"))
            .unwrap_or_else(|| stem.clone());
        let declared = gguf.u32(&format!("{architecture}.context_length")).unwrap_or(FALLBACK_CONTEXT_WINDOW);
        let context_window = options.context_window.unwrap_or(declared).min(MAX_CONTEXT_WINDOW);
        let special = |token: Option<u32>| token.and_then(|t| vocab.text(t)).unwrap_or_default().to_owned();
        let (source, origin) = match (&options.chat_template, gguf.string("tokenizer.chat_template")) {
            (Some(source), _) => (source.clone(), "options.chat_template"),
            (None, Some(source)) => (source, "tokenizer.chat_template"),
            (None, None) => (CHATML_TEMPLATE.to_owned(), "ChatML fallback"),
        };
        let template = ChatTemplate::new(&source, origin, special(vocab.bos), special(vocab.eos))?;
        let quantization = dominant_quantization(&gguf);
        let threads = threads::check(options.threads);
        let GgufFile { content, mut reader, size: file_size, .. } = gguf;
        let weights = Arc::new(
            Weights::load(&content, &mut reader, context_window as usize, options.dense_prefill_bytes)
                .map_err(|e| e.context(&format!("model file {shown}: cannot load the weights")))?,
        );
        let engine = Engine::start(&weights, &vocab, options.max_concurrent, options.max_queue)?;
        tracing::info!(
            model = %model_name,
            path = %shown,
            %quantization,
            context_window,
            slots = options.max_concurrent,
            threads = threads.quantized,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "local model loaded"
        );
        Ok(Self {
            id: format!("local@{stem}"),
            model_name,
            path: options.model_path,
            architecture,
            quantization,
            file_size,
            context_window,
            default_max_tokens: options.default_max_tokens,
            threads,
            vocab,
            template,
            weights,
            engine,
        })
    }

    /// The GGUF file served.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Context window in tokens (prompt and answer).
    pub fn context_window(&self) -> u32 {
        self.context_window
    }

    /// The threads candle actually uses in this process (see [`threads`]).
    pub fn threads(&self) -> CandleThreads {
        self.threads
    }

    /// The prompt a request turns into: the chat template's output, as text and as token ids.
    pub fn prompt(&self, request: &ChatRequest) -> Result<(String, Vec<u32>)> {
        if !request.tools.is_empty() && !self.template.knows_tools {
            return Err(Error::invalid(format!(
                "{}: the model's chat template does not take tools",
                self.id
            )));
        }
        let text = self.template.render(&request.messages, &request.tools)?;
        let tokens = self.vocab.encode_prompt(&text)?;
        Ok((text, tokens))
    }

    /// Token ids of `text` with this model's tokenizer, reading control-token markup
    /// (`<|im_start|>`) as the tokens themselves and adding no BOS.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        self.vocab.encode(text)
    }

    /// The answer text of `tokens`: their bytes joined, control tokens left out, invalid UTF-8
    /// replaced (as a streamed answer would show them).
    pub fn decode(&self, tokens: &[u32]) -> String {
        let bytes: Vec<u8> = tokens.iter().flat_map(|&t| self.vocab.piece(t).iter().copied()).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Next-token logits along a given continuation ("teacher forcing"): element `i` holds the
    /// logits the model gives the token that follows `prompt` and `continuation[..i]`, so comparing
    /// `continuation[i]` with the largest of them tells whether greedy decoding would have chosen
    /// it, and by what margin. For evaluation: perplexity, or checking another runtime's greedy
    /// output without requiring bit-identical arithmetic.
    ///
    /// Blocking (runs the model on the calling thread, not on the generation threads). Errors:
    /// [`Error::InvalidInput`] for an empty prompt or an id outside the vocabulary,
    /// [`Error::ContextTooLong`] beyond the context window.
    pub fn continuation_logits(&self, prompt: &[u32], continuation: &[u32]) -> Result<Vec<Vec<f32>>> {
        if prompt.is_empty() {
            return Err(Error::invalid("the prompt holds no tokens"));
        }
        if let Some(bad) = prompt.iter().chain(continuation).find(|&&t| t as usize >= self.vocab.len()) {
            return Err(Error::invalid(format!(
                "token id {bad} is outside the {} of the vocabulary",
                self.vocab.len()
            )));
        }
        let total = prompt.len() + continuation.len();
        if total > self.context_window as usize {
            return Err(Error::ContextTooLong(format!(
                "{total} tokens, the context window is {}",
                self.context_window
            )));
        }
        let mut session = Session::new(self.weights.clone(), total)?;
        let mut logits = vec![session.forward(prompt)?];
        // The last token's own successor is not asked for.
        for &token in &continuation[..continuation.len().saturating_sub(1)] {
            logits.push(session.forward(&[token])?);
        }
        logits.truncate(continuation.len());
        Ok(logits)
    }

    /// Whether `name` names this model (its reported name or the file stem).
    fn serves(&self, name: &str) -> bool {
        name.eq_ignore_ascii_case(&self.model_name)
            || self.path.file_stem().is_some_and(|stem| name.eq_ignore_ascii_case(&stem.to_string_lossy()))
    }
}

#[async_trait]
impl LlmBackend for LocalLlm {
    fn id(&self) -> &str {
        &self.id
    }

    fn default_model(&self) -> &str {
        &self.model_name
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            streaming: true,
            reasoning: true,
            tools: self.template.knows_tools,
            max_context_tokens: self.context_window,
        }
    }

    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream> {
        request.validate()?;
        if let Some(model) = &request.model
            && !self.serves(model)
        {
            return Err(Error::NotFound(format!(
                "model `{model}`: {} serves only `{}`",
                self.id, self.model_name
            )));
        }
        let (_, prompt) = self.prompt(&request)?;
        let window = self.context_window as usize;
        if prompt.len() >= window {
            return Err(Error::ContextTooLong(format!(
                "the prompt is {} tokens and {}'s context window is {window} (prompt and answer)",
                prompt.len(),
                self.model_name
            )));
        }
        let room = u32::try_from(window - prompt.len()).unwrap_or(u32::MAX);
        let max_tokens = request.options.max_tokens.unwrap_or(self.default_max_tokens).min(room);
        let (events, mut receiver) = tokio::sync::mpsc::unbounded_channel();
        self.engine.submit(Job {
            prompt,
            max_tokens,
            sampler: SamplerConfig::from_options(&request.options),
            stop: request.options.stop.clone(),
            events,
        })?;
        let first = match receiver.recv().await {
            Some(Ok(event)) => event,
            Some(Err(error)) => return Err(error),
            None => {
                return Err(Error::internal(format!("{}: the generation ended without an event", self.id)));
            }
        };
        let rest = futures::stream::poll_fn(move |cx| receiver.poll_recv(cx));
        Ok(ChatStream::new(
            self.model_name.clone(),
            self.id.clone(),
            futures::stream::iter([Ok(first)]).chain(rest),
        ))
    }

    async fn models(&self) -> Result<Vec<ModelInfo>> {
        let (_, slots) = self.engine.alive();
        Ok(vec![ModelInfo {
            id: self.model_name.clone(),
            backend: self.id.clone(),
            context_length: Some(self.context_window),
            details: Some(serde_json::json!({
                "path": self.path.display().to_string(),
                "format": "gguf",
                "architecture": self.architecture,
                "quantization": self.quantization,
                "size_bytes": self.file_size,
                "vocabulary": self.vocab.len(),
                "bos_token": self.vocab.bos.and_then(|t| self.vocab.text(t)),
                "eos_token": self.vocab.eos.and_then(|t| self.vocab.text(t)),
                "padding_token": self.vocab.padding.and_then(|t| self.vocab.text(t)),
                "slots": slots,
                "threads": self.threads.quantized,
            })),
        }])
    }

    /// `Ok` while every generation thread runs, `Degraded` when some stopped, `Down` when none runs.
    async fn health(&self) -> BackendHealth {
        let started = Instant::now();
        let (alive, slots) = self.engine.alive();
        let (status, detail) = match alive {
            0 => (HealthStatus::Down, Some("no generation thread is running".to_owned())),
            n if n < slots => {
                (HealthStatus::Degraded, Some(format!("{n} of {slots} generation threads running")))
            }
            _ => (HealthStatus::Ok, None),
        };
        BackendHealth {
            backend: self.id.clone(),
            status,
            location: self.path.display().to_string(),
            model: self.model_name.clone(),
            latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            detail,
        }
    }
}

/// The quantization most weight matrices use (`Q8_0`, `Q4_1`, …).
fn dominant_quantization(gguf: &GgufFile) -> String {
    let mut counts: Vec<(GgmlDType, usize)> = Vec::new();
    for info in gguf.content.tensor_infos.values().filter(|i| i.shape.rank() >= 2) {
        match counts.iter_mut().find(|(dtype, _)| *dtype == info.ggml_dtype) {
            Some((_, count)) => *count += 1,
            None => counts.push((info.ggml_dtype, 1)),
        }
    }
    counts
        .iter()
        .max_by_key(|(_, count)| *count)
        .map_or_else(|| "unknown".to_owned(), |(dtype, _)| format!("{dtype:?}"))
}
