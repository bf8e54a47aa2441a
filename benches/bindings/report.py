"""Writes the bindings report: per-call time and overhead over the library, Python and Node
in process against HTTP, side by side."""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

OPERATIONS = [
    ("embed_us", "embed one short text"),
    ("search_lexical_us", "search k=10, lexical"),
    ("search_hybrid_us", "search k=10, hybrid (embeds the query)"),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("python")
    parser.add_argument("node")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    py = json.loads(Path(args.python).read_text())
    node = json.loads(Path(args.node).read_text())
    library = py["library_us"]
    lines = [
        "# Bindings: per-call overhead in process vs over HTTP",
        "",
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; {py['calls']} calls per cell, "
        f"medians; collection of {py['chunks']} chunks (xquad_es); release builds; one keep-alive HTTP "
        "connection to `capibara serve` in a separate process; embedder on 1 thread.",
        "",
        "Overhead = median per-call time − the library's own median time for the same call "
        "(capibara-operation-timing, Rust, in process).",
        "",
        "| operation | library | Python | Python over HTTP | Node | Node over HTTP | "
        "overhead Python / HTTP | overhead Node / HTTP |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, name in OPERATIONS:
        base = library[key]
        cells = [py["python_us"][key], py["http_us"][key], node["node_us"][key], node["http_us"][key]]
        over = [max(c - base, 0.01) for c in cells]
        lines.append(
            f"| {name} | {base:,.1f} µs | {cells[0]:,.1f} µs (+{over[0]:,.1f}) | {cells[1]:,.1f} µs (+{over[1]:,.1f}) "
            f"| {cells[2]:,.1f} µs (+{over[2]:,.1f}) | {cells[3]:,.1f} µs (+{over[3]:,.1f}) "
            f"| {over[1] / over[0]:,.1f}× less | {over[3] / over[2]:,.1f}× less |"
        )
    report = "\n".join(lines) + "\n"
    Path(args.out).write_text(report, encoding="utf-8")
    print(report)


if __name__ == "__main__":
    main()
