"""`%load_ext pcache_magic` against `import anthropic`, each in a fresh process.

Loading the extension in a notebook must cost little more than importing the SDK it wraps.
Each sample is a new Python process (so nothing is already imported): one times
`import anthropic`; the other starts an IPython shell untimed and times
`%load_ext pcache_magic` in it (offline, so no key is needed).  Processes of the two kinds
alternate; the figure is the ratio of the medians.
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
start = time.perf_counter()
import anthropic
print(time.perf_counter() - start)
"""
_LOAD = """
import contextlib, io, time
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
start = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    shell.run_line_magic("load_ext", "pcache_magic")
took = time.perf_counter() - start
import sys
assert "pcache_magic" in shell.extension_manager.loaded, "the extension did not load"
print(took)
"""


def _seconds(code: str) -> float:
    env = {**os.environ, "PCACHE_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PCACHE_EMULATOR_URL", None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"the child failed: {done.stderr[-2000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> list[Figure]:
    _seconds(_IMPORT)  # warm the file cache for both
    _seconds(_LOAD)
    sides: tuple[list[float], list[float]] = ([], [])
    for round_ in range(3 if quick else 15):
        for side in (0, 1) if round_ % 2 == 0 else (1, 0):
            sides[side].append(_seconds(_IMPORT if side == 0 else _LOAD))
    base, load = statistics.median(sides[0]), statistics.median(sides[1])
    details = {
        "baseline": Side("import anthropic, fresh process", 1, tuple(t * 1e9 for t in sides[0])).summary(),
        "subject": Side(
            "%load_ext pcache_magic, fresh process", 1, tuple(t * 1e9 for t in sides[1])
        ).summary(),
        "import_anthropic_ms": round(base * 1e3, 2),
        "load_ext_ms": round(load * 1e3, 2),
        "min_ms": {"import": round(min(sides[0]) * 1e3, 2), "load_ext": round(min(sides[1]) * 1e3, 2)},
        "processes_per_side": len(sides[0]),
    }
    return [Figure("startup.load_ext_vs_import_anthropic", load / base, "x", GOAL, details)]


if __name__ == "__main__":
    from ._harness import render_table

    figures = run(quick="--quick" in sys.argv)
    print(render_table(figures))
    print(figures[0].details)
