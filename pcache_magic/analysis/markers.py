"""A request's cache markers rewritten, and the planner's markers with the reason for each.

`with_markers` is how every strategy (the planner, the what-if baselines) puts its markers on
a request without copying what it does not change; `Marker` and `Decision` are what the
planner hands back so that a view can show, marker by marker, why it sits where it does.  Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..core.ttl import TTL

__all__ = ["Decision", "Marker", "Role", "with_markers"]

#: yours: the user's own marker, kept; read: reads the entry the lookback would miss;
#: keep: refreshes a live entry (a fallback); write: ends a write.
Role = Literal["yours", "read", "keep", "write"]


@dataclass(frozen=True, slots=True)
class Marker:
    """One placed marker: where, how long, what for, and why (one line, for a view)."""

    path: str
    ttl: TTL
    role: Role
    tokens: int
    """Prefix tokens up to and including the marked block."""
    reason: str


@dataclass(frozen=True, slots=True)
class Decision:
    """A planned request and its markers in request order."""

    params: dict[str, Any]
    markers: tuple[Marker, ...] = ()

    def reasons(self) -> dict[str, str]:
        """Request path -> reason, for a view that names blocks by path."""
        return {m.path: m.reason for m in self.markers}


def _mark(block: Any, ttl: str | None) -> Any:
    """The block with marker `ttl` (or none); an unmarked block stays the same object (digest memos)."""
    if ttl is None and "cache_control" not in block:
        return block
    out = {k: v for k, v in block.items() if k != "cache_control"}
    if ttl is not None:
        out["cache_control"] = {"type": "ephemeral", "ttl": ttl}
    return out


def _marked(content: list[Any]) -> bool:
    return any(isinstance(block, dict) and "cache_control" in block for block in content)


def with_markers(params: Mapping[str, Any], marks: Mapping[str, str]) -> dict[str, Any]:
    """A copy of `params` whose only cache markers are `marks` (request path -> "5m"/"1h").

    The top-level automatic `cache_control` is dropped too; paths are those of `prefix.layout`.
    Blocks and messages that need no change are shared with `params`, not copied: treat both
    as read-only.
    """
    out = {k: v for k, v in params.items() if k != "cache_control"}
    if params.get("tools"):
        out["tools"] = [_mark(t, marks.get(f"tools.{i}")) for i, t in enumerate(params["tools"])]
    system = params.get("system")
    if isinstance(system, str):
        if system and "system.0" in marks:
            out["system"] = [_mark({"type": "text", "text": system}, marks["system.0"])]
    elif system:
        out["system"] = [_mark(b, marks.get(f"system.{i}")) for i, b in enumerate(system)]
    wanted: dict[int, dict[int, str]] = {}
    for path, ttl in marks.items():
        parts = path.split(".")
        if parts[0] == "messages" and len(parts) == 4:
            wanted.setdefault(int(parts[1]), {})[int(parts[3])] = ttl
    messages = []
    for m, message in enumerate(params.get("messages") or ()):
        content = message.get("content", "")
        here = wanted.get(m)
        if isinstance(content, str):
            if here and 0 in here:
                message = {**message, "content": [_mark({"type": "text", "text": content}, here[0])]}
        elif here or _marked(content):
            here = here or {}
            message = {**message, "content": [_mark(b, here.get(j)) for j, b in enumerate(content)]}
        messages.append(message)
    out["messages"] = messages
    return out
