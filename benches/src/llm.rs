//! The local LLM benchmark: prefill and decode tokens/s of Capibara's [`LocalLlm`] against
//! llama.cpp (llama-cpp-python) on the same GGUF file, and the re-quantization comparison.
//!
//! `benches/llm/run` drives it: `capibara-llm-bench prompt` writes the benchmark prompt (rendered
//! and tokenized by Capibara), `capibara-llm-bench run` measures Capibara, `llamacpp_bench.py`
//! measures llama.cpp the same way, `capibara-llm-bench quant` compares Q4_0 and Q8_0 with the
//! shipped Q4_1, and `capibara-llm-bench report` writes the Markdown report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};
use capibara_core::chat::{ChatRequest, FinishReason, Message, SamplingOptions, StreamEvent};
use capibara_core::llm::LlmBackend;
use capibara_llm::local::{LocalLlm, LocalLlmOptions, QuantType};
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};

/// The long text the benchmark prompt asks about (about 400 tokens with the chat markup).
const PROMPT_TEXT: &str = include_str!("../llm/prompt.txt");

/// The benchmark's conversation.
pub fn messages() -> Vec<Message> {
    vec![
        Message::system("You are a helpful assistant. Answer at length and in detail."),
        Message::user(format!(
            "Read the following text about capybaras and then write a long, detailed essay about it.\n\n{PROMPT_TEXT}"
        )),
    ]
}

/// The prompt as both engines receive it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    /// The rendered chat template.
    pub text: String,
    /// Capibara's token ids for it.
    pub ids: Vec<u32>,
}

/// One measured generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// `capibara` or `llama.cpp`.
    pub engine: String,
    /// Threads the engine used.
    pub threads: usize,
    /// Which repetition (warm-up excluded).
    pub repetition: usize,
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Request to first generated token.
    pub prefill_seconds: f64,
    /// Tokens generated.
    pub completion_tokens: usize,
    /// First to last generated token.
    pub decode_seconds: f64,
}

impl Sample {
    /// Prompt tokens per second of time to the first token.
    pub fn prefill_rate(&self) -> f64 {
        self.prompt_tokens as f64 / self.prefill_seconds
    }

    /// Generated tokens per second after the first.
    pub fn decode_rate(&self) -> f64 {
        self.completion_tokens.saturating_sub(1) as f64 / self.decode_seconds
    }
}

/// Loads `model` for the benchmark: one generation at a time with `threads` threads and a
/// context window large enough for the prompt and answer.
pub fn load(model: &Path, threads: usize) -> anyhow::Result<LocalLlm> {
    let mut options = LocalLlmOptions::new(model).with_threads(threads);
    options.max_concurrent = 1;
    let llm = LocalLlm::load(options)?;
    let actual = llm.threads();
    if actual.quantized != threads || actual.rayon != threads {
        bail!(
            "candle uses {actual:?} threads, not {threads}: run with CANDLE_NUM_THREADS={threads} RAYON_NUM_THREADS={threads}"
        );
    }
    Ok(llm)
}

/// The benchmark prompt rendered and tokenized by `llm`.
pub fn prompt(llm: &LocalLlm) -> anyhow::Result<Prompt> {
    let (text, ids) = llm.prompt(&ChatRequest::new(messages()))?;
    Ok(Prompt { text, ids })
}

/// A greedy request for `tokens` tokens of the benchmark conversation (or `messages`).
pub fn greedy_request(messages: Vec<Message>, tokens: u32) -> ChatRequest {
    let mut request = ChatRequest::new(messages);
    request.options = SamplingOptions {
        temperature: Some(0.0),
        max_tokens: Some(tokens),
        repeat_penalty: Some(1.0),
        ..SamplingOptions::default()
    };
    request
}

/// Streams one greedy answer through the [`LlmBackend`] path and times it.
pub async fn measure(llm: &LocalLlm, request: ChatRequest, repetition: usize) -> anyhow::Result<Sample> {
    let started = Instant::now();
    let mut stream = llm.chat_stream(request).await?;
    let mut first = None;
    let mut usage = None;
    while let Some(event) = stream.next().await {
        match event? {
            StreamEvent::Content { .. } | StreamEvent::Reasoning { .. } => {
                first.get_or_insert_with(Instant::now);
            }
            StreamEvent::Usage { usage: counted } => usage = Some((counted, Instant::now())),
            StreamEvent::Done { .. } => break,
            StreamEvent::ToolCall { .. } => {}
        }
    }
    let first = first.context("the answer had no text")?;
    let (usage, last) = usage.context("the answer had no usage")?;
    Ok(Sample {
        engine: "capibara".into(),
        threads: llm.threads().quantized,
        repetition,
        prompt_tokens: usage.prompt_tokens as usize,
        prefill_seconds: first.duration_since(started).as_secs_f64(),
        completion_tokens: usage.completion_tokens as usize,
        decode_seconds: last.duration_since(first).as_secs_f64(),
    })
}

/// Greedy token ids of one answer, collected from the stream's text (re-tokenized) — used only
/// to compare quantizations, so the exact ids come from [`LocalLlm::tokenize`] of the answer.
pub async fn greedy_answer(
    llm: &LocalLlm,
    messages: Vec<Message>,
    tokens: u32,
) -> anyhow::Result<(String, FinishReason)> {
    let answer = llm.chat(greedy_request(messages, tokens)).await?;
    Ok((answer.content, answer.finish_reason))
}

/// One line of the quantization comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantResult {
    /// `Q4_1` (the shipped file), `Q4_0` or `Q8_0`.
    pub quant: String,
    /// File size in bytes.
    pub bytes: u64,
    /// Median decode tokens/s, one thread.
    pub decode_rate: f64,
    /// For each comparison prompt: leading answer tokens equal to the Q4_1 answer's.
    pub agreement: Vec<usize>,
    /// Tokens compared per prompt.
    pub compared: usize,
}

/// Prompts of the quantization comparison.
pub fn agreement_prompts() -> Vec<Vec<Message>> {
    [
        "What is the capital of France? Answer in one sentence.",
        "Write a short poem about the sea.",
        "Explain what a rodent is to a child.",
        "¿Cuál es el animal más grande del mundo?",
        "List three uses of the Rust programming language.",
    ]
    .into_iter()
    .map(|question| vec![Message::user(question)])
    .collect()
}

/// Re-quantizes `source` (the shipped Q4_1 file) to Q4_0 and Q8_0 in `work_dir`, then measures
/// each file's decode speed and how many leading greedy tokens agree with the source's.
pub async fn compare_quantizations(
    source: &Path,
    work_dir: &Path,
    tokens: u32,
    repetitions: usize,
) -> anyhow::Result<Vec<QuantResult>> {
    std::fs::create_dir_all(work_dir)?;
    let mut files: Vec<(String, PathBuf)> = vec![("Q4_1".into(), source.to_owned())];
    for quant in [QuantType::Q4_0, QuantType::Q8_0] {
        let path = work_dir.join(format!("SmolLM2-135M-Instruct.{}.gguf", quant.name()));
        capibara_llm::local::requantize(source, &path, quant)?;
        files.push((quant.name().into(), path));
    }
    let mut reference: Vec<Vec<u32>> = Vec::new();
    let mut results = Vec::new();
    for (quant, path) in files {
        let llm = load(&path, 1)?;
        let mut answers = Vec::new();
        for messages in agreement_prompts() {
            let (text, _) = greedy_answer(&llm, messages, tokens).await?;
            answers.push(llm.tokenize(&text)?);
        }
        let mut rates = Vec::new();
        measure(&llm, greedy_request(messages(), 128), 0).await?;
        for repetition in 1..=repetitions {
            rates.push(measure(&llm, greedy_request(messages(), 128), repetition).await?.decode_rate());
        }
        if reference.is_empty() {
            reference = answers.clone();
        }
        let agreement = answers
            .iter()
            .zip(&reference)
            .map(|(answer, reference)| answer.iter().zip(reference).take_while(|(a, b)| a == b).count())
            .collect();
        results.push(QuantResult {
            quant,
            bytes: std::fs::metadata(&path)?.len(),
            decode_rate: median(rates),
            agreement,
            compared: tokens as usize,
        });
    }
    Ok(results)
}

/// Median of `values` (0 when empty).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Medians of one engine at one thread count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Medians {
    /// Prefill tokens/s.
    pub prefill: f64,
    /// Decode tokens/s.
    pub decode: f64,
    /// Repetitions.
    pub runs: usize,
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Median tokens generated.
    pub completion_tokens: usize,
}

/// Groups samples by (threads, engine) and takes medians.
pub fn medians(samples: &[Sample]) -> BTreeMap<(usize, String), Medians> {
    let mut groups: BTreeMap<(usize, String), Vec<&Sample>> = BTreeMap::new();
    for sample in samples {
        groups.entry((sample.threads, sample.engine.clone())).or_default().push(sample);
    }
    groups
        .into_iter()
        .map(|(key, group)| {
            let medians = Medians {
                prefill: median(group.iter().map(|s| s.prefill_rate()).collect()),
                decode: median(group.iter().map(|s| s.decode_rate()).collect()),
                runs: group.len(),
                prompt_tokens: group.first().map_or(0, |s| s.prompt_tokens),
                completion_tokens: median(group.iter().map(|s| s.completion_tokens as f64).collect())
                    as usize,
            };
            (key, medians)
        })
        .collect()
}

/// Facts printed at the top of the report.
#[derive(Debug, Clone, Default)]
pub struct ReportContext {
    /// Run start, UTC.
    pub started: String,
    /// CPU model and core count.
    pub machine: String,
    /// Capibara revision.
    pub revision: String,
    /// llama-cpp-python version.
    pub llama_cpp_python: String,
    /// The GGUF file measured and its sha256.
    pub model: String,
    /// Load average before the run.
    pub load_before: String,
}

/// The Markdown report.
pub fn report(context: &ReportContext, samples: &[Sample], quants: &[QuantResult]) -> String {
    let medians = medians(samples);
    let mut out = String::new();
    out.push_str("# Local LLM: Capibara (candle) vs llama.cpp, prefill and decode\n\n");
    out.push_str(&format!(
        "- Run: {}\n- Machine: {}\n- Capibara: {}\n- llama.cpp: llama-cpp-python {} (built from source by pip, CPU, native instruction set)\n- Model: {}\n- Load average before the run: {}\n",
        context.started, context.machine, context.revision, context.llama_cpp_python, context.model, context.load_before
    ));
    out.push_str(
        "- Method: the same chat prompt (rendered and tokenized by Capibara; llama.cpp's tokenization checked equal) \
         answered greedily, 128 tokens, one process per engine and thread count, one warm-up then the repetitions; \
         Capibara through `LocalLlm::chat_stream` (the real path), llama.cpp through `Llama.generate`. \
         Prefill = prompt tokens / time to the first token; decode = (tokens − 1) / (last token − first token). Medians.\n\n",
    );
    out.push_str("| threads | engine | runs | prompt tokens | prefill tok/s | decode tok/s | tokens generated |\n|---|---|---|---|---|---|---|\n");
    for ((threads, engine), m) in &medians {
        out.push_str(&format!(
            "| {threads} | {engine} | {} | {} | {:.1} | {:.1} | {} |\n",
            m.runs, m.prompt_tokens, m.prefill, m.decode, m.completion_tokens
        ));
    }
    out.push_str("\n| threads | prefill ratio (Capibara / llama.cpp) | decode ratio (Capibara / llama.cpp) |\n|---|---|---|\n");
    let threads: Vec<usize> =
        medians.keys().map(|(t, _)| *t).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    for t in threads {
        if let (Some(ours), Some(theirs)) =
            (medians.get(&(t, "capibara".into())), medians.get(&(t, "llama.cpp".into())))
        {
            out.push_str(&format!(
                "| {t} | {:.2}× | {:.2}× |\n",
                ours.prefill / theirs.prefill,
                ours.decode / theirs.decode
            ));
        }
    }
    if !quants.is_empty() {
        out.push_str("\n## Re-quantizing the shipped Q4_1 file (Capibara, one thread)\n\n");
        out.push_str("| file | size (MB) | decode tok/s | leading greedy tokens equal to Q4_1's, per prompt |\n|---|---|---|---|\n");
        for q in quants {
            let agreement: Vec<String> = q.agreement.iter().map(|a| format!("{a}/{}", q.compared)).collect();
            out.push_str(&format!(
                "| {} | {:.1} | {:.1} | {} |\n",
                q.quant,
                q.bytes as f64 / 1e6,
                q.decode_rate,
                agreement.join(", ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(engine: &str, threads: usize, prefill: f64, decode: f64) -> Sample {
        Sample {
            engine: engine.into(),
            threads,
            repetition: 1,
            prompt_tokens: 400,
            prefill_seconds: 400.0 / prefill,
            completion_tokens: 129,
            decode_seconds: 128.0 / decode,
        }
    }

    #[test]
    fn report_has_medians_and_ratios() {
        let samples = vec![
            sample("capibara", 1, 800.0, 80.0),
            sample("capibara", 1, 1000.0, 90.0),
            sample("capibara", 1, 900.0, 70.0),
            sample("llama.cpp", 1, 1000.0, 100.0),
        ];
        let text = report(&ReportContext::default(), &samples, &[]);
        assert!(text.contains("| 1 | capibara | 3 | 400 | 900.0 | 80.0 | 129 |"), "{text}");
        assert!(text.contains("| 1 | 0.90× | 0.80× |"), "{text}");
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(vec![]), 0.0);
    }
}
