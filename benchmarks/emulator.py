"""Emulator cost per request on a 100k-token conversation with 4 breakpoints.

A notebook re-sends its whole conversation on every call, so the emulator's per-request work
must stay a small multiple of what any server has to do with those bytes anyway: parse the
JSON and hash it once.  The subject is the steady state of a notebook (a repeated request that
reads from the cache); the cold first request is reported alongside, for information.
"""

from __future__ import annotations

import hashlib
import json
import random
import statistics
import time
from typing import Any

from pcache_magic.emulator.engine import Engine, ManualClock

from ._harness import Figure, Goal, compare

__all__ = ["API_KEY", "MODEL", "TARGET_TOKENS", "build_conversation", "run"]

MODEL = "claude-sonnet-4-5"
API_KEY = "sk-ant-benchmark"
TARGET_TOKENS = 100_000
#: Goal: warm request processing <= 5x the parse-and-hash floor.
GOAL = Goal.at_most(5.0)
#: Exchanges (user + assistant) before the final question: 2 * 20 + 1 = 41 messages.
EXCHANGES = 20

_PROSE_WORDS = (
    "the a of to and in that is for it as with on by this be are from at or an which "
    "cache prefix token request model prompt system message block breakpoint reviewer code "
    "function module test notebook session cost latency usage marker lifetime entry write "
    "read hit miss context paper section result figure table argument claim evidence method "
    "careful because however therefore although whereas meanwhile instead moreover "
    "review explain compare measure describe suggest improve refactor rename extract verify "
    "large small stable byte identical longer shorter earlier later first last every each"
)
_VOCABULARY = _PROSE_WORDS.split()
_EPHEMERAL: dict[str, Any] = {"type": "ephemeral"}
_ONE_HOUR: dict[str, Any] = {"type": "ephemeral", "ttl": "1h"}


def _prose(rng: random.Random, words: int) -> str:
    """Deterministic paragraphs of sentences of 6-22 words, with ordinary punctuation."""
    sentences: list[str] = []
    paragraph = 0
    while words > 0:
        n = min(words, rng.randint(6, 22))
        words -= n
        sentence = " ".join(rng.choice(_VOCABULARY) for _ in range(n))
        if n > 10 and rng.random() < 0.3:
            cut = sentence.index(" ", len(sentence) // 2)
            sentence = sentence[:cut] + "," + sentence[cut:]
        sentences.append(sentence[0].upper() + sentence[1:] + rng.choice(".....?!"))
        paragraph += 1
        if paragraph >= rng.randint(4, 8):
            sentences.append("\n\n")
            paragraph = 0
    return " ".join(sentences).replace(" \n\n ", "\n\n").strip()


def _body(scale: float) -> dict[str, Any]:
    """Tools, a long system prompt and 41 messages; markers on tool, system, mid and last turn."""
    rng = random.Random(20260101)

    def words(n: int) -> int:
        return max(1, round(n * scale))

    tool = {
        "name": "search_notes",
        "description": _prose(rng, words(130)),
        "input_schema": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "Words to look for."},
                "limit": {"type": "integer", "description": "Most results to return."},
            },
            "required": ["query"],
        },
        "cache_control": _ONE_HOUR,
    }
    system = [{"type": "text", "text": _prose(rng, words(12_300)), "cache_control": _ONE_HOUR}]
    messages: list[dict[str, Any]] = []
    for turn in range(EXCHANGES):
        question = _prose(rng, words(1_050))
        if turn == EXCHANGES // 2:  # a mid-conversation breakpoint, as a long chat would set
            messages.append(
                {
                    "role": "user",
                    "content": [{"type": "text", "text": question, "cache_control": _EPHEMERAL}],
                }
            )
        else:
            messages.append({"role": "user", "content": question})
        answer = [{"type": "text", "text": _prose(rng, words(2_000))}]
        messages.append({"role": "assistant", "content": answer})
    last = {"type": "text", "text": "Which points above still lack evidence?"}
    messages.append({"role": "user", "content": [{**last, "cache_control": _EPHEMERAL}]})
    return {
        "model": MODEL,
        "max_tokens": 1024,
        "tools": [tool],
        "system": system,
        "messages": messages,
    }


def _count(body: dict[str, Any]) -> int:
    counting = {k: v for k, v in body.items() if k != "max_tokens"}
    return int(Engine(ManualClock()).count_tokens(API_KEY, counting)["input_tokens"])


def build_conversation(target: int = TARGET_TOKENS) -> tuple[dict[str, Any], int]:
    """The benchmark body, sized so the emulator's own count is within 2% of `target`."""
    scale = 1.0
    for _ in range(4):
        body = _body(scale)
        tokens = _count(body)
        if abs(tokens - target) <= target * 0.02:
            return body, tokens
        scale *= target / tokens
    raise RuntimeError(f"could not size the conversation near {target} tokens (got {tokens})")


def _cold_samples(raw: bytes, count: int) -> list[float]:
    """First-request cost: a fresh engine (built untimed) each time, so nothing is memoized."""
    samples = []
    for _ in range(count):
        engine = Engine(ManualClock())
        start = time.perf_counter_ns()
        engine.create_message(API_KEY, json.loads(raw))
        samples.append(float(time.perf_counter_ns() - start))
    return samples


def run(quick: bool = False) -> list[Figure]:
    body, tokens = build_conversation()
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    engine = Engine(ManualClock())
    first = engine.create_message(API_KEY, json.loads(raw))["usage"]
    warm = engine.create_message(API_KEY, json.loads(raw))["usage"]
    if warm["cache_read_input_tokens"] < tokens * 0.9:
        raise RuntimeError(f"the repeated request did not read from the cache: {warm}")

    def floor() -> object:
        json.loads(raw)
        return hashlib.sha256(raw).digest()

    def subject() -> object:
        return engine.create_message(API_KEY, json.loads(raw))

    result = compare(
        floor,
        subject,
        labels=("json.loads + sha256 of the body", "json.loads + Engine.create_message (warm)"),
        repeats=5 if quick else 21,
        warmup=1 if quick else 3,
        min_sample_ns=5_000_000 if quick else 50_000_000,
    )
    cold = statistics.median(_cold_samples(raw, 2 if quick else 7))
    details = {
        **result.details(),
        "body_bytes": len(raw),
        "input_tokens": tokens,
        "breakpoints": 4,
        "messages": len(body["messages"]),
        "first_request_usage": first,
        "warm_request_usage": warm,
        "cold_median_ms": round(cold / 1e6, 4),
        "cold_ratio": round(cold / result.baseline.median_ns, 3),
    }
    return [Figure("emulator.warm_request_100k", result.slowdown, "x", GOAL, details)]
