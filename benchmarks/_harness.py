"""Shared machinery for `python -m benchmarks`: goals, figures, interleaved timing, reports.

Speed is a report, not a test.  Every figure is a ratio against a baseline timed in the same
process, with the two sides interleaved, so a slower or busier machine moves both sides and
the ratio stays comparable from one machine (and one run) to the next.
"""

from __future__ import annotations

import gc
import json
import math
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "Comparison",
    "Figure",
    "Goal",
    "Side",
    "compare",
    "render_table",
    "write_results",
]

Op = Literal["<=", ">="]


@dataclass(frozen=True, slots=True)
class Goal:
    """A threshold a figure should stay on the right side of, kept structured for tooling."""

    op: Op
    threshold: float

    @classmethod
    def at_most(cls, threshold: float) -> Goal:
        return cls("<=", threshold)

    @classmethod
    def at_least(cls, threshold: float) -> Goal:
        return cls(">=", threshold)

    def met(self, value: float) -> bool:
        return value <= self.threshold if self.op == "<=" else value >= self.threshold

    def describe(self, unit: str = "") -> str:
        return f"{self.op} {self.threshold:g}{unit}"


@dataclass(frozen=True)
class Figure:
    """One reported number: what it is, its value and unit, its goal, and how it was obtained."""

    name: str
    value: float
    unit: str
    goal: Goal
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A zero, negative or NaN figure means the measurement itself is broken: fail loudly.
        if not (math.isfinite(self.value) and self.value > 0):
            raise ValueError(f"figure {self.name!r}: value must be finite and > 0, not {self.value}")

    @property
    def met(self) -> bool:
        return self.goal.met(self.value)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "goal": {
                "op": self.goal.op,
                "threshold": self.goal.threshold,
                "text": self.goal.describe(self.unit),
            },
            "met": self.met,
            "details": dict(self.details),
        }


@dataclass(frozen=True, slots=True)
class Side:
    """The timings of one side of a comparison, as nanoseconds per call."""

    label: str
    calls_per_sample: int
    samples_ns: tuple[float, ...]

    @property
    def median_ns(self) -> float:
        return statistics.median(self.samples_ns)

    def summary(self) -> dict[str, Any]:
        """Median, best and spread in ms; a wide spread says the machine was noisy."""
        q1, _, q3 = (
            statistics.quantiles(self.samples_ns, n=4)
            if len(self.samples_ns) > 1
            else (self.samples_ns[0],) * 3
        )
        return {
            "what": self.label,
            "median_ms": round(self.median_ns / 1e6, 4),
            "min_ms": round(min(self.samples_ns) / 1e6, 4),
            "iqr_ms": round((q3 - q1) / 1e6, 4),
            "samples": len(self.samples_ns),
            "calls_per_sample": self.calls_per_sample,
        }


@dataclass(frozen=True, slots=True)
class Comparison:
    """A baseline and a subject timed in the same rounds."""

    baseline: Side
    subject: Side

    @property
    def slowdown(self) -> float:
        """Subject time / baseline time: how many baselines one subject call costs."""
        return self.subject.median_ns / self.baseline.median_ns

    @property
    def throughput(self) -> float:
        """Baseline time / subject time: the subject's speed as a fraction of the baseline's."""
        return self.baseline.median_ns / self.subject.median_ns

    def details(self) -> dict[str, Any]:
        """Both sides, plus two cross-checks of the ratio: if they disagree, the run was noisy."""
        b, s = self.baseline.samples_ns, self.subject.samples_ns
        rounds = [y / x for x, y in zip(b, s, strict=True)]  # both sides of one round
        return {
            "baseline": self.baseline.summary(),
            "subject": self.subject.summary(),
            "subject_over_baseline": {
                "of_medians": round(self.slowdown, 4),
                "of_minimums": round(min(s) / min(b), 4),
                "median_of_rounds": round(statistics.median(rounds), 4),
            },
        }


def _time_calls(fn: Callable[[], object], calls: int) -> float:
    """Nanoseconds per call over `calls` back-to-back calls, after a collection.

    Collecting first means neither side pays for the garbage the other left behind.
    """
    gc.collect()
    start = time.perf_counter_ns()
    for _ in range(calls):
        fn()
    return (time.perf_counter_ns() - start) / calls


def _calls_for(fn: Callable[[], object], min_sample_ns: int) -> int:
    """How many calls make one sample at least `min_sample_ns` long (timer resolution)."""
    once = max(_time_calls(fn, 1), 1.0)
    return max(1, math.ceil(min_sample_ns / once))


def compare(
    baseline: Callable[[], object],
    subject: Callable[[], object],
    *,
    labels: tuple[str, str] = ("baseline", "subject"),
    repeats: int = 15,
    warmup: int = 3,
    min_sample_ns: int = 20_000_000,
) -> Comparison:
    """Time both callables in interleaved rounds and keep the per-call sample of each round.

    Each round runs both sides, alternating which goes first, so drift (frequency scaling,
    other processes) hits both sides alike; medians ignore the odd outlier round.
    """
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    for _ in range(warmup):
        baseline()
        subject()
    calls = (_calls_for(baseline, min_sample_ns), _calls_for(subject, min_sample_ns))
    samples: tuple[list[float], list[float]] = ([], [])
    for round_ in range(repeats):
        order = (0, 1) if round_ % 2 == 0 else (1, 0)
        for side in order:
            fn = baseline if side == 0 else subject
            samples[side].append(_time_calls(fn, calls[side]))
    return Comparison(
        Side(labels[0], calls[0], tuple(samples[0])),
        Side(labels[1], calls[1], tuple(samples[1])),
    )


def render_table(figures: Sequence[Figure]) -> str:
    """A compact fixed-width table: figure, value, goal, met (MISSED stands out)."""
    rows = [("figure", "value", "goal", "met")]
    for f in figures:
        rows.append((f.name, f"{f.value:.2f}{f.unit}", f.goal.describe(f.unit), "ok" if f.met else "MISSED"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(
            cell.ljust(widths[i]) if i in (0, 3) else cell.rjust(widths[i]) for i, cell in enumerate(row)
        ).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    missed = sum(1 for f in figures if not f.met)
    verdict = f"{missed} goal(s) MISSED" if missed else "all goals met"
    lines.append(f"{len(figures)} figure(s), {verdict}")
    return "\n".join(lines)


def write_results(path: Path, figures: Sequence[Figure], *, quick: bool, merge: bool = False) -> None:
    """results.json: one entry per figure, plus enough context to compare two runs.

    `merge`: keep the figures already in the file that this run did not produce (in their order,
    the new ones replacing theirs by name), so `--only NAME` does not drop the other benchmarks.
    """
    produced = [f.to_json() for f in figures]
    if merge and path.exists():
        try:
            kept = json.loads(path.read_text(encoding="utf-8")).get("figures", [])
        except (OSError, ValueError, AttributeError):
            kept = []
        new = {f["name"]: f for f in produced}
        merged = [new.pop(f["name"], f) for f in kept if isinstance(f, dict) and "name" in f]
        produced = merged + list(new.values())
    document = {
        "schema": 1,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "figures": produced,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
