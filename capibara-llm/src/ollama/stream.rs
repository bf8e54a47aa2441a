//! Decoding an Ollama NDJSON stream (`/api/chat` or `/api/generate`): content, `thinking`, tool
//! calls, and the final `done` line with its counts and nanosecond durations.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;

use capibara_core::Result;
use capibara_core::chat::{FinishReason, StreamEvent, ToolCall, Usage};
use capibara_core::config::OllamaEndpoint;

use crate::reasoning::{ReasoningSplitter, queue_piece};
use crate::transport::errors;
use crate::transport::framed::{FrameReader, Framed};
use crate::wire::ndjson::LineSplitter;
use crate::wire::ollama::{ChatResponse, GenerateResponse, ToolCall as WireToolCall};

/// Decoder of one `/api/chat` or `/api/generate` stream.
pub(crate) type OllamaDecoder = Framed<LineSplitter, LineReader>;

/// A decoder for one answer of `backend` from `endpoint`.
pub(crate) fn decoder(backend: Arc<str>, endpoint: OllamaEndpoint) -> OllamaDecoder {
    Framed::new(LineReader {
        backend,
        endpoint,
        splitter: ReasoningSplitter::new(),
        calls: 0,
        complete: false,
    })
}

pub(crate) struct LineReader {
    backend: Arc<str>,
    endpoint: OllamaEndpoint,
    splitter: ReasoningSplitter,
    calls: u32,
    complete: bool,
}

/// What one line carries, whichever endpoint wrote it.
struct Line<'a> {
    content: Cow<'a, str>,
    thinking: Option<Cow<'a, str>>,
    tool_calls: Option<Vec<WireToolCall>>,
    done: bool,
    done_reason: Option<Cow<'a, str>>,
    prompt_eval_count: Option<u32>,
    eval_count: Option<u32>,
    durations: [Option<u64>; 4],
    error: Option<String>,
}

impl FrameReader<LineSplitter> for LineReader {
    fn read(&mut self, frame: &[u8], out: &mut VecDeque<StreamEvent>) -> Result<()> {
        self.line(frame, out)
    }

    fn is_complete(&self) -> bool {
        self.complete
    }

    fn ended_early(&mut self, _out: &mut VecDeque<StreamEvent>) -> Result<()> {
        Err(errors::ended_early(&self.backend, None))
    }
}

impl LineReader {
    fn line(&mut self, bytes: &[u8], out: &mut VecDeque<StreamEvent>) -> Result<()> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(()); // keep-alive
        }
        let malformed = |e: serde_json::Error| errors::malformed(&self.backend, &e, bytes);
        let line = match self.endpoint {
            OllamaEndpoint::Chat => {
                let line: ChatResponse<'_> = serde_json::from_slice(bytes).map_err(malformed)?;
                let message = line.message.unwrap_or_default();
                Line {
                    content: message.content,
                    thinking: message.thinking,
                    tool_calls: message.tool_calls,
                    done: line.done,
                    done_reason: line.done_reason,
                    prompt_eval_count: line.prompt_eval_count,
                    eval_count: line.eval_count,
                    durations: [
                        line.total_duration,
                        line.load_duration,
                        line.prompt_eval_duration,
                        line.eval_duration,
                    ],
                    error: line.error,
                }
            }
            OllamaEndpoint::Generate => {
                let line: GenerateResponse<'_> = serde_json::from_slice(bytes).map_err(malformed)?;
                Line {
                    content: line.response,
                    thinking: line.thinking,
                    tool_calls: None,
                    done: line.done,
                    done_reason: line.done_reason,
                    prompt_eval_count: line.prompt_eval_count,
                    eval_count: line.eval_count,
                    durations: [
                        line.total_duration,
                        line.load_duration,
                        line.prompt_eval_duration,
                        line.eval_duration,
                    ],
                    error: line.error,
                }
            }
        };
        self.apply(line, out)
    }

    fn apply(&mut self, line: Line<'_>, out: &mut VecDeque<StreamEvent>) -> Result<()> {
        if let Some(error) = &line.error {
            return Err(errors::error_frame(&self.backend, error));
        }
        if let Some(thinking) = line.thinking.filter(|t| !t.is_empty()) {
            out.push_back(StreamEvent::reasoning(thinking));
        }
        if !line.content.is_empty() {
            self.splitter.push(&line.content, |piece| queue_piece(piece, out));
        }
        for call in line.tool_calls.into_iter().flatten() {
            let id = call.id.unwrap_or_else(|| format!("call_{}", self.calls));
            self.calls += 1;
            let arguments = match call.function.arguments {
                serde_json::Value::String(text) => text,
                serde_json::Value::Null => "{}".to_owned(),
                other => other.to_string(),
            };
            out.push_back(StreamEvent::ToolCall {
                call: ToolCall { id, name: call.function.name, arguments },
            });
        }
        if line.done {
            self.splitter.finish(|piece| queue_piece(piece, out));
            if line.prompt_eval_count.is_some() || line.eval_count.is_some() {
                let usage = Usage {
                    prompt_tokens: line.prompt_eval_count.unwrap_or(0),
                    completion_tokens: line.eval_count.unwrap_or(0),
                };
                out.push_back(StreamEvent::Usage { usage });
            }
            let [total, load, prompt_eval, eval] =
                line.durations.map(|ns| ns.map(std::time::Duration::from_nanos));
            tracing::debug!(backend = %self.backend, ?total, ?load, ?prompt_eval, ?eval, "ollama answer timings");
            let reason = line.done_reason.as_deref().map_or(FinishReason::Stop, FinishReason::from_wire);
            out.push_back(StreamEvent::done(reason));
            self.complete = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Decoder;

    fn decode_all(endpoint: OllamaEndpoint, input: &str, cut: usize) -> Result<Vec<StreamEvent>> {
        let mut decoder = decoder(Arc::from("ollama@test"), endpoint);
        let mut out = VecDeque::new();
        decoder.decode(&input.as_bytes()[..cut], &mut out)?;
        decoder.decode(&input.as_bytes()[cut..], &mut out)?;
        if !decoder.is_complete() {
            decoder.finish(&mut out)?;
        }
        Ok(out.into_iter().collect())
    }

    #[test]
    fn chat_stream_at_every_split() {
        let input = concat!(
            "{\"model\":\"m\",\"created_at\":\"t\",\"message\":{\"role\":\"assistant\",\"content\":\"\",\"thinking\":\"Pienso\"},\"done\":false}\n",
            "\n",
            "{\"model\":\"m\",\"created_at\":\"t\",\"message\":{\"role\":\"assistant\",\"content\":\"Hola\"},\"done\":false}\n",
            "{\"model\":\"m\",\"created_at\":\"t\",\"message\":{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":{\"name\":\"clima\",\"arguments\":{\"ciudad\":\"Lima\"}}}]},\"done\":false}\n",
            "{\"model\":\"m\",\"created_at\":\"t\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"length\",\"total_duration\":9,\"prompt_eval_count\":5,\"eval_count\":2}\n",
        );
        let expected = vec![
            StreamEvent::reasoning("Pienso"),
            StreamEvent::content("Hola"),
            StreamEvent::ToolCall {
                call: ToolCall {
                    id: "call_0".into(),
                    name: "clima".into(),
                    arguments: "{\"ciudad\":\"Lima\"}".into(),
                },
            },
            StreamEvent::Usage { usage: Usage { prompt_tokens: 5, completion_tokens: 2 } },
            StreamEvent::done(FinishReason::Length),
        ];
        for cut in 0..=input.len() {
            assert_eq!(decode_all(OllamaEndpoint::Chat, input, cut).unwrap(), expected, "split at {cut}");
        }
    }

    #[test]
    fn generate_stream_and_failures() {
        let input = concat!(
            "{\"response\":\"\",\"thinking\":\"mm\",\"done\":false}\n",
            "{\"response\":\"Sí\",\"done\":false}\n",
            "{\"response\":\"\",\"done\":true,\"done_reason\":\"stop\",\"context\":[1,2,3]}\n",
        );
        assert_eq!(
            decode_all(OllamaEndpoint::Generate, input, 0).unwrap(),
            vec![
                StreamEvent::reasoning("mm"),
                StreamEvent::content("Sí"),
                StreamEvent::done(FinishReason::Stop),
            ]
        );
        let error = decode_all(OllamaEndpoint::Generate, "{\"error\":\"out of memory\"}\n", 0).unwrap_err();
        assert!(error.to_string().contains("error frame mid-stream: out of memory"));
        let error =
            decode_all(OllamaEndpoint::Generate, "{\"response\":\"a\",\"done\":false}\n", 0).unwrap_err();
        assert!(error.to_string().contains("ended before its final frame"));
        let error = decode_all(OllamaEndpoint::Chat, "not json\n", 0).unwrap_err();
        assert!(error.to_string().contains("malformed frame"));
    }
}
