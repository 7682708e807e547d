"""The token and money arithmetic most wrappers get wrong.

`usage.input_tokens` is only what follows the last breakpoint; the prompt is
`input_tokens + cache_creation_input_tokens + cache_read_input_tokens`.  Cache
writes are priced at their TTL's write rate, reads at the read rate, and the
saving is measured against the same call with no caching at all.  Prices come
from the model data (`models.json`), never from code.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

from anthropic.types import Usage
from pydantic import BaseModel, ConfigDict

from .fmt import LABELS, money, tokens
from .models import Prices

__all__ = ["Cost", "Tokens", "batch_price_factor", "batch_prices", "cost_of", "tokens_of"]

_MILLION = 1_000_000


class Tokens(BaseModel):
    """A call's tokens by how they are billed (the 5m/1h split made explicit)."""

    model_config = ConfigDict(frozen=True)

    uncached: int = 0
    write_5m: int = 0
    write_1h: int = 0
    read: int = 0
    output: int = 0

    @property
    def written(self) -> int:
        return self.write_5m + self.write_1h

    @property
    def prompt(self) -> int:
        """All input tokens of the call: uncached + written + read."""
        return self.uncached + self.written + self.read

    def __repr__(self) -> str:
        """In the API's order (cache read, cache write 5m/1h, uncached input, output), with commas."""
        parts = ("read", "write_5m", "write_1h", "uncached", "output")
        return "Tokens(" + ", ".join(f"{name}={getattr(self, name):,}" for name in parts) + ")"

    __str__ = __repr__

    def line(self, estimated: bool = False) -> str:
        """`cache read 1,695 · cache write 5m 0 · uncached input 128 · output 87`: the API's
        quantities in the words every view uses; `~` marks estimated figures."""
        writes = [(ttl, n) for ttl, n in (("5m", self.write_5m), ("1h", self.write_1h)) if n]
        write = " + ".join(f"{ttl} {tokens(n, estimated)}" for ttl, n in writes) or "0"
        return (
            f"{LABELS['read']} {tokens(self.read, estimated)} · {LABELS['write']} {write} · "
            f"{LABELS['uncached']} {tokens(self.uncached, estimated)} · "
            f"{LABELS['output']} {tokens(self.output, estimated)}"
        )


def tokens_of(usage: Usage) -> Tokens:
    """Split a `Usage`, tolerating APIs and older models that omit the cache fields."""
    written = usage.cache_creation_input_tokens or 0
    split = usage.cache_creation
    if split is not None:
        w5, w1 = split.ephemeral_5m_input_tokens, split.ephemeral_1h_input_tokens
    else:  # no breakdown: the API's default lifetime is 5 minutes
        w5, w1 = written, 0
    return Tokens(
        uncached=usage.input_tokens,
        write_5m=w5,
        write_1h=w1,
        read=usage.cache_read_input_tokens or 0,
        output=usage.output_tokens,
    )


class Cost(BaseModel):
    """USD for one call, part by part, and what it would have cost with no caching."""

    model_config = ConfigDict(frozen=True)

    uncached: float = 0.0
    write_5m: float = 0.0
    write_1h: float = 0.0
    read: float = 0.0
    output: float = 0.0
    no_cache: float = 0.0

    @property
    def total(self) -> float:
        return self.uncached + self.write_5m + self.write_1h + self.read + self.output

    @property
    def saving(self) -> float:
        """Positive when caching paid off; negative on a write that was never read."""
        return self.no_cache - self.total

    def __repr__(self) -> str:
        """Amounts as the views show them (`$0.0123`), not 17-digit floats; zero parts left out."""
        parts = ("read", "write_5m", "write_1h", "uncached", "output")
        shown = [f"{name}={money(getattr(self, name))}" for name in parts if getattr(self, name)]
        head = f"total={money(self.total)}, no_cache={money(self.no_cache)}, saving={money(self.saving)}"
        return f"Cost({', '.join([head, *shown])})"

    def __str__(self) -> str:
        saving = self.saving
        if saving >= 0 or money(-saving) == money(0.0):  # float dust is no extra cost: "saved $0.0000"
            return f"{money(self.total)} (saved {money(max(saving, 0.0))})"
        return f"{money(self.total)} ({money(-saving)} more than uncached)"

    def __add__(self, other: Cost) -> Cost:
        fields = type(self).model_fields
        return Cost(**{f: getattr(self, f) + getattr(other, f) for f in fields})

    def __radd__(self, other: object) -> Cost:
        """`sum(record.cost for record in session.calls)` works: `sum` starts from 0."""
        if other == 0:
            return self
        return NotImplemented


def cost_of(tokens: Tokens, prices: Prices) -> Cost:
    """Price each part at its own rate (per million tokens)."""
    return Cost(
        uncached=tokens.uncached * prices.input / _MILLION,
        write_5m=tokens.write_5m * prices.cache_write_5m / _MILLION,
        write_1h=tokens.write_1h * prices.cache_write_1h / _MILLION,
        read=tokens.read * prices.cache_read / _MILLION,
        output=tokens.output * prices.output / _MILLION,
        no_cache=(tokens.prompt * prices.input + tokens.output * prices.output) / _MILLION,
    )


@functools.cache
def batch_price_factor() -> float:
    """What the Message Batches API charges of the standard price (0.5), from `data/batch.json`,
    which names its source: a price, so data rather than code."""
    path = resources.files(__package__ or "pcache_magic.core") / "data" / "batch.json"
    factor = json.loads(path.read_text(encoding="utf-8"))["price_factor"]
    if isinstance(factor, bool) or not isinstance(factor, int | float) or not 0 < factor <= 1:
        raise ValueError(f"data/batch.json: price_factor must be a number in (0, 1], not {factor!r}")
    return float(factor)


def batch_prices(prices: Prices) -> Prices:
    """The rates of a request sent in a batch: every rate, cache writes and reads included, at
    the batch discount (the discounts stack), so `cost_of` prices a batch call as it is billed."""
    factor = batch_price_factor()
    return Prices(**{name: getattr(prices, name) * factor for name in Prices.model_fields})
