"""The first-call floor: pairs no planner can tell apart, every choice enumerated, the bound sound."""

from __future__ import annotations

import itertools
from functools import cache
from typing import Any

import pytest

from benchmarks.floor import Pair, billed, choices, floor, followed_by, pairs, worst_ratio
from benchmarks.planner import _floor
from pcache_magic.analysis.markers import with_markers
from pcache_magic.analysis.oracle import Fixed, oracle_cost
from pcache_magic.analysis.strategies import BASELINES, STRATEGIES
from pcache_magic.analysis.whatif import simulate
from pcache_magic.core.models import ModelTable, default_models
from pcache_magic.core.prefix import layout
from pcache_magic.core.tokens import TokenEstimator
from pcache_magic.emulator.errors import ApiError

MODELS: ModelTable = default_models()


@cache
def _pairs() -> tuple[Pair, ...]:
    return tuple(pairs(MODELS))


@cache
def _floors() -> tuple[tuple[float, dict[str, Any]], ...]:
    return tuple(floor(p, MODELS) for p in _pairs())


def _best(p: Pair) -> dict[str, float]:
    return {n: min(simulate(c, s, MODELS).cost.total for s in BASELINES) for n, c in p.sessions.items()}


def test_each_pair_is_one_family_session_the_same_up_to_its_decisive_call() -> None:
    for p in _pairs():
        (name_a, a), (_, b) = p.sessions.items()
        assert name_a == "as drawn" and len(a) == len(b) >= 12
        assert [c.request for c in a] == [c.request for c in b]  # only the times differ
        assert [c.at for c in a[: p.decisive + 1]] == [c.at for c in b[: p.decisive + 1]]
        assert all(x.at != y.at for x, y in zip(a[p.decisive + 1 :], b[p.decisive + 1 :], strict=True))


def test_the_two_sessions_want_different_first_calls() -> None:
    """Each session's best baseline is a different lifetime: the bet cannot suit both."""
    for _, details in _floors():
        assert set(details["best_baseline"].values()) == {"all-5m", "all-1h"}


def _every_request(request: dict[str, Any], model: str) -> list[dict[str, Any]]:
    """Every marker assignment on every block (unordered lifetimes and five markers included, the engine
    refuses those), each also with the API's automatic caching at either lifetime."""
    paths = [p.path for p in layout(request, TokenEstimator(), model=model).positions]
    out = []
    for ttls in itertools.product((None, "5m", "1h"), repeat=len(paths)):
        marked = with_markers(request, {p: t for p, t in zip(paths, ttls, strict=True) if t is not None})
        out += [marked, *({**marked, "cache_control": {"type": "ephemeral", "ttl": t}} for t in ("5m", "1h"))]
    return out


def test_no_choice_at_the_decisive_call_escapes_the_floor() -> None:
    """Brute force over a wider set than `choices`: none gets below the reported minimax, which is > 1."""
    for p, (value, details) in zip(_pairs(), _floors(), strict=True):
        assert value > 1.0
        request = next(iter(p.sessions.values()))[p.decisive].request
        model = MODELS.get(str(request["model"])).id
        assert len(details["choices"]) == len(choices(request, model))
        best, seen = _best(p), set()
        for marked in _every_request(dict(request), model):
            try:
                wrote = billed(marked, MODELS)
            except ApiError:
                continue
            if (wrote.write_1h, wrote.write_5m) in seen:
                continue
            seen.add((wrote.write_1h, wrote.write_5m))
            worst = max(worst_ratio(p, marked, best, MODELS).values())
            assert worst >= value * (1 - 1e-12), (marked, worst, value)
        assert len(seen) >= 3  # nothing, 5m and 1h on the large block at least


@pytest.mark.parametrize("lifetime", [None, "5m", "1h"])
def test_the_bound_is_below_every_exact_replay_that_makes_that_choice(lifetime: str | None) -> None:
    """The decisive call with the large block unmarked or marked, then each strategy's own markers (the
    continuation the figure's replay uses)."""
    for p in _pairs():
        calls = next(iter(p.sessions.values()))
        request = calls[p.decisive].request
        model = MODELS.get(str(request["model"])).id
        big = max(layout(request, TokenEstimator(), model=model).positions, key=lambda q: q.tokens)
        choice = {big.path: lifetime} if lifetime else {}
        wrote = billed(with_markers(request, choice), MODELS)
        fixed = Fixed(p.decisive, wrote.write_1h, wrote.write_5m)
        for name, session in p.sessions.items():
            bound = oracle_cost(session, MODELS, fixed).total
            for strategy in ("last", "all-5m", "all-1h", "planner"):
                replay = simulate(session, followed_by(choice, p.decisive, STRATEGIES[strategy][1]), MODELS)
                assert bound <= replay.cost.total * (1 + 1e-9), (name, strategy)


def test_the_figures_carry_the_minimax_and_a_replay_at_or_above_it() -> None:
    figures = _floor(MODELS)
    assert [f.name for f in figures] == [f"planner.floor.{p.family}.min_worst_ratio" for p in _pairs()]
    for figure, (value, _) in zip(figures, _floors(), strict=True):
        assert figure.value == value and not figure.met  # above 1.0x: the goal is out of reach
        replayed = figure.details["minimax_replayed_ratio"]
        assert max(replayed.values()) >= value * (1 - 1e-12)
        assert figure.details["usd"]["planner"] > 0
