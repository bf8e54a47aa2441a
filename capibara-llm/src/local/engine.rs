//! Generation slots: `max_concurrent` dedicated OS threads, each with its own KV cache over the
//! shared weights, fed from a bounded queue.
//!
//! Generations never run on the async runtime's workers. A request waits in the queue for a free
//! slot; when `max_queue` requests already wait, new ones are refused with
//! [`Error::RateLimited`] and a `retry_after` estimated from recent generation times. A
//! generation checks before every token whether its receiver is still there, so a client that
//! goes away stops its generation within one token and frees the slot.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use capibara_core::chat::{FinishReason, StreamEvent, Usage};
use capibara_core::{Error, Result};
use tokio::sync::mpsc::UnboundedSender;

use super::model::{Session, Weights};
use super::sampler::{Sampler, SamplerConfig};
use super::text::TextPipeline;
use super::vocab::Vocab;

/// Prompt tokens run through the model at once: long prompts go in chunks so the attention
/// scores of one step stay small (heads × chunk × context floats).
const PREFILL_CHUNK: usize = 512;

/// One generation request, ready to run.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) prompt: Vec<u32>,
    /// Already clipped to what fits the context window.
    pub(crate) max_tokens: u32,
    pub(crate) sampler: SamplerConfig,
    pub(crate) stop: Vec<String>,
    pub(crate) events: UnboundedSender<Result<StreamEvent>>,
}

/// The slots and the queue in front of them.
#[derive(Debug)]
pub(crate) struct Engine {
    queue: SyncSender<Job>,
    stats: Arc<Stats>,
    slots: usize,
}

#[derive(Debug, Default)]
struct Stats {
    /// Worker threads still running.
    alive: AtomicUsize,
    /// Moving average of a generation's duration, in milliseconds (0 until one finished).
    average_ms: AtomicU64,
}

impl Engine {
    /// Starts `slots` worker threads sharing `weights`; each generation gets its own KV cache.
    pub(crate) fn start(
        weights: &Arc<Weights>,
        vocab: &Arc<Vocab>,
        slots: usize,
        max_queue: usize,
    ) -> Result<Self> {
        let (queue, jobs) = std::sync::mpsc::sync_channel::<Job>(max_queue);
        let jobs = Arc::new(Mutex::new(jobs));
        let stats = Arc::new(Stats::default());
        for slot in 0..slots {
            let (weights, vocab, jobs, stats2) =
                (weights.clone(), vocab.clone(), jobs.clone(), stats.clone());
            stats.alive.fetch_add(1, Ordering::SeqCst);
            std::thread::Builder::new()
                .name(format!("capibara-llm-{slot}"))
                .spawn(move || work(&weights, &vocab, &jobs, &stats2))
                .map_err(|e| Error::internal(format!("cannot start a generation thread: {e}")))?;
        }
        Ok(Self { queue, stats, slots })
    }

    /// Queues `job`, or refuses it when the queue is full.
    pub(crate) fn submit(&self, job: Job) -> Result<()> {
        match self.queue.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(Error::RateLimited {
                message: "every local generation slot is busy and the queue is full".into(),
                retry_after: Some(self.retry_after()),
            }),
            Err(TrySendError::Disconnected(_)) => {
                Err(Error::unavailable("the local model's generation threads stopped"))
            }
        }
    }

    /// Worker threads running, and how many were started.
    pub(crate) fn alive(&self) -> (usize, usize) {
        (self.stats.alive.load(Ordering::SeqCst), self.slots)
    }

    /// About the time until a queue place frees: one generation's duration over the slots.
    fn retry_after(&self) -> Duration {
        let average = match self.stats.average_ms.load(Ordering::Relaxed) {
            0 => 1000,
            ms => ms,
        };
        Duration::from_millis((average / self.slots.max(1) as u64).clamp(100, 30_000))
    }
}

fn work(weights: &Arc<Weights>, vocab: &Vocab, jobs: &Mutex<Receiver<Job>>, stats: &Stats) {
    loop {
        // The lock is held only while waiting; the job runs after the guard is gone.
        let next = match jobs.lock() {
            Ok(jobs) => jobs.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok(job) = next else { break };
        if job.events.is_closed() {
            continue;
        }
        let started = Instant::now();
        if let Err(error) = generate(weights, vocab, &job) {
            let _ = job.events.send(Err(error));
        }
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX).max(1);
        let previous = stats.average_ms.load(Ordering::Relaxed);
        let average = if previous == 0 { ms } else { (previous * 7 + ms) / 8 };
        stats.average_ms.store(average, Ordering::Relaxed);
    }
    stats.alive.fetch_sub(1, Ordering::SeqCst);
}

/// Generates one answer, sending its events; returns early, without error, when the receiver
/// is gone.
fn generate(weights: &Arc<Weights>, vocab: &Vocab, job: &Job) -> Result<()> {
    let events = &job.events;
    let mut session = Session::new(weights.clone(), job.prompt.len() + job.max_tokens as usize)?;
    let mut logits = Vec::new();
    for chunk in job.prompt.chunks(PREFILL_CHUNK) {
        if events.is_closed() {
            return Ok(());
        }
        logits = session.forward(chunk)?;
    }
    let mut context = job.prompt.clone();
    let mut sampler = Sampler::new(job.sampler.clone());
    let mut text = TextPipeline::new(job.stop.clone());
    let mut out = VecDeque::new();
    let mut completion = 0u32;
    let finish_reason = loop {
        if events.is_closed() {
            return Ok(());
        }
        let token = sampler.sample(&mut logits, &context);
        if vocab.ends_generation(token) {
            break FinishReason::Stop;
        }
        completion += 1;
        context.push(token);
        let stopped = text.push(vocab.piece(token), &mut out);
        for event in out.drain(..) {
            if events.send(Ok(event)).is_err() {
                return Ok(());
            }
        }
        if stopped {
            break FinishReason::Stop;
        }
        if completion >= job.max_tokens {
            break FinishReason::Length;
        }
        logits = session.forward(&[token])?;
    };
    text.finish(&mut out);
    let prompt_tokens = u32::try_from(job.prompt.len()).unwrap_or(u32::MAX);
    out.push_back(StreamEvent::Usage { usage: Usage { prompt_tokens, completion_tokens: completion } });
    out.push_back(StreamEvent::done(finish_reason));
    for event in out {
        if events.send(Ok(event)).is_err() {
            break;
        }
    }
    Ok(())
}
