"""`session.budget`: a call's price before it is sent, and `max_cost` / `budget` refusing it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pcache_magic.analysis.ledger import Prediction
from pcache_magic.core.usage import Tokens
from pcache_magic.emulator import Emulator
from pcache_magic.session.budget import BudgetError, check_limit_value, check_limits, predicted_tokens
from pcache_magic.session.calls import PreflightError
from pcache_magic.session.session import Session
from pcache_magic.session.transport import connect

from _helpers import MODEL, Counter

LONG = "Review the code carefully and cite the line of each finding. " * 200


def _p(tokens: int, status: str, ttl: str = "5m", read: int = 0) -> Prediction:
    return Prediction(path=f"p{tokens}", block=None, ttl=ttl, tokens=tokens, status=status, read=read)  # type: ignore[arg-type]


def test_predicted_tokens_from_breakpoints() -> None:
    assert predicted_tokens([], 500, 10) == Tokens(uncached=500, output=10)
    assert predicted_tokens([_p(2000, "write")], 2100, 7) == Tokens(write_5m=2000, uncached=100, output=7)
    assert predicted_tokens([_p(2000, "hit", read=2000)], 2100, 0) == Tokens(read=2000, uncached=100)
    both = [_p(1500, "covered"), _p(3000, "hit+write", "1h", read=1500), _p(4000, "write")]
    assert predicted_tokens(both, 4200, 0) == Tokens(read=1500, write_1h=1500, write_5m=1000, uncached=200)
    assert predicted_tokens([_p(800, "below-minimum")], 900, 0) == Tokens(uncached=900)
    assert predicted_tokens([_p(2000, "write").as_dict()], 2000, 0).write_5m == 2000


def test_limits_refuse_with_the_prediction_and_the_way_on() -> None:
    check_limits("this call", 0.5, per_call=0.5, max_cost=None, budget=None, spent=9.0)
    with pytest.raises(
        BudgetError, match=r"up to \$0\.0230 .* above max_cost \$0\.0100\. .*max_cost = 0\.03"
    ):
        check_limits("this call", 0.023, per_call=0.023, max_cost=0.01, budget=None, spent=0)
    with pytest.raises(BudgetError, match=r"with \$0\.9000 already spent .* budget \$1\.00.*budget = 1\.10,"):
        check_limits("this call", 0.2, per_call=0.2, max_cost=1, budget=1.0, spent=0.9)
    with pytest.raises(BudgetError) as refused:
        check_limits("this map", 2.0, per_call=0.3, max_cost=0.25, budget=None, spent=0)
    assert isinstance(refused.value, PreflightError) and "dearest call $0.3000" in str(refused.value)
    assert check_limit_value("budget", 2) == 2.0
    for bad in (-1, float("nan"), "1", True):
        with pytest.raises(ValueError, match="budget is a cost in USD"):
            check_limit_value("budget", bad)


def test_a_call_over_max_cost_is_refused_and_nothing_changes(emu: Emulator) -> None:
    session = Session(model=MODEL, connection=connect(emulator=emu))
    session.system(LONG, cache="5m")
    sent, before = Counter(emu), session.conversation.model_copy(deep=True)
    session.max_cost = 0.001
    with pytest.raises(BudgetError, match="Refused: this call is predicted to cost up to"):
        session.ask("hello", stream=False)
    assert sent() == 0 and session.calls == [] and session.conversation == before
    session.max_cost = 0.05
    session.ask("hello", stream=False)
    assert len(session.calls) == 1


def test_the_budget_counts_what_was_spent(emu: Emulator) -> None:
    session = Session(model=MODEL, connection=connect(emulator=emu), max_tokens=100)
    session.system(LONG, cache="5m")
    session.ask("one", stream=False)
    spent = session.totals.cost.total
    session.budget = spent + 0.0001  # less than any call
    with pytest.raises(BudgetError, match="already spent"):
        session.ask("two", stream=False)
    session.budget = spent + 0.01
    session.ask("two", stream=False)
    assert len(session.calls) == 2


def test_the_limits_are_saved_and_loaded(emu: Emulator, tmp_path: Path) -> None:
    session = Session(model=MODEL, connection=connect(emulator=emu))
    session.max_cost, session.budget = 0.5, 3.0
    path = tmp_path / "s.json"
    session.save(path)
    loaded = Session(model=MODEL, connection=connect(emulator=Emulator()))
    loaded.load(path)
    assert (loaded.max_cost, loaded.budget) == (0.5, 3.0)
    raw = json.loads(path.read_text())
    del raw["settings"]["max_cost"], raw["settings"]["budget"]
    old = tmp_path / "old.json"  # a file from before the limits: no such fields
    old.write_text(json.dumps(raw))
    other = Session(model=MODEL, connection=connect(emulator=Emulator()))
    other.max_cost = 9.0
    other.load(old)
    assert (other.max_cost, other.budget) == (None, None)
