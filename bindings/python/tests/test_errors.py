"""Bad input and failures: each raises the exception class of its kind, with a clear message,
and leaves the composition usable. Nothing crashes or hangs."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

import capibara
from conftest import make_config


@pytest.mark.parametrize(
    "call, fragment",
    [
        (lambda c: c.chat(123), "messages"),
        (lambda c: c.chat(None), "messages"),
        (lambda c: c.chat([{"role": "wizard", "content": "hola"}]), "role"),
        (lambda c: c.chat([]), "messages must not be empty"),
        (lambda c: c.chat("hola", max_tokens="mucho"), "max_tokens"),
        (lambda c: c.chat("hola", temperature=7.0), "temperature"),
        (lambda c: c.chat("hola", colour="azul"), "colour"),
        (lambda c: c.embed(42), "texts"),
        (lambda c: c.embed([]), "at least one text"),
        (lambda c: c.embed(["hola", None]), "texts"),
        (lambda c: c.embed(["  "]), "input[0] is empty"),
        (lambda c: c.search(None), "query"),
        (lambda c: c.search("   "), "query"),
        (lambda c: c.search("hola", k="diez"), "k"),
        (lambda c: c.search("hola", k=0), "k must be"),
        (lambda c: c.search("hola", mode="telepathy"), "mode"),
        (lambda c: c.search("hola", filter={"campo": object()}), "filter"),
        (lambda c: c.ask("hola", conversation_id="no-es-un-id"), "conversation_id"),
        (lambda c: c.ingest_documents([{"title": "sin texto"}]), "text"),
        (lambda c: c.ingest_documents([]), "at least one document"),
        (lambda c: c.ingest(12), "paths"),
        (lambda c: c.ingest([]), "at least one"),
    ],
)
def test_wrong_arguments_raise_invalid_input(cap: capibara.Capibara, call, fragment: str) -> None:
    with pytest.raises((capibara.InvalidInput, TypeError)) as raised:
        call(cap)
    assert fragment in str(raised.value), str(raised.value)


def test_invalid_input_is_also_a_value_error_with_a_code(cap: capibara.Capibara) -> None:
    with pytest.raises(ValueError) as raised:
        cap.search("hola", k=0)
    assert isinstance(raised.value, capibara.InvalidInput)
    assert raised.value.code == "invalid_input"


def test_huge_strings_are_refused_as_too_large_quickly(cap: capibara.Capibara) -> None:
    with pytest.raises(capibara.TooLarge, match="limit"):
        cap.search("capibara " * 1_000)
    with pytest.raises(capibara.TooLarge, match="bytes"):
        cap.embed("x" * 2_000_000)
    with pytest.raises(capibara.TooLarge, match="limit"):
        cap.chat("x" * 50_000_000)
    # Still usable.
    assert cap.embed("hola") and cap.chat("hola")["content"]


def test_a_missing_file_is_not_found(cap: capibara.Capibara, tmp_path: Path) -> None:
    with pytest.raises(capibara.NotFound) as raised:
        cap.ingest(tmp_path / "no-existe.md")
    assert isinstance(raised.value, LookupError)


def test_no_chat_model_is_unavailable_with_set_up_help(tmp_path: Path) -> None:
    with capibara.Capibara.from_config(make_config(tmp_path, None, embeddings=False)) as app:
        with pytest.raises(capibara.Unavailable, match="llm.backends") as raised:
            app.chat("hola")
        assert isinstance(raised.value, ConnectionError) and raised.value.code == "unavailable"
        with pytest.raises(capibara.Unavailable, match="embedding"):
            app.embed("hola")


def test_an_unreachable_upstream_is_unavailable(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    with capibara.Capibara.from_config(make_config(tmp_path, url, embeddings=False)) as app:
        with pytest.raises(capibara.CapibaraError) as raised:
            app.chat("hola")
        assert raised.value.code in {"unavailable", "upstream_error"}, raised.value
        assert str(port) in str(raised.value), "the cause names the address"


def test_bad_configuration_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(capibara.InvalidInput, match="port"):
        capibara.Capibara.from_config({"server": {"port": "muchos"}, "storage": {"data_dir": str(tmp_path)}})
    with pytest.raises(capibara.InvalidInput, match="does not exist"):
        capibara.Capibara.from_config(tmp_path / "missing.toml")
    with pytest.raises(capibara.InvalidInput):
        capibara.Capibara.from_config(None)  # type: ignore[arg-type]
    with pytest.raises(capibara.InvalidInput):
        capibara.Capibara.from_config(42)  # type: ignore[arg-type]


def test_calls_after_close_raise_closed(tmp_path: Path, upstream) -> None:
    app = capibara.Capibara.from_config(make_config(tmp_path, upstream.url, embeddings=False))
    aio = app.aio
    app.close()
    assert app.closed and aio.closed
    for call in (lambda: app.chat("hola"), lambda: app.embed("hola"), lambda: app.stream_chat("hola"),
                 lambda: app.search("hola"), lambda: app.stats(), lambda: app.serve(port=0)):
        with pytest.raises(capibara.Closed):
            call()
    with pytest.raises(capibara.Closed):
        asyncio.run(_async_chat(aio))
    app.close()  # closing twice is harmless


async def _async_chat(aio: capibara.AsyncCapibara) -> None:
    await aio.chat("hola")


def test_a_progress_callback_that_raises_is_reraised_after_ingestion(fresh: capibara.Capibara, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("El capibara nada muy bien en los ríos.", encoding="utf-8")

    def broken(_event: dict) -> None:
        raise RuntimeError("la barra de progreso falló")

    with pytest.raises(RuntimeError, match="barra de progreso"):
        fresh.ingest(tmp_path / "a.txt", progress=broken)
    # The ingestion itself completed.
    assert fresh.stats()["documents"] == 1
