"""Seeded prose for the workloads: the same bytes on every machine, about 1.35 tokens a word.

The words are drawn from a small vocabulary, so the texts say nothing; what matters for
caching is their length and that they are byte-identical whenever a workload repeats them.
"""

from __future__ import annotations

import random

__all__ = ["VOCABULARY", "prose"]

_WORDS = (
    "the a of to and in that is for it as with on by this be are from at or an which cache prefix "
    "token request model prompt system message block reviewer code function module test notebook "
    "session cost latency usage marker lifetime entry write read context paper section result figure "
    "table argument claim evidence method careful because however therefore although whereas "
    "meanwhile instead moreover review explain compare measure describe suggest improve refactor "
    "rename extract verify large small stable identical longer shorter earlier later first last every"
)
VOCABULARY: tuple[str, ...] = tuple(_WORDS.split())


def prose(rng: random.Random, words: int) -> str:
    """Sentences of 6-22 seeded words, paragraphs of 4-8 sentences."""
    out: list[str] = []
    sentences, paragraph = 0, rng.randint(4, 8)
    while words > 0:
        n = min(words, rng.randint(6, 22))
        words -= n
        sentence = " ".join(rng.choices(VOCABULARY, k=n))
        out.append(sentence[0].upper() + sentence[1:] + ".")
        sentences += 1
        if sentences % paragraph == 0:
            out.append("\n\n")
            paragraph = rng.randint(4, 8)
    return " ".join(out).replace(" \n\n ", "\n\n").strip()
