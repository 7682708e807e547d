"""The breakpoint planner: valid requests always, sensible choices, never worse than the baselines."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pcache_magic.analysis.planner import Planner, plan_breakpoints, with_markers
from pcache_magic.analysis.savings import BASELINES, Replay, what_if
from pcache_magic.core.models import default_models
from pcache_magic.core.prefix import layout
from pcache_magic.core.rules import resolve_breakpoints
from pcache_magic.core.tokens import TokenEstimator
from pcache_magic.emulator import Emulator
from pcache_magic.session.session import Session
from pcache_magic.session.transport import connect

MODEL = "claude-sonnet-4-5"
INFO = default_models().get(MODEL)
ROOT = Path(__file__).resolve().parents[1]


def _workloads() -> ModuleType:
    """`benchmarks/workloads` by file path: it is not part of the installed package."""
    spec = importlib.util.spec_from_file_location(
        "planner_workloads", ROOT / "benchmarks" / "workloads" / "__init__.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


WORKLOADS = _workloads()


def words(n: int, tag: str = "w") -> str:
    return " ".join(f"{tag}{i % 97}" for i in range(n))


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def chat(turns: int, system_words: int = 1_500, doc_words: int = 0) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    for i in range(turns):
        content = [text(f"question {i} " + words(30, "q"))]
        if i == 0 and doc_words:
            content.insert(0, text(words(doc_words, "d")))
        messages.append({"role": "user", "content": content})
        if i < turns - 1:
            messages.append({"role": "assistant", "content": [text(f"answer {i} " + words(200, "a"))]})
    return {
        "model": MODEL,
        "max_tokens": 100,
        "system": [text(words(system_words, "s"))],
        "messages": messages,
    }


def marks(params: dict[str, Any]) -> list[tuple[str, str, int]]:
    lay = layout(params, TokenEstimator())
    points = resolve_breakpoints(lay, params.get("cache_control"))  # raises on an invalid request
    return [(lay.positions[b.position].path, b.ttl, lay.positions[b.position].cumulative) for b in points]


@dataclass
class Sent:
    started_at: float
    request: dict[str, Any]


@pytest.mark.parametrize("make", WORKLOADS.WORKLOADS, ids=lambda make: make.__name__)
def test_never_worse_than_the_best_baseline(make: Any) -> None:
    workload = make()
    result = what_if(list(workload.calls), [*BASELINES, "planner"])
    best, planner = result.best_baseline, result.run("planner")
    assert planner.cost.total <= best.cost.total * (1 + 1e-12), (workload.name, best.strategy)
    share = result.fraction_of_ideal("planner")
    assert share is not None and 0 < share <= 1


def test_the_workloads_cover_the_shapes_the_issue_names() -> None:
    names = {make.__name__ for make in WORKLOADS.WORKLOADS}
    assert names >= {
        "long_document_qa",
        "growing_chat",
        "agent_loop",
        "two_documents_alternating",
        "long_pauses",
        "short_system",
    }
    pauses = WORKLOADS.long_pauses().calls
    assert all(b.at - a.at > 300 for a, b in itertools.pairwise(pauses))


def test_first_call_writes_the_tail_with_free_breakpoints_at_the_boundaries() -> None:
    params = chat(1, doc_words=3_000)
    planned = plan_breakpoints(params, [], INFO)
    assert marks(planned) == [
        ("system.0", "5m", marks(planned)[0][2]),
        ("messages.0.content.0", "5m", marks(planned)[1][2]),
        ("messages.0.content.1", "5m", layout(params, TokenEstimator()).total_tokens),
    ]
    assert all(tokens >= INFO.min_cache_tokens for _, _, tokens in marks(planned))


def test_nothing_below_the_minimum_is_marked() -> None:
    params = chat(1, system_words=100)
    assert marks(plan_breakpoints(params, [], INFO)) == []


def test_gaps_choose_the_lifetime() -> None:
    params = chat(3, doc_words=3_000)
    quick = [Sent(0.0, chat(1, doc_words=3_000)), Sent(60.0, chat(2, doc_words=3_000))]
    assert {ttl for _, ttl, _ in marks(plan_breakpoints(params, quick, INFO, now=120.0))} == {"5m"}
    slow = [Sent(0.0, chat(1, doc_words=3_000)), Sent(900.0, chat(2, doc_words=3_000))]
    ttls = [ttl for _, ttl, _ in marks(plan_breakpoints(params, slow, INFO, now=1_800.0))]
    assert ttls and ttls[0] == "1h"  # two 15-minute gaps: the shared prefix is worth a 1h write
    gone = [Sent(0.0, chat(1, doc_words=3_000)), Sent(7_200.0, chat(2, doc_words=3_000))]
    assert "1h" not in [t for _, t, _ in marks(plan_breakpoints(params, gone, INFO, now=14_400.0))]


def test_an_entry_beyond_the_lookback_is_still_read() -> None:
    first = chat(1, doc_words=2_000)
    notes = [text(f"note {i}") for i in range(30)]
    later = {
        **first,
        "messages": [
            *first["messages"],
            {"role": "assistant", "content": [text("ok")]},
            {"role": "user", "content": notes},
        ],
    }
    whole_first = layout(first, TokenEstimator()).total_tokens
    for strategy, expected in (("last", 0), ("planner", whole_first)):
        run = what_if([Replay(0.0, first), Replay(30.0, later)], ["none", strategy])
        assert run.run(strategy).tokens.read == expected  # 32 blocks on: beyond the 20-block lookback


def test_explicit_markers_are_kept_unless_asked_otherwise() -> None:
    params = chat(1, doc_words=3_000)
    params["system"] = [{**params["system"][0], "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    kept = marks(plan_breakpoints(params, [], INFO))
    assert kept[0][:2] == ("system.0", "1h") and len(kept) <= 4
    assert marks(plan_breakpoints(params, [], INFO, keep_explicit=False))[0][:2] == ("system.0", "5m")
    late_1h = {"type": "ephemeral", "ttl": "1h"}
    params["messages"][0]["content"][-1] = {**params["messages"][0]["content"][-1], "cache_control": late_1h}
    params["system"] = [{**params["system"][0], "cache_control": {"type": "ephemeral"}}]  # 5m, then 1h: a 400
    assert plan_breakpoints(params, [], INFO) == params  # left as written, for pre-flight to report


def test_planned_requests_read_from_the_emulator() -> None:
    emu = Emulator()
    client = emu.client()
    history: list[Sent] = []
    reads = []
    for turn in range(1, 5):
        params = chat(turn, doc_words=2_000)
        planned = plan_breakpoints(params, history, INFO, now=emu.now())
        reads.append(client.messages.create(**planned).usage.cache_read_input_tokens)
        history.append(Sent(emu.now(), planned))
        emu.advance(45)
    assert reads[0] == 0 and all(r > 2_000 for r in reads[1:])


def test_call_records_are_a_history() -> None:
    session = Session(model=MODEL, connection=connect(emulator=Emulator()))
    session.system(words(1_500), name="rules")
    session.ask("one", stream=False)
    session.ask("two", stream=False)
    planned = plan_breakpoints(session.params(), session.calls, session.info, now=session.now())
    assert marks(planned)  # a valid request with breakpoints


def test_with_markers_replaces_every_marker() -> None:
    params = {
        "model": MODEL,
        "max_tokens": 5,
        "cache_control": {"type": "ephemeral"},
        "system": "plain system",
        "messages": [{"role": "user", "content": "plain"}, {"role": "assistant", "content": [text("x")]}],
    }
    out = with_markers(params, {"system.0": "1h", "messages.0.content.0": "5m"})
    assert "cache_control" not in out
    assert out["system"] == [
        {"type": "text", "text": "plain system", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    ]
    assert out["messages"][0]["content"] == [
        {"type": "text", "text": "plain", "cache_control": {"type": "ephemeral", "ttl": "5m"}}
    ]
    assert with_markers(out, {})["messages"][0]["content"][0] == text("plain")
    assert params["system"] == "plain system"  # the input is not modified


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from([0, 30, 299, 301, 900, 3_599, 3_601]),
            st.integers(min_value=0, max_value=2),  # 0: new question, 1: new document, 2: tool round
            st.integers(min_value=50, max_value=3_000),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_every_planned_request_is_valid(steps: list[tuple[int, int, int]]) -> None:
    planner, now = Planner(INFO), 0.0
    messages: list[dict[str, Any]] = []
    for i, (gap, kind, size) in enumerate(steps):
        now += gap
        if kind == 1:
            messages = [{"role": "user", "content": [text(words(size, f"doc{i}"))]}]
        elif kind == 2 and messages and messages[-1]["role"] == "user":
            messages.append({"role": "assistant", "content": [text("calling")]})
            messages.append(
                {"role": "user", "content": [text(words(size, f"r{i}-{k}")) for k in range(1 + size % 25)]}
            )
        content = [text(f"q{i} " + words(size // 10, "q"))]
        if messages and messages[-1]["role"] == "user":
            messages[-1] = {"role": "user", "content": [*messages[-1]["content"], *content]}
        else:
            messages.append({"role": "user", "content": content})
        params = {"model": MODEL, "max_tokens": 10, "system": [text(words(400, "s"))], "messages": messages}
        planned = planner.plan(params, now)
        found = marks(planned)
        assert len(found) <= 4
        assert all(tokens >= INFO.min_cache_tokens for _, _, tokens in found)
        planner.observe(planned, now)
        messages = [*messages, {"role": "assistant", "content": [text(f"answer {i}")]}]
