"""Guide messages to an SDK request, and an SDK reply back to the guide's `CreateResult`.

The AutoGen guide's message types do not map one to one onto the Messages API: system
messages may stand anywhere, same-role turns must be merged, and a tool result that does
not answer the previous assistant turn is a 400.  The translation needs no Session, so it
stands apart from the Session's guide API (`guide`); `pcache_magic.autogen` uses it too.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from anthropic.types import Message

from ..core.toolspec import tool_param
from ..core.usage import tokens_of
from .guide_messages import (
    AnthropicFunctionExecutionResultMessage,
    AnthropicSystemMessage,
    AnthropicUserMessage,
    AssistantMessage,
    CacheUsage,
    CreateResult,
    FinishReason,
    FunctionCall,
    FunctionExecutionResult,
    FunctionExecutionResultMessage,
    GuideMessage,
    RequestUsage,
    SystemMessage,
    UserMessage,
    image_block,
)

__all__ = ["check_index", "create_result", "to_params", "user_blocks"]

_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "function_calls",
    "refusal": "content_filter",
}


def check_index(index: int, count: int, what: str) -> None:
    if not 0 <= index < count:
        valid = f"valid: 0..{count - 1}" if count else "there are none"
        raise ValueError(f"Cache index {index} out of range for {count} {what} ({valid})")


def user_blocks(message: UserMessage) -> list[dict[str, Any]]:
    """A user message's content blocks, its marker placed (explicit index, else the last text block)."""
    parts: list[Any] = [message.content] if isinstance(message.content, str) else list(message.content)
    blocks: list[dict[str, Any] | None] = [
        ({"type": "text", "text": p} if p else None) if isinstance(p, str) else image_block(p) for p in parts
    ]
    marker = message.cache_control if isinstance(message, AnthropicUserMessage) else None
    if marker is not None:
        target = message.cache_index if isinstance(message, AnthropicUserMessage) else None
        if target is not None:
            check_index(target, len(blocks), "content blocks")
        else:
            texts = [i for i, b in enumerate(blocks) if b is not None and b["type"] == "text"]
            present = [i for i, b in enumerate(blocks) if b is not None]
            target = texts[-1] if texts else present[-1] if present else None
        chosen = blocks[target] if target is not None else None
        if chosen is None:
            raise ValueError("Nothing to cache: cache_control on an empty text block is a 400 from the API.")
        chosen["cache_control"] = marker.param()
    return [b for b in blocks if b is not None]


def _assistant_blocks(message: AssistantMessage) -> list[dict[str, Any]]:
    """Text, or the thought as text followed by one `tool_use` block per FunctionCall."""
    if isinstance(message.content, str):
        return [{"type": "text", "text": message.content}] if message.content else []
    blocks: list[dict[str, Any]] = [{"type": "text", "text": message.thought}] if message.thought else []
    for call in message.content:
        try:
            arguments = json.loads(call.arguments) if call.arguments.strip() else {}
        except json.JSONDecodeError as error:
            raise ValueError(
                f"FunctionCall {call.id} ({call.name}): arguments are not JSON: {error}"
            ) from None
        if not isinstance(arguments, dict):
            raise ValueError(f"FunctionCall {call.id} ({call.name}): arguments must be a JSON object")
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": arguments})
    return blocks


def _result_block(result: FunctionExecutionResult, answered: bool) -> dict[str, Any]:
    """A `tool_result` when it answers a call of the previous assistant turn, else a text block."""
    if answered:
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": result.call_id}
        if result.content:
            block["content"] = result.content
        if result.is_error:
            block["is_error"] = True
        return block
    label = "[tool error]" if result.is_error else "[tool result]"
    return {"type": "text", "text": f"{label} {result.name} ({result.call_id}): {result.content}"}


def to_params(
    messages: Sequence[GuideMessage],
    *,
    model: str,
    max_tokens: int,
    tools: Sequence[Mapping[str, Any] | Callable[..., Any]] | None = None,
    **extra: Any,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The SDK request params for guide messages, and request path -> message name.

    - System messages become `system` text blocks, in order, wherever they stand.
    - User messages and tool results become user turns; consecutive same-role
      turns are merged into one message, as the API requires alternation.
    - An AssistantMessage's FunctionCalls become `tool_use` blocks.
    - A FunctionExecutionResult becomes a `tool_result` only when its `call_id`
      is a `tool_use` of the immediately preceding assistant message (and no
      other content came between).  Otherwise, as in the guide's own sample
      (tool results right after a system message), the real API would reject it,
      so it is sent as a text block `"[tool result] {name} ({call_id}): {content}"`
      (`[tool error]` when `is_error`) carrying the same marker.

    Names are `system` (then `system-N`), `user-N`, `assistant-N` and
    `tool-results-N[i]`, N being the message's index in `messages`, so
    findings and predictions point at the message (and result) the user wrote.
    """
    names: dict[str, str] = {}
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    pending: set[str] = set()  # tool_use ids a tool_result may still answer

    def append(role: str, blocks: list[tuple[dict[str, Any], str]]) -> None:
        if not turns or turns[-1]["role"] != role:
            turns.append({"role": role, "content": []})
        current = turns[-1]["content"]
        for block, name in blocks:
            names[f"messages.{len(turns) - 1}.content.{len(current)}"] = name
            current.append(block)

    for n, message in enumerate(messages):
        if isinstance(message, SystemMessage):
            name = "system" if not system else f"system-{n}"
            block: dict[str, Any] = {"type": "text", "text": message.content}
            if isinstance(message, AnthropicSystemMessage) and message.cache_control is not None:
                block["cache_control"] = message.cache_control.param()
            if message.content or "cache_control" in block:
                names[f"system.{len(system)}"] = name
                system.append(block)
        elif isinstance(message, UserMessage):
            user = user_blocks(message)
            if not user:
                raise ValueError(f"messages[{n}] is an empty user message; the API rejects empty content.")
            append("user", [(b, f"user-{n}") for b in user])
            pending = set()
        elif isinstance(message, AssistantMessage):
            blocks = _assistant_blocks(message)
            calls = {b["id"] for b in blocks if b["type"] == "tool_use"}
            pending = pending | calls if turns and turns[-1]["role"] == "assistant" else calls
            append("assistant", [(b, f"assistant-{n}") for b in blocks])
        elif isinstance(message, FunctionExecutionResultMessage):
            config = (
                message.cache_control_config
                if isinstance(message, AnthropicFunctionExecutionResultMessage)
                else {}
            )
            for index in config:
                check_index(index, len(message.content), "tool results")
            results: list[tuple[dict[str, Any], str]] = []
            for i, result in enumerate(message.content):
                answered = result.call_id in pending
                # Each call is answered once, and a tool_result after other content is a 400 too.
                pending = pending - {result.call_id} if answered else set()
                item = _result_block(result, answered)
                if i in config:
                    item["cache_control"] = config[i].param()
                results.append((item, f"tool-results-{n}[{i}]"))
            append("user", results)
        else:
            raise TypeError(f"messages[{n}] is {type(message).__name__}, not a guide message")

    params: dict[str, Any] = {"model": model, "max_tokens": max_tokens}
    if tools:
        params["tools"] = [dict(tool_param(t)) for t in tools]
        for i, tool in enumerate(params["tools"]):
            names[f"tools.{i}"] = f"tool:{tool['name']}"
    if system:
        params["system"] = system
    params["messages"] = turns
    params.update(copy.deepcopy(extra))
    return params, names


def create_result(message: Message) -> CreateResult:
    """The guide's `CreateResult` for an SDK `Message`, with honest token totals."""
    texts = [b.text for b in message.content if b.type == "text"]
    calls = [
        FunctionCall(id=b.id, name=b.name, arguments=json.dumps(b.input))
        for b in message.content
        if b.type == "tool_use"
    ]
    thinking = [b.thinking for b in message.content if b.type == "thinking"]
    text = "".join(texts)
    content: str | list[FunctionCall] = calls if calls else text
    thought = (text or None) if calls else ("\n".join(thinking) or None)
    tokens = tokens_of(message.usage)
    cache_usage = (
        CacheUsage(
            cache_read_tokens=tokens.read,
            cache_write_tokens=tokens.written,
            cache_write_5m_tokens=tokens.write_5m,
            cache_write_1h_tokens=tokens.write_1h,
        )
        if tokens.read or tokens.written
        else None
    )
    return CreateResult(
        finish_reason=_FINISH.get(message.stop_reason or "", "unknown"),
        content=content,
        usage=RequestUsage(
            prompt_tokens=tokens.prompt, completion_tokens=tokens.output, cache_usage=cache_usage
        ),
        cached=tokens.read > 0,
        raw=message,
        thought=thought,
    )
