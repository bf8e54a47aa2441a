"""Fixtures: the fake OpenAI-compatible upstream (the workspace's `capibara-fake-upstream`
binary on a real socket) and Capibara compositions over it with the local embedding model."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import capibara


def _fake_upstream_binary() -> str:
    named = os.environ.get("CAPIBARA_FAKE_UPSTREAM")
    if named:
        return named
    target = os.environ.get("CARGO_TARGET_DIR", str(Path(__file__).parents[3] / "target"))
    built = Path(target) / "debug" / "capibara-fake-upstream"
    if built.exists():
        return str(built)
    found = shutil.which("capibara-fake-upstream")
    if found:
        return found
    raise RuntimeError(
        "the fake upstream is missing: build it with `cargo build -p capibara-testkit "
        "--bin capibara-fake-upstream` or set CAPIBARA_FAKE_UPSTREAM to its path"
    )


class Upstream:
    """A running fake upstream: `url` is its OpenAI base URL (…/v1)."""

    def __init__(self, tokens: int = 8) -> None:
        self.process = subprocess.Popen(
            [_fake_upstream_binary(), "--port", "0", "--tokens", str(tokens), "--threads", "2"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith("listening on "):
            self.process.kill()
            raise RuntimeError(f"the fake upstream did not start: {line!r}")
        self.url = line.removeprefix("listening on ") + "/v1"

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture(scope="session")
def upstream() -> Iterator[Upstream]:
    running = Upstream()
    yield running
    running.stop()


def make_config(data_dir: Path, upstream_url: str | None, *, embeddings: bool = True, model: str = "fake") -> dict:
    """A configuration dict: chat on the fake upstream (or none), the local embedder (or none)."""
    config: dict = {"storage": {"data_dir": str(data_dir)}}
    if upstream_url is None:
        config["llm"] = {"local_default": False}
    else:
        config["llm"] = {"backends": [{"kind": "openai", "base_url": upstream_url, "model": model}]}
    if not embeddings:
        config["embeddings"] = {"kind": "none"}
    return config


@pytest.fixture(scope="session")
def cap(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Iterator[capibara.Capibara]:
    """One composition for the session: chat on the fake upstream, the local embedder."""
    app = capibara.Capibara.from_config(make_config(tmp_path_factory.mktemp("capibara"), upstream.url))
    yield app
    app.close()


@pytest.fixture()
def fresh(tmp_path: Path, upstream: Upstream) -> Iterator[capibara.Capibara]:
    """A composition of its own (for tests that close it or fill its collection)."""
    app = capibara.Capibara.from_config(make_config(tmp_path, upstream.url))
    yield app
    app.close()
