"""Fixtures checked by capibara-llm's local-model tests, produced with llama.cpp (llama-cpp-python).

    make_fixtures.py MODEL.gguf tokenizer   # -> capibara-llm/tests/fixtures/local-tokenizer.json
    make_fixtures.py MODEL.gguf greedy PROMPT_IDS_JSON N   # llama.cpp's greedy ids for a prompt
    make_fixtures.py MODEL.gguf golden N   # -> capibara-llm/tests/fixtures/local-golden.json

`tokenizer`: llama.cpp's token ids for every string in tokenizer_strings.json (no BOS, control
tokens such as <|im_start|> parsed as tokens), which the Rust tokenizer must reproduce exactly.
`greedy`: the first N greedy tokens llama.cpp generates after the given prompt ids, to compare
with the committed golden answer.
`golden`: rewrites the golden answer's `completion_ids` and `text` with llama.cpp's first N greedy
tokens after the fixture's `prompt_ids` (which the Rust test checks against its own chat template).
"""

import json
import os
import sys

import llama_cpp

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "..", "capibara-llm", "tests", "fixtures")


def load(model, n_ctx=4096, threads=1):
    return llama_cpp.Llama(model_path=model, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                           verbose=False, logits_all=False)


def tokenizer(model):
    llm = load(model, n_ctx=512)
    with open(os.path.join(HERE, "tokenizer_strings.json"), encoding="utf-8") as f:
        strings = json.load(f)
    cases = [{"text": s, "ids": llm.tokenize(s.encode("utf-8"), add_bos=False, special=True)} for s in strings]
    out = {
        "source": f"llama-cpp-python {llama_cpp.__version__}, Llama.tokenize(add_bos=False, special=True)",
        "model": os.path.basename(model),
        "cases": cases,
    }
    path = os.path.join(FIXTURES, "local-tokenizer.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {path}")


def greedy_ids(model, prompt, n):
    llm = load(model)
    out = []
    for token in llm.generate(prompt, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0, reset=True):
        if llama_cpp.llama_token_is_eog(llm._model.vocab, token) or len(out) == n:
            break
        out.append(token)
    return out, llm.detokenize(out).decode("utf-8", "replace")


def greedy(model, prompt_ids_path, n):
    with open(prompt_ids_path, encoding="utf-8") as f:
        prompt = json.load(f)
    ids, text = greedy_ids(model, prompt, n)
    print(json.dumps({"ids": ids, "text": text}, ensure_ascii=False))


def golden(model, n):
    path = os.path.join(FIXTURES, "local-golden.json")
    with open(path, encoding="utf-8") as f:
        fixture = json.load(f)
    ids, text = greedy_ids(model, fixture["prompt_ids"], n)
    fixture.update({
        "source": f"llama-cpp-python {llama_cpp.__version__}, greedy (top_k=1), {os.path.basename(model)}",
        "completion_ids": ids,
        "text": text,
    })
    fixture.pop("completion_tokens", None)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(fixture, f, ensure_ascii=False, indent=2)
        f.write("\n")
    print(f"wrote {len(ids)} greedy tokens to {path}: {text!r}")


if __name__ == "__main__":
    if sys.argv[2] == "tokenizer":
        tokenizer(sys.argv[1])
    elif sys.argv[2] == "greedy":
        greedy(sys.argv[1], sys.argv[3], int(sys.argv[4]))
    elif sys.argv[2] == "golden":
        golden(sys.argv[1], int(sys.argv[3]))
    else:
        sys.exit(f"unknown command {sys.argv[2]}")
