"""One Message Batch: its record, its wire form, its routes, a page of a list, and a create body's
requests in the compact form kept (each `params` as its JSON bytes: a parsed request can take 25
times as much memory)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from . import strict_json
from .errors import ApiError, check_method

__all__ = [
    "CUSTOM_ID",
    "EXPIRY_S",
    "ITEM_OVERHEAD",
    "MAX_BATCH_BYTES",
    "MAX_REQUESTS",
    "PREFIX",
    "Batch",
    "encode_requests",
    "page",
    "route",
    "weight",
]

PREFIX = "/v1/messages/batches"
#: A batch that has not ended 24 h after creation expires (BP).
EXPIRY_S = 24 * 3600.0
#: Requests per batch (BP: up to 100,000 requests or 256 MB).
MAX_REQUESTS = 100_000
#: A batch's requests, in bytes (BP: "up to 100,000 requests and up to 256 MB in total size").
MAX_BATCH_BYTES = 256 * 2**20
#: Bytes counted per request or result besides its JSON: the tuple, the bytes object, the id.
ITEM_OVERHEAD = 160
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def _rfc3339(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Batch:
    """One batch: its requests as compact JSON until each runs, then its result as a JSONL line."""

    id: str
    workspace: bytes = field(repr=False)
    requests: list[tuple[str, bytes]] = field(repr=False)
    """Each request's `custom_id` and compact `params` JSON, until the batch runs."""
    created_at: float
    ends_at: float
    cancel_at: float | None = None
    ended_at: float | None = None
    results: list[bytes] = field(default_factory=list, repr=False)
    """Each result's JSONL line, once ended."""
    counts: dict[str, int] = field(default_factory=dict)
    nbytes: int = 0
    """What the requests not yet run and the results so far weigh (`weight`)."""
    ran: int = 0
    """Requests run so far: a batch runs a slice at a time (`Batches.settle`), in order."""
    full: bool = False
    """Its results reached the store's bytes: the requests left are not run (`Batches.settle`)."""
    overflowed: list[str] = field(default_factory=list, repr=False)
    """The `custom_id`s of the requests whose results did not fit, in order: their `overloaded_error`
    lines are written when the results are read, so they weigh no more than the ids."""

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
            counts.update(self.counts)
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


def page(mine: list[Batch], query: str) -> dict[str, Any]:
    """One page of `mine` (newest first) for a list query: `limit` (1-1000, default 20) at a time
    after `after_id` or before `before_id`; ApiError 400 for a bad limit."""
    params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    try:
        limit = int(params.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 1000:
        raise ApiError.invalid("limit: Input should be a whole number from 1 to 1000")
    ids = [b.id for b in mine]
    if "after_id" in params:
        start = ids.index(params["after_id"]) + 1 if params["after_id"] in ids else len(ids)
        shown, more = mine[start : start + limit], start + limit < len(mine)
    elif "before_id" in params:
        end = ids.index(params["before_id"]) if params["before_id"] in ids else 0
        shown, more = mine[max(end - limit, 0) : end], end - limit > 0
    else:
        shown, more = mine[:limit], limit < len(mine)
    data = [b.wire() for b in shown]
    return {
        "data": data,
        "has_more": more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


def encode_requests(data: Mapping[str, Any]) -> tuple[list[tuple[str, bytes]], int]:
    """A create body's requests as (custom_id, params JSON) and their `weight`; ApiError 400 for a
    bad shape, 413 past `MAX_BATCH_BYTES`."""
    extra = sorted(set(data) - {"requests"})
    if extra:
        raise ApiError.invalid(f"{extra[0]}: Extra inputs are not permitted")
    requests = data.get("requests")
    if not isinstance(requests, list):
        raise ApiError.invalid(
            "requests: Field required" if requests is None else "requests: Input should be a valid list"
        )
    if not 1 <= len(requests) <= MAX_REQUESTS:
        raise ApiError.invalid(f"requests: a batch holds 1 to {MAX_REQUESTS:,} requests, not {len(requests)}")
    seen: set[str] = set()
    kept: list[tuple[str, bytes]] = []
    for i, request in enumerate(requests):
        where = f"requests.{i}"
        if not isinstance(request, dict):
            raise ApiError.invalid(f"{where}: Input should be a valid dictionary")
        extra = sorted(set(request) - {"custom_id", "params"})
        if extra:
            raise ApiError.invalid(f"{where}.{extra[0]}: Extra inputs are not permitted")
        custom_id, params = request.get("custom_id"), request.get("params")
        if not isinstance(custom_id, str) or not CUSTOM_ID.match(custom_id):
            raise ApiError.invalid(f"{where}.custom_id: String should match pattern '{CUSTOM_ID.pattern}'")
        if custom_id in seen:
            raise ApiError.invalid(
                f"{where}.custom_id: duplicate custom_id {custom_id!r}; each must be unique"
            )
        if not isinstance(params, dict):
            raise ApiError.invalid(f"{where}.params: Input should be a valid dictionary")
        seen.add(custom_id)
        kept.append((custom_id, strict_json.dumps(params).encode()))
    size = sum(len(raw) for _, raw in kept)  # the API's limit is on the requests, not our bookkeeping
    if size > MAX_BATCH_BYTES:
        raise ApiError(
            "request_too_large",
            f"A batch may hold {MAX_BATCH_BYTES:,} bytes of requests, not {size:,}.",
        )
    return kept, weight(raw for _, raw in kept)


def weight(items: Iterable[bytes]) -> int:
    """What a batch's requests or results weigh in memory: their bytes plus `ITEM_OVERHEAD` each."""
    return sum(len(item) + ITEM_OVERHEAD for item in items)
