"""Type-checked (mypy --strict) use of the public API: the stubs must describe it well enough
for a strict checker. Never run; checked only."""

from __future__ import annotations

import asyncio

import capibara
from capibara.types import ChatAnswer, ChatEvent, IngestSummary, SearchResults


def sync_use(app: capibara.Capibara) -> tuple[str, float, int]:
    answer: ChatAnswer = app.chat([{"role": "user", "content": "Hola"}], max_tokens=10, temperature=0.2)
    vector: list[float] = app.embed("hola")
    vectors: list[list[float]] = app.embed(["hola", "adiós"])
    found: SearchResults = app.search("capibara", k=3, mode="hybrid", filter={"eq": {"field": "tema", "value": "animales"}})
    summary: IngestSummary = app.ingest(["docs"], progress=lambda event: print(event.get("type")))
    for event in app.stream_chat("Hola"):
        if event["type"] == "content":
            print(event["delta"])
    with app.serve(port=0) as server:
        print(server.url)
    return answer["content"], vector[0] + vectors[0][0], found["total_results"] + summary["files"]


async def async_use() -> list[ChatEvent]:
    async with await capibara.AsyncCapibara.open({"embeddings": {"kind": "none"}}) as aio:
        answer = await aio.ask("¿Dónde vive el capibara?", mode="guided")
        print(answer["sources"][0]["score"] if answer["sources"] else None)
        events: list[ChatEvent] = [event async for event in aio.stream_chat("Hola")]
    return events


def errors(app: capibara.Capibara) -> str:
    try:
        app.search("")
    except capibara.InvalidInput as error:
        return error.code
    return ""


if __name__ == "__main__":
    asyncio.run(async_use())
