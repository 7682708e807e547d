"""Costs that must stay flat as a notebook grows: opening the panel, and the session's own work.

- Panel open: `CachePanel(session)` and its `_repr_html_()` (a notebook's display computes
  both) on a session with 10, 100 and 1,000 recorded calls (copies of one real emulator record
  with new indexes, so only the number of calls changes, not the size of each call); sizes
  interleaved round by round, median per size.  Figure: 1,000 / 10.
  Each size has its own session, opened once before timing: a session explains each call once
  (its `CallLog`), as when the panel was open while the calls came in.  The first open of a
  session whose calls were never explained replays them all: a figure of its own
  (`growth.panel_first_open_1000_vs_10_calls`, fresh records each round).
- Session's own work per ask: `Session.ask`'s time less the time inside the
  `client.messages.create` it makes (timed in the same call), on a conversation of 10, 100 and
  1,000 messages after a 2k-token system: what the session adds (rendering, pre-flight checks,
  prediction, recording, learning).  Timing the SDK call inside the ask, rather than against a
  separate raw call, keeps the emulator's variance (a ~50 ms call at 1,000 messages) out of a
  ~1 ms difference.  Figure: own work at 1,000 messages / own work at 10.
"""

from __future__ import annotations

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


class _Asker:
    """One steady-state ask on `session` per call, returning the session's own nanoseconds: the
    ask's time less the time inside the SDK call it made, measured in the same call, so the
    emulator's and the SDK's variance (a ~50 ms call at 1,000 messages) cancels out instead of
    swamping a difference of ~1 ms.  The SDK call is timed by wrapping this session's client's
    `messages.create` (the benchmark's instrument; nothing of the session is replaced)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.before = list(session.conversation.blocks)
        self.totals: list[float] = []
        self.inside: list[float] = []
        client = session.client
        assert client is not None
        create = client.messages.create

        def timed(**kwargs: Any) -> Any:
            start = time.perf_counter_ns()
            try:
                return create(**kwargs)
            finally:
                self._sdk = time.perf_counter_ns() - start

        client.messages.create = timed  # type: ignore[method-assign]
        self._sdk = 0
        self()  # writes the cache; every later call reads it
        self()
        self.totals.clear()
        self.inside.clear()

    def __call__(self) -> float:
        start = time.perf_counter_ns()
        self.session.ask(PROMPT, name="question", stream=False, cache="last")
        elapsed = time.perf_counter_ns() - start
        self.session.conversation.blocks[:] = self.before
        self.totals.append(float(elapsed))
        self.inside.append(float(self._sdk))
        return float(elapsed - self._sdk)


def _ms(samples: list[float]) -> float:
    return round(statistics.median(samples) / 1e6, 3)


def session_work(quick: bool) -> Figure:
    askers = {n: _Asker(_session(n)) for n in SIZES}
    samples = _interleaved(dict(askers), 15 if quick else 101)
    own = {n: statistics.median(s) for n, s in samples.items()}
    ratio = own[SIZES[-1]] / own[SIZES[0]]
    small, large = SIZES[0], SIZES[-1]
    details = {
        "baseline": Side(f"Session.ask's own work, {small} messages", 1, tuple(samples[small])).summary(),
        "subject": Side(f"Session.ask's own work, {large} messages", 1, tuple(samples[large])).summary(),
        "own_ms_by_messages": {str(n): round(v / 1e6, 3) for n, v in own.items()},
        "ask_ms_by_messages": {str(n): _ms(a.totals) for n, a in askers.items()},
        "sdk_ms_by_messages": {str(n): _ms(a.inside) for n, a in askers.items()},
        "ratio_by_messages": {str(n): round(v / own[SIZES[0]], 3) for n, v in own.items()},
        "rounds": len(samples[small]),
        "how": "per call: Session.ask's time less the time inside its client.messages.create",
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
