"""Speed figures for pcache_magic, run by `make bench` (`python -m benchmarks`).

Speed is measured here, never asserted in tests: each figure is a ratio against a baseline
timed in the same process, reported with its goal in `benchmarks/results.json`.
"""

from ._harness import Comparison, Figure, Goal, Side, compare

__all__ = ["Comparison", "Figure", "Goal", "Side", "compare"]
