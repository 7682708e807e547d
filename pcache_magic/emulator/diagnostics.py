"""Cache diagnostics as the API reports them: the earliest divergence from a previous request.

A request opts in with `diagnostics: {"previous_message_id": ...}`; the
answer's `diagnostics.cache_miss_reason` names the first level that changed
(model, tools, system, messages) with an estimate of the cache tokens that
were missed, or `unavailable` when model, tools and system match but a setting
of the invalidation table (`core.cache_settings`: `tool_choice`, thinking, effort,
speed, citations, web search, images) differs, as the docs say.  Levels are
compared by their blocks, not their salted keys, so a setting is never
reported as `system_changed`.  `null` means nothing diverged (or a first turn).
"""

from __future__ import annotations

import hashlib
import sys
import threading
from array import array
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..core.cache_settings import default_settings
from ..core.digest import block_digest
from ..core.prefix import Layout

__all__ = ["DEFAULT_HISTORY_BYTES", "Fingerprint", "History", "diagnose"]

#: What the diagnostics history may hold, in bytes: one fingerprint grows with the request's
#: block count (about 52 bytes a block), so a count of fingerprints would not bound memory.
#: 16 MB keeps the last few hundred answers of a thousand-block conversation; a request names
#: the previous answer of its own conversation, the last or nearly the last one kept.
DEFAULT_HISTORY_BYTES = 16 * 2**20
#: Bytes of each position's key kept (the keys chain the whole prefix before them).
_KEY = 16


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What a later request is compared against: per-level digests and the cached extent.

    Packed, since the history keeps hundreds of them: the messages' digests and the positions'
    keys are one bytes object each (32 and 16 bytes an item), the running token counts one
    array of 32-bit counts, rather than a Python object per item (three times the memory).
    """

    workspace: bytes
    model: str
    tools: bytes
    system: bytes
    messages: bytes
    """Each message's 32-byte digest (its role and its blocks), one after the other."""
    settings: bytes
    keys: bytes
    """Each position's key, its first 16 bytes, one after the other."""
    cumulative: array[int]
    cached_tokens: int

    @classmethod
    def of(
        cls, workspace: bytes, model: str, params: Mapping[str, Any], lay: Layout, cached_tokens: int
    ) -> Fingerprint:
        """`params` as sent for `model` (its canonical id: an alias is not a change of model)."""

        table = default_settings()

        def level_digest(level: str) -> bytes:
            return hashlib.sha256(b"".join(p.digest for p in lay.positions if p.level == level)).digest()

        # Deferred tools and web search are no tools-level key: adding them is not a tools change.
        tool_positions = [p for p in lay.positions if p.level == "tools"]
        tools = [
            p.digest
            for p, t in zip(tool_positions, params.get("tools") or (), strict=True)
            if table.tool_role(t) == "prefix"
        ]

        # Markers move from turn to turn; block digests ignore them, so the comparison does too.
        roles = [str(m.get("role")) for m in params.get("messages") or ()]
        parts: list[list[bytes]] = [[r.encode()] for r in roles]
        for p in lay.positions:
            if p.message is not None:
                parts[p.message].append(p.digest)
        messages = b"".join(hashlib.sha256(b"".join(part)).digest() for part in parts)
        settings = block_digest(table.diagnosed(params, lay.counts()))
        return cls(
            workspace,
            model,
            hashlib.sha256(b"".join(tools)).digest(),
            level_digest("system"),
            messages,
            settings,
            b"".join(p.key[:_KEY] for p in lay.positions),
            array("I", [p.cumulative for p in lay.positions]),
            cached_tokens,
        )

    @property
    def nbytes(self) -> int:
        """Its memory: the packed digests, keys and counts, and the few fixed fields."""
        return (
            sys.getsizeof(self)
            + 4 * (sys.getsizeof(b"") + 32)
            + sys.getsizeof(self.model)
            + sys.getsizeof(self.keys)
            + sys.getsizeof(self.cumulative)
            + sys.getsizeof(self.messages)
        )

    def common_tokens(self, other: Fingerprint) -> int:
        """Tokens of the longest prefix the two requests share."""
        mine, theirs = memoryview(self.keys), memoryview(other.keys)
        # The longest run of equal leading keys, found by halves (equal prefixes are nested).
        low, high = 0, min(len(mine), len(theirs)) // _KEY  # `low` keys are equal; `high` may be
        while low < high:
            mid = (low + high + 1) // 2
            if mine[: mid * _KEY] == theirs[: mid * _KEY]:
                low = mid
            else:
                high = mid - 1
        return self.cumulative[low - 1] if low else 0


class History:
    """Fingerprints of recent responses by message id, at most `max_bytes` of them (oldest go first).

    A fingerprint larger than the whole budget is not kept: a later request naming it gets
    `previous_message_not_found`, as it would once the entry had aged out.
    """

    def __init__(self, max_bytes: int = DEFAULT_HISTORY_BYTES) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        self._items: OrderedDict[str, tuple[Fingerprint, int]] = OrderedDict()
        self._max = max_bytes
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Estimated bytes held now (never above `max_bytes`)."""
        with self._lock:
            return self._bytes

    def add(self, message_id: str, fingerprint: Fingerprint) -> None:
        size = fingerprint.nbytes
        with self._lock:
            old = self._items.pop(message_id, None)
            if old is not None:
                self._bytes -= old[1]
            if size > self._max:
                return
            self._items[message_id] = (fingerprint, size)
            self._bytes += size
            while self._bytes > self._max:
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped

    def get(self, message_id: str) -> Fingerprint | None:
        with self._lock:
            found = self._items.get(message_id)
            return found[0] if found is not None else None

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def diagnose(previous: Fingerprint | None, current: Fingerprint) -> dict[str, Any] | None:
    """The `diagnostics` object of a response, or None when nothing diverged."""
    if previous is None or previous.workspace != current.workspace:
        return {"cache_miss_reason": {"type": "previous_message_not_found"}}
    missed = max(0, previous.cached_tokens - previous.common_tokens(current))
    for level in ("model", "tools", "system"):
        if getattr(previous, level) != getattr(current, level):
            reason = {"type": f"{level}_changed", "cache_missed_input_tokens": missed}
            return {"cache_miss_reason": reason}
    if previous.settings != current.settings:
        return {"cache_miss_reason": {"type": "unavailable"}}
    if not current.messages.startswith(previous.messages):
        reason = {"type": "messages_changed", "cache_missed_input_tokens": missed}
        return {"cache_miss_reason": reason}
    return None
