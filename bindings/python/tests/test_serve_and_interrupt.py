"""`serve()` runs the HTTP server in process; Ctrl-C cancels a blocking call."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import capibara
from conftest import make_config


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def test_serve_answers_http_with_the_same_results_as_the_binding(fresh: capibara.Capibara) -> None:
    fresh.ingest_documents([{"id": "teide", "text": "El Teide es el pico más alto de España."}])
    with fresh.serve(port=0) as server:
        assert server.running and server.url == f"http://127.0.0.1:{server.port}"
        with urllib.request.urlopen(server.url + "/health", timeout=10) as response:
            assert response.status == 200
        over_http = post(server.url + "/api/v1/rag/search", {"query": "pico de España", "mode": "lexical"})
        in_process = fresh.search("pico de España", mode="lexical")
        assert over_http["results"] == in_process["results"]
        chat = post(server.url + "/v1/chat/completions", {"model": "", "messages": [{"role": "user", "content": "Hola"}]})
        assert chat["choices"][0]["message"]["content"] == fresh.chat("Hola")["content"]
    assert not server.running


def test_closing_the_composition_stops_its_servers(tmp_path: Path, upstream) -> None:
    app = capibara.Capibara.from_config(make_config(tmp_path, upstream.url, embeddings=False))
    server = app.serve(port=0)
    app.close()
    deadline = time.monotonic() + 10
    while server.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not server.running


def test_ctrl_c_cancels_a_blocking_call(tmp_path: Path, upstream) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time, capibara
        app = capibara.Capibara.from_config({make_config(tmp_path, upstream.url, embeddings=False)!r})
        print("ready", flush=True)
        started = time.monotonic()
        try:
            app.chat("Hola", model="bench-2000x10ms")   # 20 s of tokens
        except KeyboardInterrupt:
            print(f"interrupted after {{time.monotonic() - started:.2f}}", flush=True)
            print(app.chat("Hola")["content"], flush=True)
            sys.exit(0)
        sys.exit(3)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    child.send_signal(signal.SIGINT)
    out, _ = child.communicate(timeout=15)
    assert child.returncode == 0, out
    interrupted = float(out.split("interrupted after ")[1].split()[0])
    assert interrupted < 2.0, out
    assert "Hola desde el servidor" in out, "the composition is usable after the interruption"
