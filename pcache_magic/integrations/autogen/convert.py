"""AutoGen's message and result types, with cache markers and honest usage, and the conversions.

The caching rules live in `guide` / `guide_messages`; this module only maps
`autogen_core.models` objects onto those models and back, so the AutoGen client
and the Session share one implementation (and one set of error messages).
Needs the `autogen` extra.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from anthropic.types import Message
from autogen_core import FunctionCall
from autogen_core.models import (
    AssistantMessage,
    CreateResult,
    FunctionExecutionResult,
    FunctionExecutionResultMessage,
    RequestUsage,
    SystemMessage,
    UserMessage,
)
from autogen_core.tools import Tool, ToolSchema
from autogen_ext.models.anthropic._anthropic_client import convert_tools  # noqa: PLC2701 (AutoGen's own tool conversion, so both clients send the same tools)
from pydantic import Field

from ...core.conversation import CacheControl
from ...session import guide_messages as gm
from ...session.guide_messages import CacheUsage

__all__ = [
    "AnthropicFunctionExecutionResultMessage",
    "AnthropicSystemMessage",
    "AnthropicUserMessage",
    "CachingCreateResult",
    "CachingRequestUsage",
    "add_usage",
    "anthropic_tools",
    "autogen_result",
    "guide_messages",
    "guide_results",
]

_GUIDE_TYPES = (gm.SystemMessage, gm.UserMessage, gm.AssistantMessage, gm.FunctionExecutionResultMessage)


class AnthropicSystemMessage(SystemMessage):
    """An AutoGen `SystemMessage` whose text block carries `cache_control`.

    Still `type="SystemMessage"`, so AutoGen code that dispatches on the type keeps working
    (AutoGen's own deserialisation drops the marker: re-mark after loading saved state).
    """

    cache_control: CacheControl | None = None


class AnthropicUserMessage(UserMessage):
    """An AutoGen `UserMessage` with a marker: on block `cache_index`, else on the last text block."""

    cache_control: CacheControl | None = None
    cache_index: int | None = None


class AnthropicFunctionExecutionResultMessage(FunctionExecutionResultMessage):
    """AutoGen tool results with markers on chosen results: result index -> marker."""

    cache_control_config: dict[int, CacheControl] = Field(default_factory=dict)


@dataclass
class CachingRequestUsage(RequestUsage):
    """AutoGen's `RequestUsage`, where `prompt_tokens` counts ALL input (uncached + written + read)."""

    cache_usage: CacheUsage | None = None
    """What the cache did; None when the call neither wrote nor read it."""


class CachingCreateResult(CreateResult):
    """AutoGen's `CreateResult`; `cached` is True when tokens were read from the prompt cache."""

    usage: CachingRequestUsage
    raw: Message | None = Field(default=None, exclude=True)
    """The SDK `Message` the result came from (not serialised)."""


def guide_results(results: Sequence[FunctionExecutionResult]) -> list[gm.FunctionExecutionResult]:
    """AutoGen tool results as guide results (AutoGen's `is_error=None` means no error)."""
    return [
        gm.FunctionExecutionResult(
            content=r.content, name=r.name, call_id=r.call_id, is_error=bool(r.is_error)
        )
        for r in results
    ]


def _guide_message(message: object, n: int) -> gm.GuideMessage:
    if isinstance(message, _GUIDE_TYPES):  # the Session's own message types are welcome too
        return message
    if isinstance(message, SystemMessage):
        if isinstance(message, AnthropicSystemMessage) and message.cache_control is not None:
            return gm.AnthropicSystemMessage(content=message.content, cache_control=message.cache_control)
        return gm.SystemMessage(content=message.content)
    if isinstance(message, UserMessage):
        content = message.content if isinstance(message.content, str) else list(message.content)
        if isinstance(message, AnthropicUserMessage):
            return gm.AnthropicUserMessage(
                content=content,
                source=message.source,
                cache_control=message.cache_control,
                cache_index=message.cache_index,
            )
        return gm.UserMessage(content=content, source=message.source)
    if isinstance(message, AssistantMessage):
        calls: str | list[gm.FunctionCall] = (
            message.content
            if isinstance(message.content, str)
            else [gm.FunctionCall(id=c.id, arguments=c.arguments, name=c.name) for c in message.content]
        )
        return gm.AssistantMessage(content=calls, source=message.source, thought=message.thought)
    if isinstance(message, FunctionExecutionResultMessage):
        results = guide_results(message.content)
        if isinstance(message, AnthropicFunctionExecutionResultMessage):
            return gm.AnthropicFunctionExecutionResultMessage(
                content=results, cache_control_config=dict(message.cache_control_config)
            )
        return gm.FunctionExecutionResultMessage(content=results)
    raise TypeError(f"messages[{n}] is {type(message).__name__}, not an AutoGen LLMMessage")


def guide_messages(messages: Sequence[object]) -> list[gm.GuideMessage]:
    """AutoGen messages as guide messages, for `guide.to_params`.

    As AutoGen's client does, a final assistant text is right-stripped: the API
    rejects a prefill that ends in whitespace.
    """
    out = [_guide_message(m, n) for n, m in enumerate(messages)]
    last = out[-1] if out else None
    if isinstance(last, gm.AssistantMessage) and isinstance(last.content, str):
        out[-1] = last.model_copy(update={"content": last.content.rstrip()})
    return out


def anthropic_tools(tools: Sequence[Tool | ToolSchema]) -> list[dict[str, Any]]:
    """AutoGen tools as `ToolParam` dicts (AutoGen's own conversion, made valid for a schema-less tool)."""
    out: list[dict[str, Any]] = []
    for tool in convert_tools(tools):
        param: dict[str, Any] = dict(tool)
        if not param.get("input_schema"):
            param["input_schema"] = {"type": "object", "properties": {}}
        if not param.get("description"):
            param.pop("description", None)
        out.append(param)
    return out


def autogen_result(result: gm.CreateResult) -> CachingCreateResult:
    """The guide's result (honest totals from `guide.create_result`) as AutoGen types."""
    content: str | list[FunctionCall] = (
        result.content
        if isinstance(result.content, str)
        else [FunctionCall(id=c.id, arguments=c.arguments, name=c.name) for c in result.content]
    )
    usage = CachingRequestUsage(
        prompt_tokens=result.usage.prompt_tokens,
        completion_tokens=result.usage.completion_tokens,
        cache_usage=result.usage.cache_usage,
    )
    return CachingCreateResult(
        finish_reason=result.finish_reason,
        content=content,
        usage=usage,
        cached=result.cached,
        thought=result.thought,
        raw=result.raw,
    )


def _cache_sum(a: CacheUsage | None, b: CacheUsage | None) -> CacheUsage | None:
    if a is None or b is None:
        return a or b
    fields: Mapping[str, Any] = CacheUsage.model_fields
    return CacheUsage(**{f: getattr(a, f) + getattr(b, f) for f in fields})


def add_usage(total: RequestUsage, usage: RequestUsage) -> CachingRequestUsage:
    """Running totals that keep the cache figures (AutoGen's own sum drops them)."""
    return CachingRequestUsage(
        prompt_tokens=total.prompt_tokens + usage.prompt_tokens,
        completion_tokens=total.completion_tokens + usage.completion_tokens,
        cache_usage=_cache_sum(getattr(total, "cache_usage", None), getattr(usage, "cache_usage", None)),
    )
