"""One call's decision: the candidate breakpoints, what each is worth, the placement, the reasons.

`choose` takes what the planner knows (its `Cache`: the rhythm, the model's rates, the live
entries) and one laid-out request, and returns the markers to put on it.  Candidates are few
on purpose, so the placement can be exhaustive and a call stays well under a millisecond:
the tail; the places where the chance that the next call keeps the prefix drops most (the end
of a stable block before a volatile one); prefixes that recur; the user's own markers; and
the live entries before the one read, which a marker keeps alive for free.  Pure.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..core import fmt
from ..core.prefix import Layout, Position
from ..core.rules import MAX_BREAKPOINTS
from ..core.ttl import TTL, TTL_SECONDS
from .breakeven import Rates, Worth, worth
from .markers import Marker, Role
from .placement import Cut, Keep, Placement, place
from .rhythm import Rhythm

__all__ = ["OUTLIVE", "Cache", "choose"]

#: Candidate write ends per call besides the tail: where the chance of reuse drops the most.
_DROPS = 5
#: A drop counts when the next block keeps less than this share of the chance of reuse.
_DROP_RATIO = 0.97
#: Candidate write ends per call among the prefixes that come back (`Rhythm.recurring`): the most
#: used and deepest.  Uncapped, a growing chat whose earlier prefixes all come back (a structured
#: output's salt brings them back) offered every one, and the placement is quadratic in its cuts.
_RECURRING = 8
#: Live entries before the one read that are weighed for a marker that keeps them alive.
_KEEPS = 4
#: A 5m entry that died less than this long before its prefix came back would have lived at 1h.
OUTLIVE = TTL_SECONDS["1h"] - TTL_SECONDS["5m"]


@dataclass(frozen=True, slots=True)
class Cache:
    """What the planner knows when it decides: rhythm, rates, live entries (key -> ttl, expiry)."""

    rhythm: Rhythm
    rates: Rates
    entries: Mapping[bytes, tuple[TTL, float]]
    minimum: int
    outlived: Mapping[bytes, float] = field(default_factory=dict)
    """Prefix key -> when a call found its 5m entry dead of a gap a 1h entry would have lived through:
    the ski-rental switch, such a prefix is written for an hour whenever a write pays at all."""


class _Call:
    """One request being decided, with the per-position figures computed once."""

    def __init__(self, cache: Cache, lay: Layout, pinned: Mapping[int, TTL], now: float) -> None:
        self.cache, self.lay, self.pinned, self.now = cache, lay, pinned, now
        self.rhythm, self.rates = cache.rhythm, cache.rates
        self.reuse = cache.rhythm.reuse(lay)
        self.alive = cache.rhythm.alive(now)
        self._worth: dict[int, Worth] = {}
        self.chance: dict[int, float] = {}
        self.unheld = 0.0
        """Share of the tokens read from a 5m entry that no live 1h entry below holds (0: nothing to lift)."""

    def live(self, p: Position) -> TTL | None:
        entry = self.cache.entries.get(p.key)
        return entry[0] if entry is not None and entry[1] > self.now else None

    def worth(self, p: Position) -> Worth:
        """What caching up to `p` is worth: by the path's rhythm, or by its own uses if it recurs."""
        found = self._worth.get(p.index)
        if found is not None:
            return found
        found = worth(self.rates, self.reuse[p.index], self.alive)
        self.chance[p.index] = self.reuse[p.index]
        last = self.rhythm.last_own
        uses = self.rhythm.recurring(p, last) if last is not None else None
        if uses is not None:
            gaps = [b - a for a, b in itertools.pairwise(uses.times)] + [self.now - uses.times[-1]]
            chance = self.rhythm.comes_back(uses.count)
            again = worth(self.rates, chance, self.rhythm.alive(self.now, gaps))
            if max(again.write.values()) > max(found.write.values()):
                found = again
                self.chance[p.index] = chance
        self._worth[p.index] = found
        return found

    def cuts(self, hit: int) -> list[Cut]:
        """The tail, where the chance of reuse drops most, recurring prefixes, the user's markers."""
        positions, minimum = self.lay.positions, self.cache.minimum
        eligible = [p for p in positions[hit + 1 :] if p.cacheable and p.cumulative >= minimum]
        picked = {i for i in self.pinned if i > hit}
        if eligible:
            picked.add(eligible[-1].index)
            reuse = self.reuse
            drops = sorted(
                (reuse[p.index + 1] / reuse[p.index], p.index)
                for p in eligible[:-1]
                if reuse[p.index] > 0 and reuse[p.index + 1] < _DROP_RATIO * reuse[p.index]
            )
            picked.update(i for _, i in drops[:_DROPS])
            # The head's seams: the end of the tools and of each system block before the messages.
            # A block after them that changes leaves what is before it readable (on a first call
            # the rhythm cannot tell yet which block will change).
            picked.update(
                p.index
                for p, q in itertools.pairwise(eligible)
                if p.level != "messages" and (q.level != p.level or p.level == "system")
            )
            last = self.rhythm.last_own
            if last is not None:
                back = [
                    (uses.count, p.cumulative, p.index)
                    for p in eligible[:-1]
                    if (uses := self.rhythm.recurring(p, last)) is not None
                ]
                picked.update(i for *_, i in heapq.nlargest(_RECURRING, back))
        if hit >= 0 and self.live(positions[hit]) == "5m":
            held = max((p.cumulative for p in positions[:hit] if self.live(p) == "1h"), default=0)
            self.unheld = 1.0 - held / max(1, positions[hit].cumulative)
        return [
            Cut(
                i,
                positions[i].cumulative,
                self.gain(positions[i]),
                self.pinned.get(i),
                self.lift(positions[i]),
            )
            for i in sorted(picked)
        ]

    def lift(self, p: Position) -> float:
        """Per token read from a 5m entry: what a 1h entry at `p` adds to them, kept for an hour too.

        The engine bills a write only past the entry read, so a 1h marker on a short tail after a
        5m entry buys the whole prefix an hour for the price of the tail (what a user's 1h marker
        on the last message does, and what the oracle assumes).  Any later call can buy it too, so
        it is worth what the next gap alone risks: that the next call keeps the prefix and comes
        after 5m but within the hour, and pays a write where it would have read.
        """
        if not self.unheld:
            return 0.0
        rates = self.rates
        step = self.reuse[p.index] * max(0.0, self.alive["1h"] - self.alive["5m"])
        return step * (1.0 + rates.premium["5m"] - rates.read) * self.unheld

    def gain(self, p: Position) -> Mapping[TTL, float]:
        """Per token, what a write up to `p` gains at each lifetime; 1h first once 5m has died on it."""
        write = self.worth(p).write
        if p.key in self.cache.outlived and write["5m"] > write["1h"]:
            return {"1h": write["5m"], "5m": write["5m"]}
        return write

    def _held(self, p: Position, ttl: TTL) -> float:
        """What a live entry at `p` is worth on the next call, per token: read if the call keeps it."""
        return self.reuse[p.index] * self.alive[ttl] * (1.0 - self.rates.read)

    def keeps(self, hit: int) -> tuple[Keep | None, list[Keep]]:
        """The entry read and the most valuable live entries (and all the user's markers) before it.

        A kept entry pays when the next call keeps the prefix up to it but not up to the next entry
        above it: the expected tokens read next time, `placement` adds up as segments.
        """
        if hit < 0:
            return None, []
        positions, entries, now, pinned = self.lay.positions, self.cache.entries, self.now, self.pinned
        top = positions[hit]
        top_gain = self._held(top, self.live(top) or "5m")
        found = []
        for p in positions[:hit]:
            entry = entries.get(p.key)
            live = entry is not None and entry[1] > now
            if live or p.index in pinned:
                gain = self._held(p, entry[0]) if live and entry is not None else 0.0
                found.append(Keep(p.index, p.cumulative, gain, p.index in pinned))
        if len(found) > _KEEPS:  # the fixed ones, then those worth most on their own
            ranked = sorted(found, key=lambda k: (not k.fixed, -k.tokens * (k.gain - top_gain)))
            found = sorted(ranked[:_KEEPS], key=lambda k: k.index)
        return Keep(hit, top.cumulative, top_gain), found

    def reason(self, role: Role, p: Position, ttl: TTL, chosen: Placement, hit: int) -> str:
        """One line a view can show next to the marker."""
        if role == "write":
            floor = max([c.tokens for c, _ in chosen.cuts if c.index < p.index] + [self.lay.tokens_at(hit)])
            w = self.worth(p)
            line = (
                f"write {ttl}: {fmt.tokens(p.cumulative - floor)} tokens, sent again"
                f" {self.chance[p.index]:.0%} likely; ~{w.reads[ttl]:.1f} reads expected,"
                f" {self.rates.break_even(ttl):.1f} pay for it"
            )
            if ttl == "1h" and p.key in self.cache.outlived and w.write["5m"] > w.write["1h"]:
                line += "; 1h since its 5m entry died of a gap a 1h one would have lived through"
            elif ttl == "1h" and chosen.cuts[0][0].index == p.index and self.lift(p) > 0:
                line += f"; 1h also keeps the {fmt.tokens(floor)} tokens read from a 5m entry for an hour"
            elif ttl == "1h":
                line += f"; {1 - self.alive['5m']:.0%} of gaps outlive 5m"
            return line
        entry = self.cache.entries.get(p.key)
        kind = entry[0] if entry is not None else "5m"
        since = fmt.duration(max(0.0, self.now - entry[1] + TTL_SECONDS[kind])) if entry is not None else "?"
        if role == "read":
            return f"read: the {kind} entry of {fmt.tokens(p.cumulative)} tokens (last used {since} ago)"
        after = self.reuse[hit] / self.reuse[p.index] if self.reuse[p.index] > 0 else 1.0
        return (
            f"keep: refreshes the {kind} entry of {fmt.tokens(p.cumulative)} tokens, a fallback if what"
            f" follows changes ({1 - after:.0%} likely)"
        )


def choose(cache: Cache, lay: Layout, pinned: Mapping[int, TTL], now: float) -> list[tuple[int, Marker]]:
    """The markers for `lay` at `now` (position index, marker), in request order.

    `pinned` are the user's markers (position -> ttl), always kept; the others fill free slots.
    """
    call = _Call(cache, lay, pinned, now)
    positions = lay.positions
    hit = next((p.index for p in reversed(positions) if call.live(p) is not None), -1)
    top, keeps = call.keeps(hit)
    one_hour = not any(t == "5m" for i, t in pinned.items() if i <= hit)
    marked_hit = hit in pinned
    room = MAX_BREAKPOINTS - marked_hit
    chosen = place(top, keeps, call.cuts(hit), one_hour=one_hour, marked_hit=marked_hit, slots=room)
    if chosen is None:  # the user's markers leave no room: keep them alone
        chosen = Placement(0.0, keeps=tuple(Keep(i, positions[i].cumulative, 0.0, True) for i in pinned))
    slots: list[tuple[int, TTL | None, Role]] = [(k.index, None, "keep") for k in chosen.keeps]
    if chosen.read or hit in pinned:
        slots.append((hit, None, "read"))
    slots += [(cut.index, ttl, "write") for cut, ttl in chosen.cuts]
    out: list[tuple[int, Marker]] = []
    later_1h = False
    for index, ttl, role in sorted(slots, key=lambda s: s[0], reverse=True):
        mine = pinned.get(index)
        final: TTL = mine or ttl or ("1h" if later_1h else "5m")
        later_1h = later_1h or final == "1h"
        p = positions[index]
        if mine:
            out.append((index, Marker(p.path, final, "yours", p.cumulative, "yours: kept as written")))
        else:
            out.append(
                (index, Marker(p.path, final, role, p.cumulative, call.reason(role, p, final, chosen, hit)))
            )
    return out[::-1]
