"""The example scripts run end to end against the binding."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


EXAMPLES = Path(__file__).parents[1] / "examples"


def write_config(tmp_path: Path, upstream_url: str) -> Path:
    config = tmp_path / "capibara.toml"
    config.write_text(
        f'[storage]\ndata_dir = "{tmp_path / "data"}"\n\n'
        f'[[llm.backends]]\nkind = "openai"\nbase_url = "{upstream_url}"\nmodel = "fake"\n',
        encoding="utf-8",
    )
    return config


def test_populate_rag_then_start_system_answer_from_the_ingested_files(tmp_path: Path, upstream) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "capibara.md").write_text("# El capibara\n\nEl capibara es el roedor más grande del mundo.", encoding="utf-8")
    (docs / "teide.txt").write_text("El Teide es el pico más alto de España.", encoding="utf-8")
    config = write_config(tmp_path, upstream.url)

    populated = subprocess.run(
        [sys.executable, EXAMPLES / "populate_rag.py", docs, "--config", config],
        capture_output=True, text=True, timeout=300, check=True,
    )
    report = json.loads(populated.stdout)
    assert report["summary"]["documents"] == 2 and report["collection"]["chunks"] >= 2
    assert "chunks/s" in populated.stderr

    session = subprocess.run(
        [sys.executable, EXAMPLES / "start_system.py", "--config", config],
        input="¿Cuál es el roedor más grande?\n/status\n/quit\n",
        capture_output=True, text=True, timeout=300, check=True,
    )
    first, status = (json.loads(line) for line in session.stdout.strip().splitlines())
    assert first["response"].startswith("Hola desde el servidor")
    assert first["rag_results"] >= 1 and first["context"][0]["title"] == "El capibara"
    assert first["route"] in {"mini", "full"}
    assert status["documents"] == 2
