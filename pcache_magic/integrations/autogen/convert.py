"""AutoGen's message and result types, with cache markers and honest usage, and the conversions.

The caching rules live in `guide` / `guide_messages`; this module only maps
`autogen_core.models` objects onto those models and back, so the AutoGen client
and the Session share one implementation (and one set of error messages).  The cached
messages are AutoGen's own plus the cache-field mixins of `guide_messages`, and the
conversions read the guide models' fields, so no field is listed twice.
Needs the `autogen` extra.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, get_args

from anthropic.types import Message
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


class AnthropicSystemMessage(gm.CacheFields, SystemMessage):
    """AutoGen's `SystemMessage` whose text block carries `cache_control` (fields: `gm.CacheFields`).

    Still `type="SystemMessage"`, as are the other two, so AutoGen code that dispatches on the
    type keeps working (AutoGen's own deserialisation drops the marker: re-mark after loading).
    """


class AnthropicUserMessage(gm.UserCacheFields, UserMessage):
    """AutoGen's `UserMessage` with a marker: on block `cache_index`, else on the last text block."""


class AnthropicFunctionExecutionResultMessage(gm.ToolResultCacheFields, FunctionExecutionResultMessage):
    """AutoGen's tool results with markers on chosen results (`cache_control_config`)."""


#: The guide's message types by the `type` discriminator they share with AutoGen's.
_PLAIN: dict[str, type[gm.GuideMessage]] = {
    t.model_fields["type"].default: t for t in get_args(gm.GuideMessage)
}
_MARKED: dict[str, type[gm.GuideMessage]] = {
    t.model_fields["type"].default: t
    for t in (gm.AnthropicSystemMessage, gm.AnthropicUserMessage, gm.AnthropicFunctionExecutionResultMessage)
}
_LLM_MESSAGES = (SystemMessage, UserMessage, AssistantMessage, FunctionExecutionResultMessage)


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
    return [gm.FunctionExecutionResult.model_validate(r, from_attributes=True) for r in results]


def _guide_message(message: object, n: int) -> gm.GuideMessage:
    """The guide's twin of an AutoGen message, read through the guide model's own fields.

    The target is the guide type with the same `type`, cached when the message has a marker.
    """
    if isinstance(message, gm.GuideMessage):  # the Session's own message types are welcome too
        return message
    if not isinstance(message, _LLM_MESSAGES):
        raise TypeError(f"messages[{n}] is {type(message).__name__}, not an AutoGen LLMMessage")
    target = (_MARKED if gm.has_marker(message) else _PLAIN)[message.type]
    return target.model_validate(message, from_attributes=True)


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
    """The guide's result (honest totals from `guide.create_result`) as AutoGen types.

    The guide's `CreateResult` has AutoGen's fields (bar `logprobs`), so AutoGen's reads its dump.
    """
    return CachingCreateResult.model_validate({**result.model_dump(exclude={"raw"}), "raw": result.raw})


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
