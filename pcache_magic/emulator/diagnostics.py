"""Cache diagnostics as the API reports them: the earliest divergence from a previous request.

A request opts in with `diagnostics: {"previous_message_id": ...}`; the
answer's `diagnostics.cache_miss_reason` names the first level that changed
(model, tools, system, messages) with an estimate of the cache tokens that
were missed, or `unavailable` when only settings such as `tool_choice` or
`thinking` differ.  `null` means nothing diverged (or a first turn).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..core.digest import block_digest
from ..core.prefix import Layout

__all__ = ["Fingerprint", "History", "diagnose"]


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

        def level_key(level: str) -> bytes:
            last = [p.key for p in lay.positions if p.level == level]
            return last[-1] if last else b""

        # Markers move from turn to turn; block digests ignore them, so the comparison does too.
        roles = [str(m.get("role")) for m in params.get("messages") or ()]
        parts: list[list[bytes]] = [[r.encode()] for r in roles]
        for p in lay.positions:
            if p.message is not None:
                parts[p.message].append(p.digest)
        messages = tuple(hashlib.sha256(b"".join(part)).digest() for part in parts)
        settings = block_digest(
            {"tool_choice": params.get("tool_choice"), "thinking": params.get("thinking")}
        )
        return cls(
            workspace,
            model,
            level_key("tools"),
            level_key("system"),
            messages,
            settings,
            tuple(p.key[:16] for p in lay.positions),
            tuple(p.cumulative for p in lay.positions),
            cached_tokens,
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
    """Fingerprints of recent responses by message id, bounded (oldest dropped first)."""

    def __init__(self, limit: int = 2_000) -> None:
        self._items: OrderedDict[str, Fingerprint] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def add(self, message_id: str, fingerprint: Fingerprint) -> None:
        with self._lock:
            self._items[message_id] = fingerprint
            while len(self._items) > self._limit:
                self._items.popitem(last=False)

    def get(self, message_id: str) -> Fingerprint | None:
        with self._lock:
            return self._items.get(message_id)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


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
