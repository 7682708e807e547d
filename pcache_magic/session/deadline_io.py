"""Socket reads that wait only for what is left of an attempt's deadline.

httpcore2 gives each socket read the request's read timeout, so an answer sent a byte at a time
never times out.  `install` wraps an httpx2 transport's network backend: a read timeout that is a
`Deadline` (a float, as httpcore2 expects, that also knows when its attempt ends) makes each read
wait at most what is left of it, and a read after it fail as `httpcore2.ReadTimeout`; any other
timeout is passed on as it is.  The check is one clock read per socket read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpcore2

__all__ = ["Clock", "Deadline", "deadline", "install"]

#: A monotonic clock, in seconds (a test's, to step it).
Clock = Callable[[], float]


class Deadline(float):
    """A read timeout that also knows when the whole attempt ends (`at`, on `clock`)."""

    at: float
    clock: Clock


def deadline(read: object, clock: Clock) -> object:
    """`read` (seconds) as a `Deadline` that ends `read` seconds from now; anything else (None:
    no timeout) as it is."""
    if not isinstance(read, int | float):
        return read
    ends = Deadline(read)
    ends.at, ends.clock = clock() + read, clock
    return ends


def _left(timeout: float | None) -> float | None:
    """The wait for one read: what is left of the attempt's deadline, if the timeout carries one."""
    if not isinstance(timeout, Deadline):
        return timeout
    left = timeout.at - timeout.clock()
    if left <= 0:
        raise httpcore2.ReadTimeout(f"no whole answer within {float(timeout):g} s")
    return min(float(timeout), left)


class _Stream(httpcore2.NetworkStream):
    def __init__(self, inner: httpcore2.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, *args: Any, **kwargs: Any) -> httpcore2.NetworkStream:
        return _Stream(self._inner.start_tls(*args, **kwargs))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore2.NetworkBackend):
    def __init__(self, inner: httpcore2.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore2.NetworkStream:
        return _Stream(self._inner.connect_tcp(*args, **kwargs))

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore2.NetworkStream:
        return _Stream(self._inner.connect_unix_socket(*args, **kwargs))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _AsyncStream(httpcore2.AsyncNetworkStream):
    def __init__(self, inner: httpcore2.AsyncNetworkStream) -> None:
        self._inner = inner

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, _left(timeout))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(self, *args: Any, **kwargs: Any) -> httpcore2.AsyncNetworkStream:
        return _AsyncStream(await self._inner.start_tls(*args, **kwargs))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _AsyncBackend(httpcore2.AsyncNetworkBackend):
    def __init__(self, inner: httpcore2.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore2.AsyncNetworkStream:
        return _AsyncStream(await self._inner.connect_tcp(*args, **kwargs))

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore2.AsyncNetworkStream:
        return _AsyncStream(await self._inner.connect_unix_socket(*args, **kwargs))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def install(transport: object, *, asynchronous: bool) -> None:
    """Wrap the network backend of an httpx2 transport's connection pool (proxies included), so
    each socket read waits only for what is left of its attempt's deadline; once."""
    pool = getattr(transport, "_pool", None)
    inner = getattr(pool, "_network_backend", None)
    if inner is not None and not isinstance(inner, _Backend | _AsyncBackend):
        wrapped = _AsyncBackend(inner) if asynchronous else _Backend(inner)
        pool._network_backend = wrapped  # type: ignore[union-attr]  # noqa: SLF001
