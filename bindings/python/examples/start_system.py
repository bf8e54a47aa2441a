#!/usr/bin/env python3
"""An interactive assistant in one process: the successor of Capibara6's
``backend/start_system.py``.

    python start_system.py --config capibara.toml

Each question is routed, retrieved and answered: guided retrieval starts with the fast mini depth
and escalates to the full depth when its signals say the question needs it (the original's
20B/120B routing), the model answers from the sources it was given, and the REPL prints the
original's response record. ``/status`` shows what the collection holds; ``/quit`` (or end of
input) leaves.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time

import capibara


def process_query(app: capibara.Capibara, query: str) -> dict:
    """Route, retrieve and answer one question; returns the original's response record."""
    started = time.perf_counter()
    answer = app.ask(query, mode="guided")
    retrieval = answer["retrieval"]
    escalated = retrieval.get("depth") == "full"
    return {
        "query": query,
        "response": answer["answer"],
        "model_used": answer["model"],
        "route": "full" if escalated else "mini",
        "escalation": retrieval.get("escalation", []),
        "context": [{"n": s["n"], "title": s.get("title") or s.get("source"), "score": s["score"]} for s in answer["sources"]],
        "rag_results": len(answer["sources"]),
        "total_latency_ms": round((time.perf_counter() - started) * 1000, 1),
        "components_used": ["retrieval", "chat"] if answer["sources"] else ["chat"],
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="a capibara.toml (default: embedded defaults)")
    args = parser.parse_args()
    interactive = sys.stdin.isatty()
    with capibara.Capibara(args.config) as app:
        if interactive:
            print("Capibara listo. Escribe una pregunta, /status o /quit.")
        for line in sys.stdin if not interactive else iter(lambda: input("> "), None):
            query = line.strip()
            if not query:
                continue
            if query == "/quit":
                break
            try:
                record = app.stats() if query == "/status" else process_query(app, query)
            except capibara.CapibaraError as error:
                record = {"query": query, "error": str(error), "code": error.code}
            print(json.dumps(record, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (KeyboardInterrupt, EOFError):
        sys.exit(0)
