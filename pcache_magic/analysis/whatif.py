"""What other caching strategies would have cost on the same requests, replayed offline.

Whether to cache, where to put the markers and for how long is a bet on how a session will
go; this module settles it after the fact.  It replays a session's recorded requests
offline under other strategies (no caching, one marker on the last message, the API's
automatic caching, the user's markers at 5m or at 1h, the planner) so the choice is made
with numbers, against an ideal floor.  The replay runs a fresh emulator engine on a manual
clock moved to each call's recorded time: the engine is the ground truth for the caching
rules, so the simulation and the emulator can never disagree.  Pure apart from that
in-process engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from ..core import fmt
from ..core.models import ModelTable, default_models
from ..core.prefix import layout, message_blocks
from ..core.record import CallRecord
from ..core.tokens import TokenEstimator
from ..core.usage import Cost, Tokens, cost_of
from ..emulator.engine import Engine, ManualClock
from ..emulator.errors import ApiError
from .planner import Planner, with_markers

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

#: Rewrites one request for a strategy; called in call order with the call's time.
Transform = Callable[[Mapping[str, Any], float], dict[str, Any]]
#: Makes a fresh Transform for one replay (strategies such as the planner keep state).
Strategy = Callable[[ModelTable], Transform]
_API_KEY = "sk-ant-what-if"


@dataclass(frozen=True, slots=True)
class Replay:
    """One recorded request to replay: when it was sent and what its reply cost in output tokens."""

    at: float
    request: Mapping[str, Any]
    output_tokens: int = 0


def replays(records: Iterable[CallRecord]) -> list[Replay]:
    """A session's successful calls as replayable requests."""
    return [Replay(r.started_at, r.request, r.tokens.output) for r in records if r.ok]


def _as_sent(models: ModelTable) -> Transform:
    return lambda params, at: dict(params)


def _none(models: ModelTable) -> Transform:
    return lambda params, at: with_markers(params, {})


def _last(models: ModelTable) -> Transform:
    """claudette's strategy: one 5m marker on the last cacheable block of the last message."""

    def transform(params: Mapping[str, Any], at: float) -> dict[str, Any]:
        messages = params.get("messages") or []
        m = len(messages) - 1
        blocks = message_blocks(messages[-1]) if messages else []
        for j in range(len(blocks) - 1, -1, -1):
            b = blocks[j]
            if b.get("type") not in ("thinking", "redacted_thinking") and not (
                b.get("type") == "text" and not b.get("text")
            ):
                return with_markers(params, {f"messages.{m}.content.{j}": "5m"})
        return with_markers(params, {})

    return transform


def _automatic(models: ModelTable) -> Transform:
    return lambda params, at: {**with_markers(params, {}), "cache_control": {"type": "ephemeral"}}


def _forced(ttl: str) -> Strategy:
    """The request's own markers (and automatic caching, if used), every one with lifetime `ttl`."""

    def make(models: ModelTable) -> Transform:
        estimator = TokenEstimator()

        def transform(params: Mapping[str, Any], at: float) -> dict[str, Any]:
            marked = {p.path: ttl for p in layout(params, estimator).positions if p.marker}
            out = with_markers(params, marked)
            if params.get("cache_control") is not None:
                out["cache_control"] = {"type": "ephemeral", "ttl": ttl}
            return out

        return transform

    return make


def _planner(models: ModelTable) -> Transform:
    planners: dict[str, Planner] = {}
    estimator = TokenEstimator()

    def transform(params: Mapping[str, Any], at: float) -> dict[str, Any]:
        model = str(params["model"])
        if model not in planners:
            planners[model] = Planner(models.get(model), estimator=estimator, keep_explicit=False)
        planned = planners[model].plan(params, at)
        planners[model].observe(planned, at)
        return planned

    return transform


#: name -> (label, strategy), in the order the what-if table shows them.
STRATEGIES: dict[str, tuple[str, Strategy]] = {
    "as-sent": ("as sent", _as_sent),
    "none": ("no caching", _none),
    "last": ("one marker on the last message (claudette)", _last),
    "automatic": ("the API's automatic caching", _automatic),
    "all-5m": ("your markers, all 5m", _forced("5m")),
    "all-1h": ("your markers, all 1h", _forced("1h")),
    "planner": ("the planner (--cache auto)", _planner),
}
#: The strategies the planner must never lose to.
BASELINES = ("none", "last", "automatic")


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


def simulate(calls: Sequence[Replay], strategy: str, models: ModelTable | None = None) -> Run:
    """Replay `calls` under one strategy (a key of STRATEGIES) on a fresh emulator engine."""
    models = models or default_models()
    label, make = STRATEGIES[strategy]
    transform = make(models)
    engine = Engine(ManualClock(), models=models)
    cost, parts, per_call = Cost(), dict.fromkeys(Tokens.model_fields, 0), []
    last = calls[0].at if calls else 0.0
    for i, call in enumerate(calls, 1):
        if call.at > last:
            engine.advance(call.at - last)
            last = call.at
        body = _wire(transform(call.request, call.at))
        try:
            usage = engine.create_message(_API_KEY, body)["usage"]
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
        priced = cost_of(tokens, models.get(body["model"]).prices)
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
        cost = cost + cost_of(tokens, models.get(str(call.request["model"])).prices)
    return cost


@dataclass(frozen=True, slots=True)
class WhatIf:
    """Each strategy's cost for the same requests at the same times, against the ideal floor."""

    runs: tuple[Run, ...]
    ideal: Cost
    recorded: Cost | None = None
    estimated: bool = True
    notes: tuple[str, ...] = field(default=())

    def run(self, strategy: str) -> Run:
        return next(r for r in self.runs if r.strategy == strategy)

    @property
    def best_baseline(self) -> Run:
        """The cheapest of no caching, one marker on the last message and automatic caching."""
        return min((r for r in self.runs if r.strategy in BASELINES), key=lambda r: r.cost.total)

    def fraction_of_ideal(self, strategy: str) -> float | None:
        """Saving against no caching, as a share of the ideal saving; None when nothing could be saved."""
        none, ideal = self.run("none").cost.total, self.ideal.total
        if none - ideal <= 0:
            return None
        return (none - self.run(strategy).cost.total) / (none - ideal)

    def _rows(self) -> list[list[str]]:
        none = self.run("none").cost.total if any(r.strategy == "none" for r in self.runs) else None
        rows = []
        for r in self.runs:
            share = self.fraction_of_ideal(r.strategy) if none is not None else None
            rows.append(
                [
                    r.label,
                    fmt.money(r.cost.total),
                    fmt.money(none - r.cost.total) if none is not None else "",
                    f"{share:.0%}" if share is not None else "",
                    f"{r.tokens.read:,}",
                    f"{r.tokens.written:,}",
                ]
            )
        rows.append(["ideal (every repeated prefix read)", fmt.money(self.ideal.total), "", "100%", "", ""])
        return rows

    _HEAD = ("strategy", "cost", "saving vs none", "of ideal saving", "read", "written")

    def _caption(self) -> str:
        text = "What if: the same requests at the same times, replayed offline"
        if self.estimated:
            text += " (token counts estimated)"
        if self.recorded is not None:
            text += f"; recorded cost {fmt.money(self.recorded.total)}"
        return text

    def to_html(self) -> str:
        notes = "".join(f'<p class="pcache-note">{escape(n)}</p>' for n in self.notes)
        return fmt.html_table(self._HEAD, self._rows(), self._caption()) + notes

    def _repr_html_(self) -> str:
        return self.to_html()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # IPython's plain-text display
        printer.text(str(self))

    def __str__(self) -> str:
        return "\n".join([self._caption(), fmt.text_table(self._HEAD, self._rows()), *self.notes])


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
    result = WhatIf(runs, ideal_cost(calls, models), recorded)
    if "planner" in names and all(b in names for b in BASELINES) and result.best_baseline.cost.total > 0:
        best = result.best_baseline
        ratio = result.run("planner").cost.total / best.cost.total
        note = f"The planner costs {ratio:.2f}x the best baseline ({best.label})."
        result = WhatIf(runs, result.ideal, recorded, notes=(note,))
    return result
