"""Memory growth over a long notebook: 1,000 calls on a growing conversation after a 2k-token system.

Measured in a fresh child process (`python -m benchmarks.memory --child N`), so nothing else
the benchmark run loaded or kept counts: a session on the in-process emulator (the default
offline set-up) makes N asks, each adding a prompt and its reply to the conversation; the
resident set size (VmRSS, after a collection) is read after the first call, when every
module is loaded, and again after 10, 100 and N calls.  Python's allocator keeps freed pages,
so RSS is what the notebook's kernel really holds.  Figure: the growth after 1,000 calls, in MB.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import warnings
from pathlib import Path

from ._harness import Figure, Goal

__all__ = ["CALLS", "run"]

CALLS = 1000
QUICK_CALLS = 100
GOAL = Goal.at_most(60.0)
MODEL = "claude-sonnet-4-5"
SYSTEM = " ".join(f"Rule {i}: every public function needs a test and a short docstring." for i in range(180))


def _rss_mb() -> float:
    gc.collect()
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc")


def child(calls: int) -> dict[str, float]:
    """Run in the child: RSS growth (MB) since the first call, after 10, 100, ... `calls` calls."""
    from pcache_magic.emulator import Emulator
    from pcache_magic.session.session import Session
    from pcache_magic.session.transport import connect

    warnings.simplefilter("ignore", DeprecationWarning)
    session = Session(model=MODEL, connection=connect(emulator=Emulator()))
    session.system(SYSTEM, cache="5m", name="system")
    session.ask("Question 0: which functions have no tests?", stream=False, cache="last")
    base = _rss_mb()
    marks = sorted({n for n in (10, 100, 1000, calls) if n <= calls})
    out: dict[str, float] = {"base_mb": round(base, 2)}
    for i in range(2, calls + 1):
        session.ask(
            f"Question {i}: does function f{i} have a test and a docstring?", stream=False, cache="last"
        )
        if i in marks:
            out[str(i)] = round(_rss_mb() - base, 2)
    out["messages"] = len(session.calls[-1].request["messages"])
    return out


def run(quick: bool = False) -> list[Figure]:
    calls = QUICK_CALLS if quick else CALLS
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", "--child", str(calls)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the memory child failed: {done.stderr[-2000:]}")
    growth = json.loads(done.stdout.strip().splitlines()[-1])
    details = {
        "growth_mb_by_calls": {k: v for k, v in growth.items() if k.isdigit()},
        "rss_after_first_call_mb": growth["base_mb"],
        "messages_in_last_request": growth["messages"],
        "calls": calls,
        "how": "VmRSS after gc.collect(), child process, in-process emulator",
    }
    return [Figure("memory.growth_after_1000_calls_mb", max(growth[str(calls)], 0.01), "MB", GOAL, details)]


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(child(int(sys.argv[2]))))
    else:
        from ._harness import render_table

        figures = run(quick="--quick" in sys.argv)
        print(render_table(figures))
        print(figures[0].details)
