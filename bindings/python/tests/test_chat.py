"""Chat through the binding: whole and streamed, sync and async, on the fake upstream."""

from __future__ import annotations

import asyncio

import capibara

# What the fake upstream answers with 8 tokens.
EXPECTED = "Hola desde el servidor de prueba que responde "


def test_a_text_is_one_user_message_and_the_answer_comes_whole(cap: capibara.Capibara) -> None:
    answer = cap.chat("Hola, ¿cómo estás?")
    assert answer["content"] == EXPECTED
    assert answer["model"] == "fake"
    assert answer["finish_reason"] == "stop"
    assert "reasoning" not in answer


def test_messages_and_options_are_passed_on(cap: capibara.Capibara) -> None:
    messages = [
        {"role": "system", "content": "Responde en español."},
        {"role": "user", "content": "Hola"},
    ]
    answer = cap.chat(messages, model="bench-3x0ms", max_tokens=50, temperature=0.2, seed=7)
    assert answer["model"] == "bench-3x0ms"
    assert answer["content"] == "Hola desde el "


def test_the_stream_carries_typed_events_ending_with_done(cap: capibara.Capibara) -> None:
    events = list(cap.stream_chat("Hola"))
    assert events[-1] == {"type": "done", "finish_reason": "stop"}
    content = "".join(e["delta"] for e in events if e["type"] == "content")
    assert content == EXPECTED
    assert {e["type"] for e in events} <= {"content", "usage", "done"}


def test_reasoning_is_kept_apart_from_content(cap: capibara.Capibara) -> None:
    answer = cap.chat("Hola", model="reasoning-fake")
    assert answer["reasoning"] == "El usuario saluda. Respondo."
    assert answer["content"] == EXPECTED
    events = list(cap.stream_chat("Hola", model="reasoning-fake"))
    reasoning = "".join(e["delta"] for e in events if e["type"] == "reasoning")
    content = "".join(e["delta"] for e in events if e["type"] == "content")
    assert (reasoning, content) == ("El usuario saluda. Respondo.", EXPECTED)
    kinds = [e["type"] for e in events if e["type"] in ("reasoning", "content")]
    assert kinds == sorted(kinds, key=lambda kind: kind != "reasoning"), "reasoning comes first"


def test_a_stream_can_be_closed_early(cap: capibara.Capibara) -> None:
    with cap.stream_chat("Hola", model="bench-500x5ms") as events:
        first = next(events)
        assert first["type"] == "content"
    # Closed: nothing more arrives, and the composition is still usable.
    assert list(events) == [] or all(e["type"] != "done" for e in events)
    assert cap.chat("Hola")["content"] == EXPECTED


def test_the_async_api_awaits_and_streams(cap: capibara.Capibara) -> None:
    async def run() -> tuple[str, str]:
        aio = cap.aio
        answer = await aio.chat("Hola")
        streamed = ""
        async for event in aio.stream_chat("Hola"):
            if event["type"] == "content":
                streamed += event["delta"]
        return answer["content"], streamed

    assert asyncio.run(run()) == (EXPECTED, EXPECTED)


def test_async_open_builds_without_blocking_the_loop(tmp_path, upstream) -> None:
    from conftest import make_config

    async def run() -> tuple[str, int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        ticker = asyncio.create_task(tick())
        async with await capibara.AsyncCapibara.open(make_config(tmp_path, upstream.url)) as aio:
            answer = await aio.chat("Hola")
        ticker.cancel()
        return answer["content"], ticks

    content, ticks = asyncio.run(run())
    assert content == EXPECTED
    assert ticks > 0
