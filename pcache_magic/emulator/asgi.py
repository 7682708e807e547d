"""The emulator as an ASGI application: HTTP in, `Emulator.respond` (the wire layer), HTTP out.

What the wire layer cannot see is decided here, before a body is read: the size a request
declares (413 above `Emulator.max_body_bytes`, 529 when all requests in progress together
would pass `Limits.max_inflight_body_bytes`) and who may use the controls (`guard`). The
wire layer itself runs on a worker thread, so a long request never stalls the event loop
that keeps every other connection, its deadline and its keep-alive timer moving.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import guard, wire
from .errors import ApiError

if TYPE_CHECKING:
    from . import Emulator

__all__ = ["NOW_HEADER", "TIMEOUT_HOLD_S", "EmulatorApp", "Receive", "Scope", "Send"]

#: Longest an injected timeout holds a request before answering 504 (a client with a shorter
#: timeout has given up by then, which is the point).
TIMEOUT_HOLD_S = 2.0

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
_CLOSE = (b"connection", b"close")
#: Every answer tells the emulator's time in this header (`repr` of its clock), so a URL-mode
#: session knows it without asking `/_emulator/state` (`session.server_clock.ServerClock`).  The API
#: has no such header; the SDK passes it by.
NOW_HEADER = "x-pcache-emulator-now"


class EmulatorApp:
    """ASGI 3 app for one `Emulator`, within `limits`; keeps the tally of declared body bytes."""

    def __init__(self, emulator: Emulator, limits: guard.Limits) -> None:
        self.emulator = emulator
        self.limits = limits
        self._inflight = 0  # touched only on the event loop's thread

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        method: str = scope["method"]
        path = scope["raw_path"].decode("latin-1")
        authority = None
        if "://" in path:  # absolute-form target, as sent through a proxy: its host stands for Host
            target = urlsplit(path)
            authority, path = target.netloc, target.path or "/"
        if scope["query_string"]:
            path += "?" + scope["query_string"].decode("latin-1")
        length = int(headers.get("content-length") or 0)  # guard.RequestFraming let only digits through
        refusal = guard.control_refusal(method, path, headers, self.limits, authority=authority)
        if refusal is None and length > self.emulator.max_body_bytes:
            refusal = ApiError(
                "request_too_large",
                f"Request exceeds the maximum allowed number of bytes ({self.emulator.max_body_bytes}).",
            )
        if refusal is None and self._inflight + length > self.limits.max_inflight_body_bytes:
            refusal = ApiError(
                "overloaded_error",
                "Too many large request bodies in progress; try again shortly.",
                headers={"retry-after": "1"},
            )
        if refusal is not None:  # answered unread, so the connection cannot be reused
            answer = wire.error_response(refusal, self.emulator.next_request_id(), headers)
            return await _send(answer, send, self._now(), close=True)
        self._inflight += length
        try:
            body = await _read_body(receive, length)
            if body is None:  # the client left (or missed its deadline) mid-body
                return None
            loop = asyncio.get_running_loop()
            arrived = self.emulator.engine.ticket()  # in before the answers of requests that follow
            answer = await loop.run_in_executor(
                None, self.emulator.respond, method, path, headers, body, arrived
            )
        finally:
            self._inflight -= length
        if answer.timed_out:  # an injected timeout: say nothing until the client gives up
            hold = min(TIMEOUT_HOLD_S, self.limits.request_timeout_s)
            try:
                await asyncio.wait_for(receive(), hold)  # returns once the client disconnects
                return None
            except TimeoutError:
                return await _send(answer, send, self._now(), close=True)
        return await _send(answer, send, self._now())

    def _now(self) -> float:
        """The clock, read without the emulator's lock (a batch's slice may hold it): the event loop
        never waits, and a time read mid-advance is one the clock passed through."""
        return self.emulator.engine.now()


async def _read_body(receive: Receive, length: int) -> bytes | None:
    """The whole body (at most `length` bytes, as h11 enforces), or None if the client left."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if len(body) > length:  # cannot happen behind h11; never buffer past the declaration
            return None
        if not message.get("more_body", False):
            return bytes(body)


async def _send(answer: wire.WireResponse, send: Send, now: float, *, close: bool = False) -> None:
    """JSON with Content-Length, or SSE chunked; an injected disconnect cuts the stream short.
    `now`: the emulator's time, told in `NOW_HEADER`."""
    headers = [
        (k.lower().encode("latin-1"), v.encode("latin-1"))
        for k, v in answer.headers.items()
        if k.lower() not in ("content-length", "transfer-encoding", "connection", NOW_HEADER)
    ]
    headers.append((NOW_HEADER.encode(), repr(now).encode()))
    if close:
        headers.append(_CLOSE)
    if answer.events is None:
        body = answer.body or b""
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})
        return
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    try:
        for chunk in answer.events:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except wire.ConnectionCut:
        return  # returning mid-response: the server drops the connection without the last chunk
    await send({"type": "http.response.body", "body": b"", "more_body": False})
