"""Call records and the token and money arithmetic most wrappers get wrong.

`usage.input_tokens` is only what follows the last breakpoint; the prompt is
`input_tokens + cache_creation_input_tokens + cache_read_input_tokens`.  Cache
writes are priced at their TTL's write rate, reads at the read rate, and the
saving is measured against the same call with no caching at all.  Prices come
from the model data (`models.json`), never from code.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from anthropic.types import Message, Usage
from pydantic import BaseModel, ConfigDict

from .models import Prices

__all__ = ["CallRecord", "Cost", "Tokens", "Totals", "cost_of", "tokens_of", "totals"]

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

    def __add__(self, other: Cost) -> Cost:
        fields = type(self).model_fields
        return Cost(**{f: getattr(self, f) + getattr(other, f) for f in fields})


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


class CallRecord(BaseModel):
    """One call to the Messages API, as the session saw it (failed calls included)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: int
    kind: Literal["ask", "prewarm", "create", "tool_loop"] = "ask"
    model: str
    started_at: float
    """Seconds on the session's clock (the emulator's offline)."""
    request: dict[str, Any]
    response: Message | None = None
    latency_s: float = 0.0
    error: str | None = None
    estimated: bool = False
    """True when token figures come from the offline estimator, not the API."""
    prices: Prices | None = None
    prediction: list[dict[str, Any]] | None = None
    """Per breakpoint: what the session expected before sending (see cache.predict)."""

    @property
    def ok(self) -> bool:
        return self.response is not None and self.error is None

    @property
    def usage(self) -> Usage | None:
        return self.response.usage if self.response is not None else None

    @property
    def tokens(self) -> Tokens:
        return tokens_of(self.usage) if self.usage is not None else Tokens()

    @property
    def cost(self) -> Cost:
        return cost_of(self.tokens, self.prices) if self.prices is not None else Cost()

    @property
    def hit(self) -> bool:
        return self.tokens.read > 0

    @property
    def outcome(self) -> str:
        """`hit`, `write`, `hit+write`, `uncached` or `failed`, for tables and summaries."""
        if not self.ok:
            return "failed"
        t = self.tokens
        if t.read and t.written:
            return "hit+write"
        return "hit" if t.read else "write" if t.written else "uncached"


class Totals(BaseModel):
    """Sums over a session's successful calls."""

    model_config = ConfigDict(frozen=True)

    calls: int
    failed: int
    tokens: Tokens
    cost: Cost


def totals(records: Iterable[CallRecord]) -> Totals:
    calls = failed = 0
    parts = {f: 0 for f in Tokens.model_fields}
    cost = Cost()
    for record in records:
        if not record.ok:
            failed += 1
            continue
        calls += 1
        for f in parts:
            parts[f] += getattr(record.tokens, f)
        cost = cost + record.cost
    return Totals(calls=calls, failed=failed, tokens=Tokens(**parts), cost=cost)
