#!/usr/bin/env python3
"""Bulk ingestion with progress, in process: the successor of Capibara6's
``backend/scripts/populate_rag.py``.

    python populate_rag.py docs/ manuals/ --config capibara.toml

Files (txt, md, html, json, jsonl, pdf, BEIR folders) are chunked, embedded and indexed; unchanged
documents are skipped, so running it again is cheap. Progress goes to stderr, the summary (JSON)
to stdout. Stop the server first, or send files to its ``POST /api/v1/rag/ingest`` instead.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import capibara


class Progress:
    """One status line on stderr: bytes read of the total, chunks indexed, chunks per second."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.total_bytes = 0
        self.read_bytes = 0
        self.files = 0
        self.loaded = 0
        self.failed = 0
        self.chunks = 0

    def __call__(self, event: capibara.types.IngestEvent) -> None:
        kind = event.get("type")
        if kind == "discovered":
            self.files = event.get("files", 0)
            self.total_bytes = event.get("bytes", 0)
        elif kind == "file_loaded":
            self.loaded += 1
            self.read_bytes += event.get("bytes", 0)
        elif kind == "file_failed":
            self.failed += 1
            print(f"\n  {event.get('source')}: {event.get('error')}", file=sys.stderr)
        elif kind == "indexed":
            self.chunks += event.get("chunks", 0)
        self.show()

    def show(self) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        share = self.read_bytes / self.total_bytes if self.total_bytes else 0.0
        print(
            f"\r{self.loaded + self.failed}/{self.files} files  {share:6.1%}  "
            f"{self.chunks} chunks  {self.chunks / elapsed:7.1f} chunks/s",
            end="",
            file=sys.stderr,
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", help="files and directories to ingest")
    parser.add_argument("--config", help="a capibara.toml (default: embedded defaults)")
    args = parser.parse_args()
    progress = Progress()
    try:
        with capibara.Capibara(args.config) as app:
            summary = app.ingest(args.paths, progress=progress)
            stats = app.stats()
    except capibara.CapibaraError as error:
        print(f"\nerror ({error.code}): {error}", file=sys.stderr)
        return 1
    print(file=sys.stderr)
    json.dump({"summary": summary, "collection": stats}, sys.stdout, ensure_ascii=False, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
