"""`python -m benchmarks`: run every benchmark, print the table, write results.json.

A missed goal is a finding, not a failure: the exit code is 0 as long as every benchmark
ran.  It is 1 when a benchmark raised (its traceback is printed, the others still run) and
2 for a bad command line.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

from . import (
    emulator,
    estimator,
    fanout,
    growth,
    memory,
    overhead,
    panel,
    planner,
    server,
    startup,
    store,
    urlmode,
)
from ._harness import Figure, render_table, write_results

__all__ = ["BENCHMARKS", "DEFAULT_OUTPUT", "main"]

#: Every benchmark module, in run order.  Each exposes `run(quick: bool = False) -> list[Figure]`;
#: adding a benchmark is one new module plus one entry here.
BENCHMARKS: list[ModuleType] = [
    emulator,
    estimator,
    panel,
    growth,
    overhead,
    planner,
    server,
    urlmode,
    memory,
    startup,
    store,
    fanout,
]
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results.json"


def _name(module: ModuleType) -> str:
    return module.__name__.rpartition(".")[2]


def _parser() -> argparse.ArgumentParser:
    names = [_name(m) for m in BENCHMARKS]
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Speed figures as ratios against in-process baselines.",
    )
    parser.add_argument("--quick", action="store_true", help="few rounds: a smoke run")
    parser.add_argument("--only", choices=names, metavar="NAME", help=f"run one: {', '.join(names)}")
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        metavar="PATH",
        help="where to write the JSON report (default: benchmarks/results.json)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    selected = [m for m in BENCHMARKS if args.only in (None, _name(m))]
    figures: list[Figure] = []
    failed: list[str] = []
    for i, module in enumerate(selected, 1):
        name = _name(module)
        tag = f"[{i}/{len(selected)}] {name}"
        print(f"{tag}: running{' (quick)' if args.quick else ''}...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        run: Callable[..., list[Figure]] = module.run
        try:
            produced = run(quick=args.quick)
        except Exception:
            traceback.print_exc()
            failed.append(name)
            print(f"{tag}: FAILED", file=sys.stderr, flush=True)
            continue
        took = time.perf_counter() - start
        print(f"{tag}: {len(produced)} figure(s) in {took:.1f}s", file=sys.stderr, flush=True)
        figures.extend(produced)
    print(render_table(figures))
    # One benchmark re-run replaces its own figures and keeps the others' (a full run replaces all).
    write_results(args.output, figures, quick=args.quick, merge=args.only is not None)
    print(f"wrote {args.output}")
    if failed:
        print(f"benchmark(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
