"""Families of sessions driven by tools or by several models: tool loops, long turns, model switches.

Each takes a seeded `random.Random`, draws its parameters and returns the `Notebook` and what
it drew.  Tool loops come seconds apart and grow by their results; long turns add more than
the 20 blocks the API looks back over; a model switch starts a separate cache.
"""

from __future__ import annotations

import random
from typing import Any

from .notebook import MODELS, Notebook, text, think, tool_def
from .text import prose

__all__ = ["long_turns", "model_switch", "tool_loop"]

Drawn = tuple[Notebook, dict[str, Any]]
_TOOLS = ("search_code", "read_file", "run_tests", "list_files", "grep", "git_log", "plot", "query_db")


def _uses(step: int, names: list[str], width: int) -> list[dict[str, Any]]:
    return [
        {"type": "tool_use", "id": f"toolu_{step:03d}_{k:02d}", "name": names[k % len(names)], "input": {}}
        for k in range(width)
    ]


def _results(rng: random.Random, uses: list[dict[str, Any]], words: int) -> list[dict[str, Any]]:
    return [
        {"type": "tool_result", "tool_use_id": u["id"], "content": prose(rng, max(20, words // len(uses)))}
        for u in uses
    ]


def tool_loop(rng: random.Random) -> Drawn:
    """Tasks run as tool loops seconds apart, results growing step by step; minutes between tasks."""
    count = rng.randint(4, 8)
    drawn = {
        "model": rng.choice(MODELS),
        "tools": count,
        "tasks": [rng.randint(4, 12) for _ in range(rng.randint(2, 4))],
        "result_words": (rng.randint(150, 600), rng.randint(1_200, 3_500)),
        "between_tasks": rng.choice(["quick", "pause"]),
        "one_conversation": rng.random() < 0.5,
    }
    nb = Notebook(rng, drawn["model"])
    names = list(_TOOLS[:count])
    nb.tools = [tool_def(rng, n, rng.randint(60, 250), marked=i == count - 1) for i, n in enumerate(names)]
    nb.system = [text("You are a coding agent. " + prose(rng, rng.randint(300, 1_500)), marked=True)]
    step = 0
    low, high = drawn["result_words"]
    for steps in drawn["tasks"]:
        if not drawn["one_conversation"]:
            nb.turns = []
        user: list[dict[str, Any]] = [text("Task: " + prose(rng, rng.randint(30, 150)))]
        for k in range(steps):
            step += 1
            last = k + 1 == steps
            uses = [] if last else _uses(step, names, rng.choice([1, 1, 1, 2, 3]))
            nb.call(user, rng.randint(20, 80) if uses else rng.randint(100, 400), reply=uses)
            if uses:
                size = int(low + (high - low) * k / max(1, steps - 2))
                user = _results(rng, uses, size)
                nb.wait(think(rng, "agent"))
        nb.wait(think(rng, drawn["between_tasks"]))
    return nb, drawn


def long_turns(rng: random.Random) -> Drawn:
    """Each turn pastes 21-45 cell outputs as separate blocks: more than the 20-block lookback per turn."""
    drawn = {
        "model": rng.choice(MODELS),
        "turns": rng.randint(6, 14),
        "blocks": (rng.randint(21, 30), rng.randint(31, 45)),
        "block_words": rng.randint(30, 160),
        "regime": rng.choice(["quick", "agent"]),
    }
    nb = Notebook(rng, drawn["model"])
    nb.system = [text("You explain notebook outputs. " + prose(rng, rng.randint(200, 1_200)))]
    for _ in range(drawn["turns"]):
        cells = [
            text(f"[cell {i}] " + prose(rng, rng.randint(10, drawn["block_words"])))
            for i in range(rng.randint(*drawn["blocks"]))
        ]
        nb.call([*cells, nb.question()], rng.randint(100, 400))
        nb.wait(think(rng, drawn["regime"]))
    return nb, drawn


def model_switch(rng: random.Random) -> Drawn:
    """A chat over a design document that switches between two models a few times."""
    first, second = rng.sample(MODELS, 2)
    drawn = {
        "models": (first, second),
        "doc_words": rng.randint(3_000, 15_000),
        "turns": rng.randint(12, 24),
        "switches": rng.randint(1, 4),
        "regime": rng.choice(["quick", "mixed"]),
    }
    nb = Notebook(rng, first)
    nb.system = [text("You review designs. " + prose(rng, rng.randint(100, 1_000)))]
    nb.context = (text("DESIGN\n\n" + prose(rng, drawn["doc_words"]), marked=True),)
    points = sorted(rng.sample(range(1, drawn["turns"]), drawn["switches"]))
    model = first
    for turn in range(drawn["turns"]):
        if turn in points:
            model = second if model == first else first
        nb.call([nb.question()], rng.randint(80, 400), model=model)
        nb.wait(think(rng, drawn["regime"]))
    return nb, drawn


def router(rng: random.Random) -> Drawn:
    """A router: a cheap model triages each question with its own prompt, then a large model answers
    it over a document; the two models' prompts sit at the same request paths."""
    cheap = "claude-haiku-4-5"
    main = rng.choice([m for m in MODELS if m != cheap])
    drawn = {
        "models": (cheap, main),
        "triage_words": rng.randint(400, 2_500),
        "doc_words": rng.randint(3_000, 12_000),
        "turns": rng.randint(10, 24),
        "regime": rng.choice(["quick", "mixed"]),
    }
    nb = Notebook(rng, main)
    nb.system = [text("You answer questions on a document. " + prose(rng, rng.randint(100, 800)))]
    nb.context = (text("DOCUMENT\n\n" + prose(rng, drawn["doc_words"]), marked=True),)
    triage = Notebook(rng, cheap)
    rules = "Route each question: easy or hard. " + prose(rng, drawn["triage_words"])
    triage.system = [text(rules, marked=True)]
    for _ in range(drawn["turns"]):
        question = nb.question()
        triage.at = nb.at
        triage.call([question], rng.randint(2, 8), keep=False)
        nb.calls.append(triage.calls[-1])
        nb.wait(rng.uniform(1, 4))
        nb.call([question], rng.randint(80, 400))
        nb.wait(think(rng, drawn["regime"]))
    return nb, drawn
