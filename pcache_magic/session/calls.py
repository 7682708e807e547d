"""Check, send, record: the path every call to the Messages API takes.

Before a request goes out it is checked and its cache outcome predicted (`PreflightError`
stops it there); after, the call is recorded with its outcome, the `CacheBook` learns what it
wrote and read, the planners learn from it, and observers are told.  `begin_call`/`end_call`
are public so that other clients (e.g. `pcache_magic.autogen`, through `Session`) record calls
they send themselves the same way.

`CallPipeline` is given everything it touches: the clients, the model table, the book, the
list of calls it appends to, the planners, the settings (`diagnostics`), the clock and `emit`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import anthropic
from anthropic.types import Message

from ..analysis.cachebook import CacheBook
from ..analysis.ledger import Prediction
from ..core.models import ModelTable
from ..core.preflight import Finding
from ..core.record import CallRecord
from ..core.turns import describe_failure, sdk_kwargs
from .observers import Emit
from .requests import Planners
from .session_settings import Settings
from .transport import redact_key

__all__ = ["CallPipeline", "PreflightError"]


class PreflightError(ValueError):
    """The request would be rejected (or is wrong); nothing was sent. `.findings` says why."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = list(findings)
        super().__init__("; ".join(f"{f.message} {f.fix}" for f in self.findings))


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

    def check(
        self, params: Mapping[str, Any], names: Mapping[str, str] | None = None
    ) -> tuple[list[Finding], list[Prediction]]:
        """Pre-flight findings and per-breakpoint predictions for `params`, now."""
        return self._book.check(params, names, self._models.get(str(params["model"])), self._clock())

    def send(
        self,
        kind: Any,
        params: dict[str, Any],
        names: Mapping[str, str],
        *,
        stream: bool,
        on_text: Callable[[str], None] | None,
    ) -> Message:
        """Check, predict, send through the SDK, record.  Raises PreflightError before sending."""
        if self.client is None:
            raise RuntimeError("This session has no synchronous client.")
        record = self.begin_call(kind, params, names)
        started = time.perf_counter()
        begun: Message | None = None
        try:
            if stream:
                with self.client.messages.stream(**sdk_kwargs(params)) as events:
                    for text in events.text_stream:
                        begun = events.current_message_snapshot
                        if on_text is not None:
                            on_text(text)
                    message = events.get_final_message()
            else:
                message = self.client.messages.create(**sdk_kwargs(params))
        except BaseException as error:
            if begun is not None:  # the answer had begun, so its cache writes happened: remember them
                self._learn(params, names, begun)
            self.end_call(record, params, names, started, error=error)
            raise
        return self.end_call(record, params, names, started, message=message)

    async def asend(self, kind: Any, params: dict[str, Any], names: Mapping[str, str]) -> Message:
        """`send` for the async client (no streaming): the same checks and records."""
        if self.async_client is None:
            raise RuntimeError("This session has no async client: pass async_client=...")
        record = self.begin_call(kind, params, names)
        started = time.perf_counter()
        try:
            message = await self.async_client.messages.create(**sdk_kwargs(params))
        except BaseException as error:
            self.end_call(record, params, names, started, error=error)
            raise
        return self.end_call(record, params, names, started, message=message)

    def begin_call(self, kind: Any, params: dict[str, Any], names: Mapping[str, str]) -> CallRecord:
        """Check and predict a call about to be sent; PreflightError if it must not go."""
        findings, predictions = self.check(params, names)
        errors = [f for f in findings if f.level == "error"]
        if errors:
            raise PreflightError(errors)
        if self._settings.diagnostics:
            previous = next((c.response.id for c in reversed(self._calls) if c.response is not None), None)
            params["diagnostics"] = {"previous_message_id": previous}
        model = str(params["model"])
        return CallRecord(
            index=len(self._calls) + 1,
            kind=kind,
            model=model,
            started_at=self._clock(),
            request=params,
            estimated=self._estimated,
            prices=self._models.get(model).prices if model in self._models else None,
            prediction=[p.as_dict() for p in predictions],
        )

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
        """Record the outcome of a call begun with `begin_call` (`started`: its `perf_counter`)."""
        record.latency_s = time.perf_counter() - started
        if error is not None:
            record.error = redact_key(describe_failure(error), self.client)
        else:
            record.response = message
            if message is not None:
                self._learn(params, names, message)
                self._planners.observe(params, record.started_at)
        self.record(record)
        return message

    def record(self, record: CallRecord) -> None:
        """Add a finished call to the calls and tell the observers."""
        self._calls.append(record)
        self._emit("call", record)

    def _learn(self, params: Mapping[str, Any], names: Mapping[str, str], message: Message) -> None:
        info = self._models.get(str(params["model"]))
        self._book.learn(params, names, info, self._clock(), message.usage.cache_read_input_tokens or 0)
