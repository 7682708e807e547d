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
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..core.cache_settings import default_settings
from ..core.digest import block_digest
from ..core.prefix import Layout

__all__ = ["DEFAULT_HISTORY_BYTES", "Fingerprint", "History", "diagnose"]

#: What the diagnostics history may hold, in (estimated) bytes: one fingerprint grows with the
#: request's block count, so a count of fingerprints would not bound memory.
DEFAULT_HISTORY_BYTES = 64 * 2**20


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What a later request is compared against: per-level digests and the cached extent."""

    workspace: bytes
    model: str
    tools: bytes
    system: bytes
    messages: tuple[bytes, ...]
    settings: bytes
    keys: tuple[bytes, ...]
    cumulative: tuple[int, ...]
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
        messages = tuple(hashlib.sha256(b"".join(part)).digest() for part in parts)
        settings = block_digest(table.diagnosed(params, lay.counts()))
        return cls(
            workspace,
            model,
            hashlib.sha256(b"".join(tools)).digest(),
            level_digest("system"),
            messages,
            settings,
            tuple(p.key[:16] for p in lay.positions),
            tuple(p.cumulative for p in lay.positions),
            cached_tokens,
        )

    @property
    def nbytes(self) -> int:
        """Estimated memory: per position a 16-byte key and a count, per message a digest."""
        per_item = sys.getsizeof(b"") + 32 + 8  # a bytes object of up to 32 bytes plus its tuple slot
        return (
            sys.getsizeof(self)
            + 3 * (sys.getsizeof(b"") + 32)
            + len(self.model)
            + len(self.keys) * per_item
            + len(self.cumulative) * (sys.getsizeof(2**40) + 8)
            + len(self.messages) * per_item
        )

    def common_tokens(self, other: Fingerprint) -> int:
        """Tokens of the longest prefix the two requests share."""
        shared = 0
        for mine, theirs, tokens in zip(self.keys, other.keys, self.cumulative, strict=False):
            if mine != theirs:
                break
            shared = tokens
        return shared


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
    n = len(previous.messages)
    if current.messages[:n] != previous.messages:
        reason = {"type": "messages_changed", "cache_missed_input_tokens": missed}
        return {"cache_miss_reason": reason}
    return None
