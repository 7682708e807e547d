"""`%load_ext pcache_magic` against `import anthropic`, each in a fresh process.

Loading the extension in a notebook must cost little more than importing the SDK it wraps.
Each sample is a new Python process (so nothing is already imported): one times
`import anthropic`; the other starts an IPython shell untimed and times
`%load_ext pcache_magic` in it (offline, so no key is needed).  Processes of the two kinds
alternate; the figure is the ratio of the medians of the wall time (the CPU time is in the
details too: on a busy machine it moves less).

The warm-up processes may write bytecode, so the package is timed as an installed one is (pip
compiles it, as it compiled anthropic): a source edited since the last import would otherwise
be compiled again in every timed process.  The timed processes write nothing.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

from ._harness import Figure, Goal, Side

__all__ = ["run"]

GOAL = Goal.at_most(1.2)
_IMPORT = """
import time
start, cpu = time.perf_counter(), time.process_time()
import anthropic
print(time.perf_counter() - start, time.process_time() - cpu)
"""
_LOAD = """
import contextlib, io, time
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
start, cpu = time.perf_counter(), time.process_time()
with contextlib.redirect_stdout(io.StringIO()):
    shell.run_line_magic("load_ext", "pcache_magic")
took, took_cpu = time.perf_counter() - start, time.process_time() - cpu
import sys
assert "pcache_magic" in shell.extension_manager.loaded, "the extension did not load"
print(took, took_cpu)
"""


def _seconds(code: str, *, write_bytecode: bool = False) -> tuple[float, float]:
    """The child's wall and CPU seconds for the timed part."""
    env = {**os.environ, "PCACHE_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PCACHE_EMULATOR_URL", None)
    if write_bytecode:
        del env["PYTHONDONTWRITEBYTECODE"]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"the child failed: {done.stderr[-2000:]}")
    wall, cpu = done.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def run(quick: bool = False) -> list[Figure]:
    _seconds(_IMPORT)  # warm the file cache for both, and bring the package's bytecode up to date
    _seconds(_LOAD, write_bytecode=True)
    sides: tuple[list[tuple[float, float]], list[tuple[float, float]]] = ([], [])
    for round_ in range(3 if quick else 15):
        for side in (0, 1) if round_ % 2 == 0 else (1, 0):
            sides[side].append(_seconds(_IMPORT if side == 0 else _LOAD))
    walls = [t for t, _ in sides[0]], [t for t, _ in sides[1]]
    cpus = [c for _, c in sides[0]], [c for _, c in sides[1]]
    base, load = statistics.median(walls[0]), statistics.median(walls[1])
    details = {
        "baseline": Side("import anthropic, fresh process", 1, tuple(t * 1e9 for t in walls[0])).summary(),
        "subject": Side(
            "%load_ext pcache_magic, fresh process", 1, tuple(t * 1e9 for t in walls[1])
        ).summary(),
        "import_anthropic_ms": round(base * 1e3, 2),
        "load_ext_ms": round(load * 1e3, 2),
        "min_ms": {"import": round(min(walls[0]) * 1e3, 2), "load_ext": round(min(walls[1]) * 1e3, 2)},
        "cpu_ratio": round(statistics.median(cpus[1]) / statistics.median(cpus[0]), 3),
        "processes_per_side": len(sides[0]),
    }
    return [Figure("startup.load_ext_vs_import_anthropic", load / base, "x", GOAL, details)]


if __name__ == "__main__":
    from ._harness import render_table

    figures = run(quick="--quick" in sys.argv)
    print(render_table(figures))
    print(figures[0].details)
