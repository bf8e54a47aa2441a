//! Decoding a llama.cpp `/completion` SSE stream: raw text (reasoning and tool-call markup split
//! out), the final `stop` chunk with its counts, and error frames.

use std::collections::VecDeque;
use std::sync::Arc;

use capibara_core::Result;
use capibara_core::chat::{FinishReason, StreamEvent, Usage};

use crate::reasoning::{ReasoningSplitter, queue_piece};
use crate::transport::errors;
use crate::transport::framed::{FrameReader, Framed};
use crate::wire::llamacpp::CompletionChunk;
use crate::wire::sse::{SseEvent, SseParser};

/// Decoder of one `/completion` stream.
pub(crate) type LlamaCppDecoder = Framed<SseParser, ChunkReader>;

/// A decoder for one answer of `backend`.
pub(crate) fn decoder(backend: Arc<str>) -> LlamaCppDecoder {
    Framed::new(ChunkReader { backend, splitter: ReasoningSplitter::new(), complete: false })
}

pub(crate) struct ChunkReader {
    backend: Arc<str>,
    splitter: ReasoningSplitter,
    complete: bool,
}

impl FrameReader<SseParser> for ChunkReader {
    fn read(&mut self, frame: SseEvent<'_>, out: &mut VecDeque<StreamEvent>) -> Result<()> {
        self.frame(frame, out)
    }

    fn is_complete(&self) -> bool {
        self.complete
    }

    fn ended_early(&mut self, _out: &mut VecDeque<StreamEvent>) -> Result<()> {
        Err(errors::ended_early(&self.backend, None))
    }
}

impl ChunkReader {
    fn frame(&mut self, event: SseEvent<'_>, out: &mut VecDeque<StreamEvent>) -> Result<()> {
        let chunk: CompletionChunk<'_> = serde_json::from_slice(event.data)
            .map_err(|e| errors::malformed(&self.backend, &e, event.data))?;
        if let Some(error) = &chunk.error {
            return Err(errors::error_frame(&self.backend, error.message()));
        }
        if !chunk.content.is_empty() {
            self.splitter.push(&chunk.content, |piece| queue_piece(piece, out));
        }
        if let Some(reason) = chunk.stop_reason() {
            self.splitter.finish(|piece| queue_piece(piece, out));
            if chunk.tokens_evaluated.is_some() || chunk.tokens_predicted.is_some() {
                let usage = Usage {
                    prompt_tokens: chunk.tokens_evaluated.unwrap_or(0),
                    completion_tokens: chunk.tokens_predicted.unwrap_or(0),
                };
                out.push_back(StreamEvent::Usage { usage });
            }
            if let Some(timings) = &chunk.timings {
                tracing::debug!(
                    backend = %self.backend,
                    prompt_ms = timings.prompt_ms,
                    predicted_per_second = timings.predicted_per_second,
                    "llama.cpp answer timings"
                );
            }
            out.push_back(StreamEvent::done(FinishReason::from_wire(reason)));
            self.complete = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Decoder;
    use capibara_core::chat::ToolCall;

    fn decode_all(input: &str, cut: usize) -> Result<Vec<StreamEvent>> {
        let mut decoder = decoder(Arc::from("llamacpp@test"));
        let mut out = VecDeque::new();
        decoder.decode(&input.as_bytes()[..cut], &mut out)?;
        decoder.decode(&input.as_bytes()[cut..], &mut out)?;
        if !decoder.is_complete() {
            decoder.finish(&mut out)?;
        }
        Ok(out.into_iter().collect())
    }

    fn frame(content: &str) -> String {
        format!("data: {}\n\n", serde_json::json!({"content": content, "stop": false, "index": 0}))
    }

    #[test]
    fn harmony_markup_in_frames_is_split_at_every_byte() {
        let mut input: String = [
            "<|channel|>",
            "analysis",
            "<|message|>",
            "Pienso.",
            "<|end|>",
            "<|start|>",
            "assistant",
            "<|channel|>",
            "final",
            "<|message|>",
            "Hola ",
            "mundo",
        ]
        .iter()
        .map(|piece| frame(piece))
        .collect();
        input.push_str("data: {\"content\":\"\",\"stop\":true,\"stop_type\":\"eos\",\"tokens_predicted\":7,\"tokens_evaluated\":12,\"timings\":{\"predicted_per_second\":30.0}}\n\n");
        let expected = vec![
            StreamEvent::reasoning("Pienso."),
            StreamEvent::content("Hola "),
            StreamEvent::content("mundo"),
            StreamEvent::Usage { usage: Usage { prompt_tokens: 12, completion_tokens: 7 } },
            StreamEvent::done(FinishReason::Stop),
        ];
        for cut in 0..=input.len() {
            assert_eq!(decode_all(&input, cut).unwrap(), expected, "split at {cut}");
        }
    }

    #[test]
    fn a_harmony_tool_call_cut_by_its_stop_string_is_completed() {
        let mut input = frame(
            "<|start|>assistant<|channel|>commentary to=functions.buscar <|constrain|>json<|message|>{\"q\":\"x\"}",
        );
        input.push_str("data: {\"content\":\"\",\"stop\":true,\"stop_type\":\"word\",\"stopping_word\":\"<|call|>\"}\n\n");
        assert_eq!(
            decode_all(&input, 0).unwrap(),
            vec![
                StreamEvent::ToolCall {
                    call: ToolCall {
                        id: "call_0".into(),
                        name: "buscar".into(),
                        arguments: "{\"q\":\"x\"}".into()
                    }
                },
                StreamEvent::done(FinishReason::Stop),
            ]
        );
    }

    #[test]
    fn older_stop_flags_errors_and_early_ends() {
        let input =
            format!("{}data: {{\"content\":\"\",\"stop\":true,\"stopped_limit\":true}}\n\n", frame("a"));
        assert_eq!(decode_all(&input, 0).unwrap().last(), Some(&StreamEvent::done(FinishReason::Length)));
        let error = decode_all(
            "data: {\"error\":{\"code\":500,\"message\":\"boom\",\"type\":\"server_error\"}}\n\n",
            0,
        )
        .unwrap_err();
        assert!(error.to_string().contains("error frame mid-stream: boom"));
        let error = decode_all(&frame("a"), 0).unwrap_err();
        assert!(error.to_string().contains("ended before its final frame"));
    }
}
