"""The emulator's core: Messages API requests in, wire JSON out, following the caching rules.

Pure and synchronous: no sockets, no sleeping.  Time comes from an injected
clock, so a notebook or a test moves it with `advance()` instead of waiting.
The wire layer (`wire.py`) and the HTTP server sit on top of this.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..core.models import ModelInfo, ModelTable, default_models
from ..core.prefix import Layout, layout
from ..core.rules import Breakpoint, CacheRuleError, plan, resolve_breakpoints
from ..core.tokens import BLOCK_OVERHEAD, TokenEstimator
from ..core.ttl import TTL_SECONDS
from .diagnostics import DEFAULT_HISTORY_BYTES, Fingerprint, History, diagnose
from .errors import ApiError
from .reply import Outcome, finish, reply_content, signed, thinking_key
from .sse import message_events
from .structured import structured_content
from .table import CacheTable, Entry
from .validate import validate_request

__all__ = ["MAX_ADVANCE_S", "MAX_OFFSET_S", "START_TIME", "Engine", "ManualClock", "Prepared"]

#: Where a ManualClock starts: a fixed instant, so offline runs are reproducible.
START_TIME = datetime(2026, 1, 1, 9, 0, tzinfo=UTC).timestamp()
#: The longest single `advance()`: ten years of 365 days, far past any TTL. Bounded because near
#: 1e20 a float swallows `now + 300` whole, so every entry would expire as it is written.
MAX_ADVANCE_S = 10 * 365 * 86_400
#: How far `advance()` may take the clock in total, until `reset()` (a hundred years).
MAX_OFFSET_S = 10 * MAX_ADVANCE_S


class ManualClock:
    """A clock that stands still until advanced: offline time is under the user's control."""

    def __init__(self, start: float = START_TIME) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._now += seconds
            return self._now


@dataclass(frozen=True, slots=True)
class Prepared:
    """A message request checked and laid out (`Engine.prepare`), ready for the cache."""

    body: dict[str, Any]
    info: ModelInfo
    workspace: bytes
    lay: Layout
    points: list[Breakpoint]


@dataclass(frozen=True, slots=True)
class _Result:
    message: dict[str, Any]
    outcome: Outcome


class Engine:
    """An offline Messages API with a prompt cache that follows the documented rules."""

    def __init__(
        self,
        clock: Callable[[], float] | None = None,
        *,
        models: ModelTable | None = None,
        max_entries: int = 10_000,
        history_bytes: int = DEFAULT_HISTORY_BYTES,
        thinking_seed: bytes | None = None,
    ) -> None:
        self._thinking_key = thinking_key() if thinking_seed is None else thinking_key(thinking_seed)
        """Signs the thinking blocks this engine writes and checks those sent back (`reply`)."""
        self._base_clock: Callable[[], float] = clock or ManualClock()
        self._offset = 0.0
        self._models = models or default_models()
        self._estimator = TokenEstimator()
        self._table = CacheTable(self.now, max_entries)
        self._history = History(history_bytes)
        self._ids = itertools.count(1)
        self._id_lock = threading.Lock()
        self._tickets = itertools.count(1)

    # -- time ---------------------------------------------------------------------------
    def now(self) -> float:
        return self._base_clock() + self._offset

    def advance(self, seconds: float) -> float:
        """Move time forward by 0 to `MAX_ADVANCE_S` seconds; entries whose lifetime ends are gone.

        ValueError (the clock unchanged) for anything else, or past `MAX_OFFSET_S` in total.
        """
        self._offset += _checked_step(seconds, self._offset)
        self._table.evict()
        return self.now()

    @property
    def offset(self) -> float:
        """How far `advance()` has moved the clock in total (at most `MAX_OFFSET_S`)."""
        return self._offset

    def check_advance(self, seconds: float, *, ahead: float = 0.0) -> float:
        """What `advance(seconds)` would move by, or its ValueError; the clock unchanged.  `ahead`:
        seconds an advance on its way will still add (the 100-year bound counts them)."""
        return _checked_step(seconds, self._offset + ahead)

    def reset(self) -> None:
        """Forget every cache entry and message, and undo every `advance()` (the API has no such thing)."""
        self._table.clear()
        self._history.clear()
        self._offset = 0.0

    @property
    def models(self) -> ModelTable:
        return self._models

    @property
    def estimator(self) -> TokenEstimator:
        return self._estimator

    # -- endpoints ----------------------------------------------------------------------
    def create_message(
        self,
        api_key: str,
        body: dict[str, Any],
        *,
        workspace: bytes | None = None,
        arrived: int | None = None,
        prepared: Prepared | None = None,
    ) -> dict[str, Any]:
        """POST /v1/messages without streaming; `workspace` (`Engine.workspace`) instead of a key
        for a request run later, as a batch's are, so no key is kept meanwhile; `arrived`: the
        request's `ticket`, taken when it came in; `prepared`: this request's `prepare`, if done."""
        prepared = prepared or self.prepare(api_key, body, workspace=workspace)
        return self._process(prepared, arrived).message

    def stream_message(
        self,
        api_key: str,
        body: dict[str, Any],
        *,
        arrived: int | None = None,
        prepared: Prepared | None = None,
    ) -> list[tuple[str, dict[str, Any]]]:
        """POST /v1/messages with `stream: true`: the whole SSE event sequence."""
        prepared = prepared or self.prepare(api_key, body)
        return message_events(self._process(prepared, arrived).message)

    def prepare(self, api_key: str, body: dict[str, Any], *, workspace: bytes | None = None) -> Prepared:
        """Check a message request and lay it out: all the work that reads no cache, clock or
        history, so the server does it outside the emulator's lock (the estimator's memo is one
        dict whose single operations are atomic). A prompt that cannot fit is refused from its
        block count, before the layout; ApiError as the API would answer."""
        validate_request(body, known_model=self._known, models=self._models, thinking_key=self._thinking_key)
        info = self._models.get(body["model"])
        if body["max_tokens"] > info.max_output_tokens:
            raise ApiError.invalid(
                f"max_tokens: {body['max_tokens']} > {info.max_output_tokens}, which is the maximum "
                f"allowed number of output tokens for {info.id}"
            )
        if not info.prefill and body["messages"][-1]["role"] == "assistant":
            raise ApiError.invalid(
                "This model does not support assistant message prefill. "
                "The conversation must end with a user message."
            )
        if (least := _least_tokens(body["messages"])) > info.context_window:
            raise ApiError.invalid(
                f"prompt is too long: at least {least} tokens > {info.context_window} maximum"
            )
        workspace = workspace or self._workspace(api_key)
        lay = layout(body, self._estimator, workspace=workspace, model=info.id)  # an alias: the same cache
        points = self._breakpoints(lay, body)
        if lay.total_tokens > info.context_window:
            raise ApiError.invalid(
                f"prompt is too long: {lay.total_tokens} tokens > {info.context_window} maximum"
            )
        return Prepared(body, info, workspace, lay, points)

    def count_tokens(self, api_key: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/messages/count_tokens: the total input tokens of the same request."""
        validate_request(
            body, known_model=self._known, counting=True, models=self._models, thinking_key=self._thinking_key
        )
        lay = layout(body, self._estimator, workspace=self._workspace(api_key))
        self._breakpoints(lay, body)
        return {"input_tokens": lay.total_tokens}

    def list_models(self) -> dict[str, Any]:
        data = [self._model_wire(m.id) for m in self._models]
        return {
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }

    def get_model(self, model_id: str) -> dict[str, Any]:
        if model_id not in self._models:
            raise ApiError("not_found_error", f"model: {model_id}")
        return self._model_wire(model_id)

    def seed(self, api_key: str, body: Mapping[str, Any], depth: int, ttl: str, expires_at: float) -> bool:
        """Hold again the entry for `body`'s prefix up to block `depth`, written for `ttl` and due to
        expire at `expires_at`: what the API still holds for a session saved in another kernel.
        False when it is already held, has expired, or `depth` is not a block of `body`."""
        model = str(body.get("model"))
        if model not in self._models or ttl not in TTL_SECONDS:
            return False
        info = self._models.get(model)
        lay = layout(body, self._estimator, workspace=self._workspace(api_key), model=info.id)
        if not 0 <= depth < len(lay.positions):
            return False
        position = lay.positions[depth]
        written = expires_at - TTL_SECONDS[ttl]
        entry = Entry(info.id, position.cumulative, ttl, written, expires_at)
        return self._table.restore(position.key, entry)

    def state(self) -> dict[str, Any]:
        """Live entries for inspection; keys and API keys never leave the table."""
        now = self.now()
        entries = [
            {
                "model": e.model,
                "tokens": e.tokens,
                "ttl": e.ttl,
                "written_at": e.written_at,
                "expires_at": e.expires_at,
                "expires_in": round(e.expires_at - now, 3),
            }
            for e in self._table.live()
        ]
        return {"now": now, "entries": entries}

    # -- internals ----------------------------------------------------------------------
    def _known(self, model: str) -> bool:
        return model in self._models

    @staticmethod
    def workspace(api_key: str) -> bytes:
        """The cache partition of a key: a hash, so the key itself need not be kept."""
        return hashlib.sha256(b"workspace:" + api_key.encode()).digest()

    _workspace = workspace

    def ticket(self) -> int:
        """A number for a request as it arrives.  The docs: an entry is readable only once the
        response that wrote it has begun, so requests sent together all miss and write; a request
        answered at once (`arrived` left out) takes its ticket as it is answered."""
        with self._id_lock:
            return next(self._tickets)

    def _next_id(self, prefix: str) -> str:
        with self._id_lock:
            return f"{prefix}{next(self._ids):020d}"

    def _model_wire(self, model_id: str) -> dict[str, Any]:
        info = self._models.get(model_id)
        return {
            "type": "model",
            "id": info.id,
            "display_name": info.name,
            "created_at": f"{info.as_of}T00:00:00Z",
            "lifecycle": "active",
            "max_input_tokens": info.context_window,
            "max_tokens": info.max_output_tokens,
        }

    def _breakpoints(self, lay: Layout, body: Mapping[str, Any]) -> list[Breakpoint]:
        try:
            return resolve_breakpoints(lay, body.get("cache_control"))
        except CacheRuleError as error:
            raise ApiError.invalid(str(error)) from None

    def _process(self, prepared: Prepared, arrived: int | None) -> _Result:
        """A prepared request through the cache (under the table's lock), answered."""
        body, info, workspace = prepared.body, prepared.info, prepared.workspace
        lay, points = prepared.lay, prepared.points
        outcome = self._cache(lay, points, info.id, info.min_cache_tokens, arrived)
        message_id = self._next_id("msg_emu_")
        content = structured_content(reply_content(body, lay, outcome, self._next_id("toolu_emu_")), body)
        content, output_tokens, stop_reason, stop_sequence = finish(content, body, self._estimator)
        content = signed(content, self._thinking_key)
        message: dict[str, Any] = {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "usage": {
                "input_tokens": outcome.uncached,
                "cache_creation_input_tokens": outcome.write_5m + outcome.write_1h,
                "cache_read_input_tokens": outcome.read,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": outcome.write_5m,
                    "ephemeral_1h_input_tokens": outcome.write_1h,
                },
                "output_tokens": output_tokens,
                "service_tier": "standard",
            },
        }
        cached = outcome.read + outcome.write_5m + outcome.write_1h
        fingerprint = Fingerprint.of(workspace, info.id, body, lay, cached)
        if isinstance(body.get("diagnostics"), Mapping):  # opting in: compare, and be compared with
            previous_id = body["diagnostics"].get("previous_message_id")
            previous = self._history.get(previous_id) if previous_id else None
            found = diagnose(previous, fingerprint) if previous_id else None
            message["diagnostics"] = found
            self._history.add(message_id, fingerprint)
        return _Result(message, outcome)

    def _cache(
        self, lay: Layout, points: list[Breakpoint], model: str, minimum: int, arrived: int | None
    ) -> Outcome:
        """Read the longest live prefix written before the request arrived, refresh what was hit,
        write at the breakpoints beyond."""
        positions = lay.positions
        with self._table.lock:
            ready = self.ticket()  # this response begins now
            seen = ready if arrived is None else arrived

            def readable(key: bytes) -> bool:
                entry = self._table.find(key)
                return entry is not None and entry.ready < seen

            found = plan(lay, points, minimum, readable)
            if found.hit >= 0:
                hit_keys = [positions[p.position].key for p in points if p.position < found.hit]
                self._table.refresh([*hit_keys, positions[found.hit].key])
            for point in found.writes:
                key = positions[point.position].key
                self._table.write(key, model, lay.tokens_at(point.position), point.ttl, ready)
        return Outcome(
            read=found.read,
            write_5m=found.write_5m,
            write_1h=found.write_1h,
            uncached=found.uncached,
            hit_path=positions[found.hit].path if found.hit >= 0 else None,
        )


def _least_tokens(messages: list[dict[str, Any]]) -> int:
    """A floor under the layout's estimate from list lengths alone: every block of a user turn
    costs at least `BLOCK_OVERHEAD` (an assistant turn's may be stripped thinking, so none count)."""
    blocks = sum(
        len(m["content"]) if isinstance(m["content"], list) else 1 for m in messages if m["role"] == "user"
    )
    return blocks * BLOCK_OVERHEAD


def _checked_step(seconds: float, offset: float) -> float:
    """`seconds` as a float once it is a number in range; compared before any conversion, so a
    huge integer is refused rather than overflowing."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise ValueError(f"seconds must be a number, not {type(seconds).__name__}")
    if isinstance(seconds, float) and not math.isfinite(seconds):
        raise ValueError(f"seconds must be a finite number, not {seconds!r}")
    if seconds < 0:
        raise ValueError("time only moves forward: seconds must be >= 0")
    if seconds > MAX_ADVANCE_S:
        raise ValueError(f"seconds must be at most {MAX_ADVANCE_S:,} (10 years) per advance")
    if offset + seconds > MAX_OFFSET_S:
        raise ValueError(f"the clock may move at most {MAX_OFFSET_S:,} seconds (100 years) until reset")
    return float(seconds)
