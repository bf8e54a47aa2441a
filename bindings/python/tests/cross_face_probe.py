"""The Python face of capibara-server's cross-face test: reads a request file (configuration and
inputs), runs every input through the binding and prints the results as JSON."""

import json
import sys

import capibara


def main(path: str) -> None:
    with open(path, encoding="utf-8") as file:
        request = json.load(file)
    inputs = request["inputs"]
    with capibara.Capibara.from_config(request["config"]) as app:
        ingest = app.ingest_documents(inputs["documents"])
        embeddings = app.embed(inputs["texts"])
        searches = [
            app.search(s["query"], k=s.get("k"), filter=s.get("filter"), mode=s.get("mode"))
            for s in inputs["searches"]
        ]
        chat = app.chat(inputs["chat"])["content"]
    json.dump({"ingest": ingest, "embeddings": embeddings, "searches": searches, "chat": chat}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
