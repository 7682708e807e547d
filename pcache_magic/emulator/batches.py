"""The Message Batches API on the emulator's clock: create, retrieve, list, results, cancel, delete.

A batch ends `delay_s` of emulated time after it is created (60 s unless the emulator is told
otherwise), or 24 h after at the latest, when it expires. Its requests run when the clock
reaches that end, one after the other at that instant, through the same engine as
`POST /v1/messages`: the first request over a shared prefix writes it and the later ones read
it, which is the best the real API offers ("cache hits in batches are best effort"). A request
the API would refuse comes back as an `errored` result rather than failing the batch; only the
batch's own shape (the list, `custom_id`s) is refused whole, with a 400.

Time moves through `advance`, which stops at each batch's end on the way, so a batch's cache
writes happen at its end and expire from there. With a real clock, `settle` (run by every batch
endpoint) processes what has come due. Batches are per workspace: another key sees none of them.

Memory is bounded by bytes, not by parsed objects: a batch keeps each request as its compact JSON
until it runs, then each result as its JSONL line (a parsed request can take 25 times its JSON).
Past `Batches.max_bytes` in all, ended batches are forgotten oldest first (the API keeps results
29 days, not forever; a batch still in progress is never dropped), and when the batches still in
progress leave no room a new one is refused 429, as the API refuses past its processing queue.
Wire shapes are those of the SDK's `MessageBatch` and `MessageBatchIndividualResponse`.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from . import strict_json
from .batch_record import EXPIRY_S, MAX_BATCH_BYTES, MAX_REQUESTS, PREFIX, Batch, encode_requests, weight
from .errors import ApiError, check_method

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
    "Batches",
    "route",
]

#: Emulated seconds from creation to the end of processing (the real API: minutes to hours).
DEFAULT_DELAY_S = 60.0
#: Batches kept per emulator; past it the oldest ended are forgotten (the API archives after 29 days).
MAX_BATCHES = 1_000
#: Bytes the batches of one emulator keep together (`Batches.max_bytes`): two full-size batches.
DEFAULT_STORE_BYTES = 2 * MAX_BATCH_BYTES
_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def route(method: str, path: str) -> tuple[str, str]:
    """(route name, batch id) for a path under `PREFIX`; ApiError 404/405 when there is none."""
    rest = path[len(PREFIX) :].strip("/")
    parts = rest.split("/") if rest else []
    allowed: tuple[str, ...]
    if not parts:
        name, allowed, batch_id = "create" if method == "POST" else "list", ("GET", "POST"), ""
    elif len(parts) == 1 and _ID.match(parts[0]):
        name, allowed, batch_id = "delete" if method == "DELETE" else "retrieve", ("GET", "DELETE"), parts[0]
    elif len(parts) == 2 and _ID.match(parts[0]) and parts[1] in ("cancel", "results"):
        name, batch_id = parts[1], parts[0]
        allowed = ("POST",) if name == "cancel" else ("GET",)
    else:
        raise ApiError("not_found_error", f"Not found: {path}")
    check_method(method, path, allowed)
    return name, batch_id


class Batches:
    """Every batch of one emulator, and the processing of those that have come due."""

    def __init__(
        self, engine: Engine, *, delay_s: float = DEFAULT_DELAY_S, max_bytes: int = DEFAULT_STORE_BYTES
    ) -> None:
        if isinstance(delay_s, bool) or not isinstance(delay_s, int | float) or not 0 <= delay_s <= 1e9:
            raise ValueError(f"delay_s is emulated seconds from 0 to 1e9, not {delay_s!r}")
        self.engine = engine
        self.delay_s = float(delay_s)
        self.max_bytes = max_bytes
        """What all batches may keep together, in bytes (see the module's doc)."""
        self._batches: OrderedDict[str, Batch] = OrderedDict()
        self._count = 0

    def __len__(self) -> int:
        return len(self._batches)

    @property
    def nbytes(self) -> int:
        """What the batches keep, in bytes: requests not yet run, results of those ended."""
        return sum(b.nbytes for b in self._batches.values())

    # -- time ---------------------------------------------------------------------------
    def settle(self, until: float | None = None) -> None:
        """Process every batch whose end has come (by `until`, default now), at the present instant."""
        now = self.engine.now() if until is None else until
        for batch in list(self._batches.values()):
            if batch.ended_at is None and self._end_of(batch) <= now:
                self._process(batch)

    def advance(self, seconds: float) -> float:
        """`engine.advance`, stopping at each batch's end on the way so it runs at that instant.

        Refused whole (ValueError, the clock unchanged) when the engine would refuse it."""
        target = self.engine.now() + self.engine.check_advance(seconds)
        self.settle()
        while (due := self.due(target)) is not None:
            self.engine.advance(max(due - self.engine.now(), 0.0))
            self.settle(due)
        return self.engine.advance(max(target - self.engine.now(), 0.0))

    def clear(self) -> None:
        self._batches.clear()

    def _end_of(self, batch: Batch) -> float:
        return min(batch.ends_at if batch.cancel_at is None else batch.cancel_at, batch.expires_at)

    def due(self, until: float) -> float | None:
        """The earliest end of an unfinished batch at or before `until`, or None."""
        ends = [self._end_of(b) for b in self._batches.values() if b.ended_at is None]
        ends = [t for t in ends if t <= until]
        return min(ends) if ends else None

    def _process(self, batch: Batch) -> None:
        now = self.engine.now()
        if batch.cancel_at is not None and batch.cancel_at < batch.ends_at:
            kind = "canceled"
        elif batch.ends_at > batch.expires_at:
            kind = "expired"
        else:
            kind = ""
        counts: dict[str, int] = {}
        for custom_id, params in batch.requests:
            result = {"type": kind} if kind else self._run(batch.workspace, params)
            batch.results.append(
                strict_json.dumps({"custom_id": custom_id, "result": result}).encode() + b"\n"
            )
            counts[result["type"]] = counts.get(result["type"], 0) + 1
        batch.requests, batch.counts, batch.ended_at = [], counts, now  # the results are what is kept
        batch.nbytes = weight(batch.results)
        self._forget_ended(self.max_bytes, keep=batch)

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
            return b"".join(batch.results)
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
            self._process(batch)
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
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        try:
            limit = int(params.get("limit", "20"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 1000:
            raise ApiError.invalid("limit: Input should be a whole number from 1 to 1000")
        mine = [b for b in reversed(self._batches.values()) if b.workspace == workspace]
        ids = [b.id for b in mine]
        if "after_id" in params:
            start = ids.index(params["after_id"]) + 1 if params["after_id"] in ids else len(ids)
            page, more = mine[start : start + limit], start + limit < len(mine)
        elif "before_id" in params:
            end = ids.index(params["before_id"]) if params["before_id"] in ids else 0
            page, more = mine[max(end - limit, 0) : end], end - limit > 0
        else:
            page, more = mine[:limit], limit < len(mine)
        data = [b.wire() for b in page]
        return {
            "data": data,
            "has_more": more,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }

    def _get(self, workspace: bytes, batch_id: str) -> Batch:
        batch = self._batches.get(batch_id)
        if batch is None or batch.workspace != workspace:
            raise ApiError("not_found_error", f"message_batch: {batch_id} not found")
        return batch
