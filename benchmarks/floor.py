"""Why no planner can meet "<= 1.00x the best baseline on every workload": the first-call bet, priced.

A `Pair` is two sessions of one real family that are the same in everything a planner can
see up to the decisive call (the first call that can write an entry: same requests, same
times), and differ only in the times after it: a session as the family drew it, and the same
requests with a 30-minute pause after that call (`paused`) or with the user going on twice as
fast (`hurried`).  The best baseline of one is a 5m bet on the first call, of the other 1h.
Whatever markers a planner puts on the decisive call, it puts the same ones on both sessions.
For every such choice (each cacheable position unmarked, 5m or 1h; at most four markers; never
1h after 5m), the decisive call is billed by the emulator's engine, and the rest of each
session is priced by `oracle.oracle_cost` with that call fixed: a lower bound on every
continuation, even one that knows the future.  The worse of the two ratios to each session's
best baseline is what the choice risks; the smallest of those over the choices
(`min_worst_ratio`) is a floor for every planner that does not see the future.  Above 1.00x,
the goal is unreachable on that pair.  Next to it, the exact replay of the minimax choice
followed by the cheapest of the baselines' and the planner's markers shows
how close the bound is to what can be had.  Pure apart from the in-process engine.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pcache_magic.analysis.markers import with_markers
from pcache_magic.analysis.oracle import Fixed, oracle_cost
from pcache_magic.analysis.strategies import BASELINES, STRATEGIES, Strategy, Transform
from pcache_magic.analysis.whatif import Replay, ideal_cost, simulate
from pcache_magic.core.models import ModelTable
from pcache_magic.core.prefix import layout
from pcache_magic.core.rules import CacheRuleError, resolve_breakpoints
from pcache_magic.core.tokens import TokenEstimator
from pcache_magic.emulator.engine import Engine, ManualClock
from pcache_magic.emulator.errors import ApiError

from .workloads.suite import FAMILIES, HELDOUT_SEEDS, generate

__all__ = [
    "PAUSE",
    "Choice",
    "Pair",
    "billed",
    "choices",
    "floor",
    "followed_by",
    "hurried",
    "pair",
    "pairs",
    "paused",
    "worst_ratio",
]

#: The pause after the decisive call in the second session of a pair.
PAUSE = 1_800.0
#: A choice: request path -> lifetime of the marker put there (empty: no marker).
Choice = Mapping[str, str]
_KEY = "sk-ant-floor"


@dataclass(frozen=True)
class Pair:
    """Two sessions equal up to and including call `decisive`, different only in the times after it."""

    name: str
    family: str
    seed: int
    decisive: int
    sessions: Mapping[str, tuple[Replay, ...]]


def _decisive(calls: Sequence[Replay], models: ModelTable) -> int:
    """The first call with a place a marker could write at (cacheable, at the model's minimum)."""
    estimator = TokenEstimator()
    for n, call in enumerate(calls):
        info = models.get(str(call.request["model"]))
        lay = layout(call.request, estimator, model=info.id)
        if any(p.cacheable and p.cumulative >= info.min_cache_tokens for p in lay.positions):
            return n
    raise ValueError("no call of the session can write a cache entry")


def paused(offset: float) -> float:
    """The user pauses 30 minutes after the decisive call, then goes on as before."""
    return offset + PAUSE


def hurried(offset: float) -> float:
    """The user goes on twice as fast after the decisive call."""
    return offset / 2


def pair(
    family: str,
    want: Callable[[Mapping[str, Any]], bool],
    retime: Callable[[float], float],
    models: ModelTable,
) -> Pair:
    """The first session of `family` (seeds 1, 2, ..., never a held-out one) whose draw is `want`ed, as
    drawn and with `retime` applied to the seconds after its decisive call (the requests unchanged)."""
    chosen = next(f for f in FAMILIES if f.name == family)
    for seed in itertools.count(1):
        if seed in HELDOUT_SEEDS:
            continue
        generated = generate(chosen, seed)
        if want(generated.drawn):
            break
    calls = generated.workload.calls
    n = _decisive(calls, models)
    at = calls[n].at
    other = tuple(
        c if i <= n else Replay(at + retime(c.at - at), c.request, c.output_tokens)
        for i, c in enumerate(calls)
    )
    return Pair(f"{family}.s{seed}", family, seed, n, {"as drawn": calls, retime.__name__: other})


def pairs(models: ModelTable) -> list[Pair]:
    """The reported pairs: fresh questions over a paper, quick then maybe a pause (5m or 1h first?);
    a manual among small prompts, as drawn (1h pays) or twice as fast (5m pays)."""
    return [
        pair("paper_questions", lambda d: d["fresh"] and d["regime"] == "quick", paused, models),
        pair("small_and_large", lambda d: True, hurried, models),
    ]


def choices(request: Mapping[str, Any], model: str) -> list[dict[str, str]]:
    """Every marker set a planner could put on `request`: per cacheable block none, 5m or 1h, at most
    four markers, no 1h after a 5m (the API rejects that order)."""
    estimator = TokenEstimator()
    paths = [p.path for p in layout(request, estimator, model=model).positions if p.cacheable]
    out = []
    for ttls in itertools.product((None, "5m", "1h"), repeat=len(paths)):
        choice = {path: ttl for path, ttl in zip(paths, ttls, strict=True) if ttl is not None}
        try:  # the rules' own check of the count and the order, as the API words them
            resolve_breakpoints(layout(with_markers(request, choice), estimator, model=model))
        except CacheRuleError:
            continue
        out.append(choice)
    return out


def billed(request: Mapping[str, Any], models: ModelTable) -> Fixed:
    """What the engine writes for `request` on an empty cache, at each lifetime (call index 0)."""
    usage = Engine(ManualClock(), models=models).create_message(_KEY, dict(request))["usage"]
    if usage["cache_read_input_tokens"]:
        raise ValueError("the decisive call must find an empty cache")
    split = usage["cache_creation"]
    return Fixed(0, split["ephemeral_1h_input_tokens"], split["ephemeral_5m_input_tokens"])


def worst_ratio(
    p: Pair, request: Mapping[str, Any], best: Mapping[str, float], models: ModelTable
) -> dict[str, float]:
    """Per session: the bound on its cost with `request` (marked) as the decisive call, over its best
    baseline.

    Raises `ApiError` when the engine rejects the marked request (no planner can send it)."""
    wrote = billed(request, models)
    fixed = Fixed(p.decisive, wrote.write_1h, wrote.write_5m)
    return {name: oracle_cost(calls, models, fixed).total / best[name] for name, calls in p.sessions.items()}


def followed_by(first: Choice, decisive: int, rest: Strategy) -> Strategy:
    """`first` on the decisive call, `rest`'s markers on every other call (told of every call)."""

    def make(models: ModelTable) -> Transform:
        transform, calls = rest(models), itertools.count()

        def each(params: Mapping[str, Any], at: float) -> dict[str, Any]:
            planned = transform(params, at)  # stateful strategies see the call either way
            return with_markers(params, first) if next(calls) == decisive else planned

        return each

    return make


def floor(p: Pair, models: ModelTable) -> tuple[float, dict[str, Any]]:
    """The minimax ratio over the decisive call's choices, and the table behind it."""
    usd = {
        name: {s: simulate(calls, s, models).cost.total for s in (*BASELINES, "planner")}
        for name, calls in p.sessions.items()
    }
    best = {name: min(usd[name][s] for s in BASELINES) for name in p.sessions}
    first = next(iter(p.sessions.values()))
    request = first[p.decisive].request
    model = models.get(str(request["model"])).id
    rows: list[dict[str, Any]] = []
    for choice in choices(request, model):
        try:
            ratios = worst_ratio(p, with_markers(request, choice), best, models)
        except ApiError:
            continue
        rows.append({"markers": dict(choice) or "none", "bound_ratio": ratios, "worst": max(ratios.values())})
    top = min(rows, key=lambda r: r["worst"])
    chosen: Choice = top["markers"] if isinstance(top["markers"], dict) else {}
    replayed = {
        name: min(
            simulate(calls, followed_by(chosen, p.decisive, STRATEGIES[s][1]), models).cost.total
            for s in (*BASELINES, "planner")
        )
        / best[name]
        for name, calls in p.sessions.items()
    }
    details = {
        "what": f"{p.family} seed {p.seed}: {' and '.join(p.sessions)} after call {p.decisive + 1};"
        " the same requests and times up to it",
        "decisive_call": p.decisive + 1,
        "calls": len(first),
        "best_baseline": {name: min(BASELINES, key=usd[name].__getitem__) for name in p.sessions},
        "planner_ratio": {name: usd[name]["planner"] / best[name] for name in p.sessions},
        "minimax_markers": top["markers"],
        "minimax_replayed_ratio": replayed,
        "choices": rows,
        "usd": {s: round(sum(usd[name][s] for name in p.sessions), 6) for s in (*BASELINES, "planner")}
        | {"ideal": round(sum(ideal_cost(c, models).total for c in p.sessions.values()), 6)},
    }
    return top["worst"], details
