"""Replay workloads for the breakpoint planner: recorded-style request sequences with their times.

Each generator returns a `Workload`: the requests a program or a notebook would send, in
order, with the seconds at which they were sent and the output tokens of each reply.  They
are small deterministic Python generators rather than JSON files, because the interesting
ones hold tens of thousands of tokens of documents and tool results.  Prose comes from a
seeded generator, so a run on any machine replays exactly the same bytes.

The shapes are the ones prompt caching is about: long-document Q&A, a growing chat, an
agent loop with large (and once many parallel) tool results, two documents alternating,
pauses longer than five minutes, a system prompt under the model's minimum, and bursts of
questions separated by coffee breaks.  These seven are the reference set the old planner was
shaped on; the generated families, with their development and held-out seeds, are `suite`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pcache_magic.analysis.savings import Replay

from .text import VOCABULARY

__all__ = ["MODEL", "WORKLOADS", "Workload", "all_workloads"]

MODEL = "claude-sonnet-4-5"


@dataclass(frozen=True)
class Workload:
    """A named sequence of requests to replay, with what it is meant to exercise."""

    name: str
    description: str
    calls: tuple[Replay, ...]


def _prose(rng: random.Random, words: int) -> str:
    """Sentences of 6-22 seeded words, paragraphs of 4-8 sentences."""
    out: list[str] = []
    sentences = 0
    while words > 0:
        n = min(words, rng.randint(6, 22))
        words -= n
        sentence = " ".join(rng.choice(VOCABULARY) for _ in range(n))
        out.append(sentence[0].upper() + sentence[1:] + ".")
        sentences += 1
        if sentences % rng.randint(4, 8) == 0:
            out.append("\n\n")
    return " ".join(out).replace(" \n\n ", "\n\n").strip()


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _request(
    system: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 1024,
        "system": [_text(system)],
        "messages": messages,
    }
    if tools:
        params["tools"] = tools
    return params


def _copy(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"role": m["role"], "content": list(m["content"])} for m in messages]


def _chat(
    name: str,
    description: str,
    seed: int,
    system_words: int,
    opening: list[dict[str, Any]] | None,
    turns: int,
    gaps: Callable[[random.Random, int], float],
    question_words: tuple[int, int] = (15, 60),
    reply_words: tuple[int, int] = (150, 400),
) -> Workload:
    """A conversation that grows by one question and one reply per call."""
    rng = random.Random(seed)
    system = _prose(rng, system_words)
    messages: list[dict[str, Any]] = []
    calls, at = [], 0.0
    for turn in range(turns):
        question = _text(f"Question {turn + 1}: " + _prose(rng, rng.randint(*question_words)))
        messages.append(
            {"role": "user", "content": [*(opening or []), question] if turn == 0 else [question]}
        )
        reply = _prose(rng, rng.randint(*reply_words))
        calls.append(Replay(at, _request(system, _copy(messages)), len(reply.split())))
        messages.append({"role": "assistant", "content": [_text(reply)]})
        at += gaps(rng, turn)
    return Workload(name, description, tuple(calls))


def long_document_qa() -> Workload:
    """Independent questions over one long report: each call is system + report + question."""
    rng = random.Random(11)
    system = "You answer questions about the attached report and quote the section you rely on."
    report = _text("REPORT\n\n" + _prose(rng, 16_000))
    calls, at = [], 0.0
    for i in range(12):
        question = _text(f"Question {i + 1}: " + _prose(rng, rng.randint(15, 40)))
        calls.append(Replay(at, _request(system, [{"role": "user", "content": [report, question]}]), 300))
        at += rng.uniform(20, 150)
    return Workload("long_document_qa", long_document_qa.__doc__ or "", tuple(calls))


def growing_chat() -> Workload:
    """A chat with a 1.5k-token system prompt, a reply per turn, 20 turns a minute or two apart."""
    return _chat(
        "growing_chat", growing_chat.__doc__ or "", 12, 1_500, None, 20, lambda r, i: r.uniform(20, 150)
    )


def agent_loop() -> Workload:
    """Tools, a task, then tool calls answered with 1.5-4k-token results; one round of 12 in parallel."""
    rng = random.Random(13)
    tools = [
        {
            "name": name,
            "description": _prose(rng, 180),
            "input_schema": {
                "type": "object",
                "properties": {"query": {"type": "string"}},
                "required": ["query"],
            },
        }
        for name in ("search_code", "read_file", "run_tests", "list_files", "grep", "git_log")
    ]
    system = _prose(rng, 700)
    messages: list[dict[str, Any]] = [{"role": "user", "content": [_text("Task: " + _prose(rng, 120))]}]
    calls, at = [], 0.0
    for step in range(14):
        calls.append(Replay(at, _request(system, _copy(messages), tools), 120))
        width = 12 if step == 6 else 1
        uses = [
            {
                "type": "tool_use",
                "id": f"toolu_{step:02d}_{k:02d}",
                "name": tools[k % 6]["name"],
                "input": {"query": "x"},
            }
            for k in range(width)
        ]
        messages.append({"role": "assistant", "content": [_text(_prose(rng, 40)), *uses]})
        results = [
            {
                "type": "tool_result",
                "tool_use_id": u["id"],
                "content": _prose(rng, rng.randint(1_500, 4_000) // width),
            }
            for u in uses
        ]
        messages.append({"role": "user", "content": results})
        at += rng.uniform(3, 15)
    return Workload("agent_loop", agent_loop.__doc__ or "", tuple(calls))


def two_documents_alternating() -> Workload:
    """Questions alternating between two 8k-token documents, each call system + one document + question."""
    rng = random.Random(14)
    system = "You compare contracts. Answer from the attached document only."
    documents = [_text(f"DOCUMENT {tag}\n\n" + _prose(rng, 7_000)) for tag in "AB"]
    calls, at = [], 0.0
    for i in range(16):
        question = _text(f"Question {i + 1}: " + _prose(rng, rng.randint(15, 40)))
        calls.append(
            Replay(at, _request(system, [{"role": "user", "content": [documents[i % 2], question]}]), 250)
        )
        at += rng.uniform(30, 100)
    return Workload("two_documents_alternating", two_documents_alternating.__doc__ or "", tuple(calls))


def long_pauses() -> Workload:
    """A 12k-token codebase and a growing chat about it, every call 6-40 minutes after the last."""
    rng = random.Random(15)
    codebase = _text("CODEBASE\n\n" + _prose(rng, 11_000))
    return _chat(
        "long_pauses", long_pauses.__doc__ or "", 16, 800, [codebase], 10, lambda r, i: r.uniform(360, 2_400)
    )


def short_system() -> Workload:
    """A 300-token system prompt (under the 1,024 minimum) and a chat of short turns that outgrows it."""
    return _chat(
        "short_system",
        short_system.__doc__ or "",
        17,
        300,
        None,
        24,
        lambda r, i: r.uniform(20, 60),
        question_words=(10, 40),
        reply_words=(60, 160),
    )


def coffee_breaks() -> Workload:
    """A document chat in bursts of five quick questions, with a 10-20 minute break between bursts."""
    rng = random.Random(18)
    paper = _text("PAPER\n\n" + _prose(rng, 9_000))
    return _chat(
        "coffee_breaks",
        coffee_breaks.__doc__ or "",
        19,
        600,
        [paper],
        15,
        lambda r, i: r.uniform(600, 1_200) if i % 5 == 4 else r.uniform(20, 90),
    )


#: Every workload generator, in report order.
WORKLOADS: tuple[Callable[[], Workload], ...] = (
    long_document_qa,
    growing_chat,
    agent_loop,
    two_documents_alternating,
    long_pauses,
    short_system,
    coffee_breaks,
)


def all_workloads() -> list[Workload]:
    return [make() for make in WORKLOADS]
