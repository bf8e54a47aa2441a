"""Embedding, ingestion, search and RAG answers through the binding, with the local model."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import capibara

CAPIBARA = (
    "# El capibara\n\nEl capibara es el roedor más grande del mundo. Vive en grupos cerca de ríos, "
    "lagunas y esteros de Sudamérica y es un excelente nadador."
)
TEIDE = "El Teide es un volcán de la isla de Tenerife, en Canarias. Con 3.715 metros es el pico más alto de España."
QUESTION = "¿Dónde vive el roedor más grande?"


def test_embeddings_are_unit_vectors_and_similar_texts_are_close(cap: capibara.Capibara) -> None:
    one = cap.embed("El capibara es un roedor.")
    assert len(one) == 384
    assert math.isclose(math.fsum(x * x for x in one), 1.0, rel_tol=1e-4)
    many = cap.embed(["El capibara es un roedor.", "El capibara es un roedor grande.", "Impuestos municipales"])
    assert len(many) == 3 and many[0] == one

    def cosine(a: list[float], b: list[float]) -> float:
        return math.fsum(x * y for x, y in zip(a, b))

    assert cosine(many[0], many[1]) > cosine(many[0], many[2])


def write_docs(root: Path) -> Path:
    docs = root / "docs"
    docs.mkdir()
    (docs / "capibara.md").write_text(CAPIBARA, encoding="utf-8")
    (docs / "teide.txt").write_text(TEIDE, encoding="utf-8")
    return docs


def test_files_are_ingested_with_progress_and_found_in_every_mode(fresh: capibara.Capibara, tmp_path: Path) -> None:
    events: list[dict] = []
    summary = fresh.ingest(write_docs(tmp_path), progress=events.append)
    assert summary["files"] == 2 and summary["documents"] == 2, summary
    assert summary["chunks_indexed"] >= 2 and summary["failures"] == []
    kinds = [e["type"] for e in events]
    assert kinds[0] == "discovered" and events[0]["files"] == 2
    assert kinds.count("file_loaded") == 2 and "indexed" in kinds
    for mode in ["mini", "full", "guided", "lexical", "dense", "hybrid"]:
        found = fresh.search(QUESTION, mode=mode)
        assert found["mode"] == mode
        first = found["results"][0]
        assert "capibara" in first["text"], (mode, found)
        assert first["n"] == 1 and first["score"] > 0
    again = fresh.ingest([str(tmp_path / "docs")])
    assert again["unchanged_documents"] == 2 and again["chunks_indexed"] == 0
    stats = fresh.stats()
    assert stats["documents"] == 2 and stats["vectors"] == stats["chunks"] >= 2
    assert stats["embedding_model"].endswith("all-MiniLM-L6-v2")


def test_documents_in_memory_are_searchable_with_filters_and_k(fresh: capibara.Capibara) -> None:
    summary = fresh.ingest_documents(
        [
            {"id": "capibara", "text": CAPIBARA, "title": "El capibara", "metadata": {"tema": "animales"}},
            {"id": "teide", "text": TEIDE, "source": "geografia.txt", "metadata": {"tema": "geografía"}},
        ]
    )
    assert summary["documents"] == 2
    found = fresh.search("volcán de Canarias", k=1, mode="hybrid")
    assert found["total_results"] == 1 and found["results"][0]["source"] == "geografia.txt"
    filtered = fresh.search(QUESTION, mode="dense", filter={"eq": {"field": "tema", "value": "geografía"}})
    assert [r["metadata"]["doc_id"] for r in filtered["results"]] == ["teide"]


def test_ask_answers_with_the_sources_the_model_saw(fresh: capibara.Capibara) -> None:
    fresh.ingest_documents([{"id": "capibara", "text": CAPIBARA, "title": "El capibara"}])
    answer = fresh.ask(QUESTION, mode="hybrid")
    assert answer["answer"].startswith("Hola desde el servidor")
    assert answer["query"] == QUESTION
    assert answer["sources"][0]["title"] == "El capibara"
    assert answer["retrieval"]["mode"] == "hybrid"


def test_the_async_api_ingests_and_searches(fresh: capibara.Capibara) -> None:
    async def run() -> dict:
        aio = fresh.aio
        await aio.ingest_documents([{"id": "teide", "text": TEIDE}])
        return await aio.search("pico más alto de España", k=3, mode="lexical")

    found = asyncio.run(run())
    assert found["results"][0]["metadata"]["doc_id"] == "teide"
