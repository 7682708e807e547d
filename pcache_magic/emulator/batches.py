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
Wire shapes are those of the SDK's `MessageBatch` and `MessageBatchIndividualResponse`.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from . import strict_json
from .errors import ApiError, check_method

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["DEFAULT_DELAY_S", "EXPIRY_S", "MAX_REQUESTS", "PREFIX", "Batches", "route"]

PREFIX = "/v1/messages/batches"
#: Emulated seconds from creation to the end of processing (the real API: minutes to hours).
DEFAULT_DELAY_S = 60.0
#: A batch that has not ended 24 h after creation expires (BP).
EXPIRY_S = 24 * 3600.0
#: Requests per batch (BP: up to 100,000 requests or 256 MB).
MAX_REQUESTS = 100_000
#: Batches kept per emulator; past it the oldest are forgotten (the API archives after 29 days).
MAX_BATCHES = 1_000
_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def _rfc3339(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class _Batch:
    id: str
    workspace: bytes = field(repr=False)
    requests: list[tuple[str, dict[str, Any]]] = field(repr=False)
    created_at: float
    ends_at: float
    cancel_at: float | None = None
    ended_at: float | None = None
    results: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def expires_at(self) -> float:
        return self.created_at + EXPIRY_S

    def wire(self) -> dict[str, Any]:
        """The batch as `MessageBatch` reads it; counts other than `processing` only once ended."""
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if self.ended_at is None:
            counts["processing"] = len(self.requests)
            status = "in_progress" if self.cancel_at is None else "canceling"
        else:
            for result in self.results:
                counts[result["result"]["type"]] += 1
            status = "ended"
        return {
            "id": self.id,
            "type": "message_batch",
            "processing_status": status,
            "request_counts": counts,
            "created_at": _rfc3339(self.created_at),
            "expires_at": _rfc3339(self.expires_at),
            "ended_at": _rfc3339(self.ended_at),
            "cancel_initiated_at": _rfc3339(self.cancel_at),
            "archived_at": None,
            # Relative, so the SDK fetches it from the base URL it was given (in process or a server).
            "results_url": f"{PREFIX}/{self.id}/results" if self.ended_at is not None else None,
        }


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

    def __init__(self, engine: Engine, *, delay_s: float = DEFAULT_DELAY_S) -> None:
        if isinstance(delay_s, bool) or not isinstance(delay_s, int | float) or not 0 <= delay_s <= 1e9:
            raise ValueError(f"delay_s is emulated seconds from 0 to 1e9, not {delay_s!r}")
        self.engine = engine
        self.delay_s = float(delay_s)
        self._batches: OrderedDict[str, _Batch] = OrderedDict()
        self._count = 0

    def __len__(self) -> int:
        return len(self._batches)

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

    def _end_of(self, batch: _Batch) -> float:
        return min(batch.ends_at if batch.cancel_at is None else batch.cancel_at, batch.expires_at)

    def due(self, until: float) -> float | None:
        """The earliest end of an unfinished batch at or before `until`, or None."""
        ends = [self._end_of(b) for b in self._batches.values() if b.ended_at is None]
        ends = [t for t in ends if t <= until]
        return min(ends) if ends else None

    def _process(self, batch: _Batch) -> None:
        now = self.engine.now()
        if batch.cancel_at is not None and batch.cancel_at < batch.ends_at:
            kind = "canceled"
        elif batch.ends_at > batch.expires_at:
            kind = "expired"
        else:
            kind = ""
        for custom_id, params in batch.requests:
            result = {"type": kind} if kind else self._run(batch.workspace, params)
            batch.results.append({"custom_id": custom_id, "result": result})
        batch.requests = [(custom_id, {}) for custom_id, _ in batch.requests]  # the results are what is kept
        batch.ended_at = now

    def _run(self, workspace: bytes, params: dict[str, Any]) -> dict[str, Any]:
        try:
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
    def dispatch(self, name: str, batch_id: str, key: str, data: Mapping[str, Any], query: str) -> Any:
        """Answer one batch request: a JSON-ready dict, or the results' JSONL bytes."""
        self.settle()
        workspace = self.engine.workspace(key)
        if name == "create":
            return self.create(workspace, data).wire()
        if name == "list":
            return self.list(workspace, query)
        batch = self._get(workspace, batch_id)
        if name == "retrieve":
            return batch.wire()
        if name == "results":
            if batch.ended_at is None:
                raise ApiError.invalid(f"Batch {batch.id} has not ended yet; its results are not ready.")
            return b"".join(strict_json.dumps(r).encode() + b"\n" for r in batch.results)
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

    def create(self, workspace: bytes, data: Mapping[str, Any]) -> _Batch:
        extra = sorted(set(data) - {"requests"})
        if extra:
            raise ApiError.invalid(f"{extra[0]}: Extra inputs are not permitted")
        requests = data.get("requests")
        if not isinstance(requests, list):
            raise ApiError.invalid(
                "requests: Field required" if requests is None else "requests: Input should be a valid list"
            )
        if not 1 <= len(requests) <= MAX_REQUESTS:
            raise ApiError.invalid(
                f"requests: a batch holds 1 to {MAX_REQUESTS:,} requests, not {len(requests)}"
            )
        seen: set[str] = set()
        kept: list[tuple[str, dict[str, Any]]] = []
        for i, request in enumerate(requests):
            where = f"requests.{i}"
            if not isinstance(request, dict):
                raise ApiError.invalid(f"{where}: Input should be a valid dictionary")
            extra = sorted(set(request) - {"custom_id", "params"})
            if extra:
                raise ApiError.invalid(f"{where}.{extra[0]}: Extra inputs are not permitted")
            custom_id, params = request.get("custom_id"), request.get("params")
            if not isinstance(custom_id, str) or not _CUSTOM_ID.match(custom_id):
                raise ApiError.invalid(
                    f"{where}.custom_id: String should match pattern '{_CUSTOM_ID.pattern}'"
                )
            if custom_id in seen:
                raise ApiError.invalid(
                    f"{where}.custom_id: duplicate custom_id {custom_id!r}; each must be unique"
                )
            if not isinstance(params, dict):
                raise ApiError.invalid(f"{where}.params: Input should be a valid dictionary")
            seen.add(custom_id)
            kept.append((custom_id, params))
        self._count += 1
        now = self.engine.now()
        batch = _Batch(
            id=f"msgbatch_emu_{self._count:012d}",
            workspace=workspace,
            requests=kept,
            created_at=now,
            ends_at=now + self.delay_s,
        )
        self._batches[batch.id] = batch
        while len(self._batches) > MAX_BATCHES:
            self._batches.popitem(last=False)
        if self.delay_s == 0:
            self._process(batch)
        return batch

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

    def _get(self, workspace: bytes, batch_id: str) -> _Batch:
        batch = self._batches.get(batch_id)
        if batch is None or batch.workspace != workspace:
            raise ApiError("not_found_error", f"message_batch: {batch_id} not found")
        return batch
