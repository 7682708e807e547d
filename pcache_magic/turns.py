"""How a user turn becomes an SDK call, and how tool calls come back into the conversation.

Pure helpers for `Session`: they build content blocks and keyword arguments, and never
send anything themselves, so the session's call path stays short and each rule here is
testable without a client.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import anthropic
from anthropic.types import Message

from .conversation import TTL, Block, CacheControl, Conversation

__all__ = [
    "as_content",
    "describe_failure",
    "mark_last_turn",
    "pending_tool_results",
    "run_tools",
    "sdk_kwargs",
]


@functools.cache
def _sdk_fields() -> frozenset[str]:
    return frozenset(inspect.signature(anthropic.resources.messages.Messages.create).parameters)


def sdk_kwargs(params: Mapping[str, Any]) -> dict[str, Any]:
    """`params` as keyword arguments for `messages.create`/`stream`.

    Request fields this SDK version has no keyword for (e.g. `temperature` in
    anthropic 2.14) travel in `extra_body`, so the request on the wire is the same.
    """
    known = _sdk_fields()
    kwargs = {k: v for k, v in params.items() if k in known}
    extra = {k: v for k, v in params.items() if k not in known}
    if extra:
        kwargs["extra_body"] = {**kwargs.get("extra_body", {}), **extra}
    return kwargs


def as_content(content: str | Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A string as one text block; content-block params copied as given."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [dict(c) for c in content]


def mark_last_turn(conversation: Conversation, ttl: TTL | None) -> Conversation:
    """The conversation with a marker on its last turn (claudette's strategy), blocks untouched.

    A turn that carries its own marker keeps it; the copy shares every other block.
    """
    blocks = list(conversation.blocks)
    turns = [i for i, b in enumerate(blocks) if b.role in ("user", "assistant")]
    if not turns or blocks[turns[-1]].cache is not None:
        return conversation
    blocks[turns[-1]] = blocks[turns[-1]].model_copy(update={"cache": CacheControl(ttl=ttl)})
    return Conversation.model_construct(blocks=blocks)


def run_tools(message: Message, run_tool: Callable[[str, dict[str, Any]], Any]) -> list[dict[str, Any]]:
    """Answer every tool_use block of `message` with a tool_result (errors reported, not raised)."""
    results: list[dict[str, Any]] = []
    for block in message.content:
        if block.type != "tool_use":
            continue
        try:
            output = run_tool(block.name, dict(block.input) if isinstance(block.input, Mapping) else {})
            result: dict[str, Any] = {"type": "tool_result", "tool_use_id": block.id, "content": str(output)}
        except Exception as error:  # the model should see the failure and recover
            result = {
                "type": "tool_result",
                "tool_use_id": block.id,
                "is_error": True,
                "content": f"{type(error).__name__}: {error}",
            }
        results.append(result)
    return results


def pending_tool_results(conversation: Conversation) -> Block | None:
    """Error results for a last reply's tool calls that nobody ran, or the API answers 400.

    That happens when a turn stopped at the tool-round limit or had no runner; the next
    turn then tells the model the tools were not run instead of failing.
    """
    turns = [b for b in conversation.blocks if b.role in ("user", "assistant")]
    if not turns or turns[-1].role != "assistant":
        return None
    pending = [item for item in turns[-1].content if item.get("type") == "tool_use"]
    if not pending:
        return None
    results = [
        {
            "type": "tool_result",
            "tool_use_id": item["id"],
            "is_error": True,
            "content": f"The tool {item.get('name')!r} was not run (no runner, or the round limit).",
        }
        for item in pending
    ]
    name = conversation.unique_name(f"{turns[-1].name}-not-run")
    return Block(name=name, role="user", kind="tool_result", content=results)


def describe_failure(error: BaseException) -> str:
    """A one-line account of a failure; SDK errors carry no key, and none is added here."""
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    if isinstance(error, anthropic.APIStatusError):
        return f"{error.status_code} {type(error).__name__}: {error.message}"
    return f"{type(error).__name__}: {error}"
