"""The emulator's deterministic answers: a report of what it saw, or a tool call, cut as generation is.

The emulator is not a model.  Its text says so and describes the request and
its cache outcome, which is what someone exploring caching wants to read.
Tool rule (documented in the README): when tools are given, `tool_choice`
allows them, and the last user turn's text names a tool as a word, the reply
is a `tool_use` of the first tool named (in the order of `tools`); a turn of
tool results is answered with text, so a tool loop always ends.  A forced
`tool_choice` (`tool` or `any`) prefills the assistant turn with the call, so
the reply is the `tool_use` block alone, as on the real API; under `auto` a
short text comes before it.  With `thinking` on (enabled or adaptive) a
`thinking` block with a signature comes first, saying that nothing thinks here;
its tokens are output tokens, within the budget.

The signature is an HMAC-SHA256 of the thought (as finally cut) keyed by the engine's thinking
key (`thinking_key`), and `validate` refuses a thinking block sent back whose signature does not
match its text, as the real API does.  The key is derived from a constant, so a session saved and
loaded into a fresh emulator keeps working: this models the API's check, it is no security boundary.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.fmt import plural
from ..core.prefix import Layout, message_blocks
from ..core.tokens import TokenEstimator
from .sse import truncate_to_tokens

__all__ = [
    "MAX_CHARS_PER_TOKEN",
    "Outcome",
    "finish",
    "reply_content",
    "sign_thought",
    "signed",
    "thinking_key",
]

#: A reply is counted at least one output token per this many characters: the estimator counts a
#: run of spaces as nothing, a tokenizer does not, and a text `max_tokens` allows stays bounded.
MAX_CHARS_PER_TOKEN = 8

#: What every emulator's thinking key is derived from (see `thinking_key`).
_THINKING_SEED = b"pcache_magic offline emulator: thinking signatures, v1"


def thinking_key(seed: bytes = _THINKING_SEED) -> bytes:
    """The key an engine signs its thinking with, made when the engine is built.  The same for
    every emulator by default, so a saved session's thinking is accepted after a load."""
    return hashlib.sha256(b"thinking-key\0" + seed).digest()


def sign_thought(key: bytes, thought: str) -> str:
    """The signature of a thinking block's text: base64 of HMAC-SHA256(key, text)."""
    return base64.b64encode(hmac.new(key, thought.encode(), hashlib.sha256).digest()).decode()


def signed(content: list[dict[str, Any]], key: bytes) -> list[dict[str, Any]]:
    """`content` with each thinking block signed for its final text (after any `max_tokens` cut)."""
    return [
        {**b, "signature": sign_thought(key, str(b["thinking"]))} if b.get("type") == "thinking" else b
        for b in content
    ]


@dataclass(frozen=True, slots=True)
class Outcome:
    """The cache outcome of one request, as billed."""

    read: int
    write_5m: int
    write_1h: int
    uncached: int
    hit_path: str | None


_PLACEHOLDER: dict[str, Any] = {
    "string": "example",
    "integer": 1,
    "number": 1.0,
    "boolean": True,
    "array": [],
    "object": {},
    "null": None,
}


#: `tool_choice` types that force a tool call: the reply starts with it, no text before.
_FORCED = frozenset({"tool", "any"})


def _example_input(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A minimal valid input for a tool: its required properties with placeholder values."""
    props = schema.get("properties") or {}
    out: dict[str, Any] = {}
    for name in schema.get("required") or ():
        spec = props.get(name) or {}
        if spec.get("enum"):
            out[name] = spec["enum"][0]
        elif "default" in spec:
            out[name] = spec["default"]
        else:
            kind = spec.get("type", "string")
            out[name] = _PLACEHOLDER.get(kind if isinstance(kind, str) else kind[0], "example")
    return out


def _last_user_texts(messages: Sequence[Mapping[str, Any]]) -> tuple[list[str], bool]:
    """The last user turn's text blocks, and whether that turn carries tool results."""
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        blocks = message_blocks(message)
        texts = [str(b.get("text", "")) for b in blocks if b.get("type") == "text"]
        return texts, any(b.get("type") == "tool_result" for b in blocks)
    return [], False


def _chosen_tool(params: Mapping[str, Any], text: str, has_results: bool) -> Mapping[str, Any] | None:
    tools = [t for t in params.get("tools") or () if "name" in t]
    choice = params.get("tool_choice") or {"type": "auto"}
    if not tools or choice.get("type") == "none":
        return None
    if choice.get("type") == "tool":
        return next((t for t in tools if t["name"] == choice.get("name")), None)
    named = [t for t in tools if re.search(rf"(?<![\w-]){re.escape(t['name'])}(?![\w-])", text)]
    if named and not has_results:
        return named[0]
    if choice.get("type") == "any":
        return named[0] if named else tools[0]
    return None


def _report(params: Mapping[str, Any], lay: Layout, outcome: Outcome, text: str) -> str:
    counts = {level: 0 for level in ("tools", "system", "messages")}
    for p in lay.positions:
        counts[p.level] += 1
    marks = sum(1 for p in lay.positions if p.marker)
    if outcome.read:
        cache = f"read {outcome.read:,} tokens from cache (hit at {outcome.hit_path})"
    else:
        cache = "no cache read"
    writes = outcome.write_5m + outcome.write_1h
    if writes:
        cache += f", wrote {writes:,} (5m: {outcome.write_5m:,}, 1h: {outcome.write_1h:,})"
    quoted = " ".join(text.split())
    if len(quoted) > 80:
        quoted = quoted[:77] + "..."
    return (
        f"[pcache_magic offline emulator, {params.get('model')}; not a real model]\n\n"
        f"I saw {plural(len(lay.positions), 'block')} (tools {counts['tools']}, system {counts['system']}, "
        f"messages {counts['messages']}), an estimated {lay.total_tokens:,} input tokens, "
        f"{plural(marks, 'cache marker')}. Cache: {cache}; {outcome.uncached:,} uncached.\n\n"
        f'Your last message: "{quoted}"'
    )


def _thinking(params: Mapping[str, Any], lay: Layout) -> list[dict[str, Any]]:
    """A thinking block (signed later, once cut: `signed`) when the request turns thinking on."""
    config = params.get("thinking") or {}
    if config.get("type") not in ("enabled", "adaptive"):
        return []
    budget = config.get("budget_tokens")
    mode = f"a budget of {budget:,} tokens" if budget else "adaptive thinking"
    blocks = plural(len(lay.positions), "block")
    thought = (
        f"Offline emulator, {mode}: nothing thinks here. The request has {blocks} "
        f"and an estimated {lay.total_tokens:,} input tokens; the answer is a report of them."
    )
    return [{"type": "thinking", "thinking": thought, "signature": ""}]


def reply_content(
    params: Mapping[str, Any], lay: Layout, outcome: Outcome, tool_use_id: str
) -> list[dict[str, Any]]:
    """The response's content blocks for this request (before any max_tokens cut)."""
    return [*_thinking(params, lay), *_answer(params, lay, outcome, tool_use_id)]


def _answer(
    params: Mapping[str, Any], lay: Layout, outcome: Outcome, tool_use_id: str
) -> list[dict[str, Any]]:
    texts, has_results = _last_user_texts(params.get("messages") or ())
    tool = _chosen_tool(params, " ".join(texts), has_results)
    if tool is not None:
        arguments = _example_input(tool.get("input_schema") or {})
        call = {"type": "tool_use", "id": tool_use_id, "name": tool["name"], "input": arguments}
        if (params.get("tool_choice") or {}).get("type") in _FORCED:
            return [call]
        return [{"type": "text", "text": f"Calling `{tool['name']}` (offline emulator)."}, call]
    # The prompt is the turn's last text (context added before it shares the turn).
    text = texts[-1] if texts else ""
    if has_results:
        text = "tool results: " + json.dumps(
            [
                b.get("content")
                for m in params["messages"][-1:]
                for b in message_blocks(m)
                if b.get("type") == "tool_result"
            ],
            default=str,
        )
    return [{"type": "text", "text": _report(params, lay, outcome, text)}]


def finish(
    content: list[dict[str, Any]], body: Mapping[str, Any], estimator: TokenEstimator
) -> tuple[list[dict[str, Any]], int, str, str | None]:
    """The reply as generation meets `stop_sequences` and `max_tokens`: (content, output tokens,
    stop_reason, stop_sequence).

    The reply stops at the earliest stop sequence in its text, unless `max_tokens` runs out first:
    then it keeps the tokens that fit, at least one (`max_tokens: 1` gives a one-token text, as on
    the real API), and a tool call cut short keeps its name with an empty input.  Thinking comes
    first and counts as output: what follows it gets what is left.  A block counts at least one
    token per `MAX_CHARS_PER_TOKEN` characters, so a reply's text is at most that many per token.
    """
    limit = int(body["max_tokens"])
    if limit == 0:
        return [], 0, "max_tokens", None
    thought = [b for b in content if b["type"] == "thinking"]  # first, and counted as output
    spent = sum(_block_tokens(b, estimator) for b in thought)
    if thought and spent < limit:
        rest, tokens, stop_reason, sequence = finish(
            content[len(thought) :], {**body, "max_tokens": limit - spent}, estimator
        )
        return [*thought, *rest], spent + tokens, stop_reason, sequence
    content, stop = _cut_at_stop(content, body.get("stop_sequences") or ())
    total = sum(_block_tokens(b, estimator) for b in content)
    if total > limit:
        count = _counter(estimator)
        first = content[0]
        if first["type"] == "thinking":  # the limit ran out while thinking
            cut = truncate_to_tokens(str(first["thinking"]), limit, count)
            return [{**first, "thinking": cut}], count(cut), "max_tokens", None
        if first["type"] != "text":
            return [{**first, "input": {}}], limit, "max_tokens", None
        text = truncate_to_tokens(str(first["text"]), limit, count)
        return [{"type": "text", "text": text}], count(text), "max_tokens", None
    if stop is not None:
        return content, total, "stop_sequence", stop
    reason = "tool_use" if content[-1]["type"] == "tool_use" else "end_turn"
    return content, total, reason, None


def _counter(estimator: TokenEstimator) -> Callable[[str], int]:
    """A text's output tokens: the estimate, at least one per `MAX_CHARS_PER_TOKEN` characters."""
    return lambda text: max(estimator.text(text), -(-len(text) // MAX_CHARS_PER_TOKEN))


def _block_tokens(block: Mapping[str, Any], estimator: TokenEstimator) -> int:
    if block["type"] in ("text", "thinking"):
        return _counter(estimator)(str(block[block["type"]]))
    tool = {"name": block["name"], "input": block["input"]}
    floor = -(-len(json.dumps(tool, ensure_ascii=False)) // MAX_CHARS_PER_TOKEN)
    return max(estimator.tool(tool), floor)


def _cut_at_stop(
    content: list[dict[str, Any]], stops: Sequence[str]
) -> tuple[list[dict[str, Any]], str | None]:
    """The reply up to the earliest stop sequence in its text (and that sequence), else as it is."""
    for i, block in enumerate(content):
        if block["type"] != "text":
            continue
        text = block["text"]
        found = [(text.find(stop), stop) for stop in stops if stop and stop in text]
        if found:
            at, stop = min(found, key=lambda hit: hit[0])
            return [*content[:i], {"type": "text", "text": text[:at]}], stop
    return content, None
