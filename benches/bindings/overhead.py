"""Per-call cost of the Python binding against the same operation over the local HTTP server
(`capibara serve`, a separate process, one keep-alive connection), with the library's own time
per call (capibara-operation-timing) as the floor: overhead = per-call time − library time.

The library's own calls (in capibara-operation-timing --serve, on its own copy of the collection),
the in-process calls and the HTTP calls are measured in alternating rounds, so all three see the
same machine: on shared cores a slow minute would otherwise land on one side only.

Run by benches/bindings/run, which builds everything in release and passes the paths."""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import capibara

TEXT = "¿Dónde vive el capibara?"
QUERY = "¿Cuál es la capital de Francia?"


ROUNDS = 10

Batch = Callable[[int], list[float]]


def timed(call: Callable[[], object]) -> Batch:
    """A batch of `n` calls, each timed in µs."""

    def batch(n: int) -> list[float]:
        taken = []
        for _ in range(n):
            started = time.perf_counter_ns()
            call()
            taken.append((time.perf_counter_ns() - started) / 1000)
        return taken

    return batch


def interleaved_medians(calls: int, cells: dict[str, Batch]) -> dict[str, float]:
    """Median µs per call of each cell, measured in ROUNDS alternating rounds after a warm-up."""
    for batch in cells.values():
        batch(max(calls // 10, 1))
    samples: dict[str, list[float]] = {name: [] for name in cells}
    for _ in range(ROUNDS):
        for name, batch in cells.items():
            samples[name] += batch(max(calls // ROUNDS, 1))
    return {name: statistics.median(taken) for name, taken in samples.items()}


class Library:
    """capibara-operation-timing --serve: the library's own calls, in batches asked for on stdin."""

    def __init__(self, timing: str, config: Path) -> None:
        command = [timing, "--config", str(config), "--text", TEXT, "--query", QUERY, "--serve"]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def batch(self, operation: str) -> Batch:
        def run(n: int) -> list[float]:
            assert self.process.stdin is not None and self.process.stdout is not None
            self.process.stdin.write(f"{operation} {n}\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"capibara-operation-timing exited ({self.process.wait()})")
            return json.loads(line)

        return run

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait()


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


def settle(data_dir: Path) -> None:
    """Waits for SQLite's closing checkpoint to remove the -wal file: a closed composition's
    database pool finishes closing in the background, and the store has one user at a time."""
    deadline = time.monotonic() + 30
    while any(data_dir.glob("*.db-wal")) and time.monotonic() < deadline:
        time.sleep(0.1)


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
    # The server and the library's timing process get copies of the same collection (a store
    # directory has one user at a time).
    settle(work / "binding-data")
    library_config = work / "library.toml"
    write_config(library_config, work / "library-data", args.port)
    for copy in ["server-data", "library-data"]:
        shutil.copytree(work / "binding-data", work / copy)
    results: dict = {"calls": args.calls, "rounds": ROUNDS, "chunks": ingested["chunks_indexed"]}
    server = subprocess.Popen([args.capibara, "--config", server_config, "serve"], stderr=subprocess.DEVNULL)
    library = Library(args.timing, library_config)
    try:
        wait_for(args.port, server)
        client = Http(args.port)
        with capibara.Capibara(str(binding_config)) as app:
            assert app.search(QUERY, k=10, mode="lexical")["total_results"] == 10
            cells: dict[str, Batch] = {}
            for key, call, path, body in [
                ("embed_us", lambda: app.embed(TEXT), "/api/v1/embeddings", {"text": TEXT}),
                (
                    "search_lexical_us",
                    lambda: app.search(QUERY, k=10, mode="lexical"),
                    "/api/v1/rag/search",
                    {"query": QUERY, "k": 10, "mode": "lexical"},
                ),
                (
                    "search_hybrid_us",
                    lambda: app.search(QUERY, k=10, mode="hybrid"),
                    "/api/v1/rag/search",
                    {"query": QUERY, "k": 10, "mode": "hybrid"},
                ),
            ]:
                cells[f"library {key}"] = library.batch(key)
                cells[f"python {key}"] = timed(call)
                cells[f"http {key}"] = timed(lambda path=path, body=body: client.post(path, body))
            medians = interleaved_medians(args.calls, cells)
    finally:
        library.close()
        server.terminate()
        server.wait()
    for face in ["library", "python", "http"]:
        results[f"{face}_us"] = {
            name.split(" ")[1]: value for name, value in medians.items() if name.startswith(face + " ")
        }
    Path(args.out).write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
