#!/usr/bin/env python3
"""The official `openai` Python SDK against a running agora gateway, unchanged:
chat with `response_format` (json_schema), a forced tool call (streamed and not),
and `embeddings.create` (the SDK asks for base64 by default).

Usage: OPENAI_BASE_URL=http://127.0.0.1:8080/v1 OPENAI_API_KEY=... \
       python3 scripts/sdk-check.py
Exits non-zero, naming the check, if any fails.
"""
import json
import math

from openai import OpenAI

CHAT = "smollm2-135m-instruct"
EMBED = "all-minilm-l6-v2"

client = OpenAI()

schema = {
    "type": "object",
    "properties": {"population": {"type": "integer"}, "coastal": {"type": "boolean"}},
    "required": ["population", "coastal"],
}
r = client.chat.completions.create(
    model=CHAT,
    messages=[{"role": "user", "content": "Describe Lisbon."}],
    max_tokens=64,
    seed=1,
    response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema, "strict": True}},
)
city = json.loads(r.choices[0].message.content)
assert isinstance(city["population"], int) and isinstance(city["coastal"], bool), city
print("response_format json_schema:", r.choices[0].message.content)

tools = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"unit": {"enum": ["c", "f"]}}, "required": ["unit"]},
    },
}]
r = client.chat.completions.create(
    model=CHAT,
    messages=[{"role": "user", "content": "Weather in Lisbon?"}],
    max_tokens=64,
    tools=tools,
    tool_choice="required",
)
call = r.choices[0].message.tool_calls[0]
assert r.choices[0].finish_reason == "tool_calls", r
assert call.function.name == "get_weather" and json.loads(call.function.arguments)["unit"] in ("c", "f"), call
print("tools (collected):", call.function.name, call.function.arguments)

stream = client.chat.completions.create(
    model=CHAT,
    messages=[{"role": "user", "content": "Weather in Lisbon?"}],
    max_tokens=64,
    tools=tools,
    tool_choice={"type": "function", "function": {"name": "get_weather"}},
    stream=True,
)
name, args, finish = "", "", None
for chunk in stream:
    for c in chunk.choices:
        for t in c.delta.tool_calls or []:
            name += t.function.name or ""
            args += t.function.arguments or ""
        finish = c.finish_reason or finish
assert name == "get_weather" and finish == "tool_calls" and json.loads(args)["unit"] in ("c", "f"), (name, args, finish)
print("tools (streamed):", name, args)

e = client.embeddings.create(model=EMBED, input=["The cat sits on the mat.", "A kitten is resting on a rug.", "Quarterly revenue rose."])
v = [d.embedding for d in e.data]
dot = lambda a, b: sum(x * y for x, y in zip(a, b))
assert len(v) == 3 and all(len(x) == 384 and abs(math.sqrt(dot(x, x)) - 1) < 1e-3 for x in v)
assert dot(v[0], v[1]) > dot(v[0], v[2]) + 0.3, (dot(v[0], v[1]), dot(v[0], v[2]))
print(f"embeddings: 3 x 384, cos(cat, kitten) {dot(v[0], v[1]):.3f} > cos(cat, revenue) {dot(v[0], v[2]):.3f}; usage {e.usage.prompt_tokens} tokens")
print("openai SDK checks passed")
