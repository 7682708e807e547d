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

from .conversation import Block, Conversation

__all__ = [
    "answer_unanswered_tool_uses",
    "as_content",
    "broken_stream",
    "describe_failure",
    "run_tools",
    "sdk_kwargs",
    "tool_results_for",
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
    if params.keys() <= known:  # the usual case: one copy, no sorting out
        return dict(params)
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


def _tool_uses(block: Block) -> dict[str, str]:
    return {i["id"]: str(i.get("name")) for i in block.content if i.get("type") == "tool_use"}


def answer_unanswered_tool_uses(conversation: Conversation) -> list[Block]:
    """Give every reply's tool calls that nobody answered an error result, or the API answers 400.

    That happens when a turn stopped at the tool-round limit or had no runner, possibly with
    context added after it.  The results go right after the reply, so they open the next user
    message as the API requires, and the model learns the tools were not run.  Returns the
    blocks added to `conversation` (none when every tool call has its result).
    """
    added: list[Block] = []
    blocks = conversation.blocks
    # One pass finds the replies that called tools (usually none): this runs before every call.
    callers = {
        id(b): b for b in blocks if b.role == "assistant" for i in b.content if i.get("type") == "tool_use"
    }
    for block in callers.values():
        uses = _tool_uses(block)
        start = next(j for j, b in enumerate(blocks) if b is block) + 1
        end = next((j for j in range(start, len(blocks)) if blocks[j].role == "assistant"), len(blocks))
        answered = {
            item.get("tool_use_id")
            for later in blocks[start:end]
            if later.role == "user"
            for item in later.content
            if item.get("type") == "tool_result"
        }
        results = [
            {
                "type": "tool_result",
                "tool_use_id": use,
                "is_error": True,
                "content": f"The tool {name!r} was not run (no runner, or the round limit).",
            }
            for use, name in uses.items()
            if use not in answered
        ]
        if results:
            name = conversation.unique_name(f"{block.name}-not-run")
            added.append(Block(name=name, role="user", kind="tool_result", content=results))
            blocks.insert(start, added[-1])
    return added


def tool_results_for(conversation: Conversation, reply: Block) -> list[Block]:
    """The result blocks that answer `reply`'s tool calls and nothing else (dropped with it)."""
    uses = set(_tool_uses(reply))
    return [
        b
        for b in conversation.blocks
        if uses
        and b.kind == "tool_result"
        and b.content
        and all(i.get("type") == "tool_result" and i.get("tool_use_id") in uses for i in b.content)
    ]


#: The HTTP library's errors for a reply cut after it began (not a connection that never opened).
_CUT = ("RemoteProtocolError", "ReadError")


def broken_stream(error: BaseException) -> BaseException | None:
    """The HTTP library's error when `error` is a reply cut mid-stream, else None.  SDK 2.16 lets
    it through as it is; 2.17 and later wrap it in `APIConnectionError` (the cause)."""
    for candidate in (error, error.__cause__):
        http = candidate is not None and type(candidate).__module__.startswith(("httpx", "httpcore"))
        if http and (candidate is error or type(candidate).__name__ in _CUT):
            return candidate
    return None


def describe_failure(error: BaseException) -> str:
    """A one-line account of a failure; SDK errors carry no key, and none is added here."""
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    cut = broken_stream(error)
    if cut is not None:
        return f"{type(cut).__name__}: {cut}"
    if isinstance(error, anthropic.APIStatusError):
        return f"{error.status_code} {type(error).__name__}: {error.message}"
    return f"{type(error).__name__}: {error}"
