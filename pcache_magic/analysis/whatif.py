"""What other caching strategies would have cost on the same requests, replayed offline.

Whether to cache, where to put the markers and for how long is a bet on how a session will
go; this module settles it after the fact.  It replays a session's recorded requests
offline under other strategies (`strategies`: no caching, one marker on the last message,
the API's automatic caching, the user's markers at 5m or at 1h, the planner) so the choice
is made with numbers, against two floors: the ideal (every repeated prefix read, nothing
ever written) and the oracle (`oracle`, the cheapest caching that knows the future, a lower
bound that accounts for writes and lifetimes).  The replay runs a fresh emulator engine on a manual
clock moved to each call's recorded time: the engine is the ground truth for the caching
rules, so the simulation and the emulator can never disagree.  Pure apart from that
in-process engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core import fmt
from ..core.models import ModelTable, Prices, default_models
from ..core.prefix import layout
from ..core.record import CallRecord
from ..core.rules import LOOKBACK, MAX_BREAKPOINTS
from ..core.tokens import TokenEstimator
from ..core.usage import Cost, Tokens, batch_prices, cost_of
from ..emulator.engine import Engine, ManualClock
from ..emulator.errors import ApiError
from .oracle import oracle_cost
from .strategies import BASELINES, STRATEGIES, Strategy, Transform

__all__ = [
    "BASELINES",
    "STRATEGIES",
    "Replay",
    "Run",
    "Strategy",
    "Transform",
    "WhatIf",
    "ideal_cost",
    "replays",
    "simulate",
    "what_if",
]

_API_KEY = "sk-ant-what-if"
#: A share that is not defined (the oracle saves nothing): said under the table, never "none".
NO_SHARE = "—"


#: The two floors' rows: the oracle (`oracle.oracle_cost`) and the ideal (`ideal_cost`).
ORACLE = "oracle: best caching in hindsight"
IDEAL = "ideal: repeats read, writes free"
#: What the two floors are, under the table: a new user read "ideal" cheaper than the oracle, and
#: their blank cells, as a mistake.
_FLOORS = (
    f"Oracle: the cheapest caching had the future been known ({MAX_BREAKPOINTS}-marker and {LOOKBACK}-block "
    "limits relaxed); no strategy costs less. Ideal: every prefix seen before read, no write paid: "
    "never above the oracle, a bound no real caching reaches. Neither is replayed: no token counts "
    f"({NO_SHARE})."
)
#: Said after `_FLOORS` when the oracle saves something (else the ideal's share is undefined too).
_IDEAL_SHARE = " The ideal's share would pass 100%."
#: The tooltips of a floor's dashes.
_UNCOUNTED = "a floor is priced prefix by prefix, not replayed: no token counts"
_PAST = "past 100%: the ideal saves more than any caching can (it pays no writes)"


#: Why the planner lost when the best baseline wrote nothing (no caching): no read repaid a write.
_NO_WRITE_PAID = (
    "No write was read back enough to pay for itself in these calls (a prefix edited between calls, "
    "a model switch, prompts under the minimum or few repeats), so any caching cost more than none."
)
#: Why the planner can lose to a baseline on a short session: its prior (`rhythm.Prior.alive`).
_HOUR_BET = (
    "Before it has seen a pause, it writes a large stable prefix for an hour (about half of a "
    "notebook's pauses outlive five minutes); in these calls 5m writes were cheaper."
)


def _why_lost(planner: Tokens, best: Tokens) -> str | None:
    """Why the planner cost more than the best baseline, as far as their writes tell."""
    if not (best.write_5m or best.write_1h):
        return _NO_WRITE_PAID  # the best was no caching
    if best.write_5m and planner.write_1h > best.write_1h:
        return _HOUR_BET
    extra = planner.write_5m + planner.write_1h - best.write_5m - best.write_1h
    if extra > 0:
        return (
            f"It wrote {fmt.tokens(extra)} tokens more than that baseline, and not all of them were "
            "read back enough to pay for themselves."
        )
    return None


def _percent(fraction: float | None) -> str:
    """A share as a percentage, the same form whatever its sign (`-11%`: caching cost more than
    no caching); `NO_SHARE` when it is not defined."""
    if fraction is None:
        return NO_SHARE
    shown = fmt.share(abs(fraction))
    return f"-{shown}" if fraction < 0 and shown != "0%" else shown


@dataclass(frozen=True, slots=True)
class Replay:
    """One recorded request to replay: when it was sent and what its reply cost in output tokens."""

    at: float
    request: Mapping[str, Any]
    output_tokens: int = 0
    index: int = 0
    in_flight: tuple[int, ...] = ()
    """The calls (by `index`) in flight when it was sent: it arrived before their answers began."""
    batch: bool = False
    """A request of a Message Batch: every strategy pays it at the batch rate, as it was billed."""


def replays(records: Iterable[CallRecord]) -> list[Replay]:
    """A session's successful calls as replayable requests."""
    return [  # a call that read while others were in flight read their writes: their answers had begun
        Replay(
            r.started_at,
            r.request,
            r.tokens.output,
            r.index,
            () if r.tokens.read else tuple(r.in_flight),
            r.kind == "batch",
        )
        for r in records
        if r.ok
    ]


def _arrivals(calls: Sequence[Replay]) -> list[tuple[int, int]]:
    """(index of the first call in flight, position) of each call sent while others were in flight,
    in that index's order: before that call is answered, the later one takes its ticket."""
    return sorted((min(call.in_flight), pos) for pos, call in enumerate(calls) if call.in_flight)


@dataclass(frozen=True, slots=True)
class Run:
    """One strategy replayed: what it cost in total and per call."""

    strategy: str
    label: str
    cost: Cost
    tokens: Tokens
    per_call: tuple[float, ...]


def _wire(params: Mapping[str, Any]) -> dict[str, Any]:
    """The body to replay, minus what the replay must not send (diagnostics, streaming)."""
    return {k: v for k, v in params.items() if k not in ("diagnostics", "stream")}


def simulate(calls: Sequence[Replay], strategy: str | Strategy, models: ModelTable | None = None) -> Run:
    """Replay `calls` under one strategy (a key of STRATEGIES, or a Strategy) on a fresh emulator engine."""
    models = models or default_models()
    if isinstance(strategy, str):
        label, make = STRATEGIES[strategy]
    else:
        label, make = getattr(strategy, "__name__", "custom"), strategy
        strategy = label
    transform = make(models)
    engine = Engine(ManualClock(), models=models)
    cost, parts, per_call = Cost(), dict.fromkeys(Tokens.model_fields, 0), []
    last = calls[0].at if calls else 0.0
    arrivals, tickets = _arrivals(calls), {}
    for i, call in enumerate(calls, 1):
        while arrivals and arrivals[0][0] <= call.index:  # sent while this one was in flight
            tickets[arrivals.pop(0)[1]] = engine.ticket()
        if call.at > last:
            engine.advance(call.at - last)
            last = call.at
        body = _wire(transform(call.request, call.at))
        try:
            usage = engine.create_message(_API_KEY, body, arrived=tickets.get(i - 1))["usage"]
        except ApiError as error:
            raise ValueError(f"call {i} under {label!r}: the emulator rejected it: {error}") from None
        split = usage["cache_creation"]
        tokens = Tokens(
            uncached=usage["input_tokens"],
            write_5m=split["ephemeral_5m_input_tokens"],
            write_1h=split["ephemeral_1h_input_tokens"],
            read=usage["cache_read_input_tokens"],
            output=call.output_tokens,
        )
        priced = cost_of(tokens, _prices(call, models))
        cost = cost + priced
        per_call.append(priced.total)
        for name in parts:
            parts[name] += getattr(tokens, name)
    return Run(strategy, label, cost, Tokens(**parts), tuple(per_call))


def ideal_cost(calls: Sequence[Replay], models: ModelTable | None = None) -> Cost:
    """The floor: every token of a prefix seen in any earlier call read at the read rate, no writes."""
    models = models or default_models()
    estimator, seen, cost = TokenEstimator(), set[bytes](), Cost()
    for call in calls:
        lay = layout(call.request, estimator)
        read = max((p.cumulative for p in lay.positions if p.key in seen), default=0)
        seen.update(p.key for p in lay.positions)
        tokens = Tokens(uncached=lay.total_tokens - read, read=read, output=call.output_tokens)
        cost = cost + cost_of(tokens, _prices(call, models))
    return cost


def _prices(call: Replay, models: ModelTable) -> Prices:
    """The rates `call` is billed at: its model's, halved for a batch's request."""
    prices = models.get(str(call.request["model"])).prices
    return batch_prices(prices) if call.batch else prices


@dataclass(frozen=True, slots=True)
class WhatIf:
    """Each strategy's cost for the same requests at the same times, against two floors.

    `ideal` reads every repeated prefix and never pays to write (no strategy comes near it);
    `oracle` is `oracle.oracle_cost`, the tightest bound computed here that still holds for
    every strategy: the cheapest caching that knows the future, rules relaxed.
    """

    runs: tuple[Run, ...]
    ideal: Cost
    recorded: Cost | None = None
    estimated: bool = True
    notes: tuple[str, ...] = field(default=())
    oracle: Cost | None = None

    def run(self, strategy: str) -> Run:
        return next(r for r in self.runs if r.strategy == strategy)

    @property
    def best_baseline(self) -> Run:
        """The cheapest of BASELINES among the strategies replayed."""
        return min((r for r in self.runs if r.strategy in BASELINES), key=lambda r: r.cost.total)

    def fraction_of_ideal(self, strategy: str) -> float | None:
        """Saving against no caching, as a share of the ideal saving; None when nothing could be saved."""
        none, ideal = self.run("none").cost.total, self.ideal.total
        if none - ideal <= 0:
            return None
        return (none - self.run(strategy).cost.total) / (none - ideal)

    def fraction_of_oracle(self, strategy: str) -> float | None:
        """Saving against no caching, as a share of the oracle's; None when the oracle saves nothing."""
        if self.oracle is None:
            return None
        none, floor = self.run("none").cost.total, self.oracle.total
        if none - floor <= 1e-9 * none:  # nothing to save (rounding aside)
            return None
        return (none - self.run(strategy).cost.total) / (none - floor)

    @property
    def calls(self) -> int:
        """How many calls were replayed: none before the session's first successful call."""
        return len(self.runs[0].per_call) if self.runs else 0

    def _rows(self) -> list[list[str]]:
        """A row a strategy, then the two floors.  Every share is of the oracle's saving, the one
        the planner's note and the benchmarks use, as a percentage (`NO_SHARE` where it is not
        defined).  A floor is priced, not replayed, so it has no token counts, and the ideal's
        share would pass 100%: those cells read `NO_SHARE` too, said under the table (`_FLOORS`)
        and in each cell's tooltip (`_titles`), never left blank."""
        none = self.run("none").cost.total if any(r.strategy == "none" for r in self.runs) else None
        rows = []
        for r in self.runs:
            share = self.fraction_of_oracle(r.strategy) if none is not None else None
            rows.append(
                [
                    r.label,
                    fmt.money(r.cost.total),
                    fmt.money(none - r.cost.total) if none is not None else "",
                    _percent(share),
                    f"{r.tokens.read:,}",
                    f"{r.tokens.written:,}",
                ]
            )
        floors = [(ORACLE, self.oracle)] if self.oracle is not None else []
        for label, cost in [*floors, (IDEAL, self.ideal)]:
            saving = fmt.money(none - cost.total) if none is not None else ""
            rows.append([label, fmt.money(cost.total), saving, NO_SHARE, NO_SHARE, NO_SHARE])
        if self.oracle is not None:
            whole = none is not None and self.fraction_of_oracle("none") is not None  # it saves something
            rows[len(self.runs)][3] = "100%" if whole else NO_SHARE
        return rows

    def _undefined(self, rows: Sequence[Sequence[str]]) -> str | None:
        """Why a share of a strategy or the oracle reads `NO_SHARE`, when one does (the cell's
        tooltip, and under the table); `rows`: `_rows()`, whose last, the ideal's, never has one."""
        if not any(row[3] == NO_SHARE for row in rows[:-1]):
            return None
        if self.oracle is None or all(r.strategy != "none" for r in self.runs):
            return "undefined: no oracle or no caching to measure against"
        return "undefined: the oracle saves nothing against no caching"

    def _titles(self, rows: Sequence[Sequence[str]], undefined: str | None) -> dict[tuple[int, int], str]:
        """Each `NO_SHARE` cell's tooltip, by (row, column): why that figure is not there."""
        titles: dict[tuple[int, int], str] = {}
        if undefined is not None:  # a strategy's or the oracle's share
            titles |= {(r, 3): undefined for r in range(len(rows) - 1) if rows[r][3] == NO_SHARE}
        for r in range(len(self.runs), len(rows)):  # the floors
            titles |= {(r, 4): _UNCOUNTED, (r, 5): _UNCOUNTED}
        # the ideal's share: past 100% of what the oracle saves, or undefined like the oracle's
        titles[(len(rows) - 1, 3)] = _PAST if self._oracle_saves(rows) else (undefined or _PAST)
        return titles

    def _oracle_saves(self, rows: Sequence[Sequence[str]]) -> bool:
        """Whether the oracle's row has a share (it saves something against no caching)."""
        return self.oracle is not None and rows[len(self.runs)][3] != NO_SHARE

    #: The class `%claude_cost` gives this table (`fmt.html_cost`; the view's CSS styles it).
    HTML_CLASS = "pcache-cost-whatif"
    # Short, so the text table fits 80 columns; the key under it says what they measure.
    _HEAD = ("strategy", "cost", "saving", "share", "read", "written")
    _KEY = "Saving: against no caching. Share: of the oracle's saving. Read, written: cache tokens."

    def _caption(self) -> str:
        """One sentence: what the table is; the key to its columns comes under it (`_KEY`)."""
        asides = ["token counts estimated"] if self.estimated else []
        if self.recorded is not None:
            asides.append(f"recorded cost {fmt.money(self.recorded.total)}")
        aside = f" ({'; '.join(asides)})" if asides else ""
        return f"What if: these calls replayed offline under each strategy{aside}."

    def _notes(self, rows: Sequence[Sequence[str]], undefined: str | None) -> list[str]:
        """The key to the columns (with what a share of `NO_SHARE` means, when one shows), what the
        two floors are, the notes; `rows`: `_rows()`."""
        key = self._KEY if undefined is None else f"{self._KEY} A share of {NO_SHARE} is {undefined}."
        floors = _FLOORS + (_IDEAL_SHARE if self._oracle_saves(rows) else "")
        return [key, floors, *self.notes]

    def to_html(self) -> str:
        """The table, its key and the notes; before any call, `%claude_cost`'s line instead."""
        if not self.calls:
            return fmt.NO_COSTS_HTML
        rows = self._rows()
        undefined = self._undefined(rows)
        table = fmt.html_table(self._HEAD, rows, self._caption(), titles=self._titles(rows, undefined))
        return table + "".join(
            f'<p class="pcache-note">{fmt.html_text(n)}</p>' for n in self._notes(rows, undefined)
        )

    def _repr_html_(self) -> str:
        return fmt.html_cost(self.HTML_CLASS, self.to_html())

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # IPython's plain-text display
        printer.text(str(self))

    def __str__(self) -> str:
        """The caption, the table, its key and the notes in 80 columns, wrapped between words;
        before any call, `%claude_cost`'s one line."""
        if not self.calls:
            return fmt.NO_COSTS
        rows = self._rows()
        table = fmt.text_table(self._HEAD, rows)
        return fmt.fit("\n".join([self._caption(), table, *self._notes(rows, self._undefined(rows))]))


def what_if(source: Any, strategies: Sequence[str] | None = None, models: ModelTable | None = None) -> WhatIf:
    """Replay a session's calls (a Session, or a list of Replay) under each strategy, offline.

    Strategy names are keys of STRATEGIES (default: all).  The replay uses the emulator's
    token estimates, so online sessions are compared on estimates, never on billed figures.
    """
    records = getattr(source, "calls", None)
    calls = replays(records) if records is not None else list(source)
    models = models or getattr(source, "models", None) or default_models()
    names = list(strategies or STRATEGIES)
    if "none" not in names:  # every saving is measured against it
        names.insert(0, "none")
    runs = tuple(simulate(calls, name, models) for name in names)
    recorded = sum((r.cost for r in records if r.ok), Cost()) if records is not None else None
    oracle = oracle_cost(calls, models)
    result = WhatIf(runs, ideal_cost(calls, models), recorded, oracle=oracle)
    if "planner" in names and all(b in names for b in BASELINES) and result.best_baseline.cost.total > 0:
        best = result.best_baseline
        ratio = result.run("planner").cost.total / best.cost.total
        note = f"The planner costs {ratio:.2f}x the best baseline ({best.label})."
        share = result.fraction_of_oracle("planner")
        if share is not None:
            note += f" Its share of the oracle's saving: {_percent(share)}"
            note += " (it costs more than no caching)." if share < 0 else "."
        if ratio > 1 and (why := _why_lost(result.run("planner").tokens, best.tokens)) is not None:
            note += f" {why}"
        result = WhatIf(runs, result.ideal, recorded, notes=(note,), oracle=oracle)
    return result
