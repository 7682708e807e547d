"""Requests sent through the Message Batches API: half price, results later, cache reads best effort.

`run_batch` checks and records each request as the call pipeline does any call (pre-flight,
budget, prediction; kind "batch", priced at `usage.batch_prices`: the batch discount on top of
the cache's rates), submits them as one batch through the session's SDK client, polls until the
batch has ended and records each result as it is billed. Offline, polling moves the emulator's
clock (the emulator's batches end on it) instead of sleeping; live, it sleeps with backoff.

A batch outlives the kernel: Ctrl-C while polling raises `BatchInterrupted` (a KeyboardInterrupt
naming the batch), its calls recorded as interrupted, and `collect(session, batch_id)` fetches the
results later, by id, recording what the session has not recorded yet. After a restart the
requests themselves are not known (the API does not return them), so such a record keeps the
model alone as its request.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anthropic
from anthropic.types import Message, Usage

from ..core.record import CallRecord
from ..core.usage import Cost, batch_prices
from .replies import MalformedReply
from .transport import redact_error, redact_key

if TYPE_CHECKING:
    from anthropic.types.messages import MessageBatch, MessageBatchIndividualResponse

    from .protocol import SessionLike as Session

__all__ = ["BatchError", "BatchInterrupted", "BatchItem", "collect", "missing", "run_batch", "status"]

#: Offline, each poll moves the emulator's clock this far (its batches end 60 s after creation).
OFFLINE_STEP_S = 10.0
#: Live polling: the first wait, and the longest (the API's batches take minutes to hours).
LIVE_FIRST_S, LIVE_MAX_S = 2.0, 60.0
#: Offline, give up after this much emulated time (a batch expires after 24 h).
OFFLINE_LIMIT_S = 25 * 3600.0


class BatchError(RuntimeError):
    """A batch that cannot be submitted, found or read: one line that says what to do."""


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C while a batch was processing; it goes on without us: `collect(session, batch_id)`."""

    def __init__(self, batch_id: str) -> None:
        self.batch_id = batch_id
        super().__init__(
            f"Stopped waiting for batch {batch_id}; it goes on. "
            f"Fetch its results later with %claude_batch results {batch_id}."
        )


class BatchItemError(Exception):
    """Why one request of a batch has no answer (errored, canceled, expired), as its record says."""


@dataclass(frozen=True)
class BatchItem:
    """One request's outcome: the answer (`message`) or why there is none (`error`)."""

    custom_id: str
    message: Message | None = None
    error: str | None = None
    record: CallRecord | None = field(default=None, compare=False, repr=False)
    """The call as the session recorded it (None when it was recorded before, or not at all)."""

    @property
    def ok(self) -> bool:
        return self.message is not None and self.error is None

    @property
    def usage(self) -> Usage | None:
        return self.message.usage if self.message is not None else None

    @property
    def cost(self) -> Cost:
        """What the request was billed (batch discount and cache rates), when it was recorded."""
        return self.record.cost if self.record is not None else Cost()


def _requests(requests: Sequence[Mapping[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(custom_id, params) pairs: a `{"custom_id", "params"}` entry as is, a bare body as `item-N`."""
    pairs: list[tuple[str, dict[str, Any]]] = []
    for i, request in enumerate(requests):
        if not isinstance(request, Mapping):
            raise BatchError(
                f"request {i} is a {type(request).__name__}; pass Messages request bodies (dicts)."
            )
        if set(request) == {"custom_id", "params"}:
            pairs.append((str(request["custom_id"]), dict(request["params"])))
        else:
            pairs.append((f"item-{i}", dict(request)))
    if not pairs:
        raise BatchError("There are no requests to batch: pass at least one.")
    if len({cid for cid, _ in pairs}) != len(pairs):
        raise BatchError("Two requests have the same custom_id; give each its own.")
    return pairs


def _client(session: Session) -> Any:
    client = session.client
    if client is None:
        raise BatchError("This session has no synchronous client to send a batch with.")
    return client


def run_batch(
    session: Session,
    requests: Sequence[Mapping[str, Any]],
    *,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[BatchItem]:
    """Send `requests` (Messages bodies, or `{"custom_id", "params"}`) as one batch; wait; record.

    Results come back in the order of `requests`. A request the pre-flight refuses stops the whole
    batch before anything is sent (PreflightError, or BudgetError above `max_cost`/`budget`).
    `on_progress(done, total)` is called after each poll.
    """
    client = _client(session)
    pairs = _requests(requests)
    begun: list[tuple[str, CallRecord, float]] = []
    try:
        for custom_id, params in pairs:
            record = session.begin_call("batch", params, {})
            record.request.pop("diagnostics", None)  # one comparison for a whole batch says nothing
            if record.prices is not None:
                record.prices = batch_prices(record.prices)
            begun.append((custom_id, record, time.perf_counter()))
        batch = client.messages.batches.create(
            requests=[{"custom_id": cid, "params": record.request} for cid, record, _ in begun]
        )
    except BaseException as error:  # refused or failed: nothing is processing
        for _, record, started in begun:
            session.end_call(record, record.request, {}, started, error=redact_error(error, client))
        if isinstance(error, Exception) and not isinstance(error, ValueError):
            raise BatchError(f"The batch was not created: {redact_key(str(error), client)}") from None
        raise
    try:
        batch = _wait(session, client, batch.id, len(pairs), on_progress)
    except KeyboardInterrupt:
        note = (
            f"interrupted while batch {batch.id} was processing (item {{}}); %claude_batch results {batch.id}"
        )
        for custom_id, record, started in begun:
            session.end_call(
                record, record.request, {}, started, error=BatchItemError(note.format(custom_id))
            )
        raise BatchInterrupted(batch.id) from None
    results = _results(client, batch)
    items = []
    for custom_id, record, started in begun:
        message, failure = _outcome(results.get(custom_id), batch.id)
        with contextlib.suppress(MalformedReply):  # on record as failed, with its line
            session.end_call(record, record.request, {}, started, message=message, error=failure)
        items.append(BatchItem(custom_id, message if record.ok else None, record.error, record))
    return items


def missing(batch_id: str) -> str:
    """What to say of a batch id the API does not know (its 404 names no id)."""
    return (
        f"No batch {batch_id!r} in this workspace (the offline emulator forgets its batches when the "
        "kernel restarts); %claude_batch list shows the batches there are."
    )


def status(session: Session, batch_id: str) -> MessageBatch:
    """The batch as the API describes it now (`processing_status`, `request_counts`, ...)."""
    client = _client(session)
    try:
        return client.messages.batches.retrieve(batch_id)
    except anthropic.NotFoundError:
        raise BatchError(missing(batch_id)) from None
    except Exception as error:
        raise BatchError(f"Could not read batch {batch_id!r}: {redact_key(str(error), client)}") from None


def collect(
    session: Session,
    batch_id: str,
    *,
    wait: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[BatchItem]:
    """The results of a batch sent earlier (this kernel or another), recorded in the session.

    An answer the session has already recorded is not recorded again; a call recorded as
    interrupted keeps its request in the new record. `wait`: poll until it ends (else BatchError
    while it is processing).
    """
    client = _client(session)
    batch = status(session, batch_id)
    if batch.processing_status != "ended":
        if not wait:
            counts = batch.request_counts
            raise BatchError(
                f"Batch {batch_id} is {batch.processing_status.replace('_', ' ')} "
                f"({counts.processing} requests processing); try again later."
            )
        batch = _wait(session, client, batch_id, _total(batch), on_progress)
    results = _results(client, batch)
    seen = {c.response.id for c in session.calls if c.response is not None}
    interrupted = {
        c.error.partition("(item ")[2].partition(")")[0]: c
        for c in session.calls
        if c.kind == "batch" and c.error and f"batch {batch_id} was processing" in c.error
    }
    items = []
    for custom_id, result in results.items():
        message, error = _outcome(result, batch_id)
        if message is not None and message.id in seen:
            items.append(BatchItem(custom_id, message, None))
            continue
        before = interrupted.get(custom_id)
        record = _record(session, message, before)
        if record is None:
            items.append(BatchItem(custom_id, message, None if error is None else str(error)))
            continue
        with contextlib.suppress(MalformedReply):  # on record as failed, with its line
            session.end_call(record, record.request, {}, time.perf_counter(), message=message, error=error)
        items.append(BatchItem(custom_id, message if record.ok else None, record.error, record))
    return items


def _record(session: Session, message: Message | None, before: CallRecord | None) -> CallRecord | None:
    """A new record for an answer found later: the interrupted call's request, else the model's name.

    None for a request without an answer: its failure is already on record, or there is nothing
    to price."""
    if message is None:
        return None
    model = before.model if before is not None else message.model
    request = dict(before.request) if before is not None else {"model": model, "messages": []}
    info = session.models.get(model) if model in session.models else None
    last = max((c.index for c in session.calls), default=0)
    return CallRecord(
        index=max(last, len(session.calls)) + 1,
        kind="batch",
        model=model,
        started_at=before.started_at if before is not None else session.now(),
        request=request,
        estimated=session.offline,
        prices=batch_prices(info.prices) if info is not None else None,
        prediction=before.prediction if before is not None else None,
    )


def _total(batch: MessageBatch) -> int:
    c = batch.request_counts
    return c.processing + c.succeeded + c.errored + c.canceled + c.expired


def _wait(
    session: Session,
    client: Any,
    batch_id: str,
    total: int,
    on_progress: Callable[[int, int], None] | None,
) -> MessageBatch:
    """Poll until the batch has ended: offline by moving the emulator's clock, live by sleeping."""
    waited, pause = 0.0, LIVE_FIRST_S
    while True:
        batch = client.messages.batches.retrieve(batch_id)
        if on_progress is not None:
            on_progress(total - batch.request_counts.processing, total)
        if batch.processing_status == "ended":
            return batch
        if session.offline:
            if waited >= OFFLINE_LIMIT_S:
                raise BatchError(
                    f"Batch {batch_id} has not ended after {waited / 3600:.0f} h of emulated time."
                )
            session.advance(OFFLINE_STEP_S)
            waited += OFFLINE_STEP_S
        else:
            time.sleep(pause)
            pause = min(pause * 2, LIVE_MAX_S)


def _results(client: Any, batch: MessageBatch) -> dict[str, MessageBatchIndividualResponse]:
    try:
        return {answer.custom_id: answer for answer in client.messages.batches.results(batch.id)}
    except Exception as error:
        raise BatchError(
            f"Could not read batch {batch.id}'s results: {redact_key(str(error), client)}"
        ) from None


def _outcome(
    answer: MessageBatchIndividualResponse | None, batch_id: str
) -> tuple[Message | None, BatchItemError | None]:
    """A result as (message, None) or (None, the reason there is no answer)."""
    if answer is None:
        return None, BatchItemError(f"batch {batch_id} returned no result for this request")
    result = answer.result
    if result.type == "succeeded":
        return result.message, None
    if result.type == "errored":
        inner = result.error.error
        return None, BatchItemError(f"errored in batch {batch_id}: {inner.type}: {inner.message}")
    return None, BatchItemError(f"{result.type} in batch {batch_id}")
