"""Money: per-call and cumulative cost by hand, and the break-even of a write."""

from __future__ import annotations

import pytest
from anthropic.types import CacheCreation, Message, Usage
from IPython.lib.pretty import pretty

from pcache_magic.analysis import savings as money_module
from pcache_magic.analysis import whatif
from pcache_magic.analysis.savings import break_even_reads, money
from pcache_magic.core.fmt import DOLLAR_HTML, TEXT_WIDTH
from pcache_magic.core.fmt import money as usd
from pcache_magic.core.models import Prices, default_models
from pcache_magic.core.record import CallRecord

from _helpers import unguarded_dollars

MODEL = "claude-sonnet-4-5"  # $3 input, $3.75 5m write, $6 1h write, $0.30 read, $15 output
PRICES = default_models().get(MODEL).prices


def record(index: int, uncached: int, w5: int, w1: int, read: int, output: int) -> CallRecord:
    usage = Usage(
        input_tokens=uncached,
        cache_creation_input_tokens=w5 + w1,
        cache_read_input_tokens=read,
        cache_creation=CacheCreation(ephemeral_5m_input_tokens=w5, ephemeral_1h_input_tokens=w1),
        output_tokens=output,
    )
    message = Message(
        id=f"msg_{index}",
        type="message",
        role="assistant",
        model=MODEL,
        content=[],
        stop_reason="end_turn",
        stop_sequence=None,
        usage=usage,
    )
    return CallRecord(index=index, model=MODEL, started_at=0.0, request={}, response=message, prices=PRICES)


def test_break_even_reads() -> None:
    assert break_even_reads(PRICES, "5m") == 1  # ceil(0.75 / 2.70)
    assert break_even_reads(PRICES, "1h") == 2  # ceil(3.00 / 2.70)
    cheap_reads = default_models().get("claude-fable-5-2").prices  # $8 in, $16 1h write, $0.20 read
    assert break_even_reads(cheap_reads, "1h") == 2  # ceil(8 / 7.8)
    exact = Prices(input=1, cache_write_5m=1.25, cache_write_1h=2.8, cache_read=0.1, output=5)
    assert break_even_reads(exact, "1h") == 2  # 1.8 / 0.9 is exactly 2, not 3 by rounding
    never = Prices(input=1, cache_write_5m=1.25, cache_write_1h=2, cache_read=1, output=5)
    assert break_even_reads(never) is None


def test_per_call_and_cumulative_cost_by_hand() -> None:
    calls = [
        record(1, 100, 10_000, 0, 0, 500),
        record(2, 200, 0, 0, 10_000, 400),
        record(3, 50, 0, 4_000, 10_000, 0),
    ]
    report = money(calls)
    first, second, third = report.calls
    # 100 * $3 + 10,000 * $3.75 + 500 * $15, per million
    assert first.cost.total == pytest.approx(0.0453)
    assert first.cost.no_cache == pytest.approx(0.0378)
    assert first.cost.saving == pytest.approx(-0.0075)
    # 200 * $3 + 10,000 * $0.30 + 400 * $15
    assert second.cost.total == pytest.approx(0.0096)
    assert second.cost.saving == pytest.approx(0.0366 - 0.0096)
    # 50 * $3 + 4,000 * $6 + 10,000 * $0.30
    assert third.cost.total == pytest.approx(0.02715)
    assert third.cumulative.total == pytest.approx(0.0453 + 0.0096 + 0.02715)
    assert report.total.total == pytest.approx(0.08205)
    assert report.total.saving == pytest.approx((0.0378 + 0.0366 + 0.04215) - 0.08205)
    assert first.note == "this 5m write of 10,000 tokens pays for itself if read once"
    assert third.note.startswith("this 1h write of 4,000 tokens pays for itself if read twice; read 10,000")
    assert "$0.0270 saved" in second.note  # 10,000 * ($3 - $0.30) per million
    assert "saved $0.0345 against no caching" in str(report) and "total so far" in str(report)
    html = report._repr_html_()  # the same caption, each `$` where MathJax does not look
    assert f"saved {DOLLAR_HTML}0.0345 against no caching" in html


def test_shown_from_python_the_text_keeps_to_80_columns_and_the_html_to_claude_costs_class() -> None:
    """`money(s)` as a cell's value: IPython's plain text (`_repr_pretty_`) and HTML, no magic."""
    calls = [
        record(i, 100 * i, 10_000 if i == 1 else 0, 4_000 if i == 3 else 0, 10_000 * (i > 1), 500)
        for i in (1, 2, 3)
    ]
    report = money(calls)
    shown = pretty(report)
    assert shown == str(report) and max(len(line) for line in shown.splitlines()) <= TEXT_WIDTH, shown
    for c in report.calls:  # every figure of every call whole, in its row; the note below
        (row,) = [line.split() for line in shown.splitlines() if line.split()[:1] == [str(c.index)]]
        assert row == [
            str(c.index),
            c.outcome,
            *(usd(v) for v in (c.cost.total, c.cost.no_cache, c.cost.saving)),
            usd(c.cumulative.total),
            usd(c.cumulative.saving),
        ]
        assert f"call {c.index}: {c.note}" in " ".join(shown.split())  # one model: not repeated per call
    assert shown.splitlines()[-1].endswith(f"({MODEL})")
    html = report._repr_html_()
    assert html.startswith(
        f'<div class="pcache-panel pcache-cost {report.HTML_CLASS}"><table class="pcache-table'
    )
    assert html.endswith("</table></div>") and report.HTML_CLASS == "pcache-cost-calls"
    assert not unguarded_dollars(html)  # never LaTeX
    # one model: said once in the caption, no column of one id repeated (~100 px of a 700 px window)
    assert ">model</th>" not in html and f"against no caching ({MODEL})</caption>" in html
    two = money([*calls, record(4, 100, 0, 0, 0, 10).model_copy(update={"model": "claude-haiku-4-5"})])
    left = ' style="text-align:left"'  # a column of words and ids, left untrusted too (fmt.LEFT)
    assert f"<th{left}>model</th>" in two.to_html() and f"<td{left}>claude-haiku-4-5</td>" in two.to_html()
    assert "against no caching</caption>" in two.to_html()
    lines = str(two).splitlines()  # in text, each call's line names its model; none ends in a bare colon
    assert not [line for line in lines if line.rstrip().endswith(":")], lines
    assert "  call 4: claude-haiku-4-5" in lines or any("call 4 (claude-haiku-4-5): " in x for x in lines)


def test_a_session_that_lost_money_says_how_much_more_never_a_negative_saving() -> None:
    report = money([record(1, 100, 10_000, 0, 0, 500)])  # one write, never read
    assert "$0.0075 more than no caching" in str(report) and "saved -" not in str(report)
    assert f"{DOLLAR_HTML}0.0075 more than no caching" in report._repr_html_()


def test_what_if_names_still_import_from_money() -> None:
    """The what-if lived in `money` first; notebooks and benchmarks still import it from there."""
    for name in whatif.__all__:
        assert getattr(money_module, name) is getattr(whatif, name)
        assert name in money_module.__all__
