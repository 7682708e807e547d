"""Socket reads that wait only for what is left of an attempt's deadline (on a stepped clock).

The transport-level behaviour (a trickled answer ends at its deadline) is in test_bounded_http.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpcore2
import httpx2
import pytest

from pcache_magic.session.deadline_io import Deadline, deadline, install


class Recording(httpcore2.NetworkStream):
    """A socket that answers each read at once and records the timeout it was given."""

    def __init__(self) -> None:
        self.waits: list[float | None] = []

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.waits.append(timeout)
        return b"x"


class Connecting(httpcore2.NetworkBackend):
    def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore2.NetworkStream:
        return Recording()


def test_a_number_becomes_a_deadline_and_no_timeout_stays_none() -> None:
    ends = deadline(30, lambda: 100.0)
    assert isinstance(ends, Deadline) and ends == 30.0 and ends.at == 130.0
    assert deadline(None, lambda: 100.0) is None


def test_each_read_waits_only_what_is_left_and_none_after_the_deadline() -> None:
    now = [0.0]
    transport = httpx2.HTTPTransport()
    transport._pool._network_backend = Connecting()
    install(transport, asynchronous=False)
    install(transport, asynchronous=False)  # once: a second install does not wrap again
    stream = transport._pool._network_backend.connect_tcp("h", 1)
    ends = deadline(30, lambda: now[0])
    stream.read(1, ends)
    now[0] = 25.0
    stream.read(1, ends)
    stream.read(1, 5.0)  # a plain timeout is passed on as it is
    assert stream._inner.waits == [30.0, 5.0, 5.0]  # type: ignore[attr-defined]
    now[0] = 30.0
    with pytest.raises(httpcore2.ReadTimeout, match="no whole answer within 30 s"):
        stream.read(1, ends)


class Ended(httpcore2.AsyncNetworkStream):
    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        raise AssertionError("a read after the deadline reached the socket")


class AsyncConnecting(httpcore2.AsyncNetworkBackend):
    async def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore2.AsyncNetworkStream:
        return Ended()


def test_the_async_backend_is_wrapped_too() -> None:
    now = [0.0]
    transport = httpx2.AsyncHTTPTransport()
    transport._pool._network_backend = AsyncConnecting()
    install(transport, asynchronous=True)
    ends = deadline(30, lambda: now[0])
    now[0] = 31.0

    async def read() -> bytes:
        stream = await transport._pool._network_backend.connect_tcp("h", 1)
        return await stream.read(1, ends)

    with pytest.raises(httpcore2.ReadTimeout, match="no whole answer within 30 s"):
        asyncio.run(read())
