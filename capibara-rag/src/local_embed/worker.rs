//! The embedder's own threads: one scheduler thread that owns the model and takes turns between
//! requests one batch at a time, plus `threads − 1` helpers it borrows for each batch.
//!
//! Requests are served round-robin at batch granularity, so a one-sentence request waits for at
//! most one batch of a 2,048-text request that arrived before it. A request whose caller went away
//! (its future dropped) is abandoned at the next batch boundary.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use capibara_core::{Error, Result};
use tokio::sync::oneshot;

use super::forward::{Bert, Scratch};
use super::tokenize::SentenceTokenizer;

/// Vectors of one request, in input order.
pub(crate) type Reply = Result<Vec<Vec<f32>>>;

/// One `embed` call waiting for the scheduler.
pub(crate) struct Job {
    pub(crate) texts: Vec<String>,
    pub(crate) reply: oneshot::Sender<Reply>,
}

/// The model and how to run it.
pub(crate) struct Engine {
    pub(crate) bert: Bert,
    pub(crate) tokenizer: SentenceTokenizer,
    pub(crate) batch_size: usize,
    pub(crate) threads: usize,
}

/// Handle to the scheduler thread; dropping it lets the thread finish and exit.
#[derive(Debug)]
pub(crate) struct Worker {
    jobs: mpsc::Sender<Job>,
    pending: Arc<AtomicUsize>,
}

impl Worker {
    /// Starts the scheduler thread.
    pub(crate) fn start(engine: Engine) -> Result<Self> {
        let (jobs, inbox) = mpsc::channel();
        let pending = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&pending);
        std::thread::Builder::new()
            .name("capibara-embed".into())
            .spawn(move || Scheduler::new(engine, inbox, counter).run())
            .map_err(|e| Error::internal(format!("cannot start the embedding thread: {e}")))?;
        Ok(Self { jobs, pending })
    }

    /// Queues a request; the answer arrives on the returned receiver.
    pub(crate) fn submit(&self, texts: Vec<String>) -> Result<oneshot::Receiver<Reply>> {
        let (reply, answer) = oneshot::channel();
        self.pending.fetch_add(1, Ordering::SeqCst);
        if self.jobs.send(Job { texts, reply }).is_err() {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            return Err(Error::unavailable("the embedding thread has stopped"));
        }
        Ok(answer)
    }

    /// Requests queued or in progress (abandoned ones count until the scheduler notices).
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }
}

/// A request being computed.
struct Active {
    reply: oneshot::Sender<Reply>,
    ids: Vec<Vec<u32>>,
    /// Input indices, longest first: consecutive batches hold similar lengths.
    order: Vec<usize>,
    /// How many of `order` are done.
    next: usize,
    vectors: Vec<Vec<f32>>,
}

struct Scheduler {
    engine: Engine,
    inbox: mpsc::Receiver<Job>,
    pending: Arc<AtomicUsize>,
    active: VecDeque<Active>,
    scratch: Vec<Scratch>,
}

impl Scheduler {
    fn new(engine: Engine, inbox: mpsc::Receiver<Job>, pending: Arc<AtomicUsize>) -> Self {
        let scratch = (0..engine.threads).map(|_| Scratch::default()).collect();
        Self { engine, inbox, pending, active: VecDeque::new(), scratch }
    }

    fn run(mut self) {
        loop {
            if self.active.is_empty() {
                match self.inbox.recv() {
                    Ok(job) => self.admit(job),
                    Err(mpsc::RecvError) => return,
                }
            }
            while let Ok(job) = self.inbox.try_recv() {
                self.admit(job);
            }
            let Some(mut request) = self.active.pop_front() else { continue };
            if request.reply.is_closed() {
                self.finish();
                continue;
            }
            match self.guarded(|s| s.step(&mut request)) {
                Ok(false) => self.active.push_back(request),
                Ok(true) => {
                    let vectors = std::mem::take(&mut request.vectors);
                    self.answer(request.reply, Ok(vectors));
                }
                Err(error) => self.answer(request.reply, Err(error)),
            }
        }
    }

    fn finish(&self) {
        self.pending.fetch_sub(1, Ordering::SeqCst);
    }

    /// Ends a request with its answer. The count drops first: a caller that got its answer must
    /// never still see its own request as pending.
    fn answer(&self, reply: oneshot::Sender<Reply>, result: Reply) {
        self.finish();
        let _ = reply.send(result);
    }

    /// Tokenizes a new request and puts it at the back of the round.
    fn admit(&mut self, job: Job) {
        if job.reply.is_closed() {
            self.finish();
            return;
        }
        match self.guarded(|s| s.tokenize(&job.texts)) {
            Ok(ids) => {
                let mut order: Vec<usize> = (0..ids.len()).collect();
                order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
                let vectors = vec![Vec::new(); ids.len()];
                self.active.push_back(Active { reply: job.reply, ids, order, next: 0, vectors });
            }
            Err(error) => self.answer(job.reply, Err(error)),
        }
    }

    /// Runs `f`, turning a panic into an internal error so the thread keeps serving.
    fn guarded<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        std::panic::catch_unwind(AssertUnwindSafe(|| f(self)))
            .unwrap_or_else(|_| Err(Error::internal("the embedding computation panicked")))
    }

    /// Token ids of every text, split across the compute threads.
    fn tokenize(&self, texts: &[String]) -> Result<Vec<Vec<u32>>> {
        let tokenizer = &self.engine.tokenizer;
        let parts = self.engine.threads.min(texts.len().div_ceil(64)).max(1);
        let chunk = texts.len().div_ceil(parts).max(1);
        let chunks: Vec<&[String]> = texts.chunks(chunk).collect();
        let encode = |part: &&[String]| part.iter().map(|t| tokenizer.encode(t)).collect::<Result<Vec<_>>>();
        let results = on_threads(&chunks, encode);
        let mut ids = Vec::with_capacity(texts.len());
        for part in results {
            ids.extend(part?);
        }
        Ok(ids)
    }

    /// Computes the next batch of `request`; true when the request is complete.
    fn step(&mut self, request: &mut Active) -> Result<bool> {
        let end = (request.next + self.engine.batch_size).min(request.order.len());
        let batch = &request.order[request.next..end];
        let shards = shard(batch, &request.ids, self.engine.threads);
        let bert = &self.engine.bert;
        let ids = &request.ids;
        let mut work: Vec<(&[usize], &mut Scratch)> =
            shards.iter().map(Vec::as_slice).zip(self.scratch.iter_mut()).collect();
        let results = on_threads_mut(&mut work, |(indices, scratch)| {
            let sequences: Vec<&[u32]> = indices.iter().map(|&i| ids[i].as_slice()).collect();
            bert.embed(&sequences, scratch)
        });
        for (indices, vectors) in shards.iter().zip(results) {
            for (&i, vector) in indices.iter().zip(vectors?) {
                request.vectors[i] = vector;
            }
        }
        request.next = end;
        Ok(end == request.order.len())
    }
}

/// Splits a batch into at most `threads` shards of about equal cost (greedy, longest first).
fn shard(batch: &[usize], ids: &[Vec<u32>], threads: usize) -> Vec<Vec<usize>> {
    let parts = threads.min(batch.len()).max(1);
    let mut shards = vec![Vec::new(); parts];
    let mut load = vec![0usize; parts];
    // Dense layers cost ~12·hidden per token, attention ~2·length: weigh tokens by both.
    let cost = |n: usize| n * (4608 + 2 * n);
    for &i in batch {
        let lightest = (0..parts).min_by_key(|&p| load[p]).unwrap_or(0);
        load[lightest] += cost(ids[i].len());
        shards[lightest].push(i);
    }
    shards
}

/// Runs `f` on every item, the first on this thread and the others on scoped threads.
fn on_threads<I: Sync, T: Send>(items: &[I], f: impl Fn(&I) -> Result<T> + Sync) -> Vec<Result<T>> {
    let Some((first, rest)) = items.split_first() else { return Vec::new() };
    std::thread::scope(|scope| {
        let handles: Vec<_> = rest.iter().map(|item| scope.spawn(|| f(item))).collect();
        let mut results = vec![f(first)];
        results.extend(handles.into_iter().map(joined));
        results
    })
}

/// [`on_threads`] over items each thread may change (its own scratch buffers).
fn on_threads_mut<I: Send, T: Send>(
    items: &mut [I],
    f: impl Fn(&mut I) -> Result<T> + Sync,
) -> Vec<Result<T>> {
    let Some((first, rest)) = items.split_first_mut() else { return Vec::new() };
    std::thread::scope(|scope| {
        let f = &f;
        let handles: Vec<_> = rest.iter_mut().map(|item| scope.spawn(move || f(item))).collect();
        let mut results = vec![f(first)];
        results.extend(handles.into_iter().map(joined));
        results
    })
}

fn joined<T>(handle: std::thread::ScopedJoinHandle<'_, Result<T>>) -> Result<T> {
    handle.join().unwrap_or_else(|_| Err(Error::internal("an embedding thread panicked")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_balance_cost_and_keep_every_index() {
        let ids: Vec<Vec<u32>> = [256usize, 200, 30, 20, 10, 10, 5, 3].iter().map(|&n| vec![1; n]).collect();
        let batch: Vec<usize> = (0..ids.len()).collect();
        let shards = shard(&batch, &ids, 2);
        let mut all: Vec<usize> = shards.concat();
        all.sort_unstable();
        assert_eq!(all, batch);
        let tokens: Vec<usize> = shards.iter().map(|s| s.iter().map(|&i| ids[i].len()).sum()).collect();
        assert!(tokens[0].abs_diff(tokens[1]) <= 60, "{tokens:?}");
        assert_eq!(shard(&batch[..1], &ids, 4).len(), 1);
    }
}
