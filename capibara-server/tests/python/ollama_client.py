"""Drives Capibara's Ollama-compatible routes with the official `ollama` client; prints what it saw as JSON."""
import json
import sys

import ollama

client = ollama.Client(host=sys.argv[1], timeout=30)
messages = [{"role": "user", "content": "Hola, ¿qué tal?"}]

pieces, thinking, final = [], [], None
for part in client.chat(model="gpt-oss:20b", messages=messages, stream=True, think=True,
                        options={"num_predict": 64, "temperature": 0.5}):
    if part.message.content:
        pieces.append(part.message.content)
    if part.message.thinking:
        thinking.append(part.message.thinking)
    if part.done:
        final = {"done_reason": part.done_reason, "eval_count": part.eval_count,
                 "prompt_eval_count": part.prompt_eval_count, "total_duration": part.total_duration}

whole = client.chat(model="gpt-oss:20b", messages=messages, stream=False)
generated = [part.response for part in client.generate(model="gpt-oss:20b", prompt="Hola", stream=True) if part.response]

errors = {}
try:
    client.chat(model="gpt-oss:20b", messages=[{"role": "user", "content": ""}])
except ollama.ResponseError as error:
    errors["empty_message"] = error.status_code

print(json.dumps({
    "pieces": pieces,
    "thinking": "".join(thinking),
    "final": final,
    "whole_content": whole.message.content,
    "whole_thinking": whole.message.thinking,
    "generated": generated,
    "models": [model.model for model in client.list().models],
    "errors": errors,
}))
