"""The session's rhythm: gaps, which blocks change, and prefixes that come back."""

from __future__ import annotations

from typing import Any

import pytest

from pcache_magic.analysis.rhythm import _RECENT, Prior, Rhythm, Uses
from pcache_magic.core.prefix import Layout, layout
from pcache_magic.core.tokens import TokenEstimator

ESTIMATOR = TokenEstimator()


def lay(*user: str, system: str = "rules " * 50) -> Layout:
    content = [{"type": "text", "text": t} for t in user]
    params: dict[str, Any] = {
        "model": "m",
        "system": system,
        "messages": [{"role": "user", "content": content}],
    }
    return layout(params, ESTIMATOR)


def test_the_prior_speaks_first_and_fades_as_gaps_come_in() -> None:
    rhythm = Rhythm()
    assert rhythm.alive(0.0) == pytest.approx(dict(Prior().alive))
    for i in range(12):
        rhythm.observe(lay("doc", f"q{i}"), i * 60.0, own=True)
    assert rhythm.alive(12 * 60.0)["5m"] > 0.95
    slow = Rhythm()
    for i in range(6):
        slow.observe(lay("doc", f"q{i}"), i * 1_200.0, own=True)
    alive = slow.alive(6 * 1_200.0)
    assert alive["5m"] < 0.2 and alive["1h"] > 0.9


def test_other_models_calls_count_but_less() -> None:
    rhythm = Rhythm()
    rhythm.observe(lay("a"), 0.0, own=False)
    rhythm.observe(lay("a"), 1_200.0, own=False)
    assert rhythm.own_calls == 0 and rhythm.alive(1_200.0)["5m"] < Prior().alive[0][1]


def test_another_models_prompt_at_the_same_paths_is_no_change_of_this_ones() -> None:
    """A router: a cheap model triages with its own system prompt between this model's calls."""
    alone, routed = Rhythm(), Rhythm()
    for i in range(6):
        mine = lay("doc", f"q{i}")
        alone.observe(mine, i * 120.0, own=True)
        routed.observe(lay(f"triage {i}", system="triage rules " * 40), i * 120.0 - 60.0, own=False)
        routed.observe(mine, i * 120.0, own=True)
    nxt = lay("doc", "q9")
    assert routed.reuse(nxt)[:2] == pytest.approx(alone.reuse(nxt)[:2])
    assert routed.reuse(nxt)[0] > 0.8  # the system prompt: kept (it was "changed" every call)


def test_a_block_replaced_every_call_is_expected_to_change() -> None:
    rhythm = Rhythm()
    for i in range(5):
        rhythm.observe(lay("doc", f"results {i}", f"question {i}"), i * 60.0, own=True)
    reuse = rhythm.reuse(lay("doc", "results 9", "question 9"))
    system, doc, results = reuse[0], reuse[1], reuse[2]
    assert system > 0.8 and doc > 0.8 * system and results < 0.3 * doc


def test_a_conversation_cut_back_counts_one_change_not_many() -> None:
    rhythm = Rhythm()
    long = [f"turn {i}" for i in range(10)]
    rhythm.observe(lay("doc", *long), 0.0, own=True)
    rhythm.observe(lay("doc", "again"), 60.0, own=True)  # everything after the document went at once
    rhythm.observe(lay("doc", "again", "more"), 120.0, own=True)
    reuse = rhythm.reuse(lay("doc", "again", "more", "and more"))
    assert reuse[3] > 0.5 * reuse[1]  # the later blocks were not each counted as a change


def test_prefixes_that_come_back_are_recognised() -> None:
    rhythm = Rhythm()
    a, b = lay("document A", "q"), lay("document B", "q")
    rhythm.observe(a, 0.0, own=True)
    rhythm.observe(b, 60.0, own=True)
    assert rhythm.recurring(a.positions[1], since=60.0) == Uses(1, [0.0])
    assert rhythm.recurring(b.positions[1], since=60.0) is None  # sent by the last call: it continues
    assert rhythm.comes_back(1) < rhythm.comes_back(5) < 1


def test_a_prefix_keeps_its_count_and_only_the_times_its_gaps_need() -> None:
    """Every use time of every prefix was kept: calls times blocks (1M floats, ~32 MB, after 1,000
    calls of a growing chat); the count and the latest times say as much."""
    rhythm = Rhythm()
    for i in range(200):
        rhythm.observe(lay("document A", f"q{i}"), i * 60.0, own=True)
    rhythm.observe(lay("document B", "q"), 200 * 60.0, own=True)
    uses = rhythm.recurring(lay("document A", "q").positions[1], since=200 * 60.0)
    assert uses is not None and uses.count == 200
    assert uses.times[-(_RECENT + 1) :] == [i * 60.0 for i in range(200 - _RECENT - 1, 200)]
    assert len(uses.times) <= 2 * (_RECENT + 1)


def test_a_prefix_that_came_back_once_after_an_hour_is_not_expected_within_five_minutes() -> None:
    """A recurring prefix skipped calls: the think time between calls the prior describes is not its gap,
    so its own gaps outweigh the prior sooner than the gaps between calls do."""
    gap = 4_200.0  # an eval pass re-run 70 minutes later: each item is sent again once
    calls = Rhythm()
    calls.observe(lay("doc", "q"), 0.0, own=True)
    calls.observe(lay("doc", "q2"), gap, own=True)
    own = Rhythm().alive(gap, gaps=[gap])
    assert own["5m"] < calls.alive(gap)["5m"]
    assert own["5m"] < 0.25 and own["1h"] < 0.5


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("recurring_weight", float("nan")),
        ("recurring_weight", -0.5),
        ("decay", 1.5),
        ("alive_weight", 0.0),
        ("calls_ahead", float("inf")),
        ("alive", (("5m", 1.2), ("1h", 0.95))),
    ],
)
def test_a_prior_no_chance_can_be_made_of_is_refused(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=r"^Prior\.\w+"):
        Prior(**{field: value})


@pytest.mark.parametrize(
    ("prior", "gaps"), [(Prior(recurring_weight=0.0), []), (Prior(prior_fade=0.0, session_weight=0.0), None)]
)
def test_a_prior_of_no_weight_gives_its_own_shares(prior: Prior, gaps: list[float] | None) -> None:
    """A prior that weighs nothing, with no gaps or gaps that weigh nothing, divided by zero."""
    rhythm = Rhythm(prior)
    rhythm.observe(lay("doc", "q"), 0.0, own=False)
    rhythm.observe(lay("doc", "q"), 60.0, own=False)
    assert rhythm.alive(120.0, gaps) == dict(prior.alive)
