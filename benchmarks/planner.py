"""The breakpoint planner against the usual strategies, in dollars, on replayed workloads.

Not a speed figure: each workload in `benchmarks/workloads` is replayed offline, on a fresh
emulator engine whose clock is moved to each call's recorded time, under no caching, one
marker on the last message (claudette), the API's automatic caching, and the planner.  Two
figures per workload: the planner's cost over the best of the three baselines (goal: never
more, <= 1.0x) and its saving against no caching as a fraction of the ideal saving (every
repeated prefix token read at the read rate, nothing written).  Deterministic: the same
bytes and times give the same dollars on any machine, so `quick` changes nothing.
"""

from __future__ import annotations

from pcache_magic.analysis.savings import BASELINES, what_if
from pcache_magic.core.models import default_models

from ._harness import Figure, Goal
from .workloads import all_workloads

__all__ = ["GOAL_OF_IDEAL", "GOAL_VS_BEST", "run"]

#: The planner must never cost more than the best baseline.
GOAL_VS_BEST = Goal.at_most(1.0)
#: ... and should capture at least half of what perfect caching would save.
GOAL_OF_IDEAL = Goal.at_least(0.5)


def run(quick: bool = False) -> list[Figure]:
    """Two figures per workload; `quick` is accepted for the runner and changes nothing (it is cheap)."""
    models = default_models()
    figures: list[Figure] = []
    for workload in all_workloads():
        result = what_if(list(workload.calls), [*BASELINES, "planner"], models)
        best, planner = result.best_baseline, result.run("planner")
        share = result.fraction_of_ideal("planner")
        details = {
            "what": workload.description,
            "calls": len(workload.calls),
            "usd": {r.strategy: round(r.cost.total, 6) for r in result.runs}
            | {"ideal": round(result.ideal.total, 6)},
            "best_baseline": best.strategy,
            "planner_tokens": planner.tokens.model_dump(),
        }
        figures.append(
            Figure(
                f"planner.{workload.name}.vs_best_baseline",
                planner.cost.total / best.cost.total,
                "x",
                GOAL_VS_BEST,
                details,
            )
        )
        if share is not None and share > 0:
            figures.append(
                Figure(f"planner.{workload.name}.of_ideal_saving", share, "x", GOAL_OF_IDEAL, details)
            )
    return figures
