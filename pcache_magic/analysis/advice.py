"""Advice before money is spent: keep a cache entry warm, and what an edit will cost.

Two questions a user of the panel cannot answer by looking at it:

- *Should I refresh an entry before it dies?*  `keep_warm` compares, for each live entry that
  will expire before the session's next likely call, the reads that keep it alive until then
  (a pre-warm reads the prefix at the read rate and resets its lifetime) with writing it again
  at that call.  The next call is expected one typical gap (the median of the recent gaps
  between calls) after the last one.
- *What does this edit cost?*  `edit_impact` finds where the next request first differs from
  the last one sent, inside a prefix the cache still holds, and prices what the next call must
  write again: the changed block and every unchanged block after it.  When the unchanged blocks
  after the edit outweigh it, moving the changing part after them is the cheaper layout.

Pure: prices come from the model catalogue, times from the caller's clock.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from ..core import fmt
from ..core.models import ModelInfo, ModelTable, Prices
from ..core.prefix import Layout
from ..core.rules import Breakpoint
from ..core.ttl import TTL, TTL_SECONDS
from .ledger import Ledger

__all__ = ["RECENT_GAPS", "EditImpact", "KeepWarm", "edit_impact", "keep_warm", "typical_gap"]

_MILLION = 1_000_000
#: Gaps looked at for the typical one: the session's recent rhythm, not its whole history.
RECENT_GAPS = 8


def _usd(tokens: int, per_million: float) -> float:
    return tokens * per_million / _MILLION


def _write_price(prices: Prices, ttl: TTL) -> float:
    return prices.cache_write_1h if ttl == "1h" else prices.cache_write_5m


def typical_gap(starts: Sequence[float]) -> float | None:
    """The median of the last few gaps between calls (None before the second call)."""
    gaps = [b - a for a, b in pairwise(starts) if b >= a]
    return statistics.median(gaps[-RECENT_GAPS:]) if gaps else None


@dataclass(frozen=True, slots=True)
class KeepWarm:
    """One live entry that dies before the next likely call, and whether refreshing it pays."""

    block: str
    tokens: int
    ttl: TTL
    expires_in: float
    next_call_in: float
    """Seconds until the next call is expected (one typical gap after the last call)."""
    refreshes: int
    """Pre-warm reads needed to keep the entry alive until then."""
    refresh_usd: float
    rewrite_usd: float
    """Writing the prefix again at the next call, less the read it would otherwise be."""

    @property
    def worth(self) -> bool:
        return self.refresh_usd < self.rewrite_usd

    def text(self, keeping: bool = False) -> str:
        """One line: `paper.md expires in 40s, the next call is likely in 6m 10s: ...`; `keeping`:
        keep-warm is on, so a refresh that pays is said to be on its way, not advised."""
        head = (
            f"{self.block} expires in {fmt.duration(self.expires_in, ceil=True)}; "
            f"the next call is likely in {fmt.duration(self.next_call_in)}"
        )
        refresh = "a refresh read" if self.refreshes == 1 else f"{self.refreshes} refresh reads"
        prices = f"{refresh} {fmt.money(self.refresh_usd)}, a rewrite {fmt.money(self.rewrite_usd)}"
        if not self.worth:
            verdict = "letting it expire is cheaper"
        elif keeping:
            verdict = "refreshing pays: keep-warm refreshes it before it expires"
        else:
            verdict = "refreshing pays: %claude_prewarm (or --keep-warm on)"
        return f"{head}: {prices}; {verdict}."


def keep_warm(
    entries: Sequence[Mapping[str, Any]], starts: Sequence[float], now: float, models: ModelTable
) -> list[KeepWarm]:
    """Advice for each live entry (`Ledger.entries`) that expires before the next likely call.

    `starts` are the session's call times, oldest first; `models` prices each entry's model
    (entries of a model it lacks are skipped).  Nothing before two calls: one gap is the least
    evidence of a rhythm.
    """
    gap = typical_gap(starts)
    if gap is None or not starts:
        return []
    next_call_in = max(starts[-1] + gap - now, 0.0)
    advice = []
    for entry in entries:
        model, expires_in, ttl = str(entry.get("model")), float(entry["expires_in"]), entry["ttl"]
        if model not in models or not 0 < expires_in < next_call_in:
            continue
        tokens, prices = int(entry["tokens"]), models.get(model).prices
        # Each refresh lands just before the entry dies and buys one more lifetime.
        refreshes = math.ceil((next_call_in - expires_in) / TTL_SECONDS[ttl])
        rewrite = _usd(tokens, _write_price(prices, ttl) - prices.cache_read)
        name = str(entry.get("block") or entry.get("path") or "?")
        advice.append(
            KeepWarm(
                name,
                tokens,
                ttl,
                expires_in,
                next_call_in,
                refreshes,
                refreshes * _usd(tokens, prices.cache_read),
                rewrite,
            )
        )
    return sorted(advice, key=lambda a: a.expires_in)


@dataclass(frozen=True, slots=True)
class EditImpact:
    """What the next call pays because a block inside the cached prefix changed."""

    block: str
    """The first block that differs from the last call."""
    tokens: int
    """Tokens the next call writes again."""
    ttl: TTL
    usd: float
    """The cost of that write, beyond reading the prefix as the cache still holds it."""
    after: tuple[str, ...]
    """Unchanged blocks after the edit, written again only because they follow it."""
    after_tokens: int
    cheaper_usd: float
    """What moving the changing block after those of its level would save per edit (0: no cheaper
    layout)."""

    def text(self, added: bool = False) -> str:
        """`Editing notes rewrites ~48,213 tokens: about $0.18 at the 5m rate; ...` (`added`: the
        block is new in the cached prefix, which its adding rewrites as an edit would)."""
        what = f"Adding {self.block} here" if added else f"Editing {self.block}"
        line = (
            f"{what} rewrites {fmt.tokens(self.tokens, estimated=True)} tokens: "
            f"about {fmt.money(self.usd)} at the {self.ttl} rate"
        )
        if self.after:
            count = len(self.after)
            line += f"; the {count} block{'s' if count != 1 else ''} after it ({', '.join(self.after)}) too"
        if self.cheaper_usd > 0:
            line += (
                f". Put {self.block} after them (or its changing part in a later cell) "
                f"to save about {fmt.money(self.cheaper_usd)}{'' if added else ' per edit'}"
            )
        return line + "."


def edit_impact(
    previous: Layout | None,
    lay: Layout,
    points: Sequence[Breakpoint],
    ledger: Ledger,
    info: ModelInfo,
    now: float,
    names: Mapping[str, str] | None = None,
) -> EditImpact | None:
    """The cost of an edit inside the cached prefix, or None when the next call loses nothing.

    `previous` is the last request sent (laid out), `lay` and `points` the next one.  An edit
    counts when a block the cache still holds (a live entry at or after it in `previous`)
    differs, and the next call has a marker at or after it to write it again.
    """
    if previous is None or not points or previous.root != lay.root:
        return None  # nothing sent yet, nothing to write, or another model (its own cache)
    old, new = previous.positions, lay.positions
    changed = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a.key != b.key), None)
    if changed is None:
        return None
    lost = [p for p in old[changed:] if ledger.live(p.key, now)]
    if not lost:
        return None
    last = max(b.position for b in points)
    if last < changed:
        return None
    outcome = ledger.plan(lay, list(points), info, now)
    written = outcome.written
    if not written:
        return None
    ttl: TTL = "1h" if outcome.write_1h else "5m"
    prices = info.prices
    usd = _usd(outcome.write_5m, prices.cache_write_5m) + _usd(outcome.write_1h, prices.cache_write_1h)
    # What the cache held of the old prefix: those tokens would have been read.
    usd -= _usd(max(p.cumulative for p in lost) - outcome.read, prices.cache_read)
    names = names or {}
    seen = {p.digest for p in old}
    edited = new[changed]
    following = [p for p in new[changed + 1 : last + 1] if p.digest in seen]
    after = tuple(dict.fromkeys(names.get(p.path, p.path) for p in following))
    after_tokens = sum(p.tokens for p in following)
    # Moved after them, the edit would leave those tokens to be read instead of written; a block
    # moves only among its own level (a system prompt cannot follow the messages).
    movable = sum(p.tokens for p in following if p.level == edited.level)
    cheaper = 0.0
    if movable > edited.tokens:
        cheaper = _usd(movable, _write_price(prices, ttl) - prices.cache_read)
    return EditImpact(
        names.get(edited.path, edited.path), written, ttl, max(usd, 0.0), after, after_tokens, cheaper
    )
