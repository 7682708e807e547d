"""`Session.map` at 100 items over a 20k-token prefix: cost against the ideal, wall time, memory.

Three figures, against the in-process emulator:

- cost: the map's bill over the ideal one (one write of the prefix, 99 reads, the same outputs and
  uncached tails); the goal is within 5%.  Naive parallel is measured beside it: the same 100
  requests, each sent before any entry exists (each on its own workspace, so none can read
  another's write, as when all start together), and its ratio to the ideal is in the details;
- wall time: the map with 200 ms injected into every call and concurrency 8, over the floor
  100 x 0.2 s / 8 + one warm-up call; the goal is at most 1.3x;
- memory: what a map holds while it runs beyond what it keeps (its results and call records),
  at 4x the items over 1x; flat is 1 (linear would be 4), the goal at most 1.5x.
"""

from __future__ import annotations

import gc
import threading
import time
import tracemalloc
from typing import Any

import httpx2

from pcache_magic.core.usage import Cost, Tokens, cost_of, tokens_of
from pcache_magic.emulator import Emulator
from pcache_magic.session.session import Session
from pcache_magic.session.transport import connect

from ._harness import Figure, Goal

__all__ = ["ITEMS", "LATENCY_S", "SlowEmulator", "run"]

ITEMS, QUICK_ITEMS = 100, 40
PREFIX_WORDS = 9_200  # "clauseNNN" is about two tokens to the estimator: a ~20k-token prefix
LATENCY_S = 0.2
CONCURRENCY = 8
MODEL = "claude-sonnet-4-5"
GOAL_COST = Goal.at_most(1.05)
GOAL_WALL = Goal.at_most(1.3)
GOAL_MEMORY = Goal.at_most(1.5)


class SlowEmulator(Emulator):
    """The emulator with a fixed latency per request, spent outside its lock (calls overlap)."""

    def __init__(self, latency_s: float) -> None:
        super().__init__()
        self.latency_s = latency_s

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        threading.Event().wait(self.latency_s)
        return super().handle(request)


def _session(emu: Emulator) -> Session:
    session = Session(model=MODEL, connection=connect(emulator=emu, max_retries=0), max_tokens=300)
    words = " ".join(f"clause{i % 997}" for i in range(PREFIX_WORDS))
    session.system(f"Grade each answer against this rubric.\n{words}", name="rubric")
    return session


def _items(n: int) -> list[dict[str, Any]]:
    return [{"id": i, "answer": f"Answer {i}: the loop runs {i % 7} times."} for i in range(n)]


def _ideal(result: Any) -> Cost:
    """One write of the prefix, a read of it by every other call, the same tails and outputs."""
    shared = result[0].tokens.written + result[0].tokens.read
    total = Cost()
    for i, r in enumerate(result):
        t = r.tokens
        tail = t.prompt - shared
        part = Tokens(uncached=tail, write_5m=0 if i else shared, read=shared if i else 0, output=t.output)
        total = total + cost_of(part, result.plan.prices)
    return total


def _naive(session: Session, emu: Emulator) -> Cost:
    """The map's own requests, each on a fresh workspace: every one writes the prefix."""
    total = Cost()
    prices = session.models.get(MODEL).prices
    for i, record in enumerate(session.calls):
        client = emu.client(api_key=f"sk-ant-naive-{i:04d}", max_retries=0)
        body = {k: v for k, v in record.request.items() if k != "diagnostics"}
        message = client.messages.create(**body)
        total = total + cost_of(tokens_of(message.usage), prices)
    return total


def _cost(items: int) -> Figure:
    emu = Emulator()
    session = _session(emu)
    result = session.map(_items(items), "Grade: {item[answer]}", concurrency=CONCURRENCY)
    assert result.ok == items, result.errors
    ideal, actual, naive = _ideal(result), result.cost, _naive(session, emu)
    details = {
        "items": items,
        "prefix_tokens": result[0].tokens.written,
        "map_usd": round(actual.total, 6),
        "ideal_usd": round(ideal.total, 6),
        "naive_parallel_usd": round(naive.total, 6),
        "naive_over_ideal": round(naive.total / ideal.total, 3),
        "no_caching_usd": round(actual.no_cache, 6),
        "predicted_usd": round(result.plan.cost.total, 6),
    }
    return Figure("fanout.cost_over_ideal", actual.total / ideal.total, "x", GOAL_COST, details)


def _wall(items: int) -> Figure:
    session = _session(SlowEmulator(LATENCY_S))
    started = time.perf_counter()
    result = session.map(_items(items), "Grade: {item[answer]}", concurrency=CONCURRENCY)
    took = time.perf_counter() - started
    assert result.ok == items, result.errors
    floor = items * LATENCY_S / CONCURRENCY + LATENCY_S
    details = {"items": items, "latency_s": LATENCY_S, "concurrency": CONCURRENCY, "wall_s": round(took, 3)}
    return Figure("fanout.wall_over_floor", took / floor, "x", GOAL_WALL, {**details, "floor_s": floor})


def _overhead(items: int) -> tuple[float, float]:
    """Peak bytes during a map beyond what it keeps after, and what it keeps, per item."""
    session = _session(Emulator())
    keep = _items(items)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    result = session.map(keep, "Grade: {item[answer]}", concurrency=CONCURRENCY)
    gc.collect()
    kept, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result.ok == items
    return (peak - kept) / items, (kept - base) / items


def _memory(items: int) -> Figure:
    small, kept_small = _overhead(items)
    large, kept_large = _overhead(4 * items)
    details = {
        "items": [items, 4 * items],
        "transient_bytes_per_item": [round(small), round(large)],
        "kept_bytes_per_item": [round(kept_small), round(kept_large)],
    }
    ratio = (large * 4 * items) / (small * items)
    return Figure("fanout.memory_4x_items_over_1x", ratio, "x", GOAL_MEMORY, details)


def run(quick: bool = False) -> list[Figure]:
    items = QUICK_ITEMS if quick else ITEMS
    return [_cost(items), _wall(items), _memory(items // 4 if quick else items // 2)]
