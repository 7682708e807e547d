"""Cache panel update cost per new call with 1,000 calls on record, against 10.

A notebook session can run for hours; the panel must not get slower as calls pile up.  Each
sample builds a panel over N recorded calls (untimed), then times the session announcing
`CHUNK` more calls through its own observer path (the call pipeline's `record`: append, emit "call"),
so both sides cross exactly one calls-table chunk boundary: the figure is the amortized
per-call cost.  Records are copies of one real emulator response with new indexes.  The
"blocks" event that follows a real `ask` is not timed: its cost depends on the conversation,
not on the number of calls.  For contrast, the details give the two rare costs at 1,000 calls:
a call big enough to double the bar scale (the shown rows re-rendered from the kept "why"s) and a
full refresh (the latest page re-rendered from the session's `CallLog`, which explains each call
once: what every call explained again cost is the "full calls table" figure, the static view).
"""

from __future__ import annotations

import gc
import time

from pcache_magic.core.record import CallRecord
from pcache_magic.emulator import Emulator
from pcache_magic.session.session import Session
from pcache_magic.session.transport import connect
from pcache_magic.view.panel import CHUNK, CachePanel
from pcache_magic.view.render import render_calls

from ._harness import Comparison, Figure, Goal, Side

__all__ = ["LARGE", "SMALL", "run", "session_with_hit"]

MODEL = "claude-sonnet-4-5"
SMALL, LARGE = 10, 1000
#: Goal: one more call costs the panel at most 1.5x as much at 1,000 calls as at 10.
GOAL = Goal.at_most(1.5)
_PROMPT = " ".join(f"Rule {i}: every public function needs a test and a docstring." for i in range(150))


def session_with_hit(system: str = _PROMPT) -> tuple[Session, CallRecord]:
    """A session on the emulator and one real record of a cache hit to copy (the panel benchmarks')."""
    session = Session(model=MODEL, connection=connect(emulator=Emulator()))
    session.system(system, cache="5m", name="intro")
    session.ask("Which functions have no tests?", stream=False)
    session.ask("Which functions have no docstring?", stream=False)
    return session, session.calls[-1]


def _sample(session: Session, template: CallRecord, recorded: int) -> float:
    """Nanoseconds per announced call, on a fresh panel over `recorded` earlier calls."""
    session.calls[:] = [template.model_copy(update={"index": i}) for i in range(1, recorded + 1)]
    panel = CachePanel(session)
    more = [template.model_copy(update={"index": recorded + k}) for k in range(1, CHUNK + 1)]
    gc.collect()
    start = time.perf_counter_ns()
    for record in more:
        session._pipeline.record(record)
    elapsed = time.perf_counter_ns() - start
    panel.close()
    return elapsed / CHUNK


def _rare_costs(session: Session, template: CallRecord) -> dict[str, float]:
    """Milliseconds at `LARGE` calls: one call that doubles the bar scale, then one `refresh()`."""
    session.calls[:] = [template.model_copy(update={"index": i}) for i in range(1, LARGE + 1)]
    panel = CachePanel(session)
    scale = panel._scale
    assert template.response is not None
    usage = template.response.usage.model_copy(update={"output_tokens": 2 * scale})
    response = template.response.model_copy(update={"usage": usage})
    big = template.model_copy(update={"index": LARGE + 1, "response": response})
    start = time.perf_counter_ns()
    session._pipeline.record(big)
    rescale = time.perf_counter_ns() - start
    assert panel._scale > scale, "the call did not rescale the bars"
    start = time.perf_counter_ns()
    panel.refresh()
    refresh = time.perf_counter_ns() - start
    panel.close()
    return {"rescale_ms": round(rescale / 1e6, 2), "refresh_ms": round(refresh / 1e6, 2)}


def run(quick: bool = False) -> list[Figure]:
    session, template = session_with_hit()
    rounds = 5 if quick else 21
    for _ in range(1 if quick else 3):  # warm-up: imports, caches, first widget creation
        _sample(session, template, SMALL)
    samples: tuple[list[float], list[float]] = ([], [])
    for round_ in range(rounds):
        for side in (0, 1) if round_ % 2 == 0 else (1, 0):
            samples[side].append(_sample(session, template, SMALL if side == 0 else LARGE))
    result = Comparison(
        Side(f"panel update per call, {SMALL} calls recorded", CHUNK, tuple(samples[0])),
        Side(f"panel update per call, {LARGE} calls recorded", CHUNK, tuple(samples[1])),
    )
    rare = _rare_costs(session, template)
    session.calls[:] = [template.model_copy(update={"index": i}) for i in range(1, LARGE + 1)]
    start = time.perf_counter_ns()
    render_calls(session)
    full = time.perf_counter_ns() - start
    details = {
        **result.details(),
        "calls_recorded": [SMALL, LARGE],
        "calls_announced_per_sample": CHUNK,
        "rows_per_chunk": CHUNK,
        "per_call_us": [
            round(result.baseline.median_ns / 1e3, 1),
            round(result.subject.median_ns / 1e3, 1),
        ],
        "for_contrast_full_calls_table_render_ms_at_1000": round(full / 1e6, 2),
        "for_contrast_rescaling_call_ms_at_1000": rare["rescale_ms"],
        "for_contrast_panel_refresh_ms_at_1000": rare["refresh_ms"],
    }
    return [Figure("panel.update_1000_vs_10_calls", result.slowdown, "x", GOAL, details)]
