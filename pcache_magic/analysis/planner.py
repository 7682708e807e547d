"""Place cache breakpoints automatically, from what the session has sent so far (`--cache auto`).

The planner cannot see the future, so it hedges.  It learns the session's rhythm (`rhythm`):
the gaps between calls, which blocks change and how often, which prefixes come back.  It
prices each candidate breakpoint by the reads it can expect against what the write costs,
at the model's own rates (`breakeven`), which also chooses 5m or 1h: one hour when the gaps
seen make five-minute entries die before they are read; and, per prefix, from the write after
the one that replaced a 5m entry lost to a gap a 1h entry would have lived through (ski rental:
once a rental has been lost, the hour is bought, where the recent gaps alone would keep renting);
and a 1h write on a short tail after a 5m entry read, which buys the whole prefix an hour for the
price of the tail (the engine bills a write only past the entry read).
It then spends the four slots (`placement`) on reading the deepest live entry, on keeping
live entries at the ends of stable blocks alive (free, since they are read: a fallback when an
edited cell, a re-run or a restart changes what follows), and on writes that end where the
chance of reuse drops.
A write the history says will not be read is not placed.  The user's own markers are kept
as written.  Each marker comes with a one-line reason (`Planner.decide`).

Pure: the cache state is replayed from the requests with `rules.plan`, the emulator's rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from ..core.digest import DigestMemo
from ..core.models import ModelInfo
from ..core.prefix import Layout, layout
from ..core.rules import Breakpoint, CacheRuleError, plan, resolve_breakpoints
from ..core.tokens import TokenEstimator
from ..core.ttl import TTL, TTL_SECONDS
from .breakeven import Rates
from .decision import OUTLIVE, Cache, choose
from .markers import Decision, Marker, with_markers
from .rhythm import Prior, Rhythm

__all__ = ["Decision", "Marker", "Planner", "Prior", "Sent", "plan_breakpoints", "with_markers"]


class Sent(Protocol):
    """A request as it was sent, and when (`usage.CallRecord` is one)."""

    @property
    def started_at(self) -> float: ...

    @property
    def request(self) -> Mapping[str, Any]: ...


class Planner:
    """Breakpoints for one model's calls: `observe()` every request as sent, `decide()`/`plan()` the next.

    Incremental: each call costs one layout (reusing the previous one) and a pass over its
    blocks.  Every call of the session should be observed, other models' too (they teach the
    rhythm; only this model's calls fill its cache).  Explicit markers already on a request are
    kept with their lifetimes (`keep_explicit`) and the planner fills the free slots.
    """

    def __init__(
        self,
        info: ModelInfo,
        *,
        estimator: TokenEstimator | None = None,
        memo: DigestMemo | None = None,
        keep_explicit: bool = True,
        prior: Prior | None = None,
    ) -> None:
        self.info = info
        self.keep_explicit = keep_explicit
        self._estimator = estimator or TokenEstimator()
        self._memo = memo
        self._rates = Rates.of(info.prices)
        self._rhythm = Rhythm(prior)
        self._entries: dict[bytes, tuple[TTL, float]] = {}
        self._outlived: dict[bytes, float] = {}
        """Prefix key -> when it came back after its 5m entry died of a gap 1h would have outlived."""
        self._previous: Layout | None = None
        self._planned: tuple[Mapping[str, Any], Layout, list[Breakpoint]] | None = None
        self.last: Decision | None = None
        """The last decision, with a reason per marker."""

    def _ours(self, params: Mapping[str, Any]) -> bool:
        return str(params.get("model")) in (self.info.id, *self.info.aliases)

    def _live(self, key: bytes, now: float) -> bool:
        entry = self._entries.get(key)
        return entry is not None and entry[1] > now

    # -- learning ------------------------------------------------------------------------------
    def observe(self, params: Mapping[str, Any], at: float) -> None:
        """Record a request as it was sent: what it read and wrote, and what it says about the rhythm."""
        own = self._ours(params)
        kept, self._planned = self._planned, None
        if own and kept is not None and kept[0] is params:
            lay, points = kept[1], kept[2]
        else:
            model = self.info.id if own else str(params.get("model"))
            lay = layout(params, self._estimator, memo=self._memo, model=model, previous=self._previous)
            try:
                points = resolve_breakpoints(lay, params.get("cache_control"))
            except CacheRuleError:  # the API rejects such a request: it cached nothing
                points = []
        if own:
            self._record(lay, points, at)
            self._previous = lay
        self._rhythm.observe(lay, at, own)

    def _record(self, lay: Layout, points: list[Breakpoint], at: float) -> None:
        """The emulator's bookkeeping for one call: refresh what it read, remember what it wrote."""
        positions = lay.positions
        entries = self._entries
        outcome = plan(lay, points, self.info.min_cache_tokens, lambda key: self._live(key, at))
        # A 5m entry that a 1h one would have kept, for a prefix this call missed (one it read past
        # lost nothing): next time this prefix is 1h.
        for p in positions[outcome.hit + 1 :]:
            entry = entries.get(p.key)
            if entry is not None and entry[0] == "5m" and entry[1] <= at < entry[1] + OUTLIVE:
                self._outlived[p.key] = at
        if outcome.hit >= 0:
            for index in [b.position for b in points if b.position < outcome.hit] + [outcome.hit]:
                key = positions[index].key
                entry = self._entries.get(key)
                if entry is not None and entry[1] > at:
                    self._entries[key] = (entry[0], at + TTL_SECONDS[entry[0]])
        for point in outcome.writes:
            self._entries[positions[point.position].key] = (point.ttl, at + TTL_SECONDS[point.ttl])
        if len(self._entries) > 4 * len(positions) + 64:
            self._entries = {k: e for k, e in self._entries.items() if e[1] > at}
            self._outlived = {
                k: t for k, t in self._outlived.items() if k in self._entries or at - t < OUTLIVE
            }

    # -- planning ------------------------------------------------------------------------------
    def plan(self, params: Mapping[str, Any], now: float | None = None) -> dict[str, Any]:
        """`params` with the planner's breakpoints (and any kept explicit ones) for a call at `now`."""
        return self.decide(params, now).params

    def decide(self, params: Mapping[str, Any], now: float | None = None) -> Decision:
        """The planned request and its markers, each with the reason it was placed."""
        last = self._rhythm.last_own
        now = (last if last is not None else 0.0) if now is None else now
        lay = layout(params, self._estimator, memo=self._memo, model=self.info.id, previous=self._previous)
        self._previous = lay
        try:
            pinned = resolve_breakpoints(lay, None) if self.keep_explicit else []
        except CacheRuleError:  # the caller's own markers break a rule: leave them for pre-flight to report
            self.last = Decision(dict(params))
            return self.last
        state = Cache(self._rhythm, self._rates, self._entries, self.info.min_cache_tokens, self._outlived)
        markers = choose(state, lay, {b.position: b.ttl for b in pinned}, now)
        out = with_markers(params, {lay.positions[i].path: m.ttl for i, m in markers})
        self._planned = (out, lay, [Breakpoint(i, m.ttl) for i, m in markers])
        self.last = Decision(out, tuple(m for _, m in markers))
        return self.last


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

    `info` is the model of `params`; calls to other models teach the rhythm only (their caches
    are separate).  `now` is the time of this call on the same clock as `started_at` (default:
    right after the last call).  Failed calls in the history (`ok` false) are skipped.  A session
    passes its own `estimator` and `memo` so that re-reading its history costs lookups, not hashing.
    """
    planner = Planner(info, estimator=estimator, memo=memo, keep_explicit=keep_explicit)
    for sent in history:
        if getattr(sent, "ok", True):
            planner.observe(sent.request, sent.started_at)
    return planner.plan(params, now)
