"""`session.fanout_plan`: a map's prediction against what the emulator then bills, and its results."""

from __future__ import annotations

import pytest

from pcache_magic.core.usage import cost_of
from pcache_magic.emulator import Emulator
from pcache_magic.session.fanout import plan_map
from pcache_magic.session.fanout_plan import ItemResult, MapInterrupted, MapResult
from pcache_magic.session.session import Session
from pcache_magic.session.transport import connect

from _helpers import MODEL

RUBRIC = "Grade the answer against the rubric: clarity, accuracy, completeness. " * 200


@pytest.fixture
def session(emu: Emulator) -> Session:
    s = Session(model=MODEL, connection=connect(emulator=emu, max_retries=0), max_tokens=200)
    s.system(RUBRIC, name="rubric")
    return s


def test_the_plan_is_what_the_emulator_bills_but_the_replies(session: Session) -> None:
    items = [f"answer number {i}" for i in range(10)]
    plan = plan_map(session, items, "Grade: {item}")
    assert plan.warm and plan.items == 10 and plan.cached_before == 0
    assert not plan.typical and plan.output_each == 200  # no reply seen yet: max_tokens
    result = session.map(items, "Grade: {item}")
    actual = result.tokens
    assert plan.planned.model_copy(update={"output": actual.output}) == actual
    assert plan.naive.written == 10 * plan.shared and plan.naive.read == 0
    assert plan.cost.total < plan.cost.no_cache < plan.naive_cost.total
    assert plan.bound.total == pytest.approx(plan.cost.total)  # replies already at max_tokens
    assert plan.dearest == pytest.approx(
        cost_of(result[0].tokens.model_copy(update={"output": 200}), plan.prices).total
    )
    line = plan.line()
    assert line.startswith("Map of 10 items on claude-sonnet-4-5: predicted ~$")
    assert "1 write of the ~" in line and "9 reads" in line and "naive parallel ~$" in line
    assert "(10 writes)" in line and "(max_tokens)" in line


def test_replies_are_counted_at_the_session_typical_one(session: Session) -> None:
    session.map(["a", "b"], "Q {item}")
    outputs = [c.tokens.output for c in session.calls]
    plan = plan_map(session, ["c"], "Q {item}", max_tokens=500)
    assert plan.typical and plan.output_each == round(sum(outputs) / len(outputs))
    assert plan.bound.total > plan.cost.total
    assert "no write (already cached)" in plan.line()


def test_result_accessors_and_naive_cost(session: Session) -> None:
    result = session.map(["a", "b", "c"], "Q {item}")
    assert result.texts == [r.text for r in result] and len(result.messages) == 3
    assert repr(result).startswith("MapResult(3 of 3 ok, cost $")
    naive = result.naive_cost
    written = result[0].tokens.written
    assert naive.total == pytest.approx(
        result.cost.total
        + 2 * written * (result.plan.prices.cache_write_5m - result.plan.prices.cache_read) / 1e6
    )


def test_items_never_run_are_marked_and_an_interrupt_holds_them(session: Session) -> None:
    plan = plan_map(session, ["a", "b"], "Q {item}")
    done = ItemResult(0, "a", "Q a", error="boom")
    result = MapResult.of(["a", "b"], ["Q a", "Q b"], [done, None], plan, interrupted=True)
    assert result.errors == {0: "boom", 1: "not run (interrupted)"} and result.ok == 0
    assert result.tokens.prompt == 0 and result.cost.total == 0
    stop = MapInterrupted(result)
    assert stop.result is result and "0 of 2 items finished" in str(stop)
    assert repr(result).endswith(", interrupted)")
