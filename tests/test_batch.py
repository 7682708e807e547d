"""`session/batch.py`: run_batch records each request at the batch discount with the cache's rates;
cache reads within a batch; an errored item; Ctrl-C while polling; results collected later by id."""

from __future__ import annotations

from typing import Any

import pytest

from pcache_magic.core.usage import batch_price_factor, batch_prices, cost_of
from pcache_magic.emulator import Emulator
from pcache_magic.session import batch
from pcache_magic.session.budget import BudgetError
from pcache_magic.session.session import Session
from pcache_magic.session.transport import connect

from _helpers import MODEL


def bodies(session: Session, n: int, **extra: Any) -> list[dict[str, Any]]:
    base = session.params()
    return [{**base, "messages": [{"role": "user", "content": f"question {i}"}], **extra} for i in range(n)]


@pytest.fixture
def warm(session: Session) -> Session:
    session.system("the grading rubric, point by point " * 300, cache=True)
    return session


def test_costs_are_the_cache_rates_at_half_price_and_later_items_read(warm: Session, emu: Emulator) -> None:
    progress: list[tuple[int, int]] = []
    sent = bodies(warm, 3, max_tokens=20)
    items = batch.run_batch(warm, sent, on_progress=lambda d, t: progress.append((d, t)))
    assert [i.custom_id for i in items] == ["item-0", "item-1", "item-2"] and all(i.ok for i in items)
    assert progress[0] == (0, 3) and progress[-1] == (3, 3)
    assert emu.now() - 60 >= warm.calls[0].started_at  # the clock was moved, not slept on
    first, second = items[0].usage, items[1].usage
    assert first is not None and second is not None
    assert first.cache_creation_input_tokens and not first.cache_read_input_tokens
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert [c.kind for c in warm.calls] == ["batch"] * 3
    assert [c.in_flight for c in warm.calls] == [[]] * 3  # a batch's items run in the API's order
    standard = warm.info.prices
    assert batch_price_factor() == 0.5
    for item, record in zip(items, warm.calls, strict=True):
        assert item.record is record and record.prices == batch_prices(standard)
        full = cost_of(record.tokens, standard)
        assert record.cost.total == pytest.approx(full.total / 2)
        assert record.cost.read == pytest.approx(record.tokens.read * standard.cache_read / 2 / 1e6)
        assert "diagnostics" not in record.request  # what was sent
    assert warm.totals.cost.total == pytest.approx(sum(i.cost.total for i in items))


def test_an_errored_item_is_recorded_failed_and_the_others_answer(warm: Session) -> None:
    requests = bodies(warm, 3)
    requests[1] = {"custom_id": "huge", "params": {**requests[1], "max_tokens": 10**7}}
    items = batch.run_batch(warm, requests)
    assert [i.ok for i in items] == [True, False, True]
    assert items[1].custom_id == "huge" and "invalid_request_error: max_tokens" in (items[1].error or "")
    assert warm.calls[1].error == items[1].error and warm.totals.failed == 1


def test_refused_before_sending_nothing_is_processing(warm: Session, emu: Emulator) -> None:
    warm.budget = 0.000001
    with pytest.raises(BudgetError):
        batch.run_batch(warm, bodies(warm, 2))
    assert emu.batches.list(emu.engine.workspace("sk-ant-emulator"), "")["data"] == []
    with pytest.raises(batch.BatchError, match="same custom_id"):
        batch.run_batch(warm, [{"custom_id": "a", "params": b} for b in bodies(warm, 2)])
    with pytest.raises(batch.BatchError, match="no requests"):
        batch.run_batch(warm, [])


def stop(done: int, total: int) -> None:
    """Ctrl-C at the first poll."""
    raise KeyboardInterrupt


def test_interrupted_then_collected_by_id(warm: Session) -> None:
    with pytest.raises(batch.BatchInterrupted) as caught:
        batch.run_batch(warm, bodies(warm, 2), on_progress=stop)
    batch_id = caught.value.batch_id
    assert [c.ok for c in warm.calls] == [False, False]
    assert f"%claude_batch results {batch_id}" in (warm.calls[0].error or "")
    with pytest.raises(batch.BatchError, match="in progress"):
        batch.collect(warm, batch_id)
    assert batch.status(warm, batch_id).processing_status == "in_progress"
    items = batch.collect(warm, batch_id, wait=True)
    assert [i.ok for i in items] == [True, True] and len(warm.calls) == 4
    recovered = warm.calls[2:]
    assert [r.request for r in recovered] == [c.request for c in warm.calls[:2]]  # the requests kept
    assert all(r.kind == "batch" and r.ok for r in recovered)
    assert batch.collect(warm, batch_id)[0].record is None  # collected twice, recorded once
    assert len(warm.calls) == 4


def test_after_a_restart_a_fresh_session_collects_by_id(warm: Session, emu: Emulator) -> None:
    with pytest.raises(batch.BatchInterrupted) as caught:
        batch.run_batch(warm, bodies(warm, 2), on_progress=stop)
    fresh = Session(model=MODEL, connection=connect(emulator=emu))
    items = batch.collect(fresh, caught.value.batch_id, wait=True)
    assert [i.ok for i in items] == [True, True]
    assert [c.request for c in fresh.calls] == [{"model": MODEL, "messages": []}] * 2
    assert fresh.calls[1].cost.total > 0 and fresh.calls[1].prices == batch_prices(fresh.info.prices)
    with pytest.raises(batch.BatchError, match=r"No batch 'msgbatch_nope' in this workspace .* list shows"):
        batch.status(fresh, "msgbatch_nope")


def test_a_saved_session_keeps_its_batch_calls(warm: Session, emu: Emulator, tmp_path: Any) -> None:
    batch.run_batch(warm, bodies(warm, 2))
    path = tmp_path / "s.json"
    warm.save(path)
    loaded = Session(model=MODEL, connection=connect(emulator=Emulator()))
    loaded.load(path)
    assert [c.kind for c in loaded.calls] == ["batch", "batch"]
    assert [c.cost.total for c in loaded.calls] == pytest.approx([c.cost.total for c in warm.calls])
