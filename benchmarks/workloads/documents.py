"""Families of notebook sessions around documents: questions over a paper, a codebase, data.

Each family takes a seeded `random.Random`, draws its own parameters (model, sizes, how many
questions, the think-time regime, chat or fresh questions) and returns the `Notebook` with
its calls and a dict of what it drew.  The sensible user marks the end of each large stable
block with a 5m marker.
"""

from __future__ import annotations

import random
from typing import Any

from .notebook import MODELS, Notebook, text, think
from .text import prose

__all__ = [
    "growing_notes",
    "hour_markers",
    "lunch_break",
    "paper_questions",
    "small_and_large",
    "two_contexts",
]

Drawn = tuple[Notebook, dict[str, Any]]


def _system(rng: random.Random, words: int) -> dict[str, Any]:
    """A system prompt; the user marks it when it alone is large (about 1,500 tokens or more)."""
    return text("You are a careful assistant. " + prose(rng, words), marked=words >= 1_100)


def _qa(nb: Notebook, questions: int, regime: str, fresh: bool, reply: tuple[int, int]) -> None:
    for _ in range(questions):
        nb.call([nb.question()], nb.rng.randint(*reply), keep=not fresh)
        nb.wait(think(nb.rng, regime))


def paper_questions(rng: random.Random) -> Drawn:
    """A long paper as context and 12-24 questions, as a chat or fresh each time, in one think regime."""
    drawn = {
        "model": rng.choice(MODELS),
        "system_words": rng.randint(60, 900),
        "paper_words": rng.randint(5_000, 28_000),
        "questions": rng.randint(12, 24),
        "regime": rng.choice(["quick", "pause", "sparse", "mixed"]),
        "fresh": rng.random() < 0.4,
    }
    nb = Notebook(rng, drawn["model"])
    nb.system = [_system(rng, drawn["system_words"])]
    nb.context = (text("PAPER\n\n" + prose(rng, drawn["paper_words"]), marked=True),)
    _qa(nb, drawn["questions"], drawn["regime"], drawn["fresh"], (80, 450))
    return nb, drawn


def hour_markers(rng: random.Random) -> Drawn:
    """A large stable specification, questions 6-50 minutes apart (a few quick follow-ups): 1h pays."""
    drawn = {
        "model": rng.choice(MODELS),
        "spec_words": rng.randint(6_000, 20_000),
        "questions": rng.randint(8, 16),
        "follow_ups": round(rng.uniform(0.0, 0.3), 2),
        "fresh": rng.random() < 0.5,
    }
    nb = Notebook(rng, drawn["model"])
    nb.system = [_system(rng, rng.randint(100, 1_500))]
    nb.context = (text("SPECIFICATION\n\n" + prose(rng, drawn["spec_words"]), marked=True),)
    for _ in range(drawn["questions"]):
        nb.call([nb.question()], rng.randint(100, 500), keep=not drawn["fresh"])
        nb.wait(rng.uniform(20, 120) if rng.random() < drawn["follow_ups"] else rng.uniform(360, 3_000))
    return nb, drawn


def two_contexts(rng: random.Random) -> Drawn:
    """A stable reference and a results block re-run (replaced) often, then a question each call."""
    drawn = {
        "model": rng.choice(MODELS),
        "reference_words": rng.randint(3_000, 15_000),
        "results_words": rng.randint(300, 2_500),
        "change": round(rng.uniform(0.4, 1.0), 2),
        "questions": rng.randint(10, 20),
        "regime": rng.choice(["quick", "mixed"]),
        "fresh": rng.random() < 0.6,
    }
    nb = Notebook(rng, drawn["model"])
    nb.system = [_system(rng, rng.randint(60, 600))]
    reference = text("REFERENCE\n\n" + prose(rng, drawn["reference_words"]), marked=True)
    for i in range(drawn["questions"]):
        if i == 0 or rng.random() < drawn["change"]:
            results = text(f"RESULTS run {i}\n\n" + prose(rng, drawn["results_words"]))
            nb.context = (reference, results)
        nb.call([nb.question()], rng.randint(80, 300), keep=not drawn["fresh"])
        nb.wait(think(rng, drawn["regime"]))
    return nb, drawn


def small_and_large(rng: random.Random) -> Drawn:
    """Short prompts below the model's minimum mixed with questions over a large manual."""
    drawn = {
        "model": rng.choice(MODELS),
        "manual_words": rng.randint(2_500, 12_000),
        "calls": rng.randint(14, 26),
        "small_share": round(rng.uniform(0.3, 0.6), 2),
    }
    big = Notebook(rng, drawn["model"])
    big.system = [_system(rng, rng.randint(60, 400))]
    big.context = (text("MANUAL\n\n" + prose(rng, drawn["manual_words"]), marked=True),)
    small = Notebook(rng, drawn["model"], system=[text("Answer in one line. " + prose(rng, 40))])
    for _ in range(drawn["calls"]):
        wait = think(rng, "quick")
        if rng.random() < drawn["small_share"]:
            small.at = big.at
            small.call([small.question((5, 30))], rng.randint(20, 80), keep=False)
            big.calls.append(small.calls.pop())
        else:
            big.call([big.question()], rng.randint(80, 350), keep=False)
        big.wait(wait)
    return big, drawn


def lunch_break(rng: random.Random) -> Drawn:
    """Bursts of quick questions in a chat, a coffee break, a 65-80 minute lunch, more bursts."""
    drawn = {
        "model": rng.choice(MODELS),
        "notes_words": rng.randint(3_000, 16_000),
        "bursts": [rng.randint(3, 8) for _ in range(rng.randint(3, 4))],
        "lunch_after": rng.randint(1, 2),
    }
    nb = Notebook(rng, drawn["model"])
    nb.system = [_system(rng, rng.randint(100, 1_400))]
    nb.context = (text("NOTES\n\n" + prose(rng, drawn["notes_words"]), marked=True),)
    for b, size in enumerate(drawn["bursts"]):
        for _ in range(size):
            nb.call([nb.question()], rng.randint(80, 400))
            nb.wait(rng.uniform(20, 150))
        nb.wait(rng.uniform(3_900, 4_800) if b + 1 == drawn["lunch_after"] else rng.uniform(480, 1_200))
    return nb, drawn


def growing_notes(rng: random.Random) -> Drawn:
    """A chat over a dataset description where the user pastes a new note or output every few turns."""
    drawn = {
        "model": rng.choice(MODELS),
        "data_words": rng.randint(1_500, 9_000),
        "turns": rng.randint(12, 24),
        "paste": round(rng.uniform(0.2, 0.5), 2),
        "regime": rng.choice(["quick", "mixed"]),
    }
    nb = Notebook(rng, drawn["model"])
    nb.system = [_system(rng, rng.randint(100, 800))]
    nb.context = (text("DATA\n\n" + prose(rng, drawn["data_words"]), marked=True),)
    for _ in range(drawn["turns"]):
        user = [nb.question()]
        if rng.random() < drawn["paste"]:
            user.insert(0, text("OUTPUT\n\n" + prose(rng, rng.randint(300, 2_000))))
        nb.call(user, rng.randint(80, 400))
        nb.wait(think(rng, drawn["regime"]))
    return nb, drawn
