"""Costs that must stay flat as a notebook grows: opening the panel, and the session's own work.

- Panel open: `CachePanel(session)` and its `_repr_html_()` (a notebook's display computes
  both) on a session with 10, 100 and 1,000 recorded calls (copies of one real emulator record
  with new indexes, so only the number of calls changes, not the size of each call); sizes
  interleaved round by round, median per size.  Figure: 1,000 / 10.
  Each size has its own session, opened once before timing: a session explains each call once
  (its `CallLog`), as when the panel was open while the calls came in.  The first open of a
  session whose calls were never explained replays them all: a figure of its own
  (`growth.panel_first_open_1000_vs_10_calls`, fresh records each round).
- Session's own work per ask: `Session.ask` minus the raw `client.messages.create` of the same
  params on the same in-process emulator, on a conversation of 10, 100 and 1,000 messages
  after a 2k-token system.  Both sides serialise, send and parse the same request, so the
  difference is what the session adds (rendering, pre-flight checks, prediction, recording,
  learning).  Figure: own work at 1,000 messages / own work at 10.
"""

from __future__ import annotations

import copy
import gc
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

from pcache_magic.core.conversation import Block
from pcache_magic.core.record import CallRecord
from pcache_magic.emulator import Emulator
from pcache_magic.session.session import Session
from pcache_magic.session.transport import connect
from pcache_magic.view.panel import CachePanel

from ._harness import Figure, Goal, Side
from .panel import session_with_hit

__all__ = ["SIZES", "run"]

MODEL = "claude-sonnet-4-5"
SIZES = (10, 100, 1000)
GOAL_OPEN = Goal.at_most(1.5)
GOAL_WORK = Goal.at_most(1.5)
#: About 2k tokens of system prompt (the emulator's count), cached for 5 minutes.
SYSTEM = " ".join(f"Rule {i}: every public function needs a test and a short docstring." for i in range(180))
PROMPT = "Which functions above have no tests?"


def _interleaved(sides: dict[int, Callable[[], float]], rounds: int) -> dict[int, list[float]]:
    """Nanoseconds of each side per round; the order of the sides rotates from round to round."""
    keys = list(sides)
    out: dict[int, list[float]] = {k: [] for k in keys}
    for round_ in range(rounds):
        shift = round_ % len(keys)
        for key in keys[shift:] + keys[:shift]:
            gc.collect()
            out[key].append(sides[key]())
    return out


# -- panel open ------------------------------------------------------------------------------
def _open(session: Session, records: list[CallRecord], *, fresh: bool = False) -> Callable[[], float]:
    """One timed open; `fresh`: on new copies of the records, so nothing of them is explained yet."""

    def sample() -> float:
        session.calls[:] = [r.model_copy() for r in records] if fresh else records
        start = time.perf_counter_ns()
        panel = CachePanel(session)
        panel._repr_html_()  # a notebook's display computes the static copy (text/html) too
        elapsed = time.perf_counter_ns() - start
        panel.close()
        return float(elapsed)

    return sample


def panel_open(quick: bool) -> list[Figure]:
    sessions = {n: session_with_hit(SYSTEM) for n in SIZES}
    records = {
        n: [template.model_copy(update={"index": i}) for i in range(1, n + 1)]
        for n, (_, template) in sessions.items()
    }
    sides = {n: _open(sessions[n][0], records[n]) for n in SIZES}
    for fn in sides.values():  # warm-up: imports, first widgets, each call explained once
        fn()
    first = _interleaved({n: _open(sessions[n][0], records[n], fresh=True) for n in SIZES}, 3)
    for fn in sides.values():  # back on the records explained in the warm-up
        fn()
    samples = _interleaved(sides, 3 if quick else 11)
    medians = {n: statistics.median(s) for n, s in samples.items()}
    ratio = medians[SIZES[-1]] / medians[SIZES[0]]
    small, large = SIZES[0], SIZES[-1]
    details = {
        "baseline": Side(f"CachePanel(session), {small} calls", 1, tuple(samples[small])).summary(),
        "subject": Side(f"CachePanel(session), {large} calls", 1, tuple(samples[large])).summary(),
        "median_ms_by_calls": {str(n): round(m / 1e6, 3) for n, m in medians.items()},
        "min_ms_by_calls": {str(n): round(min(s) / 1e6, 3) for n, s in samples.items()},
        "ratio_by_calls": {str(n): round(m / medians[SIZES[0]], 3) for n, m in medians.items()},
        "rounds": len(samples[SIZES[0]]),
    }
    cold = {n: statistics.median(s) for n, s in first.items()}
    first_details = {
        "baseline": Side(f"first open, {small} calls", 1, tuple(first[small])).summary(),
        "subject": Side(f"first open, {large} calls", 1, tuple(first[large])).summary(),
        "what": "the first open of a session whose calls no panel has explained yet (after a load, "
        "or with no panel open while the calls came in): each call is replayed and explained once",
        "median_ms_by_calls": {str(n): round(m / 1e6, 3) for n, m in cold.items()},
        "rounds": len(first[small]),
    }
    return [
        Figure("growth.panel_open_1000_vs_10_calls", ratio, "x", GOAL_OPEN, details),
        Figure(
            "growth.panel_first_open_1000_vs_10_calls",
            cold[large] / cold[small],
            "x",
            GOAL_OPEN,
            first_details,
        ),
    ]


# -- session's own work ----------------------------------------------------------------------
def _session(messages: int) -> Session:
    session = Session(model=MODEL, connection=connect(emulator=Emulator(), max_retries=0))
    session.system(SYSTEM, cache="5m", name="system")
    for turn in range(messages // 2):
        text = f"Question {turn}: does function f{turn} in module m{turn % 7} have a test?"
        reply = f"Answer {turn}: f{turn} is tested by test_f{turn}; its docstring says why it exists."
        session.conversation.add(
            Block(name=f"q{turn}", role="user", kind="prompt", content=[{"type": "text", "text": text}])
        )
        session.conversation.add(
            Block(name=f"a{turn}", role="assistant", kind="reply", content=[{"type": "text", "text": reply}])
        )
    return session


def _pair(session: Session) -> tuple[Callable[[], float], Callable[[], float]]:
    """(one ask, one raw call of the params the session sent), each returning its nanoseconds."""
    blocks = session.conversation.blocks
    before = list(blocks)

    def ask() -> float:
        start = time.perf_counter_ns()
        session.ask(PROMPT, name="question", stream=False, cache="last")
        elapsed = time.perf_counter_ns() - start
        blocks[:] = before
        return float(elapsed)

    ask()  # writes the cache; every later call reads it
    ask()
    params: dict[str, Any] = copy.deepcopy(session.calls[-1].request)
    client = session.client
    assert client is not None

    def raw() -> float:
        start = time.perf_counter_ns()
        client.messages.create(**params)
        return float(time.perf_counter_ns() - start)

    return ask, raw


def session_work(quick: bool) -> Figure:
    pairs = {n: _pair(_session(n)) for n in SIZES}
    sides: dict[int, Callable[[], float]] = {}
    for n, (ask, raw) in pairs.items():
        sides[2 * n] = ask  # even keys: the session; odd keys: the raw call of the same size
        sides[2 * n + 1] = raw
    samples = _interleaved(sides, 15 if quick else 101)
    # Paired by round (the two sides of one size run back to back), so the noise of a loaded machine
    # largely cancels; a difference lost in the noise is floored at 1 us and said so, not raised.
    paired = {
        n: statistics.median(a - b for a, b in zip(samples[2 * n], samples[2 * n + 1], strict=False))
        for n in SIZES
    }
    own = {n: max(v, 1_000.0) for n, v in paired.items()}
    ratio = own[SIZES[-1]] / own[SIZES[0]]
    small, large = SIZES[0], SIZES[-1]
    details = {
        "baseline": Side(f"Session.ask, {small} messages", 1, tuple(samples[2 * small])).summary(),
        "subject": Side(f"Session.ask, {large} messages", 1, tuple(samples[2 * large])).summary(),
        "own_ms_by_messages": {str(n): round(v / 1e6, 3) for n, v in own.items()},
        "ask_ms_by_messages": {str(n): round(statistics.median(samples[2 * n]) / 1e6, 3) for n in SIZES},
        "raw_ms_by_messages": {str(n): round(statistics.median(samples[2 * n + 1]) / 1e6, 3) for n in SIZES},
        "ratio_by_messages": {str(n): round(v / own[SIZES[0]], 3) for n, v in own.items()},
        "rounds": len(samples[2 * SIZES[0]]),
        "floored": sorted(n for n, v in paired.items() if v < 1_000.0),
    }
    return Figure("growth.session_work_1000_vs_10_messages", ratio, "x", GOAL_WORK, details)


def run(quick: bool = False) -> list[Figure]:
    with warnings.catch_warnings():  # the SDK's model-deprecation notice, alike on both sides
        warnings.simplefilter("ignore", DeprecationWarning)
        return [*panel_open(quick), session_work(quick)]


if __name__ == "__main__":
    from ._harness import render_table

    figures = run(quick=False)
    print(render_table(figures))
    for f in figures:
        print(f.name, f.details)
