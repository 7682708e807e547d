"""What caching a prefix is worth, per token, when its future is a guess: expected reads against writes.

A prefix that the next call contains with probability `reuse`, each next call coming within a
lifetime T with probability `alive[T]`, is a small Markov decision per token: at each call it
is read (if an entry is alive), written for 5m or 1h, or sent uncached.  Prices are in units
of the model's input price (read `r`, write premiums `p5m`, `p1h` over input), so the answer
holds for every model.  With `x = reuse * alive[T]`, the cost from a call that finds no
entry, if it always writes with T and reads while it can, is

    W_T = ((1 + p_T)(1 - x) + x r) / (1 - reuse)        (and W_none = 1 / (1 - reuse))

`W` is the cheapest of the three.  Writing now with T gains `reuse W - p_T - R_T` over sending
the tokens uncached (and writing later, if ever), where `R_T = (x r + (reuse - x) W) / (1 - x)`
is what the tokens cost from the next call on while the entry lives.  Keeping an entry alive
(a free marker that refreshes it) gains `reuse W - R_T`.  A write whose gain is not positive is
one the history says will not be read often enough: the planner does not place it.  Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..core.models import Prices
from ..core.ttl import TTL, TTLS

__all__ = ["Rates", "Worth", "worth"]


@dataclass(frozen=True, slots=True)
class Rates:
    """A model's cache prices in units of its input price."""

    read: float
    premium: Mapping[TTL, float]
    """What a write costs beyond sending the tokens uncached: 0.25 for 5m, 1.0 for 1h on most models."""

    @classmethod
    def of(cls, prices: Prices) -> Rates:
        unit = prices.input
        return cls(
            read=prices.cache_read / unit,
            premium={"5m": prices.cache_write_5m / unit - 1.0, "1h": prices.cache_write_1h / unit - 1.0},
        )

    def break_even(self, ttl: TTL) -> float:
        """Reads that pay back a write of this lifetime (1 + write premium over the read saving)."""
        return self.premium[ttl] / (1.0 - self.read)


@dataclass(frozen=True, slots=True)
class Worth:
    """Per-token gains of one prefix, in input prices: write now with each TTL, or keep an entry alive."""

    write: Mapping[TTL, float]
    keep: Mapping[TTL, float]
    reads: Mapping[TTL, float]
    """Expected reads of an entry written now, before it dies or the prefix stops being sent."""

    def best(self) -> tuple[TTL | None, float]:
        """The better lifetime to write with, or None when no write pays."""
        ttl = max(TTLS, key=lambda t: self.write[t])
        return (ttl, self.write[ttl]) if self.write[ttl] > 0 else (None, 0.0)


def worth(rates: Rates, reuse: float, alive: Mapping[TTL, float]) -> Worth:
    """The gains for a prefix reused by each next call with probability `reuse` (< 1)."""
    reuse = min(max(reuse, 0.0), 0.995)
    r = rates.read
    xs = {ttl: reuse * alive[ttl] for ttl in TTLS}
    cheapest = 1.0 / (1.0 - reuse)
    for ttl, x in xs.items():
        cheapest = min(cheapest, ((1.0 + rates.premium[ttl]) * (1.0 - x) + x * r) / (1.0 - reuse))
    later = reuse * cheapest
    write: dict[TTL, float] = {}
    keep: dict[TTL, float] = {}
    reads: dict[TTL, float] = {}
    for ttl, x in xs.items():
        alive_cost = (x * r + (reuse - x) * cheapest) / (1.0 - x)
        keep[ttl] = later - alive_cost
        write[ttl] = keep[ttl] - rates.premium[ttl]
        reads[ttl] = x / (1.0 - x)
    return Worth(write, keep, reads)
