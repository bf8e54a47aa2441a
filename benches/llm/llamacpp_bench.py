"""The llama.cpp side of the local LLM benchmark (llama-cpp-python, CPU).

    llamacpp_bench.py MODEL.gguf PROMPT.json THREADS DECODE_TOKENS REPETITIONS

PROMPT.json is written by `capibara-llm-bench prompt`: the rendered chat prompt and Capibara's
token ids for it. The ids are checked against llama.cpp's own tokenization, then each repetition
generates greedily from the same ids (Llama.generate, token by token) and times it the way the Capibara side is timed:
prefill = prompt tokens / time to the first token; decode = (tokens - 1) / (last token - first
token). One JSON object per repetition goes to stdout.
"""

import json
import sys
import time

import llama_cpp


def main():
    model, prompt_path, threads, decode, repetitions = sys.argv[1:6]
    threads, decode, repetitions = int(threads), int(decode), int(repetitions)
    with open(prompt_path, encoding="utf-8") as f:
        prompt = json.load(f)
    llm = llama_cpp.Llama(model_path=model, n_ctx=4096, n_batch=512, n_threads=threads,
                          n_threads_batch=threads, verbose=False)
    ids = llm.tokenize(prompt["text"].encode("utf-8"), add_bos=False, special=True)
    if ids != prompt["ids"]:
        sys.exit("llama.cpp tokenizes the benchmark prompt differently from Capibara")
    for repetition in range(repetitions + 1):
        llm.reset()  # no prefix reuse between repetitions
        started = time.perf_counter()
        first = last = None
        tokens = 0
        for token in llm.generate(ids, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0, reset=True):
            now = time.perf_counter()
            if token == llm.token_eos():
                break
            if first is None:
                first = now
            last = now
            tokens += 1
            if tokens == decode:
                break
        if repetition == 0:
            continue  # warm-up
        print(json.dumps({
            "engine": "llama.cpp",
            "threads": threads,
            "repetition": repetition,
            "prompt_tokens": len(ids),
            "prefill_seconds": first - started,
            "completion_tokens": tokens,
            "decode_seconds": last - first,
        }), flush=True)


if __name__ == "__main__":
    main()
