"""The HTTP clients of URL and live mode, with a bound on what a server can make a call read.

`PCACHE_EMULATOR_URL` and `ANTHROPIC_BASE_URL` may point at anything.  The SDK's own clients read a
body until it ends, wait 60 s (or 600 s) per read but not per answer, and follow a redirect to any
host with the prompt, so a hostile server could fill memory (a huge body, a gzip bomb, an endless
stream), hold a call for ever (a byte every few seconds), or receive the prompt elsewhere.  Here the
SDK's client (`anthropic.DefaultHttpxClient`, its defaults kept) gets transports that bound each answer:

- its body to a byte cap (`MAX_BODY`, `MAX_STREAM`, `MAX_LARGE`, by what was asked), counted both
  as sent and as decoded; bytes sent after a compressed body has ended are refused (zlib would keep
  them, decoding nothing, copying them all again on each read);
- a not-streamed attempt, head and body, to one deadline: the read timeout is the whole attempt's
  budget.  A streamed answer's head has that deadline too; its body only the cap and the per-read
  timeout (a real long reply streams for an hour, and the user can interrupt);
- a redirect to another origin is refused before anything is sent there.  One on the same origin is
  followed as part of the same attempt: the kind of answer (its cap, streamed or not), the deadline
  and the bytes read so far are the first request's, never chosen again from where it points.

Past a bound the call fails as a connection or timeout error (`AnswerTooLarge`, `RedirectRefused`,
`httpx2.ReadTimeout`), which the SDK wraps and the pipeline shows as one line; the SDK retries
those, so a hostile server gets `max_retries` + 1 times each bound (2 retries by default, as the
session's client is built).  Per chunk the cost
is a counter add (and a look at a compressed answer's decoder); the deadline is checked per socket
read, in a wrapped network backend (`deadline_io`).  Whether a request is streamed is read from its
top-level `stream`, parsed only when the text holds the flag at all (0.4 ms for 200 KB).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import anthropic
import httpx2
from httpx2._decoders import MultiDecoder  # noqa: PLC2701 (the decoders a Response itself uses)

from pcache_magic.session.deadline_io import Clock, deadline, install

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
_ATTEMPT = "pcache_magic.attempt"  # the request extension that carries an attempt across its redirects


class AnswerTooLarge(httpx2.ReadError):
    """An answer passed its cap (as sent or decoded) or went on after its compressed body ended;
    the SDK shows it as a failed connection."""


class RedirectRefused(httpx2.ConnectError):
    """A redirect to another origin, which would re-send the prompt there; not followed."""


def _streams(body: bytes) -> bool:
    """Whether the request's TOP-LEVEL `stream` is true.  Parsed only when the text holds the flag
    at all (a real not-streamed request rarely does): a tool's input `{"stream": true}` in the
    history must not take a not-streamed call's deadline away."""
    if not any(flag in body for flag in _STREAMED):  # an escaped prompt never matches
        return False
    try:
        asked = json.loads(body)
    except (ValueError, RecursionError):  # not JSON: not a Messages call
        return False
    return isinstance(asked, dict) and asked.get("stream") is True


#: What ends an SSE event: a blank line, its line breaks LF, CRLF or CR.
_EVENT_ENDS = (b"\n\n", b"\r\n\r\n", b"\r\r")
#: What ends a JSONL line of a batch's results.
_LINE_ENDS = (b"\n",)


def _kind(request: httpx2.Request) -> tuple[bool, int, tuple[bytes, ...] | None]:
    """(whether the answer is read as it comes, its byte cap, what ends one of its `MAX_RUN`
    pieces), from what was asked: never from the answer, which a server could dress as a stream
    to escape the deadline."""
    path = request.url.path
    if path.endswith(_LARGE_PATHS):  # a batch's JSONL results, or a file's bytes
        return True, MAX_LARGE, _LINE_ENDS if path.endswith("/results") else None
    try:
        body = request.content
    except httpx2.RequestNotRead:  # a streamed upload: not a Messages call
        body = b""
    if _streams(body):
        return True, MAX_STREAM, _EVENT_ENDS
    raw = request.headers.get(anthropic._constants.RAW_RESPONSE_HEADER) == "stream"  # noqa: SLF001
    return raw, MAX_STREAM if raw else MAX_BODY, None


def _origin(url: httpx2.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


class _Attempt:
    """One attempt's bounds, set by its first request and kept by each same-origin redirect of it
    (httpx2 copies a request's extensions onto the redirect's): a redirect to `.../content` must
    not lift a message's cap to `MAX_LARGE`, nor a chain of them renew the deadline.  Kept rather
    than refused: the origin could have sent anything on the first hop anyway, and a file moved
    to another path keeps its own cap."""

    def __init__(self, request: httpx2.Request, clock: Clock) -> None:
        self.streamed, cap, seps = _kind(request)
        self.meter = _Meter(request, cap, seps)
        self.read = (request.extensions.get("timeout") or {}).get("read")
        self.deadline = deadline(self.read, clock)


def _prepare(request: httpx2.Request, clock: Clock) -> tuple[_Attempt, dict[str, Any]]:
    """The attempt `request` is a hop of (a new one unless it is a redirect's), and the request's
    timeouts, its read timeout now the attempt's deadline."""
    attempt = request.extensions.get(_ATTEMPT)
    if isinstance(attempt, _Attempt) and attempt.meter.request is not request:  # a redirect (not a resend)
        attempt.meter.hop(request)
    else:
        attempt = _Attempt(request, clock)
    timeouts = dict(request.extensions.get("timeout") or {})
    if "read" in timeouts:
        timeouts["read"] = attempt.deadline
    request.extensions = {**request.extensions, "timeout": timeouts, _ATTEMPT: attempt}
    return attempt, timeouts


def _answered(attempt: _Attempt, response: httpx2.Response, timeouts: dict[str, Any]) -> None:
    """A stream's answer came in time: its body has no deadline (a redirect's has: it is no answer)."""
    if attempt.streamed and not response.has_redirect_location:
        timeouts["read"] = attempt.read


def _refused(request: httpx2.Request, response: httpx2.Response) -> httpx2.TransportError | None:
    """The error for an answer not read at all, else None: a redirect to another origin (it would
    re-send the prompt there), or a body compressed more than once (no API stacks encodings, and
    each layer inflates the next before any cap sees it: 512 bytes cost minutes of CPU)."""
    if len(_encodings(response)) > 1:
        return AnswerTooLarge(
            "its answer is compressed more than once, which no real one is; not read", request=request
        )
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
    encodings = _encodings(response)
    if not encodings:
        return None
    del response.headers["content-encoding"]
    response.headers.pop("content-length", None)
    return MultiDecoder(encodings)


def _encodings(response: httpx2.Response) -> list[str]:
    """The answer's content-encodings but `identity`, as applied."""
    listed = response.headers.get_list("content-encoding", split_commas=True)
    return [e for e in (e.strip().lower() for e in listed) if e and e != "identity"]


def _ended(decoder: MultiDecoder) -> bool:
    """Whether bytes came after a layer's compressed body ended, which zlib keeps as `unused_data`
    (httpx2's gzip and deflate decoders hold it as `.decompressor.decompressor`; an httpx2 that
    does not would only lose this check, the raw count still holds)."""
    for child in getattr(decoder, "children", ()):
        zlib_object = getattr(getattr(child, "decompressor", None), "decompressor", None)
        if getattr(zlib_object, "eof", False) and getattr(zlib_object, "unused_data", b""):
            return True
    return False


class _Meter:
    """Counts an attempt's bytes, as sent and as decoded, and those since the last of its `seps`;
    raises past a cap."""

    def __init__(self, request: httpx2.Request, cap: int, seps: tuple[bytes, ...] | None) -> None:
        self.request, self.cap, self.seps, self.seen, self.sent, self.run = request, cap, seps, 0, 0, 0
        self._carry = b""  # the last bytes counted: a separator split between two chunks is found

    def hop(self, request: httpx2.Request) -> None:
        self.request, self.run = request, 0

    def _too_large(self, what: str) -> AnswerTooLarge:
        return AnswerTooLarge(f"its answer {what}; stopped reading it", request=self.request)

    def count(self, chunk: bytes) -> bytes:
        self.seen += len(chunk)
        if self.seps is not None:
            # The end of the last separator in this chunk, the end of the one before it included (a
            # separator may be split between two); an event's may be any of the three SSE allows.
            window = self._carry + chunk
            found = [(at, len(sep)) for sep in self.seps if (at := window.rfind(sep)) >= 0]
            end = max((at + size for at, size in found), default=-1)
            self.run = len(window) - end if end >= 0 else self.run + len(chunk)
            self._carry = window[-3:]
            if self.run > MAX_RUN:
                raise self._too_large(
                    f"passed {MAX_RUN // _MIB} MiB in one event or line, more than a real one holds"
                )
        if self.seen > self.cap:
            raise self._too_large(f"passed {self.cap // _MIB} MiB, more than a real one holds")
        return chunk

    def decode(self, raw: bytes, decoder: MultiDecoder | None) -> Iterator[bytes]:
        """What `raw` decodes to, each piece counted; `raw` itself counted too."""
        if decoder is None:
            yield self.count(raw)
            return
        self.sent += len(raw)
        if self.sent > self.cap:
            raise self._too_large(f"passed {self.cap // _MIB} MiB as sent, more than a real one holds")
        for chunk in decoder.decode(raw):
            yield self.count(chunk)
        if _ended(decoder):
            raise self._too_large("went on after its compressed body had ended")

    def flush(self, decoder: MultiDecoder | None) -> Iterator[bytes]:
        for chunk in decoder.flush() if decoder is not None else ():
            yield self.count(chunk)


class _Capped(httpx2.SyncByteStream):
    def __init__(self, inner: Any, decoder: MultiDecoder | None, meter: _Meter) -> None:
        self._inner, self._decoder, self._meter = inner, decoder, meter

    def __iter__(self) -> Iterator[bytes]:
        for raw in self._inner:
            yield from self._meter.decode(raw, self._decoder)
        yield from self._meter.flush(self._decoder)

    def close(self) -> None:
        self._inner.close()


class _AsyncCapped(httpx2.AsyncByteStream):
    def __init__(self, inner: Any, decoder: MultiDecoder | None, meter: _Meter) -> None:
        self._inner, self._decoder, self._meter = inner, decoder, meter

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for raw in self._inner:
            for chunk in self._meter.decode(raw, self._decoder):
                yield chunk
        for chunk in self._meter.flush(self._decoder):
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class BoundedTransport(httpx2.BaseTransport):
    """`inner` (an `httpx2.HTTPTransport`), each answer bounded as the module says.  `clock`: the
    monotonic clock deadlines run on (a test's, to step it)."""

    def __init__(self, inner: httpx2.BaseTransport, *, clock: Clock = time.monotonic) -> None:
        self._inner, self._clock = inner, clock
        install(inner, asynchronous=False)

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        attempt, timeouts = _prepare(request, self._clock)
        response = self._inner.handle_request(request)
        _answered(attempt, response, timeouts)
        if (refused := _refused(request, response)) is not None:
            response.close()
            raise refused
        response.stream = _Capped(response.stream, _decoded(response), attempt.meter)
        return response

    def close(self) -> None:
        self._inner.close()


class AsyncBoundedTransport(httpx2.AsyncBaseTransport):
    """`BoundedTransport`, async."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, *, clock: Clock = time.monotonic) -> None:
        self._inner, self._clock = inner, clock
        install(inner, asynchronous=True)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        attempt, timeouts = _prepare(request, self._clock)
        response = await self._inner.handle_async_request(request)
        _answered(attempt, response, timeouts)
        if (refused := _refused(request, response)) is not None:
            await response.aclose()
            raise refused
        response.stream = _AsyncCapped(response.stream, _decoded(response), attempt.meter)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def _wrap(client: Any, wrapper: Callable[[Any], Any]) -> Any:
    """`client` with its default transport and each mounted one (proxies) wrapped."""
    client._transport = wrapper(client._transport)  # noqa: SLF001 (set up by the SDK's client)
    client._mounts = {k: None if t is None else wrapper(t) for k, t in client._mounts.items()}  # noqa: SLF001
    return client


def bounded_client(clock: Clock = time.monotonic) -> httpx2.Client:
    """The SDK's default sync HTTP client, its answers bounded (`BoundedTransport`)."""
    return _wrap(anthropic.DefaultHttpxClient(), lambda t: BoundedTransport(t, clock=clock))


def bounded_async_client(clock: Clock = time.monotonic) -> httpx2.AsyncClient:
    """The SDK's default async HTTP client, its answers bounded (`AsyncBoundedTransport`)."""
    return _wrap(anthropic.DefaultAsyncHttpxClient(), lambda t: AsyncBoundedTransport(t, clock=clock))


def with_bounded_clients(kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The sync and async SDK clients' arguments, each with its own bounded HTTP client; a
    caller's own `http_client` is theirs, and left alone: a sync one serves the sync client, an
    async one the async client, and the other gets a bounded one."""
    own = kwargs.get("http_client")
    sync = own if isinstance(own, httpx2.Client) else bounded_client()
    async_ = own if isinstance(own, httpx2.AsyncClient) else bounded_async_client()
    return {**kwargs, "http_client": sync}, {**kwargs, "http_client": async_}
