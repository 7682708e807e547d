"""What a prefix is worth: the break-even arithmetic and the lifetime it chooses."""

from __future__ import annotations

import pytest

from pcache_magic.analysis.breakeven import Rates, worth
from pcache_magic.core.models import default_models

RATES = Rates.of(default_models().get("claude-sonnet-4-5").prices)  # read 0.1x, writes 1.25x and 2x


def test_rates_are_in_units_of_the_input_price() -> None:
    assert RATES.read == pytest.approx(0.1)
    assert RATES.premium == pytest.approx({"5m": 0.25, "1h": 1.0})
    assert RATES.break_even("5m") == pytest.approx(0.25 / 0.9)
    assert RATES.break_even("1h") == pytest.approx(1.0 / 0.9)
    cheap = Rates.of(default_models().get("claude-sonnet-5-5").prices)  # reads at 0.05x
    assert cheap.break_even("1h") < RATES.break_even("1h")


def test_a_prefix_sent_again_for_sure_is_worth_writing_for_five_minutes_when_calls_are_quick() -> None:
    w = worth(RATES, 0.95, {"5m": 1.0, "1h": 1.0})
    assert w.best()[0] == "5m"
    # the next call reads instead of paying input (0.9 saved, 95% likely), less this write's premium,
    # plus the premium that call would otherwise pay to write the same tokens itself
    assert w.write["5m"] == pytest.approx(0.95 * 0.9 - 0.25 + 0.95 * 0.25)
    assert w.reads["5m"] == pytest.approx(0.95 / 0.05)
    assert w.keep["5m"] > w.write["5m"]  # keeping an entry alive costs no premium


def test_gaps_that_outlive_five_minutes_choose_one_hour() -> None:
    assert worth(RATES, 0.9, {"5m": 0.3, "1h": 0.95}).best()[0] == "1h"


def test_no_write_when_reuse_is_unlikely_or_gaps_outlive_an_hour() -> None:
    assert worth(RATES, 0.15, {"5m": 0.9, "1h": 1.0}).best() == (None, 0.0)
    assert worth(RATES, 0.9, {"5m": 0.05, "1h": 0.1}).best() == (None, 0.0)


def test_the_gain_grows_with_the_chance_of_reuse() -> None:
    gains = [worth(RATES, r, {"5m": 0.8, "1h": 0.95}).write["1h"] for r in (0.2, 0.5, 0.8, 0.95)]
    assert gains == sorted(gains)
    assert worth(RATES, 2.0, {"5m": 1.0, "1h": 1.0}).reads["5m"] < 1_000  # clamped below certainty
