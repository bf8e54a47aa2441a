//! Decoding an OpenAI SSE stream: content and reasoning deltas, tool-call pieces accumulated into
//! whole calls, the usage chunk, error frames, and `[DONE]`.

use std::collections::VecDeque;
use std::sync::Arc;

use capibara_core::Result;
use capibara_core::chat::{FinishReason, StreamEvent, ToolCall, Usage};

use crate::reasoning::{ReasoningSplitter, queue_piece};
use crate::transport::errors;
use crate::transport::framed::{FrameReader, Framed};
use crate::wire::openai::{ChatCompletionChunk, DONE, ToolCallDelta};
use crate::wire::sse::{SseEvent, SseParser};

/// Decoder of one `/v1/chat/completions` stream.
pub(crate) type OpenAiDecoder = Framed<SseParser, ChunkReader>;

/// A decoder for one answer of `backend`.
pub(crate) fn decoder(backend: Arc<str>) -> OpenAiDecoder {
    Framed::new(ChunkReader {
        backend,
        splitter: ReasoningSplitter::new(),
        calls: Vec::new(),
        finish: None,
        complete: false,
    })
}

/// A tool call being assembled from its pieces.
#[derive(Debug, Default)]
struct PartialCall {
    index: u32,
    id: String,
    name: String,
    arguments: String,
}

pub(crate) struct ChunkReader {
    backend: Arc<str>,
    splitter: ReasoningSplitter,
    calls: Vec<PartialCall>,
    finish: Option<FinishReason>,
    complete: bool,
}

impl FrameReader<SseParser> for ChunkReader {
    fn read(&mut self, frame: SseEvent<'_>, out: &mut VecDeque<StreamEvent>) -> Result<()> {
        self.frame(frame, out)
    }

    fn is_complete(&self) -> bool {
        self.complete
    }

    fn ended_early(&mut self, out: &mut VecDeque<StreamEvent>) -> Result<()> {
        // Some servers end the body right after the finish chunk, without `[DONE]`.
        if self.finish.is_some() {
            self.close(out);
            return Ok(());
        }
        Err(errors::ended_early(&self.backend, None))
    }
}

impl ChunkReader {
    fn frame(&mut self, event: SseEvent<'_>, out: &mut VecDeque<StreamEvent>) -> Result<()> {
        if event.data == DONE {
            self.close(out);
            return Ok(());
        }
        if event.event == Some("error") {
            let message = errors::upstream_message(&String::from_utf8_lossy(event.data));
            return Err(errors::error_frame(&self.backend, &message));
        }
        let chunk: ChatCompletionChunk<'_> = serde_json::from_slice(event.data)
            .map_err(|e| errors::malformed(&self.backend, &e, event.data))?;
        if let Some(error) = &chunk.error {
            return Err(errors::error_frame(&self.backend, error.message()));
        }
        if let Some(choice) = chunk.choices.iter().find(|choice| choice.index == 0) {
            let delta = &choice.delta;
            // Servers moving from `reasoning_content` to `reasoning` may send both, with the same text.
            if let Some(reasoning) = delta.reasoning_content.as_ref().or(delta.reasoning.as_ref())
                && !reasoning.is_empty()
            {
                out.push_back(StreamEvent::reasoning(reasoning.as_ref()));
            }
            if let Some(content) = &delta.content
                && !content.is_empty()
            {
                self.splitter.push(content, |piece| queue_piece(piece, out));
            }
            for call in delta.tool_calls.iter().flatten() {
                self.accumulate(call);
            }
            if let Some(reason) = &choice.finish_reason {
                self.finish = Some(FinishReason::from_wire(reason));
                self.flush(out);
            }
        }
        if let Some(usage) = chunk.usage {
            let usage =
                Usage { prompt_tokens: usage.prompt_tokens, completion_tokens: usage.completion_tokens };
            out.push_back(StreamEvent::Usage { usage });
        }
        Ok(())
    }

    fn accumulate(&mut self, piece: &ToolCallDelta<'_>) {
        let position = match self.calls.iter().position(|call| call.index == piece.index) {
            Some(position) => position,
            None => {
                self.calls.push(PartialCall { index: piece.index, ..PartialCall::default() });
                self.calls.len() - 1
            }
        };
        let call = &mut self.calls[position];
        if let Some(id) = &piece.id
            && call.id.is_empty()
        {
            call.id.push_str(id);
        }
        if let Some(function) = &piece.function {
            if let Some(name) = &function.name
                && call.name.is_empty()
            {
                call.name.push_str(name);
            }
            if let Some(arguments) = &function.arguments {
                call.arguments.push_str(arguments);
            }
        }
    }

    /// Emits what is still held: text the splitter kept back and the accumulated tool calls.
    fn flush(&mut self, out: &mut VecDeque<StreamEvent>) {
        self.splitter.finish(|piece| queue_piece(piece, out));
        for call in self.calls.drain(..) {
            let id = if call.id.is_empty() { format!("call_{}", call.index) } else { call.id };
            out.push_back(StreamEvent::ToolCall {
                call: ToolCall { id, name: call.name, arguments: call.arguments },
            });
        }
    }

    fn close(&mut self, out: &mut VecDeque<StreamEvent>) {
        self.flush(out);
        out.push_back(StreamEvent::done(self.finish.take().unwrap_or(FinishReason::Stop)));
        self.complete = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Decoder;

    fn decode_all(input: &str, cuts: &[usize]) -> Result<Vec<StreamEvent>> {
        let mut decoder = decoder(Arc::from("openai@test"));
        let mut out = VecDeque::new();
        let bytes = input.as_bytes();
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
            decoder.decode(&bytes[start..cut], &mut out)?;
            start = cut;
        }
        if !decoder.is_complete() {
            decoder.finish(&mut out)?;
        }
        Ok(out.into_iter().collect())
    }

    const STREAM: &str = concat!(
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
        ": keep-alive\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"Pienso\"},\"finish_reason\":null}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hola \"},\"finish_reason\":null}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_9\",\"type\":\"function\",\"function\":{\"name\":\"clima\",\"arguments\":\"{\\\"ciu\"}}]},\"finish_reason\":null}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"dad\\\":\\\"Lima\\\"}\"}}]},\"finish_reason\":null}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7}}\n\n",
        "data: [DONE]\n\n",
    );

    fn expected() -> Vec<StreamEvent> {
        vec![
            StreamEvent::reasoning("Pienso"),
            StreamEvent::content("Hola "),
            StreamEvent::ToolCall {
                call: ToolCall {
                    id: "call_9".into(),
                    name: "clima".into(),
                    arguments: "{\"ciudad\":\"Lima\"}".into(),
                },
            },
            StreamEvent::Usage { usage: Usage { prompt_tokens: 3, completion_tokens: 4 } },
            StreamEvent::done(FinishReason::ToolCalls),
        ]
    }

    #[test]
    fn a_whole_stream_decodes_at_every_split() {
        for cut in 0..=STREAM.len() {
            assert_eq!(decode_all(STREAM, &[cut]).unwrap(), expected(), "split at {cut}");
        }
    }

    #[test]
    fn error_and_malformed_frames_and_early_ends_are_bad_gateway() {
        let error = decode_all("data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}\n\n", &[])
            .unwrap_err();
        assert!(error.to_string().contains("error frame mid-stream: boom"), "{error}");
        let error = decode_all("data: {not json\n\n", &[]).unwrap_err();
        assert!(error.to_string().contains("malformed frame"), "{error}");
        let error = decode_all("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n", &[])
            .unwrap_err();
        assert!(error.to_string().contains("ended before its final frame"), "{error}");
        assert!(matches!(error, capibara_core::Error::Upstream { status: 502, .. }));
    }

    #[test]
    fn markup_in_content_is_split_and_a_missing_done_after_finish_is_tolerated() {
        let stream = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"<think>hmm\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"</think>Sí\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\n\n",
        );
        assert_eq!(
            decode_all(stream, &[]).unwrap(),
            vec![
                StreamEvent::reasoning("hmm"),
                StreamEvent::content("Sí"),
                StreamEvent::done(FinishReason::Length),
            ]
        );
    }
}
