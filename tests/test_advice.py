"""Keep-warm advice and edit impact, on laid-out requests and a ledger that recorded them."""

from __future__ import annotations

from typing import Any

import pytest

from pcache_magic.analysis.advice import edit_impact, keep_warm, typical_gap
from pcache_magic.analysis.ledger import Ledger
from pcache_magic.core.models import default_models
from pcache_magic.core.prefix import Layout, layout
from pcache_magic.core.rules import Breakpoint, resolve_breakpoints
from pcache_magic.core.tokens import TokenEstimator

MODELS = default_models()
INFO = MODELS.get("claude-sonnet-4-5")
ESTIMATOR = TokenEstimator()


def _words(tag: str, n: int) -> str:
    return " ".join(f"{tag}{i % 97}" for i in range(n))


def _params(notes: str, document: str, *, marker: bool = True) -> dict[str, Any]:
    """system, a small notes block that changes, a large document with a marker, a question."""
    doc: dict[str, Any] = {"type": "text", "text": document}
    if marker:
        doc["cache_control"] = {"type": "ephemeral"}
    return {
        "model": INFO.id,
        "max_tokens": 10,
        "system": [{"type": "text", "text": "You are careful."}],
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": notes}, doc, {"type": "text", "text": "Q?"}],
            }
        ],
    }


NAMES = {"messages.0.content.0": "notes", "messages.0.content.1": "paper.md"}


def _sent(params: dict[str, Any], ledger: Ledger, at: float) -> tuple[Layout, list[Breakpoint]]:
    lay = layout(params, ESTIMATOR, model=INFO.id)
    points = resolve_breakpoints(lay, None)
    ledger.record(lay, points, INFO, at, read=0, names=NAMES)
    return lay, points


def test_typical_gap_is_the_median_of_recent_gaps() -> None:
    assert typical_gap([]) is None
    assert typical_gap([5.0]) is None
    assert typical_gap([0, 10, 40, 60]) == 20
    # only the last eight gaps count: an old slow start does not hide today's rhythm
    assert typical_gap([0, 10_000, *range(10_010, 10_110, 10)]) == 10


def test_an_entry_that_dies_just_before_the_next_call_is_worth_a_refresh() -> None:
    ledger = Ledger()
    _sent(_params("n", _words("paper", 3_000)), ledger, 720.0)
    (advice,) = keep_warm(ledger.entries(760.0), [0.0, 360.0, 720.0], 760.0, MODELS)
    assert advice.block == "paper.md"
    assert advice.expires_in == pytest.approx(260.0)
    assert advice.next_call_in == pytest.approx(320.0)
    assert advice.refreshes == 1
    assert advice.worth
    assert advice.refresh_usd == pytest.approx(advice.tokens * INFO.prices.cache_read / 1e6)
    line = advice.text()
    assert line.startswith("paper.md expires in 4m 20s; the next call is likely in 5m 20s")
    assert "refreshing pays" in line


def test_a_long_pause_is_cheaper_to_let_expire() -> None:
    ledger = Ledger()
    _sent(_params("n", _words("paper", 3_000)), ledger, 7_200.0)
    (advice,) = keep_warm(ledger.entries(7_210.0), [0.0, 3 * 3_600.0, 7_200.0], 7_210.0, MODELS)
    assert advice.refreshes > 10
    assert not advice.worth
    assert "letting it expire is cheaper" in advice.text()


def test_no_advice_without_a_rhythm_or_when_the_entry_outlives_the_next_call() -> None:
    ledger = Ledger()
    _sent(_params("n", _words("paper", 3_000)), ledger, 100.0)
    entries = ledger.entries(110.0)
    assert keep_warm(entries, [100.0], 110.0, MODELS) == []
    assert (
        keep_warm(entries, [40.0, 70.0, 100.0], 110.0, MODELS) == []
    )  # next call in 20 s, entry lives 290 s
    assert keep_warm(entries, [-620.0, -260.0, 100.0], 110.0, MODELS)  # calls 6 min apart: advice
    foreign = [{**e, "model": "claude-unknown"} for e in entries]
    assert keep_warm(foreign, [-620.0, -260.0, 100.0], 110.0, MODELS) == []  # a model the catalogue lacks


def test_an_edit_before_a_large_cached_block_prices_its_rewrite_and_the_cheaper_layout() -> None:
    ledger = Ledger()
    document = _words("paper", 3_000)
    before, _ = _sent(_params("notes v1", document), ledger, 0.0)
    lay = layout(_params("notes v2, edited", document), ESTIMATOR, model=INFO.id)
    points = resolve_breakpoints(lay, None)
    impact = edit_impact(before, lay, points, ledger, INFO, 60.0, NAMES)
    assert impact is not None
    assert impact.block == "notes"
    assert impact.tokens == lay.positions[points[-1].position].cumulative
    assert impact.after == ("paper.md",)
    assert impact.after_tokens > 1_000
    prices = INFO.prices
    expected = (
        impact.tokens * prices.cache_write_5m / 1e6 - before.positions[2].cumulative * prices.cache_read / 1e6
    )
    assert impact.usd == pytest.approx(expected)
    assert impact.cheaper_usd == pytest.approx(
        impact.after_tokens * (prices.cache_write_5m - prices.cache_read) / 1e6
    )
    line = impact.text()
    assert line.startswith("Editing notes rewrites ~")
    assert "the 1 block after it (paper.md) too" in line
    assert "Put notes after them" in line and line.endswith(" per edit.")
    added = impact.text(added=True)  # a new block there: its adding rewrites what follows, once
    assert added.startswith("Adding notes here rewrites ~") and not added.endswith(" per edit.")


@pytest.mark.parametrize(
    ("notes", "now", "marker"),
    [
        ("notes v1", 60.0, True),  # nothing changed
        ("notes v2", 400.0, True),  # the entry has expired: the edit loses nothing the cache holds
        ("notes v2", 60.0, False),  # no marker on the next call: nothing is written
    ],
)
def test_no_impact_when_the_cache_loses_nothing(notes: str, now: float, marker: bool) -> None:
    ledger = Ledger()
    document = _words("paper", 3_000)
    before, _ = _sent(_params("notes v1", document), ledger, 0.0)
    lay = layout(_params(notes, document, marker=marker), ESTIMATOR, model=INFO.id)
    points = resolve_breakpoints(lay, None)
    assert edit_impact(before, lay, points, ledger, INFO, now, NAMES) is None
    assert edit_impact(None, lay, points, ledger, INFO, now, NAMES) is None


def test_an_edit_after_every_marker_costs_nothing() -> None:
    ledger = Ledger()
    document = _words("paper", 3_000)
    params = _params("notes", document)
    before, _ = _sent(params, ledger, 0.0)
    params["messages"][0]["content"][2] = {"type": "text", "text": "another question?"}
    lay = layout(params, ESTIMATOR, model=INFO.id)
    assert edit_impact(before, lay, resolve_breakpoints(lay, None), ledger, INFO, 30.0, NAMES) is None


def test_another_model_is_not_an_edit() -> None:
    ledger = Ledger()
    before, _ = _sent(_params("notes", _words("paper", 3_000)), ledger, 0.0)
    params = {**_params("notes", _words("paper", 3_000)), "model": "claude-opus-4-5"}
    lay = layout(params, ESTIMATOR, model="claude-opus-4-5")
    opus = MODELS.get("claude-opus-4-5")
    assert edit_impact(before, lay, resolve_breakpoints(lay, None), ledger, opus, 30.0, NAMES) is None


def test_a_system_prompt_edit_rewrites_the_messages_but_cannot_move_after_them() -> None:
    ledger = Ledger()
    document = _words("paper", 3_000)
    before, _ = _sent(_params("notes", document), ledger, 0.0)
    params = _params("notes", document)
    params["system"] = [{"type": "text", "text": "You are careful and brief."}]
    lay = layout(params, ESTIMATOR, model=INFO.id)
    impact = edit_impact(before, lay, resolve_breakpoints(lay, None), ledger, INFO, 30.0, NAMES)
    assert impact is not None
    assert impact.block == "system.0"  # no name given: the request path
    assert impact.after == ("notes", "paper.md")
    assert impact.cheaper_usd == 0.0
    assert "Put" not in impact.text()
