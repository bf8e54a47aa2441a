"""Chat with the embedded local model (SmolLM2-135M-Instruct on candle), no upstream at all."""

from __future__ import annotations

from pathlib import Path

import capibara


def test_the_local_model_answers_whole_and_streamed(tmp_path: Path) -> None:
    config = {"storage": {"data_dir": str(tmp_path)}, "embeddings": {"kind": "none"}}
    with capibara.Capibara.from_config(config) as app:
        answer = app.chat("¿Cuál es la capital de España?", max_tokens=12, temperature=0.0, seed=1)
        assert answer["content"].strip(), answer
        assert answer["finish_reason"] in {"stop", "length"}
        assert "smollm" in answer["model"].lower(), answer["model"]
        events = list(app.stream_chat("¿Cuál es la capital de España?", max_tokens=12, temperature=0.0, seed=1))
        streamed = "".join(e["delta"] for e in events if e["type"] == "content")
        assert events[-1]["type"] == "done"
        # Greedy decoding: the stream is the same answer.
        assert streamed == answer["content"]
