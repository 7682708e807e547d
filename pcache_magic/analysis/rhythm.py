"""A session's rhythm, learned from the calls it sent: how far apart they come, what changes, how often.

The planner cannot see the future, so it estimates two things per prefix from the past:
will the next call send this prefix again (`reuse`), and will it come within 5 minutes or
within an hour (`alive`).  Both start from priors for a notebook session and move with the
evidence:

- Gaps: the gaps between this model's calls (and, with less weight, between any calls of
  the session), recent ones weighing more, plus the gap that has just passed.
- Blocks: each request path (`system.0`, `messages.0.content.1`, ...) keeps how often its
  block changed or went away from one of this model's calls to the next, counted up to the first change only
  (that change ended the shared prefix; a chat cut back is one event, not one per block),
  older calls counting less.  A block seen for the first time, or just changed, borrows the
  rate of its kind (level, role, and whether it ends the request: a question that is never
  sent again shows up there).  The chance that the next call keeps a whole prefix is the
  product over its blocks, times the chance there is a next call at all (which grows with
  the calls seen so far).
- Recurring prefixes: one that comes back after calls without it (two documents in turn)
  is judged by its own uses and the gaps between them.
Pure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

from ..core.prefix import Layout, Position
from ..core.ttl import TTL, TTL_SECONDS, TTLS

__all__ = ["Prior", "Rhythm", "Uses"]

_FIVE_MINUTES, _HOUR = TTL_SECONDS["5m"], TTL_SECONDS["1h"]
#: Gaps looked at: older ones weigh under 1% after the decay.
_RECENT = 64
# (level, role, fresh, fresh and the request's last block); fresh: new or changed at this call.
_Kind = tuple[str, str, bool, bool]


@dataclass(frozen=True, slots=True)
class Prior:
    """What the planner assumes before it has seen a session (and how firmly, as pseudo-counts)."""

    alive: tuple[tuple[TTL, float], ...] = (("5m", 0.55), ("1h", 0.95))
    """Share of gaps between calls shorter than each lifetime.  People in a notebook read and
    think between questions: about half the gaps outlive five minutes.  So the first write of a
    large stable prefix is 1h, which, when wrong, costs 0.75 of its tokens once (a 1h write
    instead of a 5m one); 5m, when wrong, costs 1.15 (written again at 1h after the first gap)."""
    alive_weight: float = 2.0
    session_weight: float = 0.3
    """Weight of one gap between calls of other models, against one of this model's."""
    decay: float = 0.93
    """Weight kept by a gap per newer gap: the rhythm of the last few calls counts most."""
    prior_fade: float = 0.75
    """Weight the prior keeps per gap seen: a session's own rhythm soon speaks for itself."""
    recurring_weight: float = 0.5
    """Share of that weight the prior keeps against a recurring prefix's own gaps between uses.  Such
    a prefix skipped calls, so its gaps are not the think time between calls the prior describes: an
    eval item re-sent once 70 minutes later still counted a third of its next uses within 5m, and its
    tail was written at 5m again on every item, never read."""
    calls_ahead: float = 3.0
    """Pseudo-calls in the chance of another call: after n calls, (n + c) / (n + c + 1)."""
    change_fresh_last: float = 0.35
    """A new block that ends the request: often a question the next call does not repeat."""
    change_fresh: float = 0.05
    """A new block in the messages before that: context, an earlier turn."""
    change_fresh_top: float = 0.02
    """A new tool definition or system block: these rarely change."""
    change_kept: float = 0.02
    change_weight: float = 2.0
    path_weight: float = 1.0
    """Pseudo-observations of its kind's rate that a path's own record is blended with."""
    forget: float = 0.7
    """Weight a path's record keeps per newer call: a system prompt tweaked early, then left alone,
    soon counts as stable again."""

    def __post_init__(self) -> None:
        """ValueError for a number no chance can be made of: each is finite, the shares and rates
        within [0, 1], the weights the prior starts with above 0 (the chances divide by them)."""
        numbers = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "alive"}
        numbers.update((f"alive[{ttl}]", share) for ttl, share in self.alive)
        positive = ("alive_weight", "change_weight", "path_weight")
        for name, value in numbers.items():
            low, high = (
                (0.0, math.inf) if name in (*positive, "session_weight", "calls_ahead") else (0.0, 1.0)
            )
            if not (math.isfinite(value) and low <= value <= high) or (name in positive and value == 0):
                raise ValueError(
                    f"Prior.{name} must be a finite number in [{low:g}, {high:g}], not {value!r}."
                )


@dataclass(slots=True)
class _Slot:
    """One request path: its current block, and how often its block changed from call to call."""

    digest: bytes
    seen: float = 0.0
    changed: float = 0.0


@dataclass(slots=True)
class Uses:
    """A prefix's uses: how many, and the latest times (at least the `_RECENT + 1` that make the
    gaps looked at; keeping every time grew as calls times blocks: 8.7 MB at 1,000 calls of a
    growing chat, 1.9 MB now).  A list trimmed now and then: one time costs what it did."""

    count: int = 0
    times: list[float] = field(default_factory=list)

    def add(self, at: float) -> None:
        self.count += 1
        self.times.append(at)
        if len(self.times) > 2 * (_RECENT + 1):
            del self.times[: -(_RECENT + 1)]


class Rhythm:
    """Learns from every call of a session; answers for the calls of one model (`own`)."""

    def __init__(self, prior: Prior | None = None) -> None:
        self.prior = prior or Prior()
        self._gaps: list[tuple[float, float]] = []  # (gap, weight), oldest first
        self._last_any: float | None = None
        self._last_own: float | None = None
        self.own_calls = 0
        self._slots: dict[str, _Slot] = {}
        self._kinds: dict[_Kind, list[float]] = {}
        self._previous: list[tuple[str, _Kind]] = []
        self._uses: dict[bytes, Uses] = {}

    # -- learning ------------------------------------------------------------------------------
    def observe(self, lay: Layout, at: float, own: bool) -> None:
        """One call as sent (own: to this planner's model, whose prefix keys it remembers)."""
        if own:
            if self._last_own is not None:
                self._gaps.append((at - self._last_own, 1.0))
            elif self._last_any is not None:
                self._gaps.append((at - self._last_any, self.prior.session_weight))
            self._last_own = at
            self.own_calls += 1
            uses = self._uses
            for p in lay.positions:
                kept = uses.get(p.key)
                if kept is None:
                    kept = uses[p.key] = Uses()
                kept.add(at)
            # What changes is learned from this model's calls alone: a router's other model sends
            # its own prompt at the same paths, which would read as this one's changing every call.
            self._learn_blocks(lay)
        elif self._last_any is not None:
            self._gaps.append((at - self._last_any, self.prior.session_weight))
        self._last_any = at
        if len(self._gaps) > 2 * _RECENT:
            del self._gaps[:-_RECENT]

    def _learn_blocks(self, lay: Layout) -> None:
        """Count, for the previous call's blocks in order, which kept their place and which changed.

        Only up to the first change: that one ended the shared prefix, and what follows it was
        not tested (a conversation cut back changes all its later blocks in one event, not many).
        """
        current = {p.path: p.digest for p in lay.positions}
        slots, kinds = self._slots, self._kinds
        for path, kind in self._previous:
            kept = slots[path]
            changed = current.get(path) != kept.digest
            kept.seen = kept.seen * self.prior.forget + 1.0
            kept.changed = kept.changed * self.prior.forget + changed
            tally = kinds.get(kind)
            if tally is None:
                kinds[kind] = [1.0, float(changed)]
            else:
                tally[0] += 1.0
                tally[1] += changed
            if changed:
                break
        previous: list[tuple[str, _Kind]] = []
        last = len(lay.positions) - 1
        for p in lay.positions:
            slot = slots.get(p.path)
            fresh = slot is None or slot.digest != p.digest
            if slot is None:
                slots[p.path] = _Slot(p.digest)
            elif fresh:
                slot.digest = p.digest
            previous.append((p.path, _kind(lay, p, fresh, last)))
        self._previous = previous

    # -- answers -------------------------------------------------------------------------------
    def alive(self, now: float, gaps: Sequence[float] | None = None) -> dict[TTL, float]:
        """Chance that the next use comes within each lifetime.

        From the gaps between calls, or from `gaps`, a prefix's own gaps between uses when it
        skips calls (then those are what an entry of it has to outlive).
        """
        prior = self.prior
        if gaps is not None:
            evidence = [(g, 1.0) for g in gaps[-_RECENT:]]
        else:
            evidence = self._gaps[-_RECENT:]
            if self._last_own is not None and now > self._last_own:
                evidence = [*evidence, (now - self._last_own, 1.0)]
        # The prior counts as the oldest evidence, and fades as real gaps come in.
        weight = prior.alive_weight * prior.prior_fade ** len(evidence)
        if gaps is not None:
            weight *= prior.recurring_weight
        hits = {ttl: share * weight for ttl, share in prior.alive}
        fade = 1.0
        for gap, w in reversed(evidence):
            w *= fade
            fade *= prior.decay
            weight += w
            if gap < _FIVE_MINUTES:
                hits["5m"] += w
            if gap < _HOUR:
                hits["1h"] += w
        if weight <= 0:  # a prior of no weight, and no gap of any: the prior's shares stand
            return dict(prior.alive)
        return {ttl: hits[ttl] / weight for ttl in TTLS}

    def another_call(self) -> float:
        """Chance this model is called again: Laplace-like, from the calls seen (this one included)."""
        n = self.own_calls + 1 + self.prior.calls_ahead
        return n / (n + 1.0)

    def reuse(self, lay: Layout) -> list[float]:
        """Per position: the chance the next call sends the prefix up to it again (another call included)."""
        prior, slots = self.prior, self._slots
        forget, weight = prior.forget, prior.path_weight
        positions, roles = lay.positions, lay.roles
        last = len(positions) - 1
        rates: dict[_Kind, float] = {}
        keep, out = self.another_call(), []
        diverged = False  # this request already differs from the last one before this block
        for p in positions:
            slot = slots.get(p.path)
            fresh = slot is None or slot.digest != p.digest
            m = p.message
            kind = (p.level, p.level if m is None else roles[m], fresh, fresh and p.index == last)
            rate = rates.get(kind)
            if rate is None:
                rate = rates[kind] = self._kind_rate(kind)
            if slot is not None:
                seen, changed = slot.seen, slot.changed
                if not diverged:  # what this request shows about the block, counted before it is observed
                    seen, changed = seen * forget + 1.0, changed * forget + fresh
                if seen:
                    rate = (changed + rate * weight) / (seen + weight)
            diverged = diverged or fresh
            keep *= 1.0 - min(rate, 1.0)
            out.append(keep)
        return out

    def _kind_rate(self, kind: _Kind) -> float:
        """How often blocks of this kind changed by the next call, blended with the prior for it."""
        prior = self.prior
        base = _prior_change(prior, kind)
        tally = self._kinds.get(kind)
        if tally is None:
            return base
        return (tally[1] + base * prior.change_weight) / (tally[0] + prior.change_weight)

    def recurring(self, position: Position, since: float) -> Uses | None:
        """A prefix's own uses if it was sent before `since` but not since (it comes and goes)."""
        uses = self._uses.get(position.key)
        if uses is None or uses.times[-1] >= since:
            return None
        return uses

    def comes_back(self, uses: int) -> float:
        """Chance a prefix used `uses` times so far is used again (the same rule as `another_call`)."""
        n = uses + self.prior.calls_ahead
        return n / (n + 1.0)

    @property
    def last_own(self) -> float | None:
        return self._last_own


def _kind(lay: Layout, p: Position, fresh: bool, last: int) -> _Kind:
    role = p.level if p.message is None else lay.roles[p.message]
    return (p.level, role, fresh, fresh and p.index == last)


def _prior_change(prior: Prior, kind: _Kind) -> float:
    if kind[3]:
        return prior.change_fresh_last
    if not kind[2]:
        return prior.change_kept
    return prior.change_fresh if kind[0] == "messages" else prior.change_fresh_top
