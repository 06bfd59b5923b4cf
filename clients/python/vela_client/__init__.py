"""Vela's Python client: the ZeroMQ client protocol of docs/PROTOCOL.md, sync and asyncio.

Needs only pyzmq and msgpack (Debian: python3-zmq, python3-msgpack).

    from vela_client import Client
    with Client("ipc:///tmp/vela-frontend.sock") as c:
        print(c.generate("def main():", max_tokens=32, temperature=0).text)
        for piece in c.stream(messages=[{"role": "user", "content": "Hi"}], max_tokens=64):
            print(piece.text, end="", flush=True)

A refused request raises VelaError (code, field, message); a request the engine
failed (finish_reason "error") raises RequestFailed. Every wait has a deadline
(TimeoutError).
"""
from .client import (AsyncClient, Client, Completion, Delta, RequestFailed, VelaError,
                     DEFAULT_ENDPOINT)

__all__ = ["AsyncClient", "Client", "Completion", "Delta", "RequestFailed", "VelaError", "DEFAULT_ENDPOINT"]
