"""The cache's rules on a laid-out request: where its breakpoints are, what it reads and writes.

`resolve_breakpoints` applies the placement rules (explicit markers, the top-level
automatic one, at most four, 1h before 5m) and words a broken one as the API does;
`plan` applies the read, write and billing rules to a request's positions (`prefix`)
given which cache entries are live.  The emulator answers by them and the session
predicts by them, so a prediction and its outcome cannot disagree on a rule.  Pure.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .prefix import Layout
from .ttl import TTL

__all__ = [
    "LOOKBACK",
    "MAX_BREAKPOINTS",
    "Breakpoint",
    "CacheRuleError",
    "Plan",
    "lookback_window",
    "plan",
    "resolve_breakpoints",
]

#: Most blocks with `cache_control` in one request.
MAX_BREAKPOINTS = 4
#: Positions checked per breakpoint when looking back for an earlier write (itself included).
LOOKBACK = 20


class CacheRuleError(ValueError):
    """A request that breaks a cache rule; the message is the API's own wording."""


@dataclass(frozen=True, slots=True)
class Breakpoint:
    """A position where the request asks for a cache write, with its lifetime."""

    position: int
    ttl: TTL
    automatic: bool = False


_POSITION = operator.attrgetter("position")


def resolve_breakpoints(lay: Layout, automatic: Mapping[str, Any] | None = None) -> list[Breakpoint]:
    """The request's breakpoints in prefix order, or CacheRuleError as the API words it.

    `automatic` is the request's top-level `cache_control`: one breakpoint on
    the last block that can carry one (walking back past those that cannot).
    """
    positions = lay.positions
    points = [Breakpoint(p.index, p.marker) for p in map(positions.__getitem__, lay.markers()) if p.marker]
    if automatic is not None:
        ttl: TTL = "1h" if automatic.get("ttl") == "1h" else "5m"
        target = next((p for p in reversed(lay.positions) if p.cacheable), None)
        if target is not None:
            if target.marker is None:
                points.append(Breakpoint(target.index, ttl, automatic=True))
            elif target.marker != ttl:
                raise CacheRuleError(
                    f"{target.path}: automatic cache_control (ttl {ttl}) conflicts with the "
                    f"block's own cache_control (ttl {target.marker})."
                )
    if len(points) > MAX_BREAKPOINTS:
        raise CacheRuleError(
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {len(points)}."
        )
    points.sort(key=_POSITION)
    seen_5m = False
    for point in points:
        if point.ttl == "5m":
            seen_5m = True
        elif seen_5m:
            # The API's words, from the 1h marker's field on (automatic caching's: the top-level one).
            field = "cache_control" if point.automatic else f"{positions[point.position].path}.cache_control"
            raise CacheRuleError(
                f"{field}.ttl: a ttl='1h' cache_control block must not come after a ttl='5m' "
                "cache_control block. Note that blocks are processed in the following order: "
                "`tools`, `system`, `messages`."
            )
    return points


def lookback_window(position: int) -> Sequence[int]:
    """Positions searched for an earlier write from a breakpoint at `position`, nearest first."""
    return range(position, max(-1, position - LOOKBACK), -1)


@dataclass(frozen=True, slots=True)
class Plan:
    """What one request reads and writes, and how its input tokens are billed."""

    hit: int
    writes: tuple[Breakpoint, ...]
    read: int
    write_5m: int
    write_1h: int
    uncached: int

    @property
    def written(self) -> int:
        return self.write_5m + self.write_1h


def plan(lay: Layout, points: Sequence[Breakpoint], minimum: int, is_live: Callable[[bytes], bool]) -> Plan:
    """Apply the read, write and billing rules to one request.

    Reads: from each breakpoint, walk back at most LOOKBACK positions to the
    nearest live entry; the highest such position A is read.  Writes: every
    breakpoint after A whose prefix reaches the model's `minimum` (below it the
    request is processed uncached, silently).  Billing with mixed TTLs: read A,
    write up to the last 1h breakpoint B at the 1h rate, then up to the last
    breakpoint C at the 5m rate; `input_tokens` is what follows.
    """
    positions = lay.positions
    hit = -1
    for point in points:
        for j in lookback_window(point.position):
            if j <= hit:
                break
            if is_live(positions[j].key):
                hit = j
                break
    read = lay.tokens_at(hit)
    writes = tuple(p for p in points if p.position > hit and lay.tokens_at(p.position) >= minimum)
    one_hour = [p for p in writes if p.ttl == "1h"]
    top_1h = lay.tokens_at(one_hour[-1].position) if one_hour else read
    last = lay.tokens_at(writes[-1].position) if writes else read
    return Plan(hit, writes, read, last - top_1h, top_1h - read, lay.total_tokens - last)
