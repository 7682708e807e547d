"""Families of notebook sessions that change what they send: edits, re-runs, restarts, windows.

Each takes a seeded `random.Random`, draws its parameters and returns the `Notebook` and what
it drew.  These are the sessions where a marker that moves with the tail loses the prefix
and a marker at the end of a stable block keeps it.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from .notebook import MODELS, Notebook, text, think
from .text import prose

__all__ = ["codebase_edits", "rerun_cell", "restarts", "sliding_window", "system_tweaks"]

Drawn = tuple[Notebook, dict[str, Any]]


def codebase_edits(rng: random.Random) -> Drawn:
    """A codebase as context, one file edited (in the middle or the last one) every 2-5 turns."""
    files = rng.randint(4, 9)
    drawn = {
        "model": rng.choice(MODELS),
        "files": files,
        "file_words": [rng.randint(400, 2_500) for _ in range(files)],
        "edit_every": rng.randint(2, 5),
        "where": rng.choice(["middle", "end"]),
        "turns": rng.randint(12, 24),
        "regime": rng.choice(["quick", "quick", "mixed"]),
    }
    nb = Notebook(rng, drawn["model"])
    nb.system = [text("You review this code. " + prose(rng, rng.randint(200, 1_000)))]
    code = [text(f"# file {i}.py\n" + prose(rng, n)) for i, n in enumerate(drawn["file_words"])]
    version = 0

    def render() -> tuple[dict[str, Any], ...]:
        return (*code[:-1], {**code[-1], "cache_control": {"type": "ephemeral"}})

    nb.context = render()
    for turn in range(drawn["turns"]):
        if turn and turn % drawn["edit_every"] == 0:
            i = files - 1 if drawn["where"] == "end" else rng.randrange(files - 1)
            version += 1
            code[i] = text(f"# file {i}.py (v{version})\n" + prose(rng, drawn["file_words"][i]))
            nb.context = render()
        nb.call([nb.question()], rng.randint(100, 450))
        nb.wait(think(rng, drawn["regime"]))
    return nb, drawn


def system_tweaks(rng: random.Random) -> Drawn:
    """The system prompt rewritten 1-3 times over the first calls (the chat restarted), then stable."""
    drawn = {
        "model": rng.choice(MODELS),
        "system_words": rng.randint(900, 3_000),
        "tweaks": rng.randint(1, 3),
        "turns": rng.randint(10, 20),
        "context_words": rng.choice([0, rng.randint(2_000, 10_000)]),
        "regime": rng.choice(["quick", "mixed"]),
    }
    nb = Notebook(rng, drawn["model"])
    base = prose(rng, drawn["system_words"])
    if drawn["context_words"]:
        nb.context = (text("CONTEXT\n\n" + prose(rng, drawn["context_words"]), marked=True),)
    for version in range(drawn["tweaks"] + 1):
        nb.system = [text(f"Rules, version {version}. " + base, marked=True)]
        nb.turns = []
        asks = 1 if version < drawn["tweaks"] else drawn["turns"]
        for _ in range(asks):
            nb.call([nb.question()], rng.randint(80, 400))
            nb.wait(rng.uniform(40, 200) if version < drawn["tweaks"] else think(rng, drawn["regime"]))
    return nb, drawn


def rerun_cell(rng: random.Random) -> Drawn:
    """A chat over a report where an earlier question cell is re-run now and then (cut back or in place)."""
    drawn = {
        "model": rng.choice(MODELS),
        "report_words": rng.randint(2_000, 14_000),
        "turns": rng.randint(14, 24),
        "rerun": round(rng.uniform(0.15, 0.35), 2),
        "how": rng.choice(["cut", "in place"]),
        "regime": rng.choice(["quick", "quick", "mixed"]),
    }
    nb = Notebook(rng, drawn["model"])
    nb.system = [text("You answer questions about the report. " + prose(rng, rng.randint(60, 700)))]
    nb.context = (text("REPORT\n\n" + prose(rng, drawn["report_words"]), marked=True),)
    for _ in range(drawn["turns"]):
        if len(nb.turns) > 1 and rng.random() < drawn["rerun"]:
            j = len(nb.turns) - rng.randint(1, min(4, len(nb.turns)))
            same = rng.random() < 0.4
            question = nb.turns[j].user if same else (nb.question(),)
            if drawn["how"] == "cut":
                nb.turns = nb.turns[:j]
                nb.call(question, rng.randint(100, 400))
            else:  # the cell's prompt and reply replaced where they stand; the later turns stay
                reply = (text(prose(rng, rng.randint(100, 400))),)
                nb.turns[j] = replace(nb.turns[j], user=tuple(question), reply=reply)
                nb.call([nb.question()], rng.randint(100, 400))
        else:
            nb.call([nb.question()], rng.randint(100, 400))
        nb.wait(think(rng, drawn["regime"]))
    return nb, drawn


def restarts(rng: random.Random) -> Drawn:
    """System prompt and a dataset card; short chats, each started afresh (the conversation cleared)."""
    drawn = {
        "model": rng.choice(MODELS),
        "card_words": rng.randint(2_000, 12_000),
        "chats": [rng.randint(2, 7) for _ in range(rng.randint(3, 5))],
        "regime": rng.choice(["quick", "mixed"]),
    }
    nb = Notebook(rng, drawn["model"])
    nb.system = [text("You are a data analyst. " + prose(rng, rng.randint(200, 1_400)), marked=True)]
    nb.context = (text("DATASET CARD\n\n" + prose(rng, drawn["card_words"]), marked=True),)
    for size in drawn["chats"]:
        nb.turns = []
        for _ in range(size):
            nb.call([nb.question()], rng.randint(100, 400))
            nb.wait(think(rng, drawn["regime"]))
        nb.wait(rng.uniform(60, 900))
    return nb, drawn


def sliding_window(rng: random.Random) -> Drawn:
    """A long chat that keeps only its last 6-12 turns: each call past that drops the oldest turn."""
    drawn = {
        "model": rng.choice(MODELS),
        "system_words": rng.randint(800, 3_000),
        "window": rng.randint(6, 12),
        "turns": rng.randint(20, 36),
        "regime": rng.choice(["quick", "mixed"]),
    }
    nb = Notebook(rng, drawn["model"])
    nb.system = [text("You are a writing partner. " + prose(rng, drawn["system_words"]), marked=True)]
    for _ in range(drawn["turns"]):
        nb.turns = nb.turns[-drawn["window"] :]
        nb.call([nb.question((20, 120))], rng.randint(150, 500))
        nb.wait(think(rng, drawn["regime"]))
    return nb, drawn
