"""`python -m benchmarks`: the report's structure and the harness's logic, never its timings.

Speed is a report (`make bench`), not a test: a loaded CI machine must not fail the suite,
so nothing here compares a measured time or ratio with a threshold.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def harness(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    # `benchmarks` is a top-level folder, not part of the installed package.
    monkeypatch.syspath_prepend(str(ROOT))
    return importlib.import_module("benchmarks._harness")


def _check_figure(figure: dict[str, Any]) -> None:
    assert set(figure) >= {"name", "value", "unit", "goal", "met", "details"}
    assert isinstance(figure["name"], str) and figure["name"]
    assert isinstance(figure["unit"], str) and figure["unit"]
    value = figure["value"]
    assert isinstance(value, int | float) and math.isfinite(value) and value > 0
    goal = figure["goal"]
    assert goal["op"] in ("<=", ">=")
    assert isinstance(goal["threshold"], int | float) and math.isfinite(goal["threshold"])
    assert isinstance(figure["met"], bool)
    # `met` must follow from value and goal: the report cannot contradict itself.
    expected = value <= goal["threshold"] if goal["op"] == "<=" else value >= goal["threshold"]
    assert figure["met"] is expected
    details = figure["details"]
    assert isinstance(details, dict)
    if figure["name"].startswith("planner."):  # dollars on replayed workloads, not timings
        assert details["usd"]["planner"] > 0 and details["usd"]["ideal"] <= details["usd"]["none"]
        return
    if figure["name"].startswith("memory."):  # megabytes grown, by number of calls
        growth = details["growth_mb_by_calls"]
        assert growth and all(isinstance(v, int | float) for v in growth.values())
        return
    if figure["name"].startswith("fanout."):  # dollars, seconds or bytes of one map, with what it was
        assert details["items"] and all(isinstance(v, int | float | list) for v in details.values())
        return
    if figure["unit"] == "/s":  # a rate, not two sides
        assert details["median_rps"] > 0 and details["runs"] >= 1
        return
    for side in ("baseline", "subject"):
        median = details[side]["median_ms"]
        assert math.isfinite(median) and median > 0


def test_quick_run_writes_a_complete_report(tmp_path: Path) -> None:
    output = tmp_path / "out" / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--output", str(output)],
        cwd=ROOT,
        env={**os.environ, "PCACHE_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(output.read_text(encoding="utf-8"))
    assert report["quick"] is True
    names = [f["name"] for f in report["figures"]]
    assert len(names) == len(set(names))
    for figure in report["figures"]:
        _check_figure(figure)
        assert figure["name"] in done.stdout
    # The overhead figure says what its goal leaves room for: the same call through two floors.
    (overhead,) = (f for f in report["figures"] if f["name"] == "overhead.session_ask_50k")
    floors = overhead["details"]["floors"]
    assert set(floors) == {"ask_without_cache_bookkeeping", "render_and_send_only"}
    assert all(math.isfinite(ratio) and ratio > 0 for ratio in floors.values())
    assert {n.split(".")[0] for n in names} >= {"emulator", "estimator"}
    main = importlib.import_module("benchmarks.__main__")
    for i, module in enumerate(main.BENCHMARKS, 1):  # one progress line per benchmark
        assert f"[{i}/{len(main.BENCHMARKS)}] {module.__name__.rsplit('.', 1)[-1]}" in done.stderr


def test_only_runs_one_benchmark(harness: ModuleType, tmp_path: Path) -> None:
    main = importlib.import_module("benchmarks.__main__").main
    output = tmp_path / "one.json"
    assert main(["--quick", "--only", "estimator", "--output", str(output)]) == 0
    figures = json.loads(output.read_text(encoding="utf-8"))["figures"]
    assert [f["name"].split(".")[0] for f in figures] == ["estimator"]


def test_one_benchmark_rerun_keeps_the_others_figures(harness: ModuleType, tmp_path: Path) -> None:
    goal = harness.Goal.at_most(2.0)
    output = tmp_path / "results.json"
    first = [harness.Figure("a.one", 1.0, "x", goal), harness.Figure("b.two", 3.0, "x", goal)]
    harness.write_results(output, first, quick=False)
    harness.write_results(output, [harness.Figure("b.two", 1.5, "x", goal)], quick=False, merge=True)
    figures = json.loads(output.read_text(encoding="utf-8"))["figures"]
    assert [(f["name"], f["value"], f["met"]) for f in figures] == [
        ("a.one", 1.0, True),
        ("b.two", 1.5, True),
    ]
    harness.write_results(output, [harness.Figure("c.three", 1.0, "x", goal)], quick=False)  # no merge
    assert [f["name"] for f in json.loads(output.read_text(encoding="utf-8"))["figures"]] == ["c.three"]


def test_unknown_benchmark_is_a_usage_error(harness: ModuleType, tmp_path: Path) -> None:
    main = importlib.import_module("benchmarks.__main__").main
    with pytest.raises(SystemExit) as exit_:
        main(["--only", "no-such-bench", "--output", str(tmp_path / "x.json")])
    assert exit_.value.code == 2


def test_every_registered_benchmark_has_a_run(harness: ModuleType) -> None:
    registry = importlib.import_module("benchmarks.__main__").BENCHMARKS
    names = [m.__name__ for m in registry]
    assert len(names) == len(set(names))
    assert all(callable(getattr(m, "run", None)) for m in registry)


def test_goal_and_figure(harness: ModuleType) -> None:
    goal, figure = harness.Goal, harness.Figure
    assert goal.at_most(5).met(5.0) and not goal.at_most(5).met(5.01)
    assert goal.at_least(0.5).met(0.5) and not goal.at_least(0.5).met(0.49)
    assert goal.at_most(5).describe("x") == "<= 5x"
    missed = figure("demo.slow", 6.0, "x", goal.at_most(5))
    assert missed.to_json()["goal"] == {"op": "<=", "threshold": 5, "text": "<= 5x"}
    assert "MISSED" in harness.render_table([missed])
    assert "MISSED" not in harness.render_table([figure("demo.ok", 1.0, "x", goal.at_most(5))])
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError):
            figure("demo.bad", bad, "x", goal.at_most(5))


def test_compare_interleaves_and_keeps_every_sample(harness: ModuleType) -> None:
    calls: list[str] = []
    result = harness.compare(
        lambda: calls.append("b"),
        lambda: calls.append("s"),
        repeats=4,
        warmup=1,
        min_sample_ns=0,
    )
    assert len(result.baseline.samples_ns) == len(result.subject.samples_ns) == 4
    timed = calls[4:]  # after the warm-up pair and the two calibration calls
    assert timed == ["b", "s", "s", "b", "b", "s", "s", "b"]
    assert result.slowdown > 0 and result.throughput > 0
    assert set(result.details()) >= {"baseline", "subject", "subject_over_baseline"}


def test_plot_draws_each_growth_curve_with_its_goal(harness: ModuleType) -> None:
    plot = importlib.import_module("benchmarks.plot")
    document = {
        "created": "2026-12-05",
        "figures": [
            {
                "name": "growth.panel_open_1000_vs_10_calls",
                "goal": {"threshold": 1.5},
                "details": {"median_ms_by_calls": {"10": 10.0, "100": 20.0, "1000": 80.0}},
            },
            {
                "name": "memory.growth_after_1000_calls_mb",
                "goal": {"threshold": 60.0},
                "details": {"growth_mb_by_calls": {"10": 0.1, "100": 4.0, "1000": 90.0}},
            },
        ],
    }
    svg = plot.svg(document)
    assert svg.count("<polyline") == 4  # two charts: a curve and a goal each
    assert "Panel open" in svg and "Memory growth" in svg and "Session's own work" not in svg
    assert ">80<" in svg and ">90<" in svg and "2026-12-05" in svg


def test_the_bookkeeping_floor_skips_checks_and_learning(harness: ModuleType) -> None:
    # The floor stands for "the session without its cache bookkeeping": a call through it predicts
    # nothing and the ledger learns nothing, where the same call through a whole session does both.
    overhead = importlib.import_module("benchmarks.overhead")
    whole, floor = overhead.build_session(2_000), overhead._unchecked(overhead.build_session(2_000))
    for session in (whole, floor):
        session.ask("One more question?", stream=False)
    assert whole.calls[-1].prediction and whole.book.ledger.entries(whole.calls[-1].started_at)
    assert floor.calls[-1].prediction == [] and not floor.book.ledger.entries(floor.calls[-1].started_at)
