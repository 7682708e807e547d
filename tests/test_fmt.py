"""The one formatter: every view shows money, tokens, durations and times through these."""

from __future__ import annotations

import pytest

from pcache_magic.core.fmt import clock, duration, entry_names, html_table, money, text_table, tokens


def test_tokens() -> None:
    assert tokens(12345) == "12,345"
    assert tokens(12345, estimated=True) == "~12,345"
    assert tokens(0, estimated=True) == "0"


@pytest.mark.parametrize(
    ("usd", "shown"),
    [
        (0.0123, "$0.0123"),
        (-0.0063, "-$0.0063"),
        (0.0, "$0.0000"),
        (0.00001, "$0.000010"),
        (0.99994, "$0.9999"),
        (1.5, "$1.50"),
        (1234.5, "$1,234.50"),
        (-12.345, "-$12.35"),
    ],
)
def test_money_is_fixed_point_with_more_digits_for_small_sums(usd: float, shown: str) -> None:
    assert money(usd) == shown
    assert "e" not in money(usd * 1e-4)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0s"),
        (-5, "0s"),
        (45, "45s"),
        (59.6, "1m 00s"),
        (250, "4m 10s"),
        (3_599.4, "59m 59s"),
        (3_600, "1h 00m"),
        (3_900, "1h 05m"),
        (90_000, "25h 00m"),
    ],
)
def test_duration(seconds: float, shown: str) -> None:
    assert duration(seconds) == shown


def test_a_countdown_rounds_up_but_ignores_float_noise() -> None:
    assert duration(0.2, ceil=True) == "1s"
    assert duration(252, ceil=True) == "4m 12s"
    assert duration(300 - 120.0000000001, ceil=True) == "3m 00s"
    assert duration(-3, ceil=True) == "0s"


def test_clock_is_utc() -> None:
    assert clock(0) == "00:00:00"
    assert clock(3_723) == "01:02:03"
    assert clock(86_400 + 59, date=True) == "1970-01-02 00:00:59 UTC"


def test_entry_names_add_the_model_only_when_entries_span_two() -> None:
    one = [{"block": "doc", "model": "m1"}, {"path": "system.0", "model": "m1"}]
    assert entry_names(one) == ["doc", "system.0"]
    two = [{"block": "doc", "model": "m1"}, {"block": "doc", "model": "m2"}]
    assert entry_names(two) == ["doc (m1)", "doc (m2)"]


def test_tables_escape_and_align() -> None:
    html = html_table(["a", "b"], [["<x>", "1"]], "cap & more")
    assert "<td>&lt;x&gt;</td>" in html and "<caption>cap &amp; more</caption>" in html
    assert text_table(["name", "n"], [["long name", "1"]]) == "name       n\nlong name  1"
