"""Place cache breakpoints automatically, from what the session has sent so far.

One marker on the last message (claudette's strategy) or the API's automatic caching
write the whole prompt on every call and can only read the previous call's entry: a
document shared by questions that do not extend each other is never read, an entry more
than 20 blocks back is lost, and every pause longer than five minutes pays for a new write.

The planner relies on the billing rule that makes extra breakpoints free: a request pays
to write only up to its last breakpoint (1h up to the last 1h one, 5m after it), however
many sit in between.  So it spends the four slots on reading the deepest live entry, on
the prefixes earlier calls shared with this one, on structural boundaries (end of tools,
of system, of the earlier turns), and on the tail when conversations here tend to grow.
How far to write and which lifetime to give each segment is an expected-value choice per
token: the reuse a segment has seen (or, for new content, how often calls extend or share
prefixes), and the observed gaps between uses against the 5-minute and 1-hour lifetimes.

Pure: the cache state is replayed from the history with `cache.Ledger`, i.e. by the same
`rules.plan` rules the emulator applies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise
from typing import Any, Protocol

from ..core.digest import DigestMemo
from ..core.models import ModelInfo
from ..core.prefix import Layout, Position, layout
from ..core.rules import LOOKBACK, MAX_BREAKPOINTS, Breakpoint, CacheRuleError, resolve_breakpoints
from ..core.tokens import TokenEstimator
from ..core.ttl import TTL_SECONDS, TTLS
from .ledger import Ledger

__all__ = ["Planner", "Sent", "plan_breakpoints", "with_markers"]


class Sent(Protocol):
    """A request as it was sent, and when (`usage.CallRecord` is one)."""

    @property
    def started_at(self) -> float: ...

    @property
    def request(self) -> Mapping[str, Any]: ...


def _mark(block: Any, ttl: str | None) -> Any:
    """The block with marker `ttl` (or none); an unmarked block stays the same object (digest memos)."""
    if ttl is None and "cache_control" not in block:
        return block
    out = {k: v for k, v in block.items() if k != "cache_control"}
    if ttl is not None:
        out["cache_control"] = {"type": "ephemeral", "ttl": ttl}
    return out


def with_markers(params: Mapping[str, Any], marks: Mapping[str, str]) -> dict[str, Any]:
    """A copy of `params` whose only cache markers are `marks` (request path -> "5m"/"1h").

    The top-level automatic `cache_control` is dropped too; paths are those of `prefix.layout`.
    Blocks that need no change are shared with `params`, not copied: treat both as read-only.
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
    messages = []
    for m, message in enumerate(params.get("messages") or ()):
        content = message.get("content", "")
        if isinstance(content, str):
            ttl = marks.get(f"messages.{m}.content.0")
            content = [_mark({"type": "text", "text": content}, ttl)] if ttl else content
        else:
            content = [_mark(b, marks.get(f"messages.{m}.content.{j}")) for j, b in enumerate(content)]
        messages.append({**message, "content": content})
    out["messages"] = messages
    return out


def _gaps(times: Sequence[float], now: float) -> list[float]:
    points = [*times, now]
    return [b - a for a, b in pairwise(points)]


def _geometric(p: float, terms: int) -> float:
    """p + p^2 + ... + p^terms: expected uses of a chain that continues with probability p."""
    return sum(p**n for n in range(1, terms + 1))


def _ordered(points: Iterable[tuple[int, str]]) -> bool:
    """True when no 1h breakpoint follows a 5m one (the API's rule)."""
    seen_5m = False
    for _, ttl in sorted(points):
        seen_5m = seen_5m or ttl == "5m"
        if ttl == "1h" and seen_5m:
            return False
    return True


class Planner:
    """Breakpoints for one model's calls: `observe()` each request as sent, `plan()` the next.

    Incremental, so replaying a long session costs one layout per call; `plan_breakpoints`
    builds one from a history for the stateless case.  Explicit markers already on a request
    are kept with their lifetimes (`keep_explicit`), and the planner fills the free slots.
    """

    def __init__(
        self,
        info: ModelInfo,
        *,
        estimator: TokenEstimator | None = None,
        memo: DigestMemo | None = None,
        keep_explicit: bool = True,
    ) -> None:
        self.info = info
        self.keep_explicit = keep_explicit
        self._estimator = estimator or TokenEstimator()
        self._memo = memo
        self._ledger = Ledger()
        self._uses: dict[bytes, list[float]] = {}
        self._times: list[float] = []
        self._tail: bytes | None = None
        self._extended = 0
        self._shared = 0
        p = info.prices
        self._save = p.input - p.cache_read
        self._premium = {"5m": p.cache_write_5m - p.input, "1h": p.cache_write_1h - p.input}

    def _ours(self, params: Mapping[str, Any]) -> bool:
        return str(params.get("model")) in (self.info.id, *self.info.aliases)

    def observe(self, params: Mapping[str, Any], at: float) -> None:
        """Record a request as it was sent: its writes and reads, and how it relates to earlier ones."""
        if not self._ours(params):
            return
        lay = layout(params, self._estimator, memo=self._memo, model=self.info.id)
        try:
            points = resolve_breakpoints(lay, params.get("cache_control"))
        except CacheRuleError:  # the API rejects such a request: it cached nothing
            points = []
        outcome = self._ledger.plan(lay, points, self.info, at)
        self._ledger.record(lay, points, self.info, at, outcome.read)
        extends, shares = self._relation(lay)
        self._extended += extends
        self._shared += shares
        for position in lay.positions:
            self._uses.setdefault(position.key, []).append(at)
        self._times.append(at)
        self._tail = lay.positions[-1].key if lay.positions else None

    def _relation(self, lay: Layout) -> tuple[bool, bool]:
        """Does this request extend the previous one, and share a cacheable prefix with any earlier?"""
        extends = self._tail is not None and any(p.key == self._tail for p in lay.positions)
        seen = [p for p in lay.positions if p.key in self._uses]
        return extends, bool(seen) and seen[-1].cumulative >= self.info.min_cache_tokens

    def plan(self, params: Mapping[str, Any], now: float | None = None) -> dict[str, Any]:
        """`params` with the planner's breakpoints (and any kept explicit ones) for a call at `now`."""
        now = self._times[-1] if now is None and self._times else (now or 0.0)
        lay = layout(params, self._estimator, memo=self._memo, model=self.info.id)
        try:
            pinned = resolve_breakpoints(lay, None) if self.keep_explicit else []
        except CacheRuleError:  # the caller's own markers break a rule: leave them for pre-flight to report
            return dict(params)
        positions = lay.positions
        hit = max((p.index for p in positions if self._ledger.live(p.key, now)), default=-1)
        taken = {b.position for b in pinned}
        candidates = [
            p
            for p in positions
            if p.index > hit and p.cacheable and p.cumulative >= self.info.min_cache_tokens
            if p.index not in taken
        ]
        slots = MAX_BREAKPOINTS - len(pinned) - (1 if hit >= 0 else 0)
        chosen = self._choose(lay, candidates, hit, max(0, slots))
        points = self._decide(lay, chosen, pinned, hit, now, self._relation(lay))
        return with_markers(params, {positions[b.position].path: b.ttl for b in points})

    def _choose(self, lay: Layout, candidates: list[Position], hit: int, slots: int) -> list[Position]:
        """Up to `slots` write candidates: the tail, where earlier calls branched off, boundaries."""
        if not candidates or slots == 0:
            return []
        positions = lay.positions
        index = {p.index: p for p in candidates}

        def snap(i: int) -> Position | None:  # the nearest candidate at or before position i
            return next((index[j] for j in range(i, hit, -1) if j in index), None)

        uses = [len(self._uses.get(p.key, ())) for p in positions]
        branches = [
            i
            for i in range(len(positions) - 1, hit, -1)
            if uses[i] and (i + 1 == len(uses) or uses[i + 1] < uses[i])
        ]
        last_message = positions[-1].message
        boundaries = [
            max(
                (p.index for p in positions if p.message is not None and p.message < (last_message or 0)),
                default=-1,
            ),
            len(positions) - 2,
            max((p.index for p in positions if p.level == "system"), default=-1),
            max((p.index for p in positions if p.level == "tools"), default=-1),
        ]
        order: list[Position] = [candidates[-1]]
        for i in [*branches, *sorted(boundaries, reverse=True)]:
            found = snap(i) if i > hit else None
            if found is not None and found not in order:
                order.append(found)
        return sorted(order[:slots], key=lambda p: p.index)

    def _future(
        self, lay: Layout, position: Position, now: float, current: tuple[bool, bool]
    ) -> tuple[float, list[float]]:
        """Expected later uses of this prefix, and the gaps that tell whether an entry survives them.

        Seen before: as many uses again as so far, at the gaps seen so far.  New: a chain that
        goes on with the (smoothed) share of calls that extended the previous one (the tail)
        or shared a cacheable prefix with an earlier one (any other block).
        """
        uses = self._uses.get(position.key)
        if uses:
            return float(len(uses)), _gaps(uses, now)
        calls = len(self._times)
        extended, shared = self._extended + current[0], self._shared + current[1]
        if position.index == max((p.index for p in lay.positions if p.cacheable), default=-1):
            chance = (extended + 1) / (calls + 2)
        else:
            chance = (max(extended, shared) + 1) / (calls + 2)
        return _geometric(chance, max(1, calls)), _gaps(self._times, now) if self._times else []

    def _gain(self, uses: float, gaps: Sequence[float], ttl: str) -> float:
        """Saving per token of writing now with `ttl` rather than not caching, over the expected uses.

        Each use finds the entry alive (gap within the lifetime, since hits refresh it): a read
        instead of input; or dead: written again, paying the premium again.
        """
        alive = sum(g <= TTL_SECONDS[ttl] for g in gaps) / len(gaps) if gaps else 1.0
        premium = self._premium[ttl]
        return -premium + uses * (alive * self._save - (1 - alive) * premium)

    def _decide(
        self,
        lay: Layout,
        chosen: list[Position],
        pinned: list[Breakpoint],
        hit: int,
        now: float,
        current: tuple[bool, bool],
    ) -> list[Breakpoint]:
        """How far to write and where 1h ends: the best (cut, 1h count) by expected gain."""
        positions = lay.positions
        fixed = {b.position: b.ttl for b in pinned}
        writes = sorted(
            [*chosen, *(positions[b.position] for b in pinned if b.position > hit)],
            key=lambda p: p.index,
        )
        last_fixed = max((i for i, p in enumerate(writes) if p.index in fixed), default=-1)
        gains = {
            p.index: {ttl: self._gain(*self._future(lay, p, now, current), ttl) for ttl in TTLS}
            for p in writes
        }
        best: tuple[float, list[tuple[int, str]]] | None = None
        for cut in range(last_fixed + 1, len(writes) + 1):
            for hours in range(cut + 1):
                ttls = [fixed.get(p.index, "1h" if k < hours else "5m") for k, p in enumerate(writes[:cut])]
                points: list[tuple[int, str]] = [
                    (p.index, t) for p, t in zip(writes[:cut], ttls, strict=True)
                ]
                points += [(b.position, b.ttl) for b in pinned if b.position <= hit]
                if hit >= 0 and not any(0 <= i - hit < LOOKBACK for i, _ in points):
                    points.append((hit, "1h" if "1h" in ttls else "5m"))
                if not _ordered(points) or len(points) > MAX_BREAKPOINTS:
                    continue
                value, floor = 0.0, lay.tokens_at(hit)
                for p, ttl in zip(writes[:cut], ttls, strict=True):
                    if p.cumulative >= self.info.min_cache_tokens:
                        value += (p.cumulative - floor) * gains[p.index][ttl]
                        floor = p.cumulative
                if best is None or value > best[0] + 1e-9:
                    best = (value, points)
        chosen_points = best[1] if best is not None else [(b.position, b.ttl) for b in pinned]
        return [Breakpoint(i, "1h" if t == "1h" else "5m") for i, t in sorted(set(chosen_points))]


def plan_breakpoints(
    params: Mapping[str, Any],
    history: Iterable[Sent],
    info: ModelInfo,
    *,
    now: float | None = None,
    estimator: TokenEstimator | None = None,
    memo: DigestMemo | None = None,
    keep_explicit: bool = True,
) -> dict[str, Any]:
    """`params` with up to 4 breakpoints chosen from the session's `history` (requests as sent).

    `info` is the model of `params`; calls to other models are ignored (their caches are
    separate).  `now` is the time of this call on the same clock as `started_at` (default:
    right after the last call).  Failed calls in the history (`ok` false) are skipped.  A session
    passes its own `estimator` and `memo` so that re-reading its history costs lookups, not hashing.
    """
    planner = Planner(info, estimator=estimator, memo=memo, keep_explicit=keep_explicit)
    for sent in history:
        if getattr(sent, "ok", True):
            planner.observe(sent.request, sent.started_at)
    return planner.plan(params, now)
