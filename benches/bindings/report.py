"""Writes the bindings report: per-call time and overhead over the library, in process against
HTTP, for Python and for Node, each measured in one run with its own floor."""

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


def ratio(in_process: float, http: float) -> str:
    return f"{http / in_process:,.1f}× less" if in_process > 0 else "—"


def table(language: str, run: dict, face: str, client: str) -> list[str]:
    lines = [
        f"## {language}",
        "",
        f"HTTP client: {client}.",
        "",
        f"| operation | library | {language} in process | {language} over HTTP | per call | overhead |",
        "|---|---|---|---|---|---|",
    ]
    for key, name in OPERATIONS:
        base = run["library_us"][key]
        local, remote = run[f"{face}_us"][key], run["http_us"][key]
        lines.append(
            f"| {name} | {base:,.1f} µs | {local:,.1f} µs ({local - base:+,.1f}) "
            f"| {remote:,.1f} µs ({remote - base:+,.1f}) | {remote / local:,.2f}× faster "
            f"| {ratio(local - base, remote - base)} |"
        )
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("python")
    parser.add_argument("node")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    py = json.loads(Path(args.python).read_text())
    node = json.loads(Path(args.node).read_text())
    lines = [
        "# Bindings: per-call overhead in process vs over HTTP",
        "",
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; {py['calls']} calls per cell "
        f"in {py['rounds']} rounds, the library's, the binding's and HTTP's rounds alternating; medians; "
        f"collection of {py['chunks']} chunks (xquad_es); release builds; one keep-alive HTTP connection to "
        "`capibara serve` in a separate process; embedder on 1 thread.",
        "",
        "Library = the library's own call (capibara-operation-timing, Rust, in process, on a copy of the "
        "collection). In brackets, the overhead: the median per-call time − the library's. *Per call* is the "
        "HTTP time over the in-process time; *overhead* is HTTP's overhead over the binding's (`—` where the "
        "binding's time is within the library's, leaving no overhead to divide by).",
        "",
    ]
    lines += table("Python", py, "python", "`http.client`")
    lines += table("Node", node, "node", "`fetch`")
    report = "\n".join(lines)
    Path(args.out).write_text(report, encoding="utf-8")
    print(report)


if __name__ == "__main__":
    main()
