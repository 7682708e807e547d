"""The money a call may cost before it is sent: its predicted price, and the guard that refuses it.

A call's price is known before it goes out, up to its answer: the pre-flight predictions say
per breakpoint what will be read and what written (`Ledger.predict`, the rules the emulator
applies), the layout says the whole prompt, and the answer is at most `max_tokens`.  The guard
counts the answer at `max_tokens`, so what it lets through can never cost more than its limit.

`Settings.max_cost` bounds one call; `Settings.budget` bounds the session, counting what its
calls cost so far and what the calls in flight may still cost.  A call or a map over the limit
is refused with a `BudgetError` (a `PreflightError`: nothing was sent) that gives the prediction
and how to go on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from ..core.fmt import money
from ..core.preflight import Finding, PreflightError
from ..core.usage import Tokens

__all__ = ["BudgetError", "check_limit_value", "check_limits", "predicted_tokens"]


class BudgetError(PreflightError):
    """The predicted cost is above `max_cost` or the rest of the `budget`; nothing was sent."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__([Finding(level="error", code="budget", block=None, message=message, fix=fix)])


def predicted_tokens(predictions: Iterable[Any], prompt: int, output: int) -> Tokens:
    """A call's tokens by how they are billed, from its breakpoint predictions.

    `predictions`: `Prediction`s or their dicts; `prompt`: the whole prompt's tokens (the layout's
    `total_tokens`); `output`: the answer's tokens (its `max_tokens` for a bound).  Tokens up to
    the read are read; each written breakpoint bills what lies between the previous one and it,
    at its own lifetime; the rest is uncached.
    """
    rows = [p if isinstance(p, Mapping) else p.as_dict() for p in predictions]
    read = max((int(p.get("read", 0)) for p in rows), default=0)
    written = {"5m": 0, "1h": 0}
    cursor = read
    for p in sorted(rows, key=lambda p: int(p["tokens"])):
        if p["status"] in ("write", "hit+write") and int(p["tokens"]) > cursor:
            ttl = "1h" if p["ttl"] == "1h" else "5m"
            written[ttl] += int(p["tokens"]) - cursor
            cursor = int(p["tokens"])
    uncached = max(prompt - cursor, 0)
    return Tokens(uncached=uncached, write_5m=written["5m"], write_1h=written["1h"], read=read, output=output)


def check_limit_value(name: str, value: object) -> float | None:
    """`value` as a limit in USD (None: no limit); ValueError naming `name` for anything else."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} is a cost in USD, 0 or more (or None for no limit), not {value!r}.")
    return float(value)


def check_limits(
    what: str,
    cost: float,
    *,
    per_call: float,
    max_cost: object,
    budget: object,
    spent: float,
) -> None:
    """Refuse `what` (e.g. "this call") when its predicted `cost` breaks a limit.

    `per_call`: the dearest single call in it (the call itself, or a map's dearest item), held
    to `max_cost`; `cost` plus `spent` (the session's calls so far, and those in flight) is held
    to `budget`.  BudgetError otherwise; the message gives the prediction and the way on.
    """
    limit = check_limit_value("max_cost", max_cost)
    if limit is not None and per_call > limit:
        dearest = "it" if per_call == cost else "its dearest call"
        raise BudgetError(
            f"Refused: {what} is predicted to cost up to {money(cost)} ({dearest} {money(per_call)}, "
            f"answers at max_tokens), above max_cost {money(limit)}.",
            f"Raise it (session.max_cost = {_above(per_call)}, or %config ClaudeMagics.max_cost = "
            f"{_above(per_call)}), or lower max_tokens.",
        )
    total = check_limit_value("budget", budget)
    if total is not None and spent + cost > total:
        raise BudgetError(
            f"Refused: {what} is predicted to cost up to {money(cost)} (answers at max_tokens); with "
            f"{money(spent)} already spent that is above the session's budget {money(total)}.",
            f"Raise it (session.budget = {_above(spent + cost)}, or %config ClaudeMagics.budget = "
            f"{_above(spent + cost)}), or lower max_tokens.",
        )


def _above(usd: float) -> str:
    """A round limit just above `usd`, to copy into the setting."""
    for step in (0.01, 0.1, 1.0, 10.0, 100.0):
        if usd < step * 100:
            return f"{math.ceil(round(usd / step, 9)) * step:.2f}"
    return f"{math.ceil(usd):.0f}"
