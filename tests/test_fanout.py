"""`session.fanout`: `Session.map` over the in-process emulator, one write and N-1 reads.

Every test runs real calls through the SDK to the emulator: results in input order, failures
per item (injected faults) without losing the others, Ctrl-C keeping what finished, the budget
refusing before anything is sent, and the conversation never touched.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pcache_magic.emulator import Emulator
from pcache_magic.session.budget import BudgetError
from pcache_magic.session.fanout import (
    MAX_CONCURRENCY,
    ItemResult,
    MapError,
    MapInterrupted,
    plan_map,
    render_template,
)
from pcache_magic.session.session import Session
from pcache_magic.session.transport import connect

from _helpers import MODEL, Counter

RUBRIC = "Grade the answer against the rubric: clarity, accuracy, completeness. " * 200


@pytest.fixture
def session(emu: Emulator) -> Session:
    """A session with a long system prompt and no marker of its own (no retries: faults stick)."""
    s = Session(model=MODEL, connection=connect(emulator=emu, max_retries=0))
    s.system(RUBRIC, name="rubric")
    return s


@dataclass
class Point:
    name: str


def test_template_fields_and_literals() -> None:
    assert render_template("Q: {item}", 3) == "Q: 3"
    assert render_template("{item[q]} / {item['a']}", {"q": "why", "a": "because"}) == "why / because"
    assert render_template("{item[1]}", ["a", "b"]) == "b"
    assert render_template("{item.name} {{item}} {other} {}", Point("p")) == "p {item} {other} {}"
    assert render_template(lambda x: f"<{x}>", 5) == "<5>"
    with pytest.raises(MapError, match=r"item 2 .*\{item\[q\]\} failed \(KeyError\)"):
        render_template("{item[q]}", {"x": 1}, 2)
    with pytest.raises(MapError, match="private and dunder attributes"):
        render_template("{item._secret}", Point("p"))
    with pytest.raises(MapError, match="returned int, not str"):
        render_template(lambda x: 1, 5)  # type: ignore[arg-type,return-value]


def test_results_in_order_one_write_then_reads_conversation_unchanged(session: Session) -> None:
    before = session.conversation.model_copy(deep=True)
    items = [{"q": f"answer {i}"} for i in range(12)]
    seen: list[int] = []
    result = session.map(items, "Grade: {item[q]}", concurrency=4, on_progress=lambda r: seen.append(r.index))
    assert [r.index for r in result] == list(range(12)) and sorted(seen) == list(range(12))
    assert seen[0] == 0  # the warm-up went first, alone
    assert [r.prompt for r in result] == [f"Grade: answer {i}" for i in range(12)]
    assert all(f'"Grade: answer {i}"' in (text or "") for i, text in enumerate(result.texts))
    tokens = [r.tokens for r in result]
    assert tokens[0].written > 1000 and tokens[0].read == 0
    assert all(t.read == tokens[0].written and t.written == 0 for t in tokens[1:])
    assert result.ok == 12 and not result.errors and not result.interrupted
    assert all(r.usage is not None and r.message is not None for r in result)
    assert session.conversation == before  # no turn added, no marker moved
    assert len(session.calls) == 12 and {c.kind for c in session.calls} == {"create"}
    assert result.cost.total < result.naive_cost.total and result.cost.total < result.cost.no_cache


def test_a_prefix_already_cached_is_not_written_again(session: Session) -> None:
    session.map(["a", "b"], "Q {item}")
    plan = plan_map(session, ["c", "d", "e"], "Q {item}")
    assert not plan.warm and plan.cached_before == plan.shared > 1000
    result = session.map(["c", "d", "e"], "Q {item}")
    assert all(r.tokens.written == 0 and r.tokens.read == plan.shared for r in result)


def test_without_a_marker_nothing_is_cached(session: Session) -> None:
    result = session.map(["a", "b", "c"], "Q {item}", cache=False)
    assert not result.plan.warm
    assert all(r.tokens.read == 0 and r.tokens.written == 0 for r in result)


def test_a_failed_item_keeps_the_others(session: Session, emu: Emulator) -> None:
    def fail_next(result: ItemResult) -> None:
        if result.index == 0:
            emu.inject(500)  # the next request after the warm-up: item 1's

    result = session.map(["a", "b", "c", "d"], "Q {item}", concurrency=1, on_progress=fail_next)
    assert result.ok == 3 and list(result.errors) == [1]
    assert "500" in result.errors[1] and result.texts[1] is None and result[1].usage is None
    assert all(result[i].text for i in (0, 2, 3))
    assert [c.ok for c in session.calls] == [True, False, True, True]


def test_a_failed_warm_up_hands_the_write_to_the_next_item(session: Session, emu: Emulator) -> None:
    emu.inject(529)
    result = session.map(["a", "b", "c"], "Q {item}", concurrency=2)
    assert list(result.errors) == [0]
    assert result[1].tokens.written > 1000 and result[2].tokens.read == result[1].tokens.written


def test_the_sdk_retries_a_transient_fault(emu: Emulator) -> None:
    session = Session(model=MODEL, connection=connect(emulator=emu, max_retries=2))
    session.system(RUBRIC, name="rubric")
    emu.inject(529, retry_after=0.001)
    result = session.map(["a", "b"], "Q {item}")
    assert result.ok == 2 and len(session.calls) == 2


def test_ctrl_c_keeps_the_finished_results(session: Session) -> None:
    before = session.conversation.model_copy(deep=True)

    def stop_after_three(result: ItemResult) -> None:
        if result.index == 2:
            raise KeyboardInterrupt

    with pytest.raises(MapInterrupted) as stopped:
        session.map(list("abcdefgh"), "Q {item}", concurrency=1, on_progress=stop_after_three)
    partial = stopped.value.result
    assert isinstance(stopped.value, KeyboardInterrupt) and partial.interrupted
    assert partial.ok >= 3 and partial.texts[:3] == [r.text for r in partial[:3]] and all(partial.texts[:3])
    assert all(partial.errors[i] == "not run (interrupted)" for i in partial.errors)
    assert len(partial) == 8 and partial.ok < 8
    assert session.conversation == before
    assert session.map(["x"], "Q {item}").ok == 1  # the session goes on


def test_a_map_over_budget_is_refused_before_sending(session: Session, emu: Emulator) -> None:
    sent = Counter(emu)
    session.max_cost = 0.001
    with pytest.raises(BudgetError, match=r"Refused: this map of 3 calls .* above max_cost \$0\.0010"):
        session.map(["a", "b", "c"], "Q {item}")
    session.max_cost, session.budget = None, 0.01
    with pytest.raises(BudgetError, match=r"session.budget = 0\.\d\d"):
        session.map(["a"] * 20, "Q {item}")
    assert sent() == 0 and session.calls == []
    session.budget = 5.0
    assert session.map(["a", "b"], "Q {item}").ok == 2


def test_bad_arguments_are_one_line_errors(session: Session) -> None:
    with pytest.raises(MapError, match="no items"):
        session.map([], "Q {item}")
    with pytest.raises(MapError, match=r"has no \{item\}"):
        session.map(["a"], "Q")
    with pytest.raises(MapError, match=f"from 1 to {MAX_CONCURRENCY}"):
        session.map(["a"], "Q {item}", concurrency=0)
    with pytest.raises(MapError, match="at least 1"):
        session.map(["a"], "Q {item}", max_tokens=0)
    assert session.calls == []


def test_items_from_any_iterable_and_a_one_hour_marker(session: Session) -> None:
    result = session.map((n * n for n in range(3)), "Square: {item}", cache="1h", model=MODEL, max_tokens=64)
    assert [r.item for r in result] == [0, 1, 4]
    assert result[0].tokens.write_1h > 1000 and result[0].tokens.write_5m == 0
    assert all(c.request["max_tokens"] == 64 for c in session.calls)


def test_a_batch_map_is_predicted_and_priced_at_the_batch_rates(session: Session) -> None:
    items = [f"answer {i}" for i in range(4)]
    plain = plan_map(session, items, "Grade: {item}")
    batched = plan_map(session, items, "Grade: {item}", batch=True)
    assert batched.cost.total == pytest.approx(plain.cost.total / 2)
    result = session.map(items, "Grade: {item}", batch=True)
    assert result.ok == 4 and {c.kind for c in session.calls} == {"batch"}
    assert result.cost.total == pytest.approx(session.totals.cost.total)  # as the session's own records say
    assert result.cost.total == pytest.approx(sum(c.cost.total for c in session.calls))


def test_an_item_whose_field_fails_is_one_line(session: Session) -> None:
    class Broken:
        @property
        def v(self) -> str:
            raise RuntimeError("boom")

        def __repr__(self) -> str:
            raise RuntimeError("no repr either")

    with pytest.raises(MapError, match=r"item 0 \(<Broken>\): \{item\.v\} failed \(RuntimeError: boom\)"):
        session.map([Broken()], "Q {item.v}")
    with pytest.raises(MapError, match="private and dunder attributes"):
        session.map(["x"], "Q {item.__class__}")
    assert session.calls == []
