"""Check, send, record: the path every call to the Messages API takes.

Before a request goes out it is checked and its cache outcome predicted (`PreflightError`
stops it there); after, the call is recorded with its outcome, the `CacheBook` learns what it
wrote and read, the planners learn from it, and observers are told.  `begin_call`/`end_call`
are public so that other clients (e.g. `pcache_magic.autogen`, through `Session`) record calls
they send themselves the same way.

`CallPipeline` is given everything it touches: the clients, the model table, the book, the
list of calls it appends to, the planners, the settings (`diagnostics`), the clock and `emit`.

Threads: the pipeline's `lock` (re-entrant, so an observer called during a call can read the
session) is held for a whole synchronous call and for the bookkeeping of an async one;
`exclusive` holds it for a whole turn (`Chat.ask`) or refuses at once (`CallInProgress`).
A call's index is reserved when it begins, so async calls in flight together get distinct
numbers, and a call is recorded even when a Ctrl-C lands while it is being recorded.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import anthropic
from anthropic.types import Message

from ..analysis.cachebook import CacheBook
from ..analysis.ledger import Prediction
from ..core.models import ModelTable
from ..core.preflight import Finding, PreflightError
from ..core.record import CallRecord, bounded_error
from ..core.turns import describe_failure, sdk_kwargs
from ..core.usage import cost_of
from . import budget
from .counts import Counted, TokenCounter, wants_counts
from .keyguard import KeyGuard
from .observers import Emit
from .replies import MalformedReply, check_reply, read, reraise, usage_problem
from .requests import Planners
from .session_settings import Settings
from .transport import redact_error, redact_key, secrets

__all__ = ["CallInProgress", "CallPipeline", "MalformedReply", "PreflightError"]


class CallInProgress(RuntimeError):
    """The session is busy with another call and was asked not to wait; nothing was sent or changed."""


class CallPipeline:
    """`begin_call`, the send itself (streamed or not, sync or async) and `end_call`.

    `client` and `async_client` are attributes: changing one (a new retry policy) changes
    where the next call goes.  `estimated` marks the records of an emulated connection.
    """

    def __init__(
        self,
        *,
        client: anthropic.Anthropic | None,
        async_client: anthropic.AsyncAnthropic | None,
        models: ModelTable,
        book: CacheBook,
        calls: list[CallRecord],
        planners: Planners,
        settings: Settings,
        clock: Callable[[], float],
        emit: Emit,
        estimated: bool = False,
    ) -> None:
        self.client = client
        self.async_client = async_client
        self._models = models
        self._book = book
        self._calls = calls
        self._planners = planners
        self._settings = settings
        self._clock = clock
        self._emit = emit
        self._estimated = estimated
        #: Held for a whole call (and a whole turn, see `exclusive`); re-entrant for observers.
        self.lock = threading.RLock()
        self._reserved: set[int] = set()  # indices of calls begun and not yet recorded
        self._answering: set[int] = set()  # of those, the Messages calls whose answer has not come back
        self._keys = KeyGuard()  # the key never travels in a request body
        self._pending: dict[int, float] = {}  # their predicted costs, for the budget (see `spent`)
        self.counter = TokenCounter()
        """The API's counts of the prefixes checked, kept by prefix (`settings.token_counts`)."""

    @contextlib.contextmanager
    def exclusive(self, *, blocking: bool = True) -> Iterator[None]:
        """Hold the session for a whole turn; with `blocking=False`, `CallInProgress` if another
        thread holds it instead of waiting."""
        if not self.lock.acquire(blocking=blocking):
            raise CallInProgress(
                "Another call is in progress on this session (in another thread); "
                "try again when it ends, or pass blocking=True to wait for it."
            )
        try:
            yield
        finally:
            self.lock.release()

    def check(
        self, params: Mapping[str, Any], names: Mapping[str, str] | None = None
    ) -> tuple[list[Finding], list[Prediction]]:
        """Pre-flight findings and per-breakpoint predictions for `params`, now."""
        findings, predictions, _ = self._check(params, names, self._clock())
        return findings, predictions

    def _check(
        self, params: Mapping[str, Any], names: Mapping[str, str] | None, now: float
    ) -> tuple[list[Finding], list[Prediction], Counted]:
        """`check` at `now`, with the API's counts of the breakpoints' prefixes when the settings ask
        for them (a failed count is one warning, and the estimate stands)."""
        with self.lock:
            counted = self._count(params, names)
            info = self._models.get(str(params["model"]))
            findings, predictions = self._book.check(params, names, info, now, counted.tokens)
            if counted.note is not None:
                fix = "Nothing to do: the call goes ahead (token_counts='estimate' stops counting)."
                note = Finding(
                    level="warning", code="count-failed", block=None, message=counted.note, fix=fix
                )
                findings.append(note)
            return findings, predictions, counted

    def _count(self, params: Mapping[str, Any], names: Mapping[str, str] | None) -> Counted:
        client = self.client
        if client is None or not wants_counts(self._settings.token_counts, client, self._estimated):
            return Counted()
        if self._keys.check(params, secrets(client), names) is not None:
            return Counted()  # a body holding the key is not sent, not even to be counted
        lay = self._book.layout(params)
        points = self._book.breakpoints(params, lay)
        return self.counter.count(client, params, lay, points) if points else Counted()

    def send(
        self,
        kind: Any,
        params: dict[str, Any],
        names: Mapping[str, str],
        *,
        stream: bool,
        on_text: Callable[[str], None] | None,
    ) -> Message:
        """Check, predict, send through the SDK, record; the lock is held throughout.

        Raises PreflightError before sending; an SDK error is re-raised with the key blotted out, and
        a reply that is no Messages API answer (or one the SDK could not read) is `MalformedReply`.
        """
        with self.lock:
            client = self.client
            if client is None:
                raise RuntimeError("This session has no synchronous client.")
            record = self.begin_call(kind, params, names)
            started = time.perf_counter()
            begun: Message | None = None
            message: Message  # as the SDK types it: what came back is checked before it counts
            try:
                if stream:
                    with client.messages.stream(**sdk_kwargs(params)) as events:
                        for text in read(events.text_stream, client):
                            try:
                                begun = events.current_message_snapshot  # none yet: an AssertionError
                            except Exception:
                                reraise(client, streaming=True)
                            if on_text is not None:
                                on_text(text)
                        try:
                            message = events.get_final_message()
                        except Exception:
                            reraise(client, streaming=True)
                else:
                    try:
                        message = client.messages.create(**sdk_kwargs(params))
                    except Exception:
                        reraise(client)
                message = check_reply(message, client)
            except BaseException as error:
                try:
                    # the answer had begun, so its cache writes happened: learned if its usage says so
                    if begun is not None and usage_problem(begun.usage) is None:
                        self._learn(params, names, begun, record.started_at)
                finally:
                    self._end(record, params, names, started, error=redact_error(error, client))
                raise
            return self._end(record, params, names, started, message=message)

    async def asend(self, kind: Any, params: dict[str, Any], names: Mapping[str, str]) -> Message:
        """`send` for the async client (no streaming): the same checks and records.

        The lock is held while the call begins and while it is recorded, not while it is awaited,
        so calls gathered together are in flight at once, each with its own index.
        """
        client = self.async_client
        if client is None:
            raise RuntimeError("This session has no async client: pass async_client=...")
        record = self.begin_call(kind, params, names)
        started = time.perf_counter()
        try:
            try:
                message = await client.messages.create(**sdk_kwargs(params))
            except Exception:
                reraise(client)
            self._answering.discard(record.index)  # its answer is here: what it wrote may be read now
            message = check_reply(message, client)
        except BaseException as error:
            self._end(record, params, names, started, error=redact_error(error, client))
            raise
        return self._end(record, params, names, started, message=message)

    def begin_call(self, kind: Any, params: dict[str, Any], names: Mapping[str, str]) -> CallRecord:
        """Check and predict a call about to be sent; PreflightError if it must not go.

        The call's index is reserved here, under the lock: calls begun before others end (async
        calls gathered together, or another client's) are numbered apart.
        """
        with self.lock:
            now = self._clock()  # one reading: the prediction's time is the record's
            findings, predictions, counted = self._check(params, names, now)
            leaked = self._keys.check(params, secrets(self.client or self.async_client), names)
            errors = [f for f in [*findings, leaked] if f is not None and f.level == "error"]
            if errors:
                raise PreflightError(errors)
            cost = self._guard(params, predictions, counted)
            if self._settings.diagnostics:
                previous = next(
                    (c.response.id for c in reversed(self._calls) if c.response is not None), None
                )
                params["diagnostics"] = {"previous_message_id": previous}
            model = str(params["model"])
            record = CallRecord(
                index=self._next_index(),
                kind=kind,
                model=model,
                started_at=now,
                request=params,
                estimated=self._estimated,
                prices=self._models.get(model).prices if model in self._models else None,
                prediction=[p.as_dict() for p in predictions],
                in_flight=sorted(self._answering) if kind != "batch" else [],  # a batch: the API's order
            )
            self._reserved.add(record.index)
            if kind != "batch":
                self._answering.add(record.index)
            self._pending[record.index] = cost
            return record

    def _guard(self, params: Mapping[str, Any], predictions: Sequence[Prediction], counted: Counted) -> float:
        """The call's predicted cost, answer at `max_tokens`; BudgetError above `max_cost` or `budget`.

        With counts, the estimated figures move by the gap the counts found (`Counted.corrected`)."""
        settings = self._settings
        if settings.max_cost is None and settings.budget is None:
            return 0.0
        model = self._models.get(str(params["model"]))
        lay = self._book.layout(params)
        rows = [p.as_dict() for p in predictions]
        for row in rows:
            row["tokens"], row["read"] = (counted.corrected(lay, int(row[k])) for k in ("tokens", "read"))
        prompt = counted.corrected(lay, lay.total_tokens)
        tokens = budget.predicted_tokens(rows, prompt, int(params.get("max_tokens", 0)))
        cost = cost_of(tokens, model.prices).total
        budget.check_limits(
            "this call",
            cost,
            per_call=cost,
            max_cost=settings.max_cost,
            budget=settings.budget,
            spent=self.spent(),
        )
        return cost

    def spent(self) -> float:
        """What the session's calls cost so far, plus what those in flight may still cost."""
        with self.lock:
            return sum(r.cost.total for r in self._calls if r.ok) + sum(self._pending.values())

    def _next_index(self) -> int:
        """One past every index recorded or reserved (the calls may have been replaced meanwhile)."""
        last = self._calls[-1].index if self._calls else 0
        return max(len(self._calls) + len(self._reserved), max(self._reserved, default=0), last) + 1

    def end_call(
        self,
        record: CallRecord,
        params: Mapping[str, Any],
        names: Mapping[str, str],
        started: float,
        *,
        message: Message | None = None,
        error: BaseException | None = None,
    ) -> Any:
        """Record the outcome of a call begun with `begin_call` (`started`: its `perf_counter`).

        A `message` that is no whole Messages API answer (`check_reply`) is recorded as a failed
        call, then raised as `MalformedReply`: nothing is learned from it, and no view meets it.
        """
        if message is not None and error is None:
            try:
                check_reply(message, self.client or self.async_client)
            except MalformedReply as malformed:
                self._end(record, params, names, started, error=malformed)
                raise
        return self._end(record, params, names, started, message=message, error=error)

    def _end(
        self,
        record: CallRecord,
        params: Mapping[str, Any],
        names: Mapping[str, str],
        started: float,
        *,
        message: Message | None = None,
        error: BaseException | None = None,
    ) -> Any:
        """`end_call` for a reply already checked (`send`'s, `asend`'s).

        The record joins the calls whatever happens while the book learns from it (a Ctrl-C
        landing there included): the learning is tried, the recording is in a `finally`.
        """
        with self.lock:
            try:
                record.latency_s = time.perf_counter() - started
                if error is not None:
                    record.error = bounded_error(redact_key(describe_failure(error), self.client))
                else:
                    record.response = message
                    if message is not None:
                        self._learn(params, names, message, record.started_at)
                        self._planners.observe(params, record.started_at)
            finally:
                self._reserved.discard(record.index)
                self._answering.discard(record.index)
                self._pending.pop(record.index, None)
                self.record(record)
            return message

    def record(self, record: CallRecord) -> None:
        """Add a finished call to the calls and tell the observers."""
        with self.lock:
            self._calls.append(record)
            self._emit("call", record)

    def _learn(
        self, params: Mapping[str, Any], names: Mapping[str, str], message: Message, at: float
    ) -> None:
        """Apply an answered call to the ledger as of `at`, when it was sent: the API writes and reads
        the cache as it reads the prompt, so an entry's life runs from then, not from the answer's end
        (a long answer would otherwise lend it the call's latency)."""
        info = self._models.get(str(params["model"]))
        self._book.learn(params, names, info, at, message.usage.cache_read_input_tokens or 0)
