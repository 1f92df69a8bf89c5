"""The official `openai` Python client against a Commons node, unchanged.

usage: openai_client.py BASE_URL API_KEY ADAPTER
Prints one JSON line with what it saw; exits non-zero on the first surprise.
"""
import json
import sys

import openai
from openai import OpenAI

base, key, adapter = sys.argv[1], sys.argv[2], sys.argv[3]
client = OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=120)
out = {}

out["models"] = [m.id for m in client.models.list().data]

msgs = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello."}]
r = client.chat.completions.create(model=adapter, messages=msgs, max_tokens=8, temperature=0, seed=1)
out["chat"] = {
    "content": r.choices[0].message.content,
    "finish_reason": r.choices[0].finish_reason,
    "usage": r.usage.model_dump(),
    "object": r.object,
}
r2 = client.chat.completions.create(model=adapter, messages=msgs, max_tokens=8, temperature=0, seed=1)
out["chat_repeat_same"] = r2.choices[0].message.content == r.choices[0].message.content

stream = client.chat.completions.create(
    model=adapter, messages=msgs, max_tokens=8, temperature=0, stream=True,
    stream_options={"include_usage": True},
)
pieces, finish, usage, roles = [], None, None, []
for chunk in stream:
    if chunk.usage is not None:
        usage = chunk.usage.model_dump()
    for c in chunk.choices:
        if c.delta.role:
            roles.append(c.delta.role)
        if c.delta.content:
            pieces.append(c.delta.content)
        if c.finish_reason:
            finish = c.finish_reason
out["stream"] = {"text": "".join(pieces), "finish_reason": finish, "usage": usage, "roles": roles}

lp = client.chat.completions.create(
    model=adapter, messages=msgs, max_tokens=3, temperature=0, logprobs=True, top_logprobs=2
)
content = lp.choices[0].logprobs.content
out["logprobs"] = {"n": len(content), "top": len(content[0].top_logprobs), "lp": content[0].logprob}

c = client.completions.create(model=adapter, prompt="The datanet", max_tokens=5, temperature=0.8, top_p=0.9, seed=7)
out["completion"] = {"text": c.choices[0].text, "finish_reason": c.choices[0].finish_reason,
                     "usage": c.usage.model_dump(), "object": c.object}
base_model = out["models"][0]
b = client.completions.create(model=base_model, prompt="The datanet", max_tokens=4, temperature=0)
out["base_completion_tokens"] = b.usage.completion_tokens

try:
    client.chat.completions.create(model="no-such-adapter", messages=msgs, max_tokens=2)
    out["unknown_model"] = "accepted"
except openai.NotFoundError as e:
    out["unknown_model"] = e.status_code
try:
    OpenAI(base_url=base + "/v1", api_key="wrong", max_retries=0).models.list()
    out["bad_key"] = "accepted"
except openai.AuthenticationError as e:
    out["bad_key"] = e.status_code
try:
    client.chat.completions.create(model=adapter, messages=msgs, max_tokens=10**6)
    out["too_many_tokens"] = "accepted"
except openai.BadRequestError as e:
    out["too_many_tokens"] = e.status_code

print(json.dumps(out))
