"""A Message as the API streams it: the SSE event sequence, with usage where the API puts it.

`message_start` carries the full input usage, cache fields included (code that
reads only `message_delta` loses them); `message_delta.usage` is cumulative.  A
thinking block streams `thinking_delta`s, then one `signature_delta`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

__all__ = ["message_events", "truncate_to_tokens"]

_CHUNK = re.compile(r"\S+\s*|\s+")


def _text_chunks(text: str, size: int = 48) -> Iterator[str]:
    """Word-aligned pieces of about `size` characters, as deltas arrive from the API."""
    piece = ""
    for word in _CHUNK.findall(text):
        piece += word
        if len(piece) >= size:
            yield piece
            piece = ""
    if piece:
        yield piece


def message_events(message: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The SSE events (name, data) that stream `message`, in the API's order."""
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
    start["usage"] = {**usage, "output_tokens": min(1, usage["output_tokens"])}
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start}),
        ("ping", {"type": "ping"}),
    ]
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            opening: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": t} for t in _text_chunks(block["text"])]
        elif block["type"] == "thinking":  # the thought in pieces, then its signature in one
            opening = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": t} for t in _text_chunks(block["thinking"])]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        else:
            opening = {**block, "input": {}}
            raw = json.dumps(block["input"], allow_nan=False)
            deltas = [
                {"type": "input_json_delta", "partial_json": raw[i : i + 32]} for i in range(0, len(raw), 32)
            ]
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": opening},
            )
        )
        for delta in deltas:
            events.append(
                (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                )
            )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    final_usage = {
        "input_tokens": usage["input_tokens"],
        "cache_creation_input_tokens": usage["cache_creation_input_tokens"],
        "cache_read_input_tokens": usage["cache_read_input_tokens"],
        "output_tokens": usage["output_tokens"],
    }
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}
    events.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": final_usage}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def _longest(pieces: Sequence[str], fits: Callable[[str], bool]) -> int:
    """How many leading `pieces` fit, by bisection (`fits` is monotone in the prefix)."""
    lo, hi = 0, len(pieces)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits("".join(pieces[:mid])):
            lo = mid
        else:
            hi = mid - 1
    return lo


def truncate_to_tokens(text: str, limit: int, count: Callable[[str], int]) -> str:
    """The longest word-aligned prefix of `text` that counts at most `limit` tokens.

    When not even the first word fits, the longest piece of it that does, at least one character
    if `limit` >= 1: generation emits a token, never nothing (`max_tokens: 1` gives one).
    """
    words = _CHUNK.findall(text)
    kept = _longest(words, lambda t: count(t) <= limit)
    if kept or limit < 1 or not words:
        return "".join(words[:kept])
    first = words[0]
    return first[: max(1, _longest(list(first), lambda t: count(t) <= limit))]
