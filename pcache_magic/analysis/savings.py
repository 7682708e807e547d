"""What caching cost and saved, call by call, and when a write pays for itself.

Users mostly see prompt caching as a bill, and most tools get it wrong or hide it.  This
module prices every call against the same call with no caching (`usage.cost_of`) and says
how many reads pay back a write at the model's own rates.  What other strategies would have
cost is `whatif`; its names are re-exported here, where they first lived.  Pure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ..core import fmt
from ..core.models import Prices
from ..core.record import CallRecord
from ..core.usage import Cost
from .whatif import (
    BASELINES,
    STRATEGIES,
    Replay,
    Run,
    Strategy,
    Transform,
    WhatIf,
    ideal_cost,
    replays,
    simulate,
    what_if,
)

__all__ = [
    "BASELINES",
    "STRATEGIES",
    "CallMoney",
    "Money",
    "Replay",
    "Run",
    "Strategy",
    "Transform",
    "WhatIf",
    "break_even_reads",
    "ideal_cost",
    "money",
    "replays",
    "simulate",
    "what_if",
]


def break_even_reads(prices: Prices, ttl: str = "5m") -> int | None:
    """Reads after which one write has paid for itself: ceil((write - input) / (input - read)).

    Per token, a write costs `write - input` more than sending the tokens uncached and each
    read saves `input - read`.  None when reads are not cheaper than input (never pays).
    """
    write = prices.cache_write_1h if ttl == "1h" else prices.cache_write_5m
    saving = prices.input - prices.cache_read
    if saving <= 0:
        return None
    return max(0, math.ceil((write - prices.input) / saving - 1e-9))


@dataclass(frozen=True, slots=True)
class CallMoney:
    """One call's cost, its cumulative cost so far, and a note on what its writes need to pay off."""

    index: int
    model: str
    outcome: str
    cost: Cost
    cumulative: Cost
    note: str


@dataclass(frozen=True, slots=True)
class Money:
    """A session's calls priced, with running totals: `_repr_html_` for a notebook, `str` in 80
    columns (`fmt.TEXT_WIDTH`) for a terminal or a notebook's plain text."""

    calls: tuple[CallMoney, ...]
    total: Cost

    #: The class `%claude_cost` gives this table (`fmt.html_cost`; the view's CSS styles it).
    HTML_CLASS = "pcache-cost-calls"
    _HEAD = (
        "call",
        "model",
        "outcome",
        "cost",
        "no caching",
        "saving",
        "total so far",
        "saved so far",
        "note",
    )
    # The text keeps the figures in the table and the words below it: nine columns are ~170 wide.
    _TEXT_HEAD = ("call", "outcome", "cost", "no caching", "saving", "total so far", "saved so far")

    def _rows(self) -> list[list[str]]:
        return [
            [
                str(c.index),
                c.model,
                c.outcome,
                fmt.money(c.cost.total),
                fmt.money(c.cost.no_cache),
                fmt.money(c.cost.saving),
                fmt.money(c.cumulative.total),
                fmt.money(c.cumulative.saving),
                c.note,
            ]
            for c in self.calls
        ]

    def saved(self) -> str:
        """What caching saved against no caching, or what it cost more (never a negative saving)."""
        saving = self.total.saving
        if saving < 0:
            return f"{fmt.money(-saving)} more than no caching"
        return f"saved {fmt.money(saving)} against no caching"

    def footer(self) -> str:
        """The text's last line: the total and what caching saved."""
        return f"total {fmt.money(self.total.total)}, {self.saved()}"

    def _one_model(self) -> str | None:
        """The model, when every call used the same one: said once, not in a column of its own."""
        models = {c.model for c in self.calls}
        return models.pop() if len(models) == 1 else None

    def to_html(self) -> str:
        """The figures, each call's note in a full-width row under them (in a column of its own, at
        700 px, a note wrapped to four or six lines a call), the model in the caption when there
        is one: a column of one id repeated would cost ~100 px (a dated id ~180 px), and an id
        never wraps."""
        if not self.calls:  # before the first successful call: `%claude_cost`'s line, no empty table
            return fmt.NO_COSTS_HTML
        caption = f"Cost {fmt.money(self.total.total)}, {self.saved()}"
        notes = [c.note for c in self.calls]
        figures = [row[:-1] for row in self._rows()]  # the note last: under its call instead
        model = self._one_model()
        if model is None:
            return fmt.html_table(self._HEAD[:-1], figures, caption, notes=notes)
        head = [h for h in self._HEAD[:-1] if h != "model"]
        rows = [[row[0], *row[2:]] for row in figures]
        return fmt.html_table(head, rows, f"{caption} ({model})", notes=notes)

    def _repr_html_(self) -> str:
        return fmt.html_cost(self.HTML_CLASS, self.to_html())

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # IPython's plain-text display
        printer.text(str(self))

    def __str__(self) -> str:
        """The figures as a table, each call's note below it (with its model when the calls used
        more than one), the total last; wrapped between words, never inside a number."""
        if not self.calls:
            return fmt.NO_COSTS
        figures = [[row[0], *row[2:8]] for row in self._rows()]
        model = self._one_model()
        notes = [_note_line(c, model is None) for c in self.calls if c.note or model is None]
        total = self.footer() + (f" ({model})" if model is not None else "")
        return fmt.fit("\n".join([fmt.text_table(self._TEXT_HEAD, figures), *notes, total]))


def _note_line(call: CallMoney, models: bool) -> str:
    """A call's note under the text table; `models`: the calls used more than one, and the table
    has no column for them, so each call's line names its model (a call without a note, only that)."""
    if not models:
        return f"  call {call.index}: {call.note}"
    if not call.note:
        return f"  call {call.index}: {call.model}"
    return f"  call {call.index} ({call.model}): {call.note}"


#: How many reads, said as words where they read better than a number.
_TIMES = MappingProxyType({1: "once", 2: "twice"})


def _note(record: CallRecord) -> str:
    t, prices = record.tokens, record.prices
    if prices is None:
        return "no prices for this model"
    parts = []
    for ttl, written in (("1h", t.write_1h), ("5m", t.write_5m)):
        if written:
            n = break_even_reads(prices, ttl)
            pays = (
                "never pays (reads cost as much as input)"
                if n is None
                else f"pays for itself if read {_TIMES.get(n, f'{n:,} times')}"  # read or not
            )
            parts.append(f"this {ttl} write of {written:,} tokens {pays}")
    if t.read:
        parts.append(
            f"read {t.read:,} tokens: {fmt.money(t.read * (prices.input - prices.cache_read) / 1e6)} saved"
        )
    return "; ".join(parts)


def money(source: Any) -> Money:
    """Price a session's successful calls (`source`: a Session, or a list of CallRecord)."""
    records: Sequence[CallRecord] = getattr(source, "calls", source)
    rows, total = [], Cost()
    for record in records:
        if not record.ok:
            continue
        total = total + record.cost
        outcome = f"pre-warm ({record.outcome})" if record.kind == "prewarm" else record.outcome
        rows.append(CallMoney(record.index, record.model, outcome, record.cost, total, _note(record)))
    return Money(tuple(rows), total)
