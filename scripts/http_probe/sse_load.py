#!/usr/bin/env python3
"""Opens N concurrent streaming HTTP requests (raw asyncio, stdlib only) and reports
how many completed, time to first event (p50/p99) and the wall time: the load of
docs/PERF_NOTES.md's HTTP library comparison.

  sse_load.py --port 8000 --n 1000 --path /v1/completions \
      --body '{"prompt":[1,2,3],"max_tokens":50,"stream":true}'
"""
import argparse
import asyncio
import json
import time


async def one(host, port, path, body, method, timeout, results):
    t0 = time.perf_counter()
    ttft = None
    events = 0
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        req = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
        if method == "POST":
            req += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        writer.write((req + "\r\n").encode() + body.encode())
        await writer.drain()
        deadline = t0 + timeout
        buf = b""
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError
            data = await asyncio.wait_for(reader.read(65536), left)
            if not data:
                break
            buf += data
            n = buf.count(b"data: ")
            if n and ttft is None:
                ttft = time.perf_counter() - t0
            events = n
            if b"data: [DONE]" in buf or buf.endswith(b"0\r\n\r\n"):
                break
        writer.close()
        ok = buf.startswith(b"HTTP/1.1 200") and events > 0
        results.append((ok, ttft, time.perf_counter() - t0, events, buf[:12]))
    except Exception as e:  # noqa: BLE001 - counted as a failure
        results.append((False, ttft, time.perf_counter() - t0, events, repr(e)[:40]))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan")


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--path", default="/v1/completions")
    ap.add_argument("--method", default="POST")
    ap.add_argument("--body", default='{"prompt":[1,2,3],"max_tokens":50,"stream":true}')
    ap.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args()
    results = []
    t0 = time.perf_counter()
    await asyncio.gather(*(one(a.host, a.port, a.path, a.body, a.method, a.timeout, results) for _ in range(a.n)))
    wall = time.perf_counter() - t0
    ok = [r for r in results if r[0]]
    ttfts = [r[1] for r in ok if r[1] is not None]
    fails = {}
    for r in results:
        if not r[0]:
            fails[str(r[4])] = fails.get(str(r[4]), 0) + 1
    print(json.dumps({"n": a.n, "completed": len(ok), "wall_s": round(wall, 3),
                      "ttft_p50_ms": round(pct(ttfts, 50) * 1e3, 2), "ttft_p99_ms": round(pct(ttfts, 99) * 1e3, 2),
                      "events_per_stream": round(sum(r[3] for r in ok) / max(1, len(ok)), 1), "failures": fails}))


if __name__ == "__main__":
    asyncio.run(main())
