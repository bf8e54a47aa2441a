"""Embedding, ingestion, search and RAG answers through the binding, with the local model."""

from __future__ import annotations

import asyncio
import json
import math
import struct
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


def significant_digits(number: float) -> int:
    mantissa = repr(abs(number)).split("e")[0].replace(".", "").lstrip("0")
    return len(mantissa.rstrip("0")) if mantissa else 0


def test_results_are_plain_data_with_scores_as_json_would_carry_them(fresh: capibara.Capibara) -> None:
    fresh.ingest_documents(
        [
            {"id": "capibara", "text": CAPIBARA, "metadata": {"tema": "animales", "año": 2024, "ok": True}},
            {"id": "teide", "text": TEIDE, "metadata": {"alturas": [3715, 3.5], "nada": None}},
        ]
    )
    found = fresh.search(QUESTION, k=2, mode="hybrid")
    # Only dicts, lists, str, int, float, bool and None: a JSON round trip changes nothing.
    assert json.loads(json.dumps(found)) == found
    by_id = {r["metadata"]["doc_id"]: r for r in found["results"]}
    assert by_id["capibara"]["metadata"]["año"] == 2024 and by_id["capibara"]["metadata"]["ok"] is True
    assert by_id["teide"]["metadata"]["alturas"] == [3715, 3.5] and by_id["teide"]["metadata"]["nada"] is None
    assert isinstance(found["took_ms"], float) and found["partial"] is False
    assert "dense_score" in found["results"][0]
    for result in found["results"]:
        for name in ["score", "lexical_score", "dense_score"]:
            score = result.get(name)
            if score is None:
                continue
            # A 32-bit score arrives as its shortest decimal form (at most 9 digits), not widened
            # to 17, and it is the same 32-bit number.
            assert significant_digits(score) <= 9, (name, score)
            assert math.isclose(struct.unpack("f", struct.pack("f", score))[0], score, rel_tol=1e-7)


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
