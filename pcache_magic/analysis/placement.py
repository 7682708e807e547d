"""Choosing one call's breakpoints: which live entries to keep, where to write, and for how long.

The billing rule makes markers cheap: a request pays to write only up to its last breakpoint
(at the 1h rate up to the last 1h one), however many sit in between, and a marker on an
entry that is already read refreshes it for free.  So the four slots are spent where they
are worth most, by exhaustive dynamic programming over a short list of candidates:

- `Cut`: a position past the entry being read; writing up to it gains `gain[ttl]` per token
  of the segment it closes (from the previous cut, or the entry read).  Lifetimes must not
  increase along the request (1h before 5m), and a cut more than 20 blocks past the entry
  read needs a marker on that entry too, to read it (the lookback).
- `Keep`: a live entry before the one read; a marker on it keeps it alive, worth `gain` per
  token for the tokens up to it against being covered only by the next entry above it.
Fixed candidates (the user's own markers) are always placed, with their lifetimes.  Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..core.rules import LOOKBACK, MAX_BREAKPOINTS
from ..core.ttl import TTL

__all__ = ["Cut", "Keep", "Placement", "place"]

_EPSILON = 1e-12


@dataclass(frozen=True, slots=True)
class Cut:
    """A position past the entry read, where a write could end."""

    index: int
    tokens: int
    gain: Mapping[TTL, float]
    fixed: TTL | None = None
    lift: float = 0.0
    """Per token below the entry read: what a 1h write here adds by keeping them for an hour too
    (that entry is 5m; a deeper 1h entry covers its tokens, billed only for the segment past it)."""


@dataclass(frozen=True, slots=True)
class Keep:
    """A live entry (or a fixed marker) at or before the entry read."""

    index: int
    tokens: int
    gain: float
    fixed: bool = False


@dataclass(frozen=True, slots=True)
class Placement:
    """The chosen markers: the entries kept, the cuts with their lifetimes, and a marker to read."""

    value: float
    keeps: tuple[Keep, ...] = ()
    cuts: tuple[tuple[Cut, TTL], ...] = ()
    read: bool = False
    slots: int = field(default=0)


# A partial chain: (value, slots used, 5m seen, picks).
_Chain = tuple[float, int, bool, tuple[tuple[Cut, TTL], ...]]


def _cut_chains(
    hit: Keep | None, cuts: Sequence[Cut], one_hour: bool, slots: int, marked_hit: bool
) -> dict[int, _Chain]:
    """The best chain of cuts per number of slots used (a read marker counted when needed)."""
    start_index = hit.index if hit is not None else -1
    start_tokens = hit.tokens if hit is not None else 0
    needs_read = hit is not None and not marked_hit
    forced = [i for i, c in enumerate(cuts) if c.fixed is not None]
    best: dict[int, _Chain] = {}
    if not forced:
        used = 1 if needs_read else 0
        best[used] = (0.0, used, False, ())
    # ends[i]: chains whose last cut is cuts[i], keyed by (slots used, 5m seen)
    ends: list[dict[tuple[int, bool], _Chain]] = []
    for i, cut in enumerate(cuts):
        here: dict[tuple[int, bool], _Chain] = {}
        sources: list[tuple[int, int, bool, float, tuple[tuple[Cut, TTL], ...]]] = []
        if not any(f < i for f in forced):
            extra = 1 if needs_read and cut.index - start_index >= LOOKBACK else 0
            sources.append((start_tokens, extra, False, 0.0, ()))
        for j in range(i - 1, -1, -1):
            for (used, late), (value, _, _, picks) in ends[j].items():
                sources.append((cuts[j].tokens, used, late, value, picks))
            if cuts[j].fixed is not None:
                break  # a fixed cut cannot be skipped
        segment_ttls: tuple[TTL, ...] = (cut.fixed,) if cut.fixed is not None else ("1h", "5m")
        for floor, used, late, value, picks in sources:
            if used + 1 > slots:
                continue
            for ttl in segment_ttls:
                if ttl == "1h" and (late or (not one_hour and cut.fixed is None)):
                    continue
                total = value + (cut.tokens - floor) * cut.gain[ttl]
                if ttl == "1h" and not picks:  # the first cut: the only 1h one that lifts the entry read
                    total += start_tokens * cut.lift
                key = (used + 1, late or ttl == "5m")
                kept = here.get(key)
                if kept is None or total > kept[0] + _EPSILON:
                    here[key] = (total, used + 1, key[1], (*picks, (cut, ttl)))
        ends.append(here)
        if not any(f > i for f in forced):
            for chain in here.values():
                kept_best = best.get(chain[1])
                if kept_best is None or chain[0] > kept_best[0] + _EPSILON:
                    best[chain[1]] = chain
    return best


def _keep_chains(
    hit: Keep | None, keeps: Sequence[Keep], slots: int
) -> dict[int, tuple[float, tuple[Keep, ...]]]:
    """The best set of kept entries below the one read, per number of markers."""
    if hit is None:
        return {0: (0.0, ())}
    forced = [k for k in keeps if k.fixed]
    base = hit.tokens * hit.gain
    best: dict[int, tuple[float, tuple[Keep, ...]]] = {}
    # chains[i]: best (value of tokens up to keeps[i], picks) per count, keeps[i] the last pick
    chains: list[dict[int, tuple[float, tuple[Keep, ...]]]] = []
    if not forced:
        best[0] = (0.0, ())
    for i, keep in enumerate(keeps):
        here: dict[int, tuple[float, tuple[Keep, ...]]] = {}
        if not any(k.fixed for k in keeps[:i]):
            here[1] = (keep.tokens * keep.gain, (keep,))
        for j in range(i - 1, -1, -1):
            for count, (value, picks) in chains[j].items():
                if count + 1 <= slots:
                    total = value + (keep.tokens - keeps[j].tokens) * keep.gain
                    if count + 1 not in here or total > here[count + 1][0] + _EPSILON:
                        here[count + 1] = (total, (*picks, keep))
            if keeps[j].fixed:
                break
        chains.append(here)
        if not any(k.fixed for k in keeps[i + 1 :]):
            for count, (value, picks) in here.items():
                total = value + (hit.tokens - keep.tokens) * hit.gain - base
                if count not in best or total > best[count][0] + _EPSILON:
                    best[count] = (total, picks)
    return best


def place(
    hit: Keep | None,
    keeps: Sequence[Keep],
    cuts: Sequence[Cut],
    *,
    one_hour: bool = True,
    slots: int = MAX_BREAKPOINTS,
    marked_hit: bool = False,
) -> Placement | None:
    """The most valuable placement within `slots` markers, or None when the fixed ones do not fit.

    `keeps` and `cuts` are in request order, `keeps` before `hit` (the entry this call reads,
    if any) and `cuts` after it.  `one_hour` false forbids 1h cuts (a fixed 5m marker comes first);
    `marked_hit`: a fixed marker already sits on the entry read (it reads it; count it in `slots`).
    """
    cut_chains = _cut_chains(hit, cuts, one_hour, slots, marked_hit)
    keep_chains = _keep_chains(hit, keeps, slots)
    choice: Placement | None = None
    for used, (value, _, _, picks) in cut_chains.items():
        for count, (kept_value, kept) in keep_chains.items():
            total_slots = used + count
            if total_slots > slots:
                continue
            total = value + kept_value
            better = choice is None or total > choice.value + _EPSILON
            if better or (
                choice is not None and abs(total - choice.value) <= _EPSILON and total_slots < choice.slots
            ):
                read = (
                    hit is not None
                    and not marked_hit
                    and (not picks or picks[0][0].index - hit.index >= LOOKBACK)
                )
                choice = Placement(total, kept, picks, read, total_slots)
    return choice
