"""Check, send, record: the path every call to the Messages API takes, mixed into `Session`.

Before a request goes out it is checked and its cache outcome predicted (`PreflightError`
stops it there); after, the call is recorded with its outcome, the session's `CacheBook`
learns what it wrote and read, and observers are told.  Public as `begin_call`/`end_call`
so that other clients (e.g. `pcache_magic.autogen`) record into a session the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anthropic
from anthropic.types import Message

from ..analysis.cachebook import CacheBook
from ..analysis.ledger import Prediction
from ..analysis.planner import Planner
from ..core.models import ModelTable
from ..core.preflight import Finding
from ..core.record import CallRecord
from ..core.turns import describe_failure, sdk_kwargs

__all__ = ["CallPipeline", "PreflightError"]


class PreflightError(ValueError):
    """The request would be rejected (or is wrong); nothing was sent. `.findings` says why."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = list(findings)
        super().__init__("; ".join(f"{f.message} {f.fix}" for f in self.findings))


class CallPipeline:
    """`begin_call`, the send itself (streamed or not, sync or async) and `end_call`."""

    if TYPE_CHECKING:  # provided by Session
        client: anthropic.Anthropic | None
        async_client: anthropic.AsyncAnthropic | None
        calls: list[CallRecord]
        diagnostics: bool
        models: ModelTable
        book: CacheBook
        _planners: dict[str, Planner]

        def check(
            self, params: Mapping[str, Any] | None = None, names: Mapping[str, str] | None = None
        ) -> tuple[list[Finding], list[Prediction]]: ...
        def now(self) -> float: ...
        @property
        def offline(self) -> bool: ...
        def _emit(self, event: Any, payload: Any = None) -> None: ...

    def _send(
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

    async def _asend(self, kind: Any, params: dict[str, Any], names: Mapping[str, str]) -> Message:
        """`_send` for the async client (no streaming): the same checks and records."""
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
        """Check and predict a call about to be sent; PreflightError if it must not go.

        Public so that other clients (e.g. `pcache_magic.autogen`) record into this session.
        """
        findings, predictions = self.check(params, names)
        errors = [f for f in findings if f.level == "error"]
        if errors:
            raise PreflightError(errors)
        if self.diagnostics:
            previous = next((c.response.id for c in reversed(self.calls) if c.response is not None), None)
            params["diagnostics"] = {"previous_message_id": previous}
        return self._start(kind, params, predictions)

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
        """Record the outcome of a call begun with `begin_call`, and tell the observers."""
        record.latency_s = time.perf_counter() - started
        if error is not None:
            record.error = describe_failure(error)
        else:
            record.response = message
            if message is not None:
                self._learn(params, names, message)
                for planner in self._planners.values():  # each ignores other models' calls
                    planner.observe(params, record.started_at)
        self._finish(record)
        return message

    def _start(self, kind: Any, params: dict[str, Any], predictions: list[Prediction]) -> CallRecord:
        model = str(params["model"])
        prices = self.models.get(model).prices if model in self.models else None
        return CallRecord(
            index=len(self.calls) + 1,
            kind=kind,
            model=model,
            started_at=self.now(),
            request=params,
            estimated=self.offline,
            prices=prices,
            prediction=[p.as_dict() for p in predictions],
        )

    def _learn(self, params: Mapping[str, Any], names: Mapping[str, str], message: Message) -> None:
        info = self.models.get(str(params["model"]))
        self.book.learn(params, names, info, self.now(), message.usage.cache_read_input_tokens or 0)

    def _finish(self, record: CallRecord) -> None:
        self.calls.append(record)
        self._emit("call", record)
