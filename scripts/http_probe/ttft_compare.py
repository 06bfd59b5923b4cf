#!/usr/bin/env python3
"""TTFT of the same request, one at a time, through the ZeroMQ front and the HTTP
front of one `vela serve` (docs/PERF_NOTES.md): time from sending to the first
streamed token, median and p90 over N requests, alternating the fronts.

  ttft_compare.py --endpoint ipc:///tmp/vela-frontend.sock --port 8000 --n 200
"""
import argparse
import json
import socket
import statistics
import time

import msgpack
import zmq


def zmq_ttft(sock, i, prompt, max_tokens):
    rid = f"z{i}"
    t0 = time.perf_counter()
    sock.send(msgpack.packb({"type": "generate", "request_id": rid, "prompt_token_ids": prompt,
                             "params": {"max_tokens": max_tokens, "temperature": 0.0}, "stream": True}))
    ttft = None
    while True:
        m = msgpack.unpackb(sock.recv(), raw=False)
        if m.get("request_id") != rid:
            continue
        if ttft is None and m.get("token_ids"):
            ttft = time.perf_counter() - t0
        if m["type"] != "delta":
            return ttft


def http_ttft(port, prompt, max_tokens):
    body = json.dumps({"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": True}).encode()
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t0 = time.perf_counter()
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
              b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    buf, ttft = b"", None
    while True:
        d = s.recv(65536)
        if not d:
            break
        buf += d
        if ttft is None and b"data: {" in buf:
            ttft = time.perf_counter() - t0
    s.close()
    return ttft


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", default="ipc:///tmp/vela-frontend.sock")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--max-tokens", type=int, default=4)
    a = ap.parse_args()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.connect(a.endpoint)
    prompt = [11, 12, 13, 14, 15, 16, 17, 18]
    z, h = [], []
    for i in range(a.n):
        z.append(zmq_ttft(sock, i, prompt, a.max_tokens))
        h.append(http_ttft(a.port, prompt, a.max_tokens))
    q = lambda xs, p: sorted(xs)[int(p * (len(xs) - 1))] * 1e3  # noqa: E731
    print(json.dumps({"n": a.n, "zmq_ttft_ms": {"p50": round(q(z, .5), 3), "p90": round(q(z, .9), 3)},
                      "http_ttft_ms": {"p50": round(q(h, .5), 3), "p90": round(q(h, .9), 3)},
                      "http_minus_zmq_p50_ms": round(q(h, .5) - q(z, .5), 3),
                      "http_minus_zmq_mean_ms": round((statistics.mean(h) - statistics.mean(z)) * 1e3, 3)}))


if __name__ == "__main__":
    main()
