"""The generated workloads: 15 families of notebook sessions, seeded, split into dev and held out.

A family is a generator of sessions whose parameters (model, sizes, think times, how often
things change) are drawn per seed, so one family yields many different sessions.  The seeds
are split once, here: `DEV_SEEDS` are the sessions anyone may look at while changing the
planner; `HELDOUT_SEEDS` are only scored, by `make bench`, and reported next to them.  The
held-out figures stay honest only if nobody tunes on them.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import Workload
from .agents import long_turns, model_switch, router, tool_loop
from .documents import (
    growing_notes,
    hour_markers,
    lunch_break,
    paper_questions,
    small_and_large,
    two_contexts,
)
from .editing import codebase_edits, rerun_cell, restarts, sliding_window, system_tweaks
from .notebook import Notebook

__all__ = ["DEV_SEEDS", "FAMILIES", "HELDOUT_SEEDS", "Family", "Generated", "generate", "workloads"]

#: Seeds to develop on: look at these.
DEV_SEEDS: tuple[int, ...] = (1, 2, 3)
#: Seeds only scored: never tune on these.  Disjoint from DEV_SEEDS by construction.
HELDOUT_SEEDS: tuple[int, ...] = tuple(range(1_001, 1_006))

Build = Callable[[random.Random], tuple[Notebook, dict[str, Any]]]


@dataclass(frozen=True)
class Family:
    """A kind of session and the function that draws one from a seeded generator."""

    name: str
    build: Build

    @property
    def description(self) -> str:
        return (self.build.__doc__ or "").strip()


@dataclass(frozen=True)
class Generated:
    """One generated session: its family, seed, what was drawn, and the replayable workload."""

    family: str
    seed: int
    drawn: dict[str, Any]
    workload: Workload


#: Every family, in report order.
FAMILIES: tuple[Family, ...] = tuple(
    Family(build.__name__, build)
    for build in (
        paper_questions,
        hour_markers,
        two_contexts,
        small_and_large,
        lunch_break,
        growing_notes,
        codebase_edits,
        system_tweaks,
        rerun_cell,
        restarts,
        sliding_window,
        tool_loop,
        long_turns,
        model_switch,
        router,
    )
)


def generate(family: Family, seed: int) -> Generated:
    """The session of `family` for `seed`: the same bytes and times on every machine."""
    rng = random.Random(f"{family.name}:{seed}")
    notebook, drawn = family.build(rng)
    name = f"{family.name}.s{seed}"
    return Generated(family.name, seed, drawn, Workload(name, family.description, tuple(notebook.calls)))


def workloads(seeds: tuple[int, ...], families: tuple[Family, ...] = FAMILIES) -> list[Generated]:
    """Every family at every seed, family by family."""
    return [generate(family, seed) for family in families for seed in seeds]
