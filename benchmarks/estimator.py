"""Token estimator throughput against one bare regex pass over the same text.

Offline, every request is counted by `TokenEstimator`; its promise is "one regex pass plus
cheap corrections".  The baseline is exactly that one pass, so the ratio shows what the
corrections cost: at least half the regex's speed keeps counting a pasted codebase instant.
"""

from __future__ import annotations

import random
import re

from pcache_magic.core.tokens import TokenEstimator

from ._harness import Figure, Goal, compare

__all__ = ["TARGET_BYTES", "mixed_text", "run"]

TARGET_BYTES = 1_000_000
#: Goal: the estimator runs at >= 0.5x the speed of a single findall pass.
GOAL = Goal.at_least(0.5)
_PATTERN = re.compile(r"\w+|[^\w\s]")

_PROSE = (
    "the cache prefix is stable when every byte before the breakpoint stays identical between "
    "calls so a reviewer can paste a paper or a codebase once and ask many questions about it "
    "naïve café façade résumé coöperate"
)
_WORDS = _PROSE.split()
_CODE = (
    "def {name}(items: list[int], limit: int = {n}) -> dict[str, int]:\n"
    '    """Count {name} items up to the limit."""\n'
    "    result = {{}}\n"
    "    for i, item in enumerate(items[:limit]):\n"
    "        if item % {n} == 0 and not result.get(str(item)):\n"
    '            result[f"{{item:04x}}"] = i * 0x{n:x} + len(items)\n'
    "    return result  # {word}\n"
)
_EXTRAS = (
    "See https://example.com/docs/prompt-caching?ttl=1h#rules for details.",
    "The digest is 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08.",
    "表格中的缓存前缀必须完全相同。",
    "Costs: $3.00 / MTok input, $0.30 / MTok read (0.1x) — about 90% less.",
)


def mixed_text(size: int = TARGET_BYTES, seed: int = 7) -> str:
    """Deterministic prose, Python code and odd lines (URLs, hex, CJK) of about `size` chars."""
    rng = random.Random(seed)
    parts: list[str] = []
    length = 0
    while length < size:
        roll = rng.random()
        if roll < 0.55:
            words = [rng.choice(_WORDS) for _ in range(rng.randint(40, 120))]
            part = " ".join(words).capitalize() + ".\n\n"
        elif roll < 0.95:
            name = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz_") for _ in range(8))
            n = rng.randint(2, 4096)
            part = _CODE.format(name=name, n=n, word=rng.choice(_WORDS)) + "\n"
        else:
            part = rng.choice(_EXTRAS) + "\n"
        parts.append(part)
        length += len(part)
    return "".join(parts)


def run(quick: bool = False) -> list[Figure]:
    text = mixed_text()
    estimator = TokenEstimator()

    def baseline() -> object:
        return _PATTERN.findall(text)

    def subject() -> object:
        return estimator.text(text)

    result = compare(
        baseline,
        subject,
        labels=('re.findall(r"\\w+|[^\\w\\s]", text)', "TokenEstimator().text(text)"),
        repeats=5 if quick else 21,
        warmup=1 if quick else 3,
        min_sample_ns=0 if quick else 100_000_000,
    )
    size = len(text.encode("utf-8"))
    details = {
        **result.details(),
        "chars": len(text),
        "utf8_bytes": size,
        "estimated_tokens": estimator.text(text),
        "regex_pieces": len(_PATTERN.findall(text)),
        "subject_mb_per_s": round(size / result.subject.median_ns * 1e3, 2),
    }
    return [Figure("estimator.throughput_1mb", result.throughput, "x", GOAL, details)]
