"""Checks vela_client against a live `vela serve` (run by the ctest test_python_client).

argv: endpoint, then a JSON file with {"prompt", "max_tokens", "text", "token_ids"}: the
C++ client's greedy result for that prompt. Prints one line per check; exit 1 on a failure.
"""
import asyncio
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vela_client import AsyncClient, Client, Completion, Delta, VelaError  # noqa: E402

endpoint = sys.argv[1]
ref = json.load(open(sys.argv[2]))
failures = 0


def check(cond, name, detail=None):
    global failures
    print(("ok" if cond else "FAILED") + " - " + name + ("" if cond or detail is None else f": {detail!r}"))
    failures += 0 if cond else 1


with Client(endpoint, timeout=30) as c:
    check(c.ping(), "ping")
    done = c.generate(ref["prompt"], max_tokens=ref["max_tokens"], temperature=0, ignore_eos=True)
    check(done.text == ref["text"] and done.token_ids == ref["token_ids"], "generate: the C++ client's greedy result",
          (done.text, done.token_ids))
    check(done.finish_reason == "length" and done.num_output_tokens == ref["max_tokens"], "generate: usage", done)
    pieces = list(c.stream(ref["prompt"], max_tokens=ref["max_tokens"], temperature=0, ignore_eos=True))
    deltas = [p for p in pieces if isinstance(p, Delta)]
    final = pieces[-1]
    check(len(deltas) >= 2 and isinstance(final, Completion), "stream: deltas then a completion", len(deltas))
    check("".join(d.text for d in deltas) + (final.text[len("".join(d.text for d in deltas)):]) == ref["text"]
          and final.text == ref["text"], "stream: the same text", final.text)
    lp = c.generate(ref["prompt"], max_tokens=4, temperature=0, logprobs=2)
    check(lp.logprobs is not None and len(lp.logprobs) == 4 and all(len(e["top_ids"]) == 2 for e in lp.logprobs),
          "logprobs", lp.logprobs)
    chat = c.generate(messages=[{"role": "user", "content": "hello"}], max_tokens=6, temperature=0)
    check(chat.num_output_tokens > 0, "chat messages", chat)
    # Abort mid-stream.
    rid = c.submit("def f():", max_tokens=1500, ignore_eos=True)
    events = c.events(rid)
    first = next(events)
    c.abort(rid)
    last = [e for e in events][-1]
    check(isinstance(first, Delta) and last.finish_reason == "abort" and last.num_output_tokens < 1500, "abort", last)
    try:
        c.generate("x", temperature=-1)
        check(False, "a refused request raises VelaError")
    except VelaError as e:
        check(e.code == "invalid_value" and e.field == "params.temperature", "a refused request raises VelaError", e)
    try:
        c.generate("x", bogus=1)
        check(False, "an unknown parameter raises TypeError")
    except TypeError:
        check(True, "an unknown parameter raises TypeError")


async def concurrent():
    async with AsyncClient(endpoint, timeout=30) as ac:
        async def one(i):
            text = ""
            async for e in ac.stream(ref["prompt"], max_tokens=ref["max_tokens"], temperature=0, ignore_eos=True):
                if isinstance(e, Delta):
                    text += e.text
                else:
                    return e.text
        texts = await asyncio.gather(*(one(i) for i in range(4)))
        check(all(t == ref["text"] for t in texts), "asyncio: 4 concurrent streams, the greedy text each", texts)
        g = await ac.generate(ref["prompt"], max_tokens=ref["max_tokens"], temperature=0, ignore_eos=True)
        check(g.token_ids == ref["token_ids"], "asyncio: generate", g.token_ids)

asyncio.run(concurrent())
sys.exit(1 if failures else 0)
