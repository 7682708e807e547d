"""The emulator's deterministic answers: a report of what it saw, or a tool call.

The emulator is not a model.  Its text says so and describes the request and
its cache outcome, which is what someone exploring caching wants to read.
Tool rule (documented in the README): when tools are given, `tool_choice`
allows them, and the last user turn's text names a tool as a word, the reply
is a `tool_use` of the first tool named (in the order of `tools`); a turn of
tool results is answered with text, so a tool loop always ends.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.prefix import Layout, message_blocks

__all__ = ["Outcome", "reply_content"]


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
        f"I saw {len(lay.positions)} blocks (tools {counts['tools']}, system {counts['system']}, "
        f"messages {counts['messages']}), an estimated {lay.total_tokens:,} input tokens, "
        f"{marks} cache marker(s). Cache: {cache}; {outcome.uncached:,} uncached.\n\n"
        f'Your last message: "{quoted}"'
    )


def reply_content(
    params: Mapping[str, Any], lay: Layout, outcome: Outcome, tool_use_id: str
) -> list[dict[str, Any]]:
    """The response's content blocks for this request (before any max_tokens cut)."""
    texts, has_results = _last_user_texts(params.get("messages") or ())
    tool = _chosen_tool(params, " ".join(texts), has_results)
    if tool is not None:
        arguments = _example_input(tool.get("input_schema") or {})
        return [
            {"type": "text", "text": f"Calling `{tool['name']}` (offline emulator)."},
            {"type": "tool_use", "id": tool_use_id, "name": tool["name"], "input": arguments},
        ]
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
