"""The oracle: a lower bound no strategy beats, worked out by hand on small cases."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pcache_magic.analysis.markers import with_markers
from pcache_magic.analysis.oracle import Fixed, oracle_cost
from pcache_magic.analysis.strategies import STRATEGIES, Transform
from pcache_magic.analysis.whatif import Replay, ideal_cost, simulate
from pcache_magic.core.cache_settings import default_settings
from pcache_magic.core.models import ModelTable, default_models
from pcache_magic.core.prefix import layout
from pcache_magic.core.rules import MAX_BREAKPOINTS
from pcache_magic.core.tokens import TokenEstimator
from pcache_magic.core.usage import Tokens, batch_price_factor, cost_of
from pcache_magic.emulator.engine import Engine, ManualClock

MODEL = "claude-sonnet-4-5"  # 1,024-token minimum; $3 input, $3.75 5m write, $6 1h write, $0.30 read
PRICES = default_models().get(MODEL).prices
TAIL = default_settings().tail_tokens  # every call's few uncached tokens after its last block


def words(n: int, tag: str = "w") -> str:
    return " ".join(f"{tag}{i % 97}" for i in range(n))


def request(*blocks: str) -> dict[str, Any]:
    content = [{"type": "text", "text": b} for b in blocks]
    return {"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": content}]}


def sizes(params: Mapping[str, Any]) -> list[int]:
    return [p.tokens for p in layout(params, TokenEstimator()).positions]


def usd(**parts: int) -> float:
    return cost_of(Tokens(**parts), PRICES).total


DOC = words(2_000, "d")


def test_a_document_read_a_minute_later_is_written_for_five_minutes() -> None:
    calls = [Replay(0.0, request(DOC, "first?")), Replay(60.0, request(DOC, "second?"))]
    doc, q1 = sizes(calls[0].request)
    _, q2 = sizes(calls[1].request)
    assert oracle_cost(calls).total == pytest.approx(usd(write_5m=doc, uncached=q1 + q2 + 2 * TAIL, read=doc))


def test_ten_minute_gaps_pay_for_one_hour_only_with_enough_reads() -> None:
    two = [Replay(0.0, request(DOC, "a")), Replay(600.0, request(DOC, "b"))]
    doc, a = sizes(two[0].request)
    assert oracle_cost(two).total == pytest.approx(
        usd(uncached=2 * doc + 2 * a + 2 * TAIL)
    )  # 2.0 + 0.1 > 1.0 + 1.0
    three = [*two, Replay(1_200.0, request(DOC, "c"))]
    assert oracle_cost(three).total == pytest.approx(
        usd(write_1h=doc, read=2 * doc, uncached=3 * a + 3 * TAIL)
    )


def test_nothing_below_the_minimum_and_nothing_after_an_hour_is_cached() -> None:
    short = [Replay(i * 30.0, request(words(300), f"q{i}")) for i in range(4)]
    assert oracle_cost(short).total == pytest.approx(simulate(short, "none").cost.total)
    sparse = [Replay(i * 4_000.0, request(DOC, f"q{i}")) for i in range(4)]
    assert oracle_cost(sparse).total == pytest.approx(simulate(sparse, "none").cost.total)


def test_output_tokens_are_priced_at_the_output_rate() -> None:
    calls = [Replay(0.0, request("hi"), output_tokens=1_000)]
    assert oracle_cost(calls).output == pytest.approx(usd(output=1_000))


def _random_markers(seed: int) -> Any:
    """A strategy that puts up to four valid markers anywhere, at random: the bound must hold for it too."""

    def make(models: ModelTable) -> Transform:
        rng = random.Random(seed)
        estimator = TokenEstimator()

        def transform(params: Mapping[str, Any], at: float) -> dict[str, Any]:

            positions = [p for p in layout(params, estimator).positions if p.cacheable]
            chosen = sorted(
                rng.sample(positions, min(len(positions), rng.randint(0, MAX_BREAKPOINTS))),
                key=lambda p: p.index,
            )
            hours = rng.randint(0, len(chosen))
            return with_markers(params, {p.path: "1h" if i < hours else "5m" for i, p in enumerate(chosen)})

        return transform

    return make


@st.composite
def sessions(draw: st.DrawFn) -> list[Replay]:
    """A few calls: a document (sometimes replaced), a growing chat or fresh questions, varied gaps."""
    calls, at, messages, doc = [], 0.0, [], draw(st.sampled_from([words(1_500, "a"), words(3_000, "b")]))
    for i in range(draw(st.integers(2, 6))):
        at += draw(st.sampled_from([10.0, 200.0, 299.0, 301.0, 1_500.0, 3_599.0, 3_700.0]))
        action = draw(st.sampled_from(["chat", "fresh", "swap"]))
        if action == "swap":
            doc = words(draw(st.integers(200, 3_000)), f"s{i}")
        question = {"type": "text", "text": f"q{i} " + words(draw(st.integers(5, 400)), f"q{i}")}
        if action == "chat" and messages:
            messages = [*messages, {"role": "assistant", "content": [{"type": "text", "text": f"a{i}"}]}]
            messages.append({"role": "user", "content": [question]})
        else:
            messages = [{"role": "user", "content": [{"type": "text", "text": doc}, question]}]
        calls.append(Replay(at, {"model": MODEL, "max_tokens": 10, "messages": messages}, output_tokens=5))
    return calls


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls=sessions(), seed=st.integers(0, 1_000))
def test_no_strategy_beats_the_oracle_and_the_oracle_pays_for_its_writes(
    calls: list[Replay], seed: int
) -> None:
    oracle = oracle_cost(calls).total
    assert ideal_cost(calls).total <= oracle * (1 + 1e-9)
    for name in STRATEGIES:
        assert oracle <= simulate(calls, name).cost.total * (1 + 1e-9), name
    assert oracle <= simulate(calls, _random_markers(seed)).cost.total * (1 + 1e-9)


def test_a_fixed_first_call_is_priced_as_given_and_the_rest_stays_free() -> None:
    """Ten minutes apart, three uses: free, 1h pays; with the first call's 5m write given, it is paid
    and dies, and two uses left do not pay for a 1h write (2.0 + 0.1 > 1.0 + 1.0)."""
    calls = [Replay(i * 600.0, request(DOC, f"q{i}")) for i in range(3)]
    doc, q = sizes(calls[0].request)
    assert oracle_cost(calls).total == pytest.approx(usd(write_1h=doc, read=2 * doc, uncached=3 * (q + TAIL)))
    given_5m = Fixed(0, write_1h=0, write_5m=doc)
    assert oracle_cost(calls, fixed=given_5m).total == pytest.approx(
        usd(write_5m=doc, uncached=2 * doc + 3 * (q + TAIL))
    )
    nothing = Fixed(0, write_1h=0, write_5m=0)  # the first call sent uncached: two uses left, 1h does not pay
    assert oracle_cost(calls, fixed=nothing).total == pytest.approx(usd(uncached=3 * (doc + q + TAIL)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls=sessions(), seed=st.integers(0, 1_000))
def test_the_bound_with_the_first_call_given_holds_for_strategies_that_place_those_markers(
    calls: list[Replay], seed: int
) -> None:
    models = default_models()
    strategy = _random_markers(seed)
    first = strategy(models)(calls[0].request, calls[0].at)
    usage = Engine(ManualClock(), models=models).create_message("sk-ant-test", first)["usage"]
    split = usage["cache_creation"]
    fixed = Fixed(0, split["ephemeral_1h_input_tokens"], split["ephemeral_5m_input_tokens"])
    bound = oracle_cost(calls, models, fixed).total
    assert oracle_cost(calls, models).total <= bound * (1 + 1e-9)
    assert bound <= simulate(calls, strategy, models).cost.total * (1 + 1e-9)


def test_a_batchs_uses_are_priced_at_the_batch_rate() -> None:
    """All in a batch: every rate halves, so the bound does; a batch read of a prefix an ask wrote
    pays the read at half price, the write in full."""
    three = [Replay(60.0 * i, request(DOC, q)) for i, q in enumerate("abc")]
    batched = [replace(c, batch=True) for c in three]
    assert oracle_cost(batched).total == pytest.approx(oracle_cost(three).total * batch_price_factor())
    mixed = [three[0], *batched[1:]]
    doc, a = sizes(three[0].request)
    _, b = sizes(three[1].request)
    _, c = sizes(three[2].request)
    half = batch_price_factor()
    assert oracle_cost(mixed).total == pytest.approx(
        usd(write_5m=doc, uncached=a + TAIL) + half * usd(read=2 * doc, uncached=b + c + 2 * TAIL)
    )
