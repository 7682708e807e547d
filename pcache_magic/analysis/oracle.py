"""A lower bound on what any placement of cache markers could have cost a session.

The planner has to be judged against what was possible, not only against other guesses.  The
exact optimum (four breakpoints per call, the 20-block lookback, 1h before 5m, which entry a
call reads) is a hard search, so this module computes a bound that no strategy can beat,
by relaxing those rules and keeping the ones that make caching cost money:

Each prefix position (a block, keyed by everything before it) is priced on its own, over
the calls that contain it.  At each such use its tokens are read (only while covered by a
live entry), written with a 5m or 1h lifetime, or sent uncached.  An entry of lifetime T
covering it lives while the uses come less than T apart (each hit refreshes it) and a
write sets that lifetime.  A use can also read through a deeper entry that an earlier call
wrote within the hour if both calls share more than this block (the deeper tokens paid for
it) - but only once the block was written at some point.  A use whose call has no place a
marker could go at or after the block, at or above the model's minimum, cannot cache it.

Every real sequence of requests maps to a path of this small per-position program that
costs no more (`tests/test_oracle.py` checks the bound against every strategy, including
random markers), so the sum of the per-position minimums is a lower bound.  With `fixed`, one
call's markers are given (what it wrote, at which lifetime) and only the other calls are free:
the bound then holds for every strategy that places those markers on that call, which is how
`benchmarks/floor.py` prices a first-call bet against every possible continuation.  Pure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..core.models import ModelTable, Prices, default_models
from ..core.prefix import Layout, layout
from ..core.tokens import TokenEstimator
from ..core.ttl import TTL_SECONDS
from ..core.usage import Cost, Tokens, batch_price_factor, batch_prices, cost_of

__all__ = ["Fixed", "Timed", "oracle_cost"]

_HOUR = TTL_SECONDS["1h"]
# Chain states: no entry, a 5m entry, a 1h entry (refreshed at the previous use).
_LIFE = (0.0, float(TTL_SECONDS["5m"]), float(TTL_SECONDS["1h"]))


class Timed(Protocol):
    """A request and when it was sent (`whatif.Replay` is one)."""

    @property
    def at(self) -> float: ...

    @property
    def request(self) -> Mapping[str, Any]: ...

    @property
    def output_tokens(self) -> int: ...

    @property
    def batch(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Fixed:
    """One call's markers, given: its first `write_1h` prompt tokens were written 1h, the next `write_5m`
    5m, the rest sent uncached (what the engine billed for the markers; the call read nothing)."""

    call: int
    write_1h: int
    write_5m: int

    def action(self, cumulative: int) -> int:
        """The chain state a position ending at `cumulative` tokens was left in: 2 (1h), 1 (5m), 0."""
        if cumulative <= self.write_1h:
            return 2
        return 1 if cumulative <= self.write_1h + self.write_5m else 0


# One use of a position: (time, could be cached at all, a deeper entry from the last hour may cover it,
# the action it is fixed to: -1 free, else a chain state as `Fixed.action` gives it, what it is billed
# at: 1.0, or a batch's share of the standard price).
_Use = tuple[float, bool, bool, int, float]
# DP value: cost in input-price units, then the uses sent uncached, written 5m, written 1h and read,
# each counted at what it is billed at (a batch's use as `usage.batch_price_factor`: every rate scales alike).
_Value = tuple[float, float, float, float, float]


def _offer(best: dict[tuple[int, int], _Value]) -> Callable[[tuple[int, int], _Value], None]:
    """Keep the cheaper value per state."""

    def offer(state: tuple[int, int], value: _Value) -> None:
        kept = best.get(state)
        if kept is None or value[0] < kept[0]:
            best[state] = value

    return offer


def _cheapest(uses: Sequence[_Use], prices: Prices) -> _Value:
    """The cheapest way to serve one position over its uses (cost per token, in input prices)."""
    rates = (1.0, prices.cache_write_5m / prices.input, prices.cache_write_1h / prices.input)
    read = prices.cache_read / prices.input
    # state (chain 0/1/2, written ever 0/1) -> value
    states: dict[tuple[int, int], _Value] = {(0, 0): (0.0, 0.0, 0.0, 0.0, 0.0)}
    previous = -math.inf
    for at, coverable, shortcut, fixed, x in uses:
        gap = at - previous
        previous = at
        best: dict[tuple[int, int], _Value] = {}
        offer = _offer(best)
        for (chain, written), (cost, u, w5, w1, r) in states.items():
            if fixed == 0:  # given: sent uncached
                offer((0, written), (cost + x, u + x, w5, w1, r))
                continue
            if fixed > 0:  # given: written with that lifetime
                w = x * (fixed == 1), x * (fixed == 2)
                offer((fixed, 1), (cost + x * rates[fixed], u, w5 + w[0], w1 + w[1], r))
                continue
            if not coverable:  # nothing can be cached here: uncached, state kept (a relaxation)
                offer((chain, written), (cost + x, u + x, w5, w1, r))
                continue
            alive_chain = chain > 0 and gap < _LIFE[chain]
            if alive_chain or (written and shortcut):
                offer((chain if alive_chain else 0, written), (cost + x * read, u, w5, w1, r + x))
            offer((0, written), (cost + x, u + x, w5, w1, r))
            offer((1, 1), (cost + x * rates[1], u, w5 + x, w1, r))
            offer((2, 1), (cost + x * rates[2], u, w5, w1 + x, r))
        states = best
    return min(states.values())


def _priced(tokens: int, uses: Sequence[float], prices: Prices) -> Cost:
    """`cost_of` for a position of `tokens` over its uses per part (counted at what each is billed)."""
    per = tokens / 1_000_000
    u, w5, w1, r = uses
    return Cost(
        uncached=u * per * prices.input,
        write_5m=w5 * per * prices.cache_write_5m,
        write_1h=w1 * per * prices.cache_write_1h,
        read=r * per * prices.cache_read,
        no_cache=(u + w5 + w1 + r) * per * prices.input,
    )


def _coverable_until(lay: Layout, minimum: int) -> int:
    """The last position a breakpoint could cache (cacheable, prefix at the minimum), or -1."""
    return next(
        (p.index for p in reversed(lay.positions) if p.cacheable and p.cumulative >= minimum),
        -1,
    )


def oracle_cost(calls: Sequence[Timed], models: ModelTable | None = None, fixed: Fixed | None = None) -> Cost:
    """The lower bound described above for `calls`, with each part (read, writes) it assumes.

    `fixed`: that call's markers are given (the bound is then over the strategies that place them).
    """
    models = models or default_models()
    estimator = TokenEstimator()
    uses: dict[bytes, list[_Use]] = {}
    sizes: dict[bytes, tuple[int, Prices]] = {}
    last_seen: dict[bytes, float] = {}
    total = Cost()
    previous: Layout | None = None
    for n, call in enumerate(calls):
        info = models.get(str(call.request["model"]))
        scale = batch_price_factor() if call.batch else 1.0
        billed = batch_prices(info.prices) if call.batch else info.prices
        lay = layout(call.request, estimator, model=info.id, previous=previous)
        previous = lay
        until = _coverable_until(lay, info.min_cache_tokens)
        positions = lay.positions
        for i, p in enumerate(positions):
            child = positions[i + 1].key if i + 1 < len(positions) else None
            seen = last_seen.get(child) if child is not None else None
            shortcut = seen is not None and call.at - seen < _HOUR
            action = fixed.action(p.cumulative) if fixed is not None and fixed.call == n else -1
            uses.setdefault(p.key, []).append((call.at, i <= until, shortcut, action, scale))
            sizes[p.key] = (p.tokens, info.prices)
        for p in positions:
            last_seen[p.key] = call.at
        tail = lay.total_tokens - (positions[-1].cumulative if positions else 0)  # no block: uncached
        total = total + cost_of(Tokens(uncached=tail, output=call.output_tokens), billed)
    for key, seen_uses in uses.items():
        tokens, prices = sizes[key]
        total = total + _priced(tokens, _cheapest(seen_uses, prices)[1:], prices)
    return total
