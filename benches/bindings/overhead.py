"""Per-call cost of the Python binding against the same operation over the local HTTP server
(`capibara serve`, a separate process, one keep-alive connection), with the library's own time
per call (capibara-operation-timing) as the floor: overhead = per-call time − library time.

Run by benches/bindings/run, which builds everything in release and passes the paths."""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import statistics
import subprocess
import time
from pathlib import Path

import capibara

TEXT = "¿Dónde vive el capibara?"
QUERY = "¿Cuál es la capital de Francia?"


def median_us(calls: int, call) -> float:
    for _ in range(max(calls // 10, 1)):
        call()
    samples = []
    for _ in range(calls):
        started = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - started) / 1000)
    return statistics.median(samples)


class Http:
    """One keep-alive connection to the server, JSON in and out."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(self, path: str, body: dict) -> dict:
        self.connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        response = self.connection.getresponse()
        payload = json.loads(response.read())
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status} {payload}")
        return payload


def write_config(path: Path, data_dir: Path, port: int) -> None:
    path.write_text(
        f'[server]\nport = {port}\n\n[storage]\ndata_dir = "{data_dir}"\n\n'
        "[llm]\nlocal_default = false\n\n[embeddings]\nkind = \"local\"\nthreads = 1\n",
        encoding="utf-8",
    )


def wait_for(port: int, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("capibara serve exited")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("capibara serve did not come up")


def copy_when_settled(source: Path, target: Path) -> None:
    """Copies a data dir once SQLite's closing checkpoint has removed its -wal/-shm files (a closed
    composition's database pool finishes closing in the background)."""
    deadline = time.monotonic() + 30
    while any(source.glob("*.db-wal")) and time.monotonic() < deadline:
        time.sleep(0.1)
    shutil.copytree(source, target)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--capibara", required=True, help="the release `capibara` binary")
    parser.add_argument("--timing", required=True, help="the release capibara-operation-timing binary")
    parser.add_argument("--corpus", required=True, help="a corpus folder to ingest (BEIR layout)")
    parser.add_argument("--work", required=True, help="a scratch directory")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--port", type=int, default=5071)
    parser.add_argument("--out", required=True, help="where the JSON results go")
    args = parser.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    binding_config, server_config = work / "binding.toml", work / "server.toml"
    write_config(binding_config, work / "binding-data", args.port)
    write_config(server_config, work / "server-data", args.port)

    with capibara.Capibara(str(binding_config)) as app:
        ingested = app.ingest(args.corpus)
    # The server gets a copy of the same collection (the store directory has one user at a time).
    copy_when_settled(work / "binding-data", work / "server-data")

    library = json.loads(
        subprocess.run(
            [args.timing, "--config", binding_config, "--calls", str(args.calls), "--text", TEXT, "--query", QUERY],
            check=True, capture_output=True, text=True,
        ).stdout
    )

    results: dict = {"calls": args.calls, "chunks": ingested["chunks_indexed"], "library_us": library}
    with capibara.Capibara(str(binding_config)) as app:
        results["python_us"] = {
            "embed_us": median_us(args.calls, lambda: app.embed(TEXT)),
            "search_lexical_us": median_us(args.calls, lambda: app.search(QUERY, k=10, mode="lexical")),
            "search_hybrid_us": median_us(args.calls, lambda: app.search(QUERY, k=10, mode="hybrid")),
        }
        assert app.search(QUERY, k=10, mode="lexical")["total_results"] == 10

    server = subprocess.Popen([args.capibara, "--config", server_config, "serve"], stderr=subprocess.DEVNULL)
    try:
        wait_for(args.port, server)
        client = Http(args.port)
        results["http_us"] = {
            "embed_us": median_us(args.calls, lambda: client.post("/api/v1/embeddings", {"text": TEXT})),
            "search_lexical_us": median_us(
                args.calls, lambda: client.post("/api/v1/rag/search", {"query": QUERY, "k": 10, "mode": "lexical"})
            ),
            "search_hybrid_us": median_us(
                args.calls, lambda: client.post("/api/v1/rag/search", {"query": QUERY, "k": 10, "mode": "hybrid"})
            ),
        }
    finally:
        server.terminate()
        server.wait()
    Path(args.out).write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
