"""Client and AsyncClient: one DEALER socket each; many requests may be in flight on it."""
import collections
import dataclasses
import itertools
import os
import time
import uuid
from typing import Any, AsyncIterator, Dict, Iterator, List, Optional, Union

import msgpack
import zmq
import zmq.asyncio

DEFAULT_ENDPOINT = os.environ.get("VELA_ENDPOINT", "ipc:///tmp/vela-frontend.sock")

# Sampling parameters the server knows (docs/PROTOCOL.md, `params`).
_PARAMS = {"n", "temperature", "top_p", "top_k", "min_p", "seed", "max_tokens", "min_tokens", "stop",
           "stop_token_ids", "ignore_eos", "logprobs", "presence_penalty", "frequency_penalty",
           "repetition_penalty"}


class VelaError(Exception):
    """The server refused a request or frame: code (invalid_value, busy, ...), field, message."""

    def __init__(self, code: str, field: str, message: str, request_id: str = ""):
        super().__init__(f"{code}: {field + ': ' if field else ''}{message}")
        self.code, self.field, self.message, self.request_id = code, field, message, request_id


class RequestFailed(VelaError):
    """The request was accepted but ended with finish_reason "error" (e.g. a worker died)."""


@dataclasses.dataclass
class Delta:
    request_id: str
    token_ids: List[int]
    text: str
    logprobs: Optional[List[Dict[str, Any]]] = None


@dataclasses.dataclass
class Completion:
    request_id: str
    text: str
    token_ids: List[int]
    finish_reason: str
    stop_reason: str = ""
    prompt_token_ids: List[int] = dataclasses.field(default_factory=list)
    num_prompt_tokens: int = 0
    num_output_tokens: int = 0
    num_cached_tokens: int = 0
    logprobs: Optional[List[Dict[str, Any]]] = None


def _request(request_id, prompt, prompt_token_ids, messages, stream, priority, params) -> bytes:
    unknown = set(params) - _PARAMS
    if unknown:
        raise TypeError(f"unknown sampling parameter(s): {', '.join(sorted(unknown))}")
    given = [x is not None for x in (prompt, prompt_token_ids, messages)]
    if sum(given) != 1:
        raise TypeError("exactly one of prompt, prompt_token_ids and messages is required")
    msg: Dict[str, Any] = {"type": "generate", "request_id": request_id, "stream": stream, "params": params}
    if prompt is not None:
        msg["prompt"] = prompt
    elif prompt_token_ids is not None:
        msg["prompt_token_ids"] = list(prompt_token_ids)
    else:
        msg["messages"] = list(messages)
    if priority:
        msg["priority"] = priority
    return msgpack.packb(msg)


class _Assembler:
    """Concatenates one request's events into its Completion (and raises its errors)."""

    def __init__(self, request_id: str):
        self.request_id, self.text, self.token_ids, self.logprobs = request_id, "", [], None

    def take(self, m: Dict[str, Any]) -> Union[Delta, Completion]:
        if m["type"] == "error":
            raise VelaError(m.get("code", ""), m.get("field", ""), m.get("message", ""), self.request_id)
        self.text += m.get("text", "")
        self.token_ids += m.get("token_ids", [])
        if m.get("logprobs") is not None:
            self.logprobs = (self.logprobs or []) + m["logprobs"]
        if m["type"] == "delta":
            return Delta(self.request_id, m.get("token_ids", []), m.get("text", ""), m.get("logprobs"))
        if m.get("finish_reason") == "error":
            raise RequestFailed("error", "", m.get("message", "the request failed"), self.request_id)
        return Completion(self.request_id, self.text, self.token_ids, m.get("finish_reason", ""),
                          m.get("stop_reason", ""), m.get("prompt_token_ids", []), m.get("num_prompt_tokens", 0),
                          m.get("num_output_tokens", 0), m.get("num_cached_tokens", 0), self.logprobs)


class Client:
    """Blocking client. Not thread-safe (one socket); use one per thread, or AsyncClient."""

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, timeout: float = 60.0):
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.connect(endpoint)
        self.timeout = timeout
        self._inbox: Dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self._ids = itertools.count()
        self._prefix = uuid.uuid4().hex[:8]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._sock.close(0)
        self._ctx.term()

    def _recv(self, deadline: float) -> Dict[str, Any]:
        left = deadline - time.monotonic()
        if left <= 0 or not self._sock.poll(int(left * 1000)):
            raise TimeoutError("no reply from vela serve")
        return msgpack.unpackb(self._sock.recv(), raw=False)

    def _next_for(self, request_id: str, deadline: float) -> Dict[str, Any]:
        while not self._inbox[request_id]:
            m = self._recv(deadline)
            self._inbox[m.get("request_id", "")].append(m)
        return self._inbox[request_id].popleft()

    def ping(self, timeout: float = 2.0) -> bool:
        self._sock.send(msgpack.packb({"type": "ping"}))
        try:
            return self._next_for("", time.monotonic() + timeout).get("type") == "pong"
        except TimeoutError:
            return False

    def submit(self, prompt=None, *, prompt_token_ids=None, messages=None, stream=True, priority=0,
               request_id=None, **params) -> str:
        """Sends a request; its events are read with events(request_id)."""
        request_id = request_id or f"{self._prefix}-{next(self._ids)}"
        self._sock.send(_request(request_id, prompt, prompt_token_ids, messages, stream, priority, params))
        return request_id

    def abort(self, request_id: str) -> None:
        """Stops a request; it ends with finish_reason "abort"."""
        self._sock.send(msgpack.packb({"type": "abort", "request_id": request_id}))

    def events(self, request_id: str) -> Iterator[Union[Delta, Completion]]:
        a = _Assembler(request_id)
        while True:
            out = a.take(self._next_for(request_id, time.monotonic() + self.timeout))
            yield out
            if isinstance(out, Completion):
                self._inbox.pop(request_id, None)
                return

    def stream(self, prompt=None, **kwargs) -> Iterator[Union[Delta, Completion]]:
        """Yields a Delta per server message, then the Completion (with everything)."""
        return self.events(self.submit(prompt, stream=True, **kwargs))

    def generate(self, prompt=None, **kwargs) -> Completion:
        rid = self.submit(prompt, stream=False, **kwargs)
        return next(e for e in self.events(rid) if isinstance(e, Completion))


class AsyncClient:
    """asyncio client: any number of concurrent requests on one socket."""

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, timeout: float = 60.0):
        self._ctx = zmq.asyncio.Context()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.connect(endpoint)
        self.timeout = timeout
        self._inbox: Dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self._reading = False
        self._ids = itertools.count()
        self._prefix = uuid.uuid4().hex[:8]

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        self.close()

    def close(self):
        self._sock.close(0)
        self._ctx.term()

    async def _next_for(self, request_id: str, deadline: float) -> Dict[str, Any]:
        import asyncio
        while not self._inbox[request_id]:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply from vela serve")
            if self._reading:  # another task is reading: let it route our message
                await asyncio.sleep(0.001)
                continue
            self._reading = True
            try:
                if await self._sock.poll(int(left * 1000)):
                    m = msgpack.unpackb(await self._sock.recv(), raw=False)
                    self._inbox[m.get("request_id", "")].append(m)
            finally:
                self._reading = False
        return self._inbox[request_id].popleft()

    async def submit(self, prompt=None, *, prompt_token_ids=None, messages=None, stream=True, priority=0,
                     request_id=None, **params) -> str:
        request_id = request_id or f"{self._prefix}-{next(self._ids)}"
        await self._sock.send(_request(request_id, prompt, prompt_token_ids, messages, stream, priority, params))
        return request_id

    async def abort(self, request_id: str) -> None:
        await self._sock.send(msgpack.packb({"type": "abort", "request_id": request_id}))

    async def events(self, request_id: str) -> AsyncIterator[Union[Delta, Completion]]:
        a = _Assembler(request_id)
        while True:
            out = a.take(await self._next_for(request_id, time.monotonic() + self.timeout))
            yield out
            if isinstance(out, Completion):
                self._inbox.pop(request_id, None)
                return

    async def stream(self, prompt=None, **kwargs) -> AsyncIterator[Union[Delta, Completion]]:
        rid = await self.submit(prompt, stream=True, **kwargs)
        async for e in self.events(rid):
            yield e

    async def generate(self, prompt=None, **kwargs) -> Completion:
        rid = await self.submit(prompt, stream=False, **kwargs)
        async for e in self.events(rid):
            if isinstance(e, Completion):
                return e
        raise AssertionError("unreachable")
