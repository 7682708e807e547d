"""The workload generator: seeded, many families, valid requests, and an honest dev / held-out split."""

from __future__ import annotations

import importlib
import itertools
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from pcache_magic.analysis.whatif import simulate
from pcache_magic.core.prefix import layout
from pcache_magic.core.rules import resolve_breakpoints
from pcache_magic.core.tokens import TokenEstimator

ROOT = Path(__file__).resolve().parents[1]


def _suite() -> ModuleType:
    """`benchmarks.workloads.suite`: a top-level folder of the repository, not part of the package."""
    sys.path.insert(0, str(ROOT))
    try:
        return importlib.import_module("benchmarks.workloads.suite")
    finally:
        sys.path.remove(str(ROOT))


SUITE = _suite()


def test_at_least_twelve_families_and_disjoint_seed_sets() -> None:
    names = [f.name for f in SUITE.FAMILIES]
    assert len(names) >= 12 and len(set(names)) == len(names)
    assert all(f.description for f in SUITE.FAMILIES)
    assert not set(SUITE.DEV_SEEDS) & set(SUITE.HELDOUT_SEEDS)
    assert len(SUITE.HELDOUT_SEEDS) >= len(SUITE.DEV_SEEDS) >= 3


@pytest.mark.parametrize("family", SUITE.FAMILIES, ids=lambda f: f.name)
def test_each_family_is_seeded_varied_and_valid(family: object) -> None:
    """Same seed, same bytes and times; another seed, other parameters; every request accepted."""
    one, again = SUITE.generate(family, 1), SUITE.generate(family, 1)
    other = SUITE.generate(family, 2)
    dump = [json.dumps([c.at, c.request, c.output_tokens], sort_keys=True) for c in one.workload.calls]
    assert dump == [
        json.dumps([c.at, c.request, c.output_tokens], sort_keys=True) for c in again.workload.calls
    ]
    assert one.drawn != other.drawn
    calls = list(one.workload.calls)
    assert len(calls) >= 6 and all(b.at >= a.at for a, b in itertools.pairwise(calls))
    assert simulate(calls, "as-sent").cost.total > 0  # the emulator accepted every request as sent
    estimator = TokenEstimator()
    for call in calls:  # the sensible user's markers: at most four, 5m, on blocks that can carry them
        lay = layout(call.request, estimator)
        assert all(b.ttl == "5m" for b in resolve_breakpoints(lay, None))
