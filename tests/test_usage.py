"""Token and cost arithmetic, checked against figures worked out by hand."""

from __future__ import annotations

import re
from typing import Any

import pytest
from anthropic.types import Message, Usage

from pcache_magic.core.models import Prices, default_models
from pcache_magic.core.record import CallRecord, outcome_of, totals
from pcache_magic.core.usage import Cost, Tokens, cost_of, tokens_of

SONNET = default_models().get("claude-sonnet-4-5").prices
HAIKU = default_models().get("claude-haiku-4-5").prices


def usage(
    *,
    uncached: int,
    w5: int = 0,
    w1: int = 0,
    read: int = 0,
    output: int = 0,
    split: bool = True,
) -> Usage:
    data: dict[str, Any] = {
        "input_tokens": uncached,
        "cache_creation_input_tokens": w5 + w1,
        "cache_read_input_tokens": read,
        "output_tokens": output,
    }
    if split:
        data["cache_creation"] = {"ephemeral_5m_input_tokens": w5, "ephemeral_1h_input_tokens": w1}
    return Usage.model_validate(data)


def message(u: Usage) -> Message:
    return Message.model_validate(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "ok"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": u.model_dump(),
        }
    )


def record(
    u: Usage | None, *, index: int = 1, error: str | None = None, prices: Prices | None = SONNET
) -> CallRecord:
    return CallRecord(
        index=index,
        model="claude-sonnet-4-5",
        started_at=0.0,
        request={},
        response=message(u) if u is not None else None,
        error=error,
        prices=prices,
    )


def test_the_sonnet_prices_are_the_published_ones() -> None:
    published = {"input": 3, "cache_write_5m": 3.75, "cache_write_1h": 6, "cache_read": 0.30, "output": 15}
    assert SONNET.model_dump() == published


def test_prompt_is_uncached_plus_written_plus_read() -> None:
    u = usage(uncached=1_000, w5=2_000, w1=4_000, read=10_000, output=500)
    t = tokens_of(u)
    assert t == Tokens(uncached=1_000, write_5m=2_000, write_1h=4_000, read=10_000, output=500)
    assert t.written == 6_000
    assert t.prompt == 17_000
    assert t.prompt != u.input_tokens  # the classic bug: input_tokens is only what follows the breakpoint


def test_cost_of_a_mixed_call_by_hand() -> None:
    t = tokens_of(usage(uncached=1_000, w5=2_000, w1=4_000, read=10_000, output=500))
    cost = cost_of(t, SONNET)
    # by hand, Sonnet 4.5 per million: 1,000 x $3 = $0.003; 2,000 x $3.75 = $0.0075;
    # 4,000 x $6 = $0.024; 10,000 x $0.30 = $0.003; 500 x $15 = $0.0075
    assert cost.uncached == pytest.approx(0.003)
    assert cost.write_5m == pytest.approx(0.0075)
    assert cost.write_1h == pytest.approx(0.024)
    assert cost.read == pytest.approx(0.003)
    assert cost.output == pytest.approx(0.0075)
    assert cost.total == pytest.approx(0.045)
    # the same call with no caching: 17,000 x $3 + 500 x $15 = $0.051 + $0.0075
    assert cost.no_cache == pytest.approx(0.0585)
    assert cost.saving == pytest.approx(0.0135)
    # the same figures from the table's own rates (the code reads them, never hard-codes them)
    assert cost.write_1h == pytest.approx(4_000 * SONNET.cache_write_1h / 1e6)
    assert cost.read == pytest.approx(10_000 * SONNET.cache_read / 1e6)


def test_a_write_never_read_costs_more_than_no_caching() -> None:
    cost = cost_of(tokens_of(usage(uncached=10, w5=2_000, output=100)), SONNET)
    # $0.00003 + $0.0075 + $0.0015 against (2,010 x $3 + 100 x $15) / 1M = $0.00753
    assert cost.total == pytest.approx(0.00903)
    assert cost.no_cache == pytest.approx(0.00753)
    assert cost.saving == pytest.approx(-0.0015)
    assert cost.saving < 0


def test_a_read_on_haiku_by_hand() -> None:
    assert HAIKU.input == 1 and HAIKU.cache_read == 0.1
    cost = cost_of(tokens_of(usage(uncached=100, read=50_000, output=20)), HAIKU)
    # 100 x $1 + 50,000 x $0.10 + 20 x $5 = $0.0001 + $0.005 + $0.0001
    assert cost.total == pytest.approx(0.0052)
    assert cost.saving == pytest.approx(0.0501 + 0.0001 - 0.0052)


def test_usage_without_a_cache_creation_breakdown_counts_as_five_minutes() -> None:
    u = usage(uncached=7, w5=300, read=40, output=2, split=False)
    assert u.cache_creation is None
    t = tokens_of(u)
    assert (t.write_5m, t.write_1h, t.read, t.prompt) == (300, 0, 40, 347)
    assert cost_of(t, SONNET).write_5m == pytest.approx(300 * 3.75 / 1e6)


def test_usage_without_any_cache_fields() -> None:
    u = Usage.model_validate({"input_tokens": 12, "output_tokens": 3})
    assert tokens_of(u) == Tokens(uncached=12, output=3)


def test_costs_add_up_part_by_part() -> None:
    a, b = Cost(uncached=1, read=2, no_cache=5), Cost(write_1h=4, output=1, no_cache=7)
    s = a + b
    assert s == Cost(uncached=1, read=2, write_1h=4, output=1, no_cache=12)
    assert s.total == 8 and s.saving == 4


@pytest.mark.parametrize(
    ("u", "outcome", "hit"),
    [
        (usage(uncached=5, w5=2_000), "write", False),
        (usage(uncached=5, read=2_000), "hit", True),
        (usage(uncached=5, read=2_000, w1=30), "hit+write", True),
        (usage(uncached=5), "uncached", False),
    ],
)
def test_record_outcome(u: Usage, outcome: str, hit: bool) -> None:
    r = record(u)
    assert r.ok and r.outcome == outcome and r.hit is hit
    assert r.usage == u and r.tokens == tokens_of(u)
    assert outcome_of(tokens_of(u)) == outcome  # what the explainer reads, without the record
    assert r.cost == cost_of(tokens_of(u), SONNET)


def test_a_failed_record() -> None:
    r = record(None, error="500 InternalServerError: boom")
    assert not r.ok and r.outcome == "failed" and r.usage is None
    assert r.tokens == Tokens() and r.cost == Cost()
    # a response with an error (e.g. interrupted after the message arrived) is not ok either
    assert record(usage(uncached=1), error="interrupted").outcome == "failed"


def test_a_record_without_prices_costs_nothing_rather_than_guessing() -> None:
    assert record(usage(uncached=1_000), prices=None).cost == Cost()


def test_totals_skip_failed_calls_and_count_them() -> None:
    records = [
        record(usage(uncached=1_000, w5=2_000, w1=4_000, read=10_000, output=500), index=1),
        record(None, index=2, error="429 RateLimitError: slow down"),
        record(usage(uncached=10, w5=2_000, output=100), index=3),
        record(usage(uncached=1, output=1), index=4, error="interrupted"),
    ]
    t = totals(records)
    assert (t.calls, t.failed) == (2, 2)
    assert t.tokens == Tokens(uncached=1_010, write_5m=4_000, write_1h=4_000, read=10_000, output=600)
    assert t.cost.total == pytest.approx(0.045 + 0.00903)
    assert t.cost.saving == pytest.approx(0.0135 - 0.0015)
    empty = totals([])
    assert (empty.calls, empty.failed, empty.tokens, empty.cost) == (0, 0, Tokens(), Cost())


def test_reprs_read_as_the_views_do() -> None:
    """Amounts as `$0.0123` and counts with commas, never a raw 17-digit float."""
    t = Tokens(uncached=142, write_5m=1_695, read=1_695, output=184)
    assert repr(t) == "Tokens(read=1,695, write_5m=1,695, write_1h=0, uncached=142, output=184)"
    assert t.line() == "cache read 1,695 · cache write 5m 1,695 · uncached input 142 · output 184"
    assert t.line(estimated=True).startswith("cache read ~1,695 · cache write 5m ~1,695 ·")
    assert Tokens(write_5m=3, write_1h=4).line().startswith("cache read 0 · cache write 5m 3 + 1h 4 ·")
    c = Cost(
        uncached=0.00028399999999999996, write_5m=0.0042375, read=0.000339, output=0.00184, no_cache=0.008904
    )
    assert repr(c) == (
        "Cost(total=$0.0067, no_cache=$0.0089, saving=$0.0022, read=$0.0003, write_5m=$0.0042, "
        "uncached=$0.0003, output=$0.0018)"
    )
    assert str(c) == "$0.0067 (saved $0.0022)"
    assert str(Cost(write_5m=0.0052, no_cache=0.0044)) == "$0.0052 ($0.0008 more than uncached)"
    assert str(Cost(uncached=0.1 + 0.2, no_cache=0.3)) == "$0.3000 (saved $0.0000)"  # float dust
    r = record(usage(uncached=5, read=2_000, output=7), index=4)
    assert repr(r) == (
        "CallRecord(index=4, kind='ask', model='claude-sonnet-4-5', started_at=00:00:00 UTC, "
        "outcome='hit', tokens=Tokens(read=2,000, write_5m=0, write_1h=0, uncached=5, output=7), "
        "cost=$0.0007 (saved $0.0054), latency_s=0.00)"
    )
    failed = record(None, index=5, error="429 RateLimitError: slow down")
    assert repr(failed).endswith("outcome='failed', error='429 RateLimitError: slow down')")
    total = repr(totals([r, failed]))
    assert total.startswith("Totals(2 calls (1 failed), Tokens(read=2,000,") and "e-" not in total
    for text in (repr(c), repr(r), total):
        assert not re.search(r"\d{7}", text)  # no 17-digit floats


def test_costs_sum_with_the_builtin_sum() -> None:
    a = Cost(read=0.5, uncached=0.25, no_cache=1.0)
    b = Cost(write_5m=0.125, no_cache=0.5)
    assert sum([a, b]) == a + b and sum([a]) == a  # sum starts from 0
    with pytest.raises(TypeError):
        _ = 1 + a
