"""One call's record (request as sent, response, usage, cost, timing) and a session's totals.

The record is what every view reads and what a session file keeps, so it carries the
billing split (`usage.Tokens`) and the price (`usage.Cost`) computed once, at record time.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any, Literal

from anthropic.types import Message, Usage
from pydantic import BaseModel, ConfigDict, field_validator

from .fmt import clock, plural
from .models import Prices
from .usage import Cost, Tokens, cost_of, tokens_of

__all__ = ["MAX_ERROR", "CallRecord", "Totals", "bounded_error", "outcome_of", "totals"]

#: The most characters of a failed call's error a record keeps.  The API's own message comes first
#: and is far shorter; a server's 20 MB error page would otherwise be kept, shown, saved and loaded.
MAX_ERROR = 2_000


def bounded_error(text: str) -> str:
    """`text` in at most `MAX_ERROR` characters: its start (where the API's message is), then what
    the cut was.  Cutting again changes nothing, so a record loaded back is the record saved."""
    if len(text) <= MAX_ERROR:
        return text
    note = f"… (cut from {len(text):,} characters)"
    return text[: MAX_ERROR - len(note)] + note


def outcome_of(t: Tokens) -> str:
    """An answered call's outcome from its billing split (`CallRecord.outcome` without the lookups)."""
    if t.read and t.written:
        return "hit+write"
    return "hit" if t.read else "write" if t.written else "uncached"


class CallRecord(BaseModel):
    """One call to the Messages API, as the session saw it (failed calls included)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: int
    kind: Literal["ask", "prewarm", "create", "tool_loop", "batch"] = "ask"
    """`batch`: a request of a Message Batch (`session.batch`), priced at `usage.batch_prices`."""
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
    in_flight: list[int] = []
    """The calls begun and not yet answered when this one began (gathered async calls): what they
    wrote was not readable to it, since an entry is readable once the response that wrote it began."""

    @field_validator("error")
    @classmethod
    def _bounded(cls, error: str | None) -> str | None:
        """A record built from a session file holds at most `MAX_ERROR` characters of error too."""
        return None if error is None else bounded_error(error)

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
        return self.priced(self.tokens)

    def priced(self, tokens: Tokens) -> Cost:
        """`tokens` (this call's billing split, when the caller has built it) at this call's prices."""
        return cost_of(tokens, self.prices) if self.prices is not None else Cost()

    @property
    def hit(self) -> bool:
        return self.tokens.read > 0

    @property
    def outcome(self) -> str:
        """`hit`, `write`, `hit+write`, `uncached` or `failed`, for tables and summaries."""
        return outcome_of(self.tokens) if self.ok else "failed"

    def __repr__(self) -> str:
        """What a person looks for (not the request and response dumped whole)."""
        head = f"CallRecord(index={self.index}, kind={self.kind!r}, model={self.model!r}, "
        head += f"started_at={clock(self.started_at)} UTC, outcome={self.outcome!r}"
        if not self.ok:
            return f"{head}, error={self.error!r})"
        est = ", estimated" if self.estimated else ""
        return f"{head}, tokens={self.tokens!r}, cost={self.cost}, latency_s={self.latency_s:.2f}{est})"


class Totals(BaseModel):
    """Sums over a session's successful calls, and how many failed."""

    model_config = ConfigDict(frozen=True)

    calls: int = 0
    failed: int = 0
    tokens: Tokens = Tokens()
    cost: Cost = Cost()

    def __repr__(self) -> str:
        every = plural(self.calls + self.failed, "call")  # as the views count them: failed ones too
        return f"Totals({every} ({self.failed} failed), {self.tokens!r}, {self.cost!r})"

    def plus(self, record: CallRecord) -> Totals:
        """These totals with one more call: a view keeps a running sum instead of summing every call."""
        if not record.ok:
            return self.model_copy(update={"failed": self.failed + 1})
        t, parts = record.tokens, self.tokens
        tokens = Tokens(**{f: getattr(parts, f) + getattr(t, f) for f in Tokens.model_fields})
        return Totals(calls=self.calls + 1, failed=self.failed, tokens=tokens, cost=self.cost + record.cost)


def totals(records: Iterable[CallRecord]) -> Totals:
    return functools.reduce(Totals.plus, records, Totals())
