"""Drives Capibara's OpenAI-compatible routes with the official `openai` client; prints what it saw as JSON."""
import json
import sys

import openai

base_url = sys.argv[1]
client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="not-needed", max_retries=0, timeout=30)
messages = [{"role": "system", "content": "Eres Capibara."}, {"role": "user", "content": "Hola, ¿qué tal?"}]

pieces, reasoning, usage, finish, chunk_models = [], [], None, None, set()
stream = client.chat.completions.create(
    model="capibara", messages=messages, stream=True, stream_options={"include_usage": True},
    max_tokens=64, temperature=0.5,
)
for chunk in stream:
    chunk_models.add(chunk.model)
    if chunk.usage is not None:
        usage = chunk.usage.model_dump(exclude_none=True)
    for choice in chunk.choices:
        if choice.delta.content:
            pieces.append(choice.delta.content)
        extra = choice.delta.model_extra or {}
        if extra.get("reasoning_content"):
            reasoning.append(extra["reasoning_content"])
        if choice.finish_reason:
            finish = choice.finish_reason

whole = client.chat.completions.create(model="capibara", messages=messages, max_tokens=64)
message_extra = whole.choices[0].message.model_extra or {}

errors = {}
try:
    client.chat.completions.create(model="capibara", messages=[])
except openai.BadRequestError as error:
    errors["empty_messages"] = error.status_code

print(json.dumps({
    "pieces": pieces,
    "reasoning": "".join(reasoning),
    "usage": usage,
    "finish_reason": finish,
    "chunk_models": sorted(chunk_models),
    "whole_content": whole.choices[0].message.content,
    "whole_reasoning": message_extra.get("reasoning_content"),
    "whole_finish": whole.choices[0].finish_reason,
    "whole_usage": whole.usage.model_dump(exclude_none=True) if whole.usage else None,
    "models": [model.id for model in client.models.list()],
    "errors": errors,
}))
