"""Session files at 1,000 calls: load and save time, and the file's size beside the raw calls.

The session is a notebook's day: tools, a cached system prompt and a cached document, then a
thousand questions on a conversation that keeps its last twenty turns (older cells dropped, as
re-running a notebook does), the clock moved on now and then so entries expire and are written
again, against the in-process emulator.  Three figures:

- load: `Session.load` of the file into a new session (read, strict parse, validation of every
  field, unpacking the requests, the checks before it applies, the state replaced), in seconds;
  the goal is the issue's 1 s.  The baseline is `json.loads` of the raw calls;
- save: `Session.save` (snapshot, packing, JSON, fsync, rename), in seconds;
- size: the file's bytes over those of the raw calls, each request and response written whole
  as JSON (what a naive file would hold); the goal is at most 2x.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from pcache_magic.session.session import Session
from pcache_magic.session.transport import connect

from ._harness import Comparison, Figure, Goal, Side, compare

__all__ = ["CALLS", "build_session", "run"]

CALLS, QUICK_CALLS = 1000, 60
GOAL_LOAD_S = Goal.at_most(1.0)
GOAL_SAVE_S = Goal.at_most(1.0)
GOAL_SIZE = Goal.at_most(2.0)
MODEL = "claude-sonnet-4-5"
WINDOW = 20


def build_session(calls: int) -> Session:
    """The session described above, with `calls` calls."""
    session = Session(model=MODEL, connection=connect(offline=True, max_retries=0))
    session.tools(
        [
            {"name": "lookup", "description": "Look a section up.", "input_schema": {"type": "object"}},
            {"name": "owners", "description": "Who owns an area.", "input_schema": {"type": "object"}},
        ]
    )
    session.system("You review code carefully and cite line numbers. " * 300, cache="1h", name="rules")
    session.context("def handler(event):\n    return event['id']\n" * 400, cache="5m", name="code")
    turns: list[str] = []
    for n in range(calls):
        if n and n % 97 == 0:
            session.advance(400)  # a coffee break: the 5m entries expire
        name = f"q{n}"
        session.ask(
            f"Question {n}: which handler reads field {n % 13}?", stream=False, name=name, cache="last"
        )
        turns.append(name)
        if len(turns) > WINDOW:
            session.drop(turns.pop(0))
            oldest_reply = next(b.name for b in session.conversation.blocks if b.kind == "reply")
            session.drop(oldest_reply)
    return session


def _raw(session: Session) -> str:
    """Every call's request and response, whole, as JSON: the naive file."""
    return json.dumps(
        [
            {"request": c.request, "response": c.response.model_dump(mode="json") if c.response else None}
            for c in session.calls
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _figure(name: str, result: Comparison, goal: Goal, extra: dict[str, Any]) -> Figure:
    seconds = result.subject.median_ns / 1e9
    return Figure(name, seconds, "s", goal, {**result.details(), **extra})


def run(quick: bool = False) -> list[Figure]:
    calls = QUICK_CALLS if quick else CALLS
    started = time.perf_counter()
    session = build_session(calls)
    built = round(time.perf_counter() - started, 2)
    raw = _raw(session)
    repeats = 3 if quick else 7
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "session.json"
        saving = compare(
            lambda: json.dumps(json.loads(raw)),
            lambda: session.save(path),
            labels=("json.dumps of the raw calls", "Session.save"),
            repeats=repeats,
            warmup=1,
            min_sample_ns=0,
        )
        size = path.stat().st_size
        target = Session(model=MODEL, connection=connect(offline=True))
        loading = compare(
            lambda: json.loads(raw),
            lambda: target.load(path),
            labels=("json.loads of the raw calls", "Session.load"),
            repeats=repeats,
            warmup=1,
            min_sample_ns=0,
        )
        assert len(target.calls) == calls and target.totals == session.totals
    common = {"calls": calls, "file_bytes": size, "raw_bytes": len(raw.encode()), "build_s": built}
    ratio = size / len(raw.encode())
    sized = Comparison(
        Side("raw calls as JSON (bytes, as ns)", 1, (float(len(raw.encode())),)),
        Side("session file (bytes, as ns)", 1, (float(size),)),
    )
    return [
        _figure("store.load_1000_calls", loading, GOAL_LOAD_S, common),
        _figure("store.save_1000_calls", saving, GOAL_SAVE_S, common),
        Figure("store.file_over_raw", ratio, "x", GOAL_SIZE, {**sized.details(), **common}),
    ]
