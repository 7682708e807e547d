"""The Message Batches API on the emulator's clock: create, retrieve, list, results, cancel, delete.

A batch ends `delay_s` of emulated time after it is created (60 s unless the emulator is told
otherwise), or 24 h after at the latest, when it expires. Its requests run when the clock
reaches that end, one after the other at that instant, through the same engine as
`POST /v1/messages`: the first request over a shared prefix writes it and the later ones read
it, which is the best the real API offers ("cache hits in batches are best effort"). A request
the API would refuse comes back as an `errored` result rather than failing the batch; only the
batch's own shape (the list, `custom_id`s) is refused whole, with a 400.

Time moves through `advance`, which stops at each batch's end on the way and runs all of it there,
so a batch's cache writes happen at its end and expire from there. With a real clock, `settle`
(run by every batch endpoint, under the emulator's lock) processes what has come due, a slice of
`slice_s` seconds of work at a time: a large batch runs over the polls that ask after it, in order,
each request taking its arrival ticket as it runs, and other clients are served in between.
Batches are per workspace: another key sees none of them.

Memory is bounded by bytes, not by parsed objects: a batch keeps each request as its compact JSON
until it runs, then its result as a JSONL line (a parsed request can take 25 times its JSON).
Past `Batches.max_bytes` in all, ended batches are forgotten oldest first (the API keeps results
29 days, not forever; a batch still in progress is never dropped), and when the batches still in
progress leave no room a new one is refused 429, as the API refuses past its processing queue.
Results are weighed as they come: when one would not fit even so, it and every request after it
in that batch are not run and come back `errored` with an `overloaded_error` (the API's word for
"no capacity now, send it again later": the request itself was fine), and the batch still ends.
Wire shapes are those of the SDK's `MessageBatch` and `MessageBatchIndividualResponse`.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from . import strict_json
from .batch_record import (
    EXPIRY_S,
    ITEM_OVERHEAD,
    MAX_BATCH_BYTES,
    MAX_REQUESTS,
    PREFIX,
    Batch,
    encode_requests,
    page,
    route,
)
from .errors import ApiError

if TYPE_CHECKING:
    from .engine import Engine

__all__ = [
    "DEFAULT_DELAY_S",
    "DEFAULT_STORE_BYTES",
    "EXPIRY_S",
    "MAX_BATCHES",
    "MAX_BATCH_BYTES",
    "MAX_REQUESTS",
    "PREFIX",
    "SLICE_S",
    "Batches",
    "route",
]

#: Emulated seconds from creation to the end of processing (the real API: minutes to hours).
DEFAULT_DELAY_S = 60.0
#: Batches kept per emulator; past it the oldest ended are forgotten (the API archives after 29 days).
MAX_BATCHES = 1_000
#: Bytes the batches of one emulator keep together (`Batches.max_bytes`): two full-size batches.
DEFAULT_STORE_BYTES = 2 * MAX_BATCH_BYTES
#: Seconds of work one `settle` does on due batches before it lets the emulator's lock go (at
#: least one request): the rest runs on the next batch request, a poll, so no client waits long.
SLICE_S = 0.25
_SPENT = ("", b"")


def _line(custom_id: str, result: Mapping[str, Any]) -> bytes:
    return strict_json.dumps({"custom_id": custom_id, "result": result}).encode() + b"\n"


class Batches:
    """Every batch of one emulator, and the processing of those that have come due."""

    def __init__(
        self,
        engine: Engine,
        *,
        delay_s: float = DEFAULT_DELAY_S,
        max_bytes: int = DEFAULT_STORE_BYTES,
        slice_s: float = SLICE_S,
        work_clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if isinstance(delay_s, bool) or not isinstance(delay_s, int | float) or not 0 <= delay_s <= 1e9:
            raise ValueError(f"delay_s is emulated seconds from 0 to 1e9, not {delay_s!r}")
        self.engine = engine
        self._heading = -math.inf
        """Where the latest `advance` takes the clock (it may still be on its way, slice by slice)."""
        self._cleared = 0  # `clear`s so far: an advance on its way stops at a reset
        self.delay_s = float(delay_s)
        self.max_bytes = max_bytes
        """What all batches may keep together, in bytes (see the module's doc)."""
        self.slice_s = slice_s
        self.work_clock = work_clock
        self._batches: OrderedDict[str, Batch] = OrderedDict()
        self._count = 0

    def __len__(self) -> int:
        return len(self._batches)

    @property
    def nbytes(self) -> int:
        """What the batches keep, in bytes: requests not yet run, results of those ended."""
        return sum(b.nbytes for b in self._batches.values())

    # -- time ---------------------------------------------------------------------------
    def settle(self, until: float | None = None, *, whole: bool = False) -> None:
        """Process the batches whose end has come (by `until`, default now), at the present instant,
        in order: `slice_s` seconds of work at most (at least one request), or all with `whole`."""
        now = self.engine.now() if until is None else until
        deadline = None if whole else self.work_clock() + self.slice_s
        for batch in list(self._batches.values()):
            if batch.ended_at is None and self._end_of(batch) <= now:
                self._process(batch, deadline)
                if deadline is not None and self.work_clock() >= deadline:
                    return

    def advance(self, seconds: float, lock: AbstractContextManager[Any] | None = None) -> float:
        """`engine.advance`, stopping at each batch's end on the way so it runs whole at that
        instant. With the emulator's `lock`, held a step at a time (a slice of a batch, or a move of
        the clock to the next end), so other clients are served between slices: the clock moves
        only once no batch due at its instant is left unfinished. Returns the new time.

        Refused whole (ValueError, the clock unchanged) when the engine would refuse it."""
        with lock or nullcontext():
            # Another advance still on its way (between slices): this one moves on from where it
            # goes, so two advances of 100 s move the clock 200 s, as one after the other would.
            now = self.engine.now()
            start = max(now, self._heading)
            target = self._heading = start + self.engine.check_advance(seconds, ahead=start - now)
            cleared = self._cleared
        try:
            while True:
                with lock or nullcontext():
                    if self._cleared != cleared or self._step_to(target, whole=lock is None):
                        return self.engine.now()  # there, or a reset came between two steps
        except BaseException:  # interrupted: the next advance starts from where the clock is
            with lock or nullcontext():
                self._heading = min(self._heading, self.engine.now())
            raise

    def _step_to(self, target: float, *, whole: bool) -> bool:
        """One step of `advance` to `target`: True once the clock is there."""
        self.settle(whole=whole)
        now = self.engine.now()
        if self.due(now) is not None:  # a batch at this instant still has requests to run
            return False
        due = self.due(target)
        self.engine.advance(max((target if due is None else due) - now, 0.0))
        return due is None

    def clear(self) -> None:
        self._batches.clear()
        self._heading = -math.inf
        self._cleared += 1

    def _end_of(self, batch: Batch) -> float:
        return min(batch.ends_at if batch.cancel_at is None else batch.cancel_at, batch.expires_at)

    def due(self, until: float) -> float | None:
        """The earliest end of an unfinished batch at or before `until`, or None."""
        ends = [self._end_of(b) for b in self._batches.values() if b.ended_at is None]
        ends = [t for t in ends if t <= until]
        return min(ends) if ends else None

    def _process(self, batch: Batch, deadline: float | None) -> None:
        """Run `batch`'s next requests in order until it ends or the `deadline` passes (after one at
        least); each result is weighed as it comes (see the module's doc)."""
        others = self.nbytes - batch.nbytes
        while batch.ran < len(batch.requests):
            custom_id, raw = batch.requests[batch.ran]
            batch.requests[batch.ran] = _SPENT
            batch.ran += 1
            batch.nbytes -= len(raw) + ITEM_OVERHEAD
            if batch.cancel_at is not None:  # a request not yet run when the cancel came
                result: dict[str, Any] = {"type": "canceled"}
            elif batch.ends_at > batch.expires_at:
                result = {"type": "expired"}
            elif batch.full:
                self._overflow(batch, custom_id)
                continue
            else:
                result = self._run(batch.workspace, raw)
            spent = result["type"] in ("succeeded", "errored")  # the engine ran
            line = _line(custom_id, result)
            if spent and others + batch.nbytes + len(line) + ITEM_OVERHEAD > self.max_bytes:
                others = self._fit(others, batch.nbytes + len(line) + ITEM_OVERHEAD, batch)
                if others + batch.nbytes + len(line) + ITEM_OVERHEAD > self.max_bytes:
                    batch.full = True
                    self._overflow(batch, custom_id)
                    continue
            batch.results.append(line)
            batch.nbytes += len(line) + ITEM_OVERHEAD
            batch.counts[result["type"]] = batch.counts.get(result["type"], 0) + 1
            more = batch.ran < len(batch.requests)
            if spent and more and deadline is not None and self.work_clock() >= deadline:
                return  # the rest on the next call
        batch.requests, batch.ended_at = [], self.engine.now()  # the results are what is kept
        self._forget_ended(self.max_bytes, keep=batch)

    def _fit(self, others: int, mine: int, running: Batch) -> int:
        """What the other batches keep (`others`) once ended ones are forgotten, oldest first, until
        `running`'s `mine` fits within `max_bytes` with them, or none is left to forget."""
        for old in [b for b in self._batches.values() if b.ended_at is not None and b is not running]:
            if others + mine <= self.max_bytes:
                break
            del self._batches[old.id]
            others -= old.nbytes
        return others

    @staticmethod
    def _overflow(batch: Batch, custom_id: str) -> None:
        """A request whose result does not fit (or that comes after one): errored, its id kept."""
        batch.overflowed.append(custom_id)
        batch.nbytes += len(custom_id) + ITEM_OVERHEAD
        batch.counts["errored"] = batch.counts.get("errored", 0) + 1

    def _full(self) -> dict[str, Any]:
        """The result of a request whose result did not fit in the store, and of those after it."""
        error = ApiError(
            "overloaded_error",
            f"The batches' results reached the emulator's {self.max_bytes:,} bytes, so this request's "
            "result is not kept and the batch's later requests are not run. Delete ended batches "
            "(or lower max_tokens), then send this request again.",
        )
        return {"type": "errored", "error": error.body()}

    def _run(self, workspace: bytes, raw: bytes) -> dict[str, Any]:
        try:
            params = strict_json.loads(raw)
            if "stream" in params:
                raise ApiError.invalid("stream: Batch requests do not support streaming.")
            message = self.engine.create_message("", params, workspace=workspace)
        except ApiError as error:
            return {"type": "errored", "error": error.body()}
        except Exception as error:  # an engine bug: an errored item, like the API's 500
            failure = ApiError("api_error", f"Emulator internal error: {type(error).__name__}: {error}")
            return {"type": "errored", "error": failure.body()}
        return {"type": "succeeded", "message": message}

    # -- endpoints ----------------------------------------------------------------------
    def dispatch(
        self,
        name: str,
        batch_id: str,
        key: str,
        data: Mapping[str, Any],
        query: str,
        *,
        encoded: tuple[list[tuple[str, bytes]], int] | None = None,
    ) -> Any:
        """Answer one batch request: a JSON-ready dict, or the results' JSONL bytes (`encoded`: a
        create's `encode_requests`, done outside the emulator's lock)."""
        self.settle()
        workspace = self.engine.workspace(key)
        if name == "create":
            return self.create(workspace, data, encoded).wire()
        if name == "list":
            return self.list(workspace, query)
        batch = self._get(workspace, batch_id)
        if name == "retrieve":
            return batch.wire()
        if name == "results":
            if batch.ended_at is None:
                raise ApiError.invalid(f"Batch {batch.id} has not ended yet; its results are not ready.")
            error = self._full()
            return b"".join([*batch.results, *(_line(c, error) for c in batch.overflowed)])
        if name == "cancel":
            if batch.ended_at is None and batch.cancel_at is None:
                batch.cancel_at = self.engine.now()
            return batch.wire()
        if batch.ended_at is None:  # delete
            raise ApiError.invalid(
                f"Batch {batch.id} is still processing; cancel it and wait for it to end before deleting it."
            )
        del self._batches[batch.id]
        return {"id": batch.id, "type": "message_batch_deleted"}

    def create(
        self,
        workspace: bytes,
        data: Mapping[str, Any],
        encoded: tuple[list[tuple[str, bytes]], int] | None = None,
    ) -> Batch:
        kept, nbytes = encoded or encode_requests(data)
        self._make_room(nbytes)
        self._count += 1
        now = self.engine.now()
        batch = Batch(
            id=f"msgbatch_emu_{self._count:012d}",
            workspace=workspace,
            requests=kept,
            created_at=now,
            ends_at=now + self.delay_s,
            nbytes=nbytes,
        )
        self._batches[batch.id] = batch
        if self.delay_s == 0:
            self._process(batch, self.work_clock() + self.slice_s)
        return batch

    def _make_room(self, nbytes: int) -> None:
        """Room for a new batch of `nbytes`: ended batches forgotten oldest first, as few as will do;
        ApiError 429 (forgetting none) when the batches in progress leave too little."""
        running = [b for b in self._batches.values() if b.ended_at is None]
        held = sum(b.nbytes for b in running)
        if held + nbytes > self.max_bytes or len(running) >= MAX_BATCHES:
            raise ApiError(
                "rate_limit_error",
                f"The batch processing queue is full: {len(running):,} batches in progress hold "
                f"{held:,} bytes of requests and this one adds {nbytes:,} (at most {self.max_bytes:,} "
                f"bytes in {MAX_BATCHES:,} batches); advance the clock or cancel one, then try again.",
                headers={"x-should-retry": "false"},  # retrying at once cannot help: the clock must move
            )
        self._forget_ended(self.max_bytes - nbytes, count=MAX_BATCHES - 1)

    def _forget_ended(self, max_bytes: int, *, count: int = MAX_BATCHES, keep: Batch | None = None) -> None:
        """Forget ended batches, oldest first (never `keep`), until at most `max_bytes` and `count` remain."""
        total = self.nbytes
        for old in [b for b in self._batches.values() if b.ended_at is not None and b is not keep]:
            if total <= max_bytes and len(self._batches) <= count:
                return
            del self._batches[old.id]
            total -= old.nbytes

    def list(self, workspace: bytes, query: str) -> dict[str, Any]:
        """Newest first, `limit` (1-1000, default 20) at a time after `after_id` or before `before_id`."""
        return page([b for b in reversed(self._batches.values()) if b.workspace == workspace], query)

    def _get(self, workspace: bytes, batch_id: str) -> Batch:
        batch = self._batches.get(batch_id)
        if batch is None or batch.workspace != workspace:
            raise ApiError("not_found_error", f"message_batch: {batch_id} not found")
        return batch
