"""sentence-transformers' side of the embedding benchmark (benches/embed/run starts it).

Loads all-MiniLM-L6-v2 from the model directory Capibara installs (config.json, model.safetensors,
tokenizer.json) as sentence-transformers' own pipeline (Transformer with max_seq_length 256, mean
pooling, normalisation), on the CPU with `torch.set_num_threads(THREADS)`, and times
`encode(sentences, batch_size=BATCH)` REPETITIONS times after one warm-up. Prints one JSON object:
the throughput of each repetition, token statistics, the vectors of the first COMPARE sentences (so
the caller can check both implementations agree on this data) and the versions used.

usage: python st_bench.py MODEL_DIR SENTENCES_JSON THREADS BATCH REPETITIONS COMPARE
"""

import json
import platform
import sys
import time
import warnings

warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import sentence_transformers  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer  # noqa: E402

transformers.logging.set_verbosity_error()


def main():
    model_dir, sentences_path = sys.argv[1], sys.argv[2]
    threads, batch, repetitions, compare = (int(v) for v in sys.argv[3:7])
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    with open(sentences_path, encoding="utf-8") as file:
        sentences = json.load(file)

    transformer = Transformer(model_dir, max_seq_length=256)
    model = SentenceTransformer(modules=[transformer, Pooling(384, "mean"), Normalize()], device="cpu")
    model.eval()
    tokens = [min(len(ids), 256) for ids in transformer.tokenizer(sentences, truncation=False)["input_ids"]]

    def encode():
        with torch.inference_mode():
            return model.encode(sentences, batch_size=batch, convert_to_numpy=True, show_progress_bar=False)

    vectors = encode()  # warm-up
    rates = []
    for _ in range(repetitions):
        start = time.perf_counter()
        encode()
        rates.append(len(sentences) / (time.perf_counter() - start))

    print(json.dumps({
        "sentences_per_second": rates,
        "threads": torch.get_num_threads(),
        "tokens_total": int(sum(tokens)),
        "tokens_max": int(max(tokens)),
        "vectors": vectors[:compare].astype(np.float32).tolist(),
        "versions": {
            "python": platform.python_version(),
            "sentence-transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
    }))


if __name__ == "__main__":
    main()
