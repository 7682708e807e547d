"""The HTTP clients of URL and live mode, with a bound on what a server can make a call read.

`PCACHE_EMULATOR_URL` and `ANTHROPIC_BASE_URL` may point at anything.  The SDK's own clients read a
body until it ends, wait 60 s (or 600 s) per read but not per answer, and follow a redirect to any
host with the prompt, so a hostile server could fill memory (a huge body, a gzip bomb, an endless
stream), hold a call for ever (a byte every few seconds), or receive the prompt elsewhere.  Here the
SDK's client (`anthropic.DefaultHttpxClient`, its defaults kept) gets transports that bound each answer:

- its DECODED body to a byte cap (`MAX_BODY`, `MAX_STREAM`, `MAX_LARGE`, by what was asked);
- a not-streamed attempt, head and body, to one deadline: the read timeout is the whole attempt's
  budget.  A streamed answer's head has that deadline too; its body only the cap and the per-read
  timeout (a real long reply streams for an hour, and the user can interrupt);
- a redirect to another origin is refused before anything is sent there.

Past a bound the call fails as a connection or timeout error (`AnswerTooLarge`, `RedirectRefused`,
`httpx2.ReadTimeout`), which the SDK wraps and the pipeline shows as one line.  Per chunk the cost
is a counter add; the deadline is checked per socket read, in a wrapped network backend.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import anthropic
import httpcore2
import httpx2
from httpx2._decoders import MultiDecoder  # noqa: PLC2701 (the decoders a Response itself uses)

__all__ = [
    "MAX_BODY",
    "MAX_LARGE",
    "MAX_RUN",
    "MAX_STREAM",
    "AnswerTooLarge",
    "AsyncBoundedTransport",
    "BoundedTransport",
    "RedirectRefused",
    "bounded_async_client",
    "bounded_client",
    "with_bounded_clients",
]

_MIB = 1024 * 1024
#: A not-streamed answer, parsed as one JSON document: a 128k-token reply is a few MB of JSON.
MAX_BODY = 32 * _MIB
#: A streamed answer (SSE, parsed event by event): 128k output tokens, one ~105-byte
#: `content_block_delta` event each, are about 14 MB.
MAX_STREAM = 64 * _MIB
#: One SSE event of a stream, or one JSONL line of a batch's results: the SDK gathers each by
#: concatenation, so time grows with the square of its length.  A real one is a reply's block at most.
MAX_RUN = 16 * _MIB
#: A batch's results (JSONL, up to 100,000 answers; the SDK reads them line by line) or a file's
#: content: large, yet short of what would exhaust a notebook's memory.
MAX_LARGE = 2048 * _MIB
_LARGE_PATHS = ("/results", "/content")
_STREAMED = (b'"stream":true', b'"stream": true')
_Clock = Callable[[], float]


class AnswerTooLarge(httpx2.ReadError):
    """An answer's decoded body passed its cap; the SDK shows it as a failed connection."""


class RedirectRefused(httpx2.ConnectError):
    """A redirect to another origin, which would re-send the prompt there; not followed."""


class _Deadline(float):
    """A read timeout that also knows when the whole attempt ends (`at`, on `clock`)."""

    at: float
    clock: _Clock


def _deadline(read: float, clock: _Clock) -> _Deadline:
    deadline = _Deadline(read)
    deadline.at, deadline.clock = clock() + read, clock
    return deadline


def _left(timeout: float | None) -> float | None:
    """The wait for one read: what is left of the attempt's deadline, if the timeout carries one."""
    if not isinstance(timeout, _Deadline):
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


def _install(transport: object, backend: Callable[[Any], Any]) -> None:
    """Wrap the network backend of an httpx2 transport's connection pool (proxies included), so
    each socket read waits only for what is left of its attempt's deadline."""
    pool = getattr(transport, "_pool", None)
    inner = getattr(pool, "_network_backend", None)
    if inner is not None and not isinstance(inner, _Backend | _AsyncBackend):
        pool._network_backend = backend(inner)  # type: ignore[union-attr]  # noqa: SLF001


def _kind(request: httpx2.Request) -> tuple[bool, int, bytes | None]:
    """(whether the answer is read as it comes, its byte cap, what ends one of its `MAX_RUN`
    pieces), from what was asked: never from the answer, which a server could dress as a stream
    to escape the deadline."""
    path = request.url.path
    if path.endswith(_LARGE_PATHS):  # a batch's JSONL results, or a file's bytes
        return True, MAX_LARGE, b"\n" if path.endswith("/results") else None
    try:
        body = request.content
    except httpx2.RequestNotRead:  # a streamed upload: not a Messages call
        body = b""
    if any(flag in body for flag in _STREAMED):  # an escaped prompt never matches
        return True, MAX_STREAM, b"\n\n"
    raw = request.headers.get(anthropic._constants.RAW_RESPONSE_HEADER) == "stream"  # noqa: SLF001
    return raw, MAX_STREAM if raw else MAX_BODY, None


def _origin(url: httpx2.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def _prepare(request: httpx2.Request, clock: _Clock) -> tuple[bool, _Meter, dict[str, Any], Any]:
    """Give `request` a read timeout that carries the attempt's deadline; (streamed, the meter of
    its answer, the request's timeouts, its plain read timeout to restore for a stream's body)."""
    streamed, cap, sep = _kind(request)
    timeouts = dict(request.extensions.get("timeout") or {})
    read = timeouts.get("read")
    if isinstance(read, int | float):
        timeouts["read"] = _deadline(float(read), clock)
    request.extensions = {**request.extensions, "timeout": timeouts}
    return streamed, _Meter(request, cap, sep), timeouts, read


def _refused(request: httpx2.Request, response: httpx2.Response) -> RedirectRefused | None:
    """The error for a redirect to another origin (it would re-send the prompt there), else None."""
    location = response.headers.get("location") if 300 <= response.status_code < 400 else None
    try:
        target = request.url.join(location) if location is not None else request.url
    except httpx2.InvalidURL:
        return None  # httpx2 refuses it itself
    if _origin(target) == _origin(request.url):
        return None
    return RedirectRefused(
        f"a redirect to {target.host} (another host) is not followed: it would re-send the prompt there",
        request=request,
    )


def _decoded(response: httpx2.Response) -> MultiDecoder | None:
    """The decoder of the answer's content-encoding, taken over from the Response (which then
    sees plain bytes) so the cap counts what a gzip bomb inflates to."""
    encodings = [e.strip().lower() for e in response.headers.get_list("content-encoding", split_commas=True)]
    if not [e for e in encodings if e != "identity"]:
        return None
    del response.headers["content-encoding"]
    response.headers.pop("content-length", None)
    return MultiDecoder([e for e in encodings if e != "identity"])


class _Meter:
    """Counts an answer's decoded bytes, and those since its last `sep`; raises past a cap."""

    def __init__(self, request: httpx2.Request, cap: int, sep: bytes | None) -> None:
        self.request, self.cap, self.sep, self.seen, self.run = request, cap, sep, 0, 0

    def count(self, chunk: bytes) -> bytes:
        self.seen += len(chunk)
        if self.sep is not None:
            end = chunk.rfind(self.sep)
            self.run = len(chunk) - end - len(self.sep) if end >= 0 else self.run + len(chunk)
            if self.run > MAX_RUN:
                raise AnswerTooLarge(
                    f"its answer passed {MAX_RUN // _MIB} MiB in one event or line, more than a "
                    "real one holds; stopped reading it",
                    request=self.request,
                )
        if self.seen > self.cap:
            raise AnswerTooLarge(
                f"its answer passed {self.cap // _MIB} MiB, more than a real one holds; stopped reading it",
                request=self.request,
            )
        return chunk


class _Capped(httpx2.SyncByteStream):
    def __init__(self, inner: Any, decoder: MultiDecoder | None, meter: _Meter) -> None:
        self._inner, self._decoder, self._meter = inner, decoder, meter

    def _chunks(self) -> Iterator[bytes]:
        if self._decoder is None:
            yield from self._inner
            return
        for raw in self._inner:
            yield from self._decoder.decode(raw)
        yield from self._decoder.flush()

    def __iter__(self) -> Iterator[bytes]:
        count = self._meter.count
        for chunk in self._chunks():
            yield count(chunk)

    def close(self) -> None:
        self._inner.close()


class _AsyncCapped(httpx2.AsyncByteStream):
    def __init__(self, inner: Any, decoder: MultiDecoder | None, meter: _Meter) -> None:
        self._inner, self._decoder, self._meter = inner, decoder, meter

    async def __aiter__(self) -> AsyncIterator[bytes]:
        count, decoder = self._meter.count, self._decoder
        async for raw in self._inner:
            for chunk in decoder.decode(raw) if decoder else (raw,):
                yield count(chunk)
        for chunk in decoder.flush() if decoder else ():
            yield count(chunk)

    async def aclose(self) -> None:
        await self._inner.aclose()


class BoundedTransport(httpx2.BaseTransport):
    """`inner` (an `httpx2.HTTPTransport`), each answer bounded as the module says.  `clock`: the
    monotonic clock deadlines run on (a test's, to step it)."""

    def __init__(self, inner: httpx2.BaseTransport, *, clock: _Clock = time.monotonic) -> None:
        self._inner, self._clock = inner, clock
        _install(inner, _Backend)

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        streamed, meter, timeouts, read = _prepare(request, self._clock)
        response = self._inner.handle_request(request)
        if streamed:
            timeouts["read"] = read  # the head came in time; a stream's body has no deadline
        if (refused := _refused(request, response)) is not None:
            response.close()
            raise refused
        response.stream = _Capped(response.stream, _decoded(response), meter)
        return response

    def close(self) -> None:
        self._inner.close()


class AsyncBoundedTransport(httpx2.AsyncBaseTransport):
    """`BoundedTransport`, async."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, *, clock: _Clock = time.monotonic) -> None:
        self._inner, self._clock = inner, clock
        _install(inner, _AsyncBackend)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        streamed, meter, timeouts, read = _prepare(request, self._clock)
        response = await self._inner.handle_async_request(request)
        if streamed:
            timeouts["read"] = read
        if (refused := _refused(request, response)) is not None:
            await response.aclose()
            raise refused
        response.stream = _AsyncCapped(response.stream, _decoded(response), meter)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def _wrap(client: Any, wrapper: Callable[[Any], Any]) -> Any:
    """`client` with its default transport and each mounted one (proxies) wrapped."""
    client._transport = wrapper(client._transport)  # noqa: SLF001 (set up by the SDK's client)
    client._mounts = {k: None if t is None else wrapper(t) for k, t in client._mounts.items()}  # noqa: SLF001
    return client


def bounded_client(clock: _Clock = time.monotonic) -> httpx2.Client:
    """The SDK's default sync HTTP client, its answers bounded (`BoundedTransport`)."""
    return _wrap(anthropic.DefaultHttpxClient(), lambda t: BoundedTransport(t, clock=clock))


def bounded_async_client(clock: _Clock = time.monotonic) -> httpx2.AsyncClient:
    """The SDK's default async HTTP client, its answers bounded (`AsyncBoundedTransport`)."""
    return _wrap(anthropic.DefaultAsyncHttpxClient(), lambda t: AsyncBoundedTransport(t, clock=clock))


def with_bounded_clients(kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The sync and async SDK clients' arguments, each with its own bounded HTTP client; a
    caller's own `http_client` is theirs, and left alone."""
    if "http_client" in kwargs:
        return dict(kwargs), dict(kwargs)
    return {**kwargs, "http_client": bounded_client()}, {**kwargs, "http_client": bounded_async_client()}
