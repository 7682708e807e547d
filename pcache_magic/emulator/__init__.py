"""Offline emulator of the Anthropic Messages API, with prompt caching and a manual clock.

`Emulator().client()` is a real `anthropic.Anthropic` whose HTTP transport is the emulator,
so request bytes, response types, streaming, retries and errors run through the SDK's own
code exactly as they would online. `pcache-emulator` serves the same over HTTP.

The engine (the cache table, the rules, the token estimator, the model table) is made on the
first request or clock read, not with the `Emulator`: `%load_ext pcache_magic` offline makes an
Emulator, and loading should cost little more than `import anthropic` (benchmarks/startup.py).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

import httpx2

from . import wire
from .batches import DEFAULT_DELAY_S, Batches

if TYPE_CHECKING:  # anthropic costs ~2s to import; the server and the engine never need it
    import anthropic

    from ..core.models import ModelTable
    from .engine import Engine, ManualClock

__all__ = ["Emulator", "ManualClock"]


def __getattr__(name: str) -> Any:
    """`ManualClock` from the engine, imported when asked for (see the module's doc)."""
    if name == "ManualClock":
        from .engine import ManualClock

        return ManualClock
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: A placeholder key, not a secret: the emulator accepts any non-empty key.
DEFAULT_API_KEY = "sk-ant-emulator"
#: `.invalid` never resolves, so a client that escaped its transport could not reach anyone.
BASE_URL = "http://pcache-emulator.invalid"


class _EventStream(httpx2.SyncByteStream, httpx2.AsyncByteStream):
    """A lazy SSE body; an injected disconnect surfaces as the broken connection httpx2 reports."""

    def __init__(self, events: Iterator[bytes]) -> None:
        self._events = events

    def _next(self) -> bytes | None:
        try:
            return next(self._events)
        except StopIteration:
            return None
        except wire.ConnectionCut as exc:
            raise httpx2.RemoteProtocolError(str(exc)) from None

    def __iter__(self) -> Iterator[bytes]:
        while (chunk := self._next()) is not None:
            yield chunk

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (chunk := self._next()) is not None:
            yield chunk


class Emulator:
    """One emulated Anthropic organisation: a cache table, a clock and a fault plan.

    Distinct API keys are distinct workspaces, so they never share cache entries. The
    clock defaults to a `ManualClock`, which moves only through `advance()`: tests and
    notebooks can show a 5-minute expiry without waiting five minutes.
    """

    faults: wire.FaultPlan

    def __init__(
        self,
        clock: Callable[[], float] | None = None,
        *,
        models: ModelTable | None = None,
        max_entries: int = 10_000,
        max_body_bytes: int = wire.DEFAULT_MAX_BODY_BYTES,
        history_bytes: int | None = None,
        batch_delay_s: float = DEFAULT_DELAY_S,
    ) -> None:
        """`history_bytes`: the diagnostics history's bound (None: `diagnostics.DEFAULT_HISTORY_BYTES`)."""
        self._engine_args: dict[str, Any] = {"clock": clock, "models": models, "max_entries": max_entries}
        if history_bytes is not None:
            self._engine_args["history_bytes"] = history_bytes
        self._engine: Engine | None = None
        self._batches: Batches | None = None
        self._batch_delay_s = batch_delay_s
        self.faults = wire.FaultPlan()
        self.max_body_bytes = max_body_bytes
        self._request_ids = wire.RequestIds()  # this emulator's own: ids are unique per emulator
        # The engine is driven from the SDK's threads (and the server's); one call at a time.
        self._lock = threading.RLock()

    @property
    def engine(self) -> Engine:
        """The cache table, the clock and the history, made on first use (see the module's doc)."""
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    from .engine import Engine

                    self._engine = Engine(**self._engine_args)
        return self._engine

    @property
    def batches(self) -> Batches:
        """Message Batches: each ends `batch_delay_s` of emulated time after it is created."""
        if self._batches is None:
            with self._lock:
                if self._batches is None:
                    self._batches = Batches(self.engine, delay_s=self._batch_delay_s)
        return self._batches

    def __repr__(self) -> str:
        return f"<Emulator now={self.now():.3f} pending_faults={len(self.faults)}>"

    # --- SDK clients -------------------------------------------------------------------

    def client(self, api_key: str | None = None, **kwargs: Any) -> anthropic.Anthropic:
        """A real `anthropic.Anthropic` wired to this emulator; kwargs go to its constructor."""
        import anthropic

        http_client = httpx2.Client(transport=httpx2.MockTransport(self.handle))
        return anthropic.Anthropic(
            api_key=api_key or DEFAULT_API_KEY,
            base_url=BASE_URL,
            http_client=http_client,
            **kwargs,
        )

    def async_client(self, api_key: str | None = None, **kwargs: Any) -> anthropic.AsyncAnthropic:
        """A real `anthropic.AsyncAnthropic` wired to this emulator."""
        import anthropic

        http_client = httpx2.AsyncClient(transport=httpx2.MockTransport(self._ahandle))
        client = anthropic.AsyncAnthropic(
            api_key=api_key or DEFAULT_API_KEY,
            base_url=BASE_URL,
            http_client=http_client,
            **kwargs,
        )
        if getattr(client, "_platform", "") is None:
            # The SDK resolves its platform headers in a worker thread on a client's first request,
            # so requests gathered on a new client would reach `_ahandle` loop turns apart.
            from anthropic._base_client import get_platform  # noqa: PLC2701 (the SDK's own lookup)

            client._platform = get_platform()  # noqa: SLF001
        return client

    # --- controls ----------------------------------------------------------------------

    def advance(self, seconds: float) -> float:
        """Move the clock forward (entries expire, TTLs count down); returns the new time.

        0 to `engine.MAX_ADVANCE_S` (10 years) at a time, at most `engine.MAX_OFFSET_S` (100 years)
        until `reset()`; ValueError otherwise, the clock unchanged.
        """
        return self.batches.advance(seconds, self._lock)  # a batch due on the way runs at its end

    def reset(self) -> None:
        """Forget every cache entry, the message history, the batches, the clock's advances and faults."""
        with self._lock:
            self.engine.reset()
            self.faults.clear()
            self.batches.clear()

    def now(self) -> float:
        with self._lock:
            return self.engine.now()

    def state(self) -> dict[str, Any]:
        """The clock and the cache entries (model, tokens, TTL, expiry); never a key."""
        with self._lock:
            return self.engine.state()

    def inject(self, fault: wire.Fault, *, times: int = 1, retry_after: float | None = None) -> None:
        """Make the next request(s) fail: an HTTP status (429, 500, 529, ...), "disconnect" or "timeout".

        "timeout" answers nothing: in process the SDK's transport raises `httpx2.ReadTimeout` at
        once; over HTTP the server holds the request until the client's own timeout (at most
        `server.TIMEOUT_HOLD_S`). The SDK retries timeouts, so `times` above its `max_retries`
        makes the call fail.
        """
        self.faults.inject(fault, times=times, retry_after=retry_after)

    # --- transport ---------------------------------------------------------------------

    def respond(
        self, method: str, path: str, headers: Any, body: bytes, arrived: int | None = None
    ) -> wire.WireResponse:
        """`wire.handle` bound to this emulator, serialised from the injected fault on (the parse
        and a request's own checks and layout run outside the lock); shared by the transport and
        server (`arrived`: the request's `Engine.ticket`, taken when it came in)."""
        ids, limit = self._request_ids, self.max_body_bytes
        site = wire.Site(self.engine, self.faults, ids, self.batches, max_body_bytes=limit, lock=self._lock)
        return wire.handle(site, method, path, headers, body, arrived=arrived)

    def next_request_id(self) -> str:
        """A fresh `request-id` from this emulator's counter, for answers made outside `respond`."""
        return self._request_ids()

    def handle(self, request: httpx2.Request, arrived: int | None = None) -> httpx2.Response:
        """The `httpx2.MockTransport` handler: an httpx2 request in, the emulator's answer out."""
        path = request.url.raw_path.decode("ascii")
        answer = self.respond(request.method, path, request.headers, request.content, arrived)
        if answer.timed_out:
            raise httpx2.ReadTimeout("timed out waiting for the emulator (injected)", request=request)
        if answer.events is not None:
            return httpx2.Response(answer.status, headers=answer.headers, stream=_EventStream(answer.events))
        return httpx2.Response(answer.status, headers=answer.headers, content=answer.body or b"")

    async def _ahandle(self, request: httpx2.Request) -> httpx2.Response:
        """`handle` for the async client, after the other requests sent with this one arrive: they
        were in flight together, so none reads what another writes (`Engine.ticket`)."""
        arrived = self.engine.ticket()
        await asyncio.sleep(0)
        return self.handle(request, arrived)
