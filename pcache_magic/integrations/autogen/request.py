"""The SDK request for an AutoGen `create()` call: AutoGen's checks, then `guide.to_params`.

Kept apart from the client (`pcache_magic.autogen`) so the request can be built and
tested without a client, a network or an event loop: `build_request` is a pure
function, and the tools remembered between calls go in and come back out.
Needs the `autogen` extra.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple

from autogen_core.models import (
    FunctionExecutionResultMessage,
    LLMMessage,
    ModelFamily,
    ModelInfo,
    UserMessage,
)
from autogen_core.tools import Tool, ToolSchema
from autogen_ext.models.anthropic._anthropic_client import (  # noqa: PLC2701 (AutoGen's own)
    convert_tool_choice_anthropic,
)
from autogen_ext.models.anthropic._model_info import get_info  # noqa: PLC2701 (AutoGen's model table)
from pydantic import BaseModel

from ...core.conversation import cache_control
from ...core.models import default_models
from ...core.ttl import TTL, TTLS
from ...session import guide_messages as gm
from ...session.guide import to_params
from .convert import anthropic_tools, guide_messages

__all__ = ["Request", "automatic_cache_args", "build_request", "count_params", "model_info_for"]

#: Create args sent as they are (AutoGen's list, plus top-level automatic caching).
_PASSED = ("stop_sequences", "metadata", "thinking", "cache_control")
#: Sent only when set, in `extra_body`: anthropic 2.x's `messages.create` has no such keywords.
_SAMPLING = ("temperature", "top_p", "top_k")
_DEFAULT_MAX_TOKENS = 4096  # AutoGen's default


class Request(NamedTuple):
    """What `build_request` returns: the SDK params, their names, and the tools to remember."""

    params: dict[str, Any]
    """The `messages.create` keywords, markers in place."""
    names: dict[str, str]
    """Request path -> the message it came from (for the session's findings)."""
    last_tools: list[dict[str, Any]]
    """The tools to send with a later call that passes none but has tool results."""


def model_info_for(model: object) -> ModelInfo | None:
    """Capabilities for a model in pcache_magic's table that AutoGen 0.7.5 gets wrong, else None.

    AutoGen matches unknown names by prefix, so any newer `claude-*` falls through to
    Claude 2.1: no vision, no tools.  Every model in the table has both.
    """
    if model not in default_models():
        return None
    try:
        known: ModelInfo | None = get_info(str(model))
    except KeyError:
        known = None
    if known is not None and known["vision"] and known["function_calling"]:
        return None  # AutoGen's own entry (with its family) is right
    return ModelInfo(
        vision=True,
        function_calling=True,
        json_output=True,
        family=ModelFamily.UNKNOWN,
        structured_output=False,
        multiple_system_messages=True,  # each system message is its own (markable) block
    )


def automatic_cache_args(automatic_cache: TTL | bool) -> dict[str, Any]:
    """The create args for the client's `automatic_cache`: a top-level `cache_control`, or none."""
    if automatic_cache is False:
        return {}
    if automatic_cache is not True and automatic_cache not in TTLS:
        raise ValueError(f"automatic_cache must be True, False, '5m' or '1h', not {automatic_cache!r}")
    ttl = automatic_cache if isinstance(automatic_cache, str) else None
    return {"cache_control": cache_control(ttl).param()}


def count_params(
    messages: Sequence[LLMMessage], tools: Sequence[Tool | ToolSchema], model: str
) -> dict[str, Any]:
    """The params whose input tokens `count_tokens` estimates (no checks, no create args)."""
    params, _ = to_params(
        guide_messages(messages), model=model, max_tokens=1, tools=anthropic_tools(tools) or None
    )
    return params


def _has_image(messages: Sequence[LLMMessage]) -> bool:
    """Whether a user message of either family has an image part (the guide's test of one)."""
    return any(
        isinstance(m, UserMessage | gm.UserMessage)
        and not isinstance(m.content, str)
        and any(gm.is_image(p) for p in m.content)
        for m in messages
    )


def build_request(
    messages: Sequence[LLMMessage],
    tools: Sequence[Tool | ToolSchema],
    tool_choice: Tool | Literal["auto", "required", "none"],
    json_output: bool | type[BaseModel] | None,
    args: Mapping[str, Any],
    model_info: ModelInfo,
    last_tools: list[dict[str, Any]],
) -> Request:
    """The request for one call, with AutoGen's checks (ValueError with AutoGen's wording).

    `args` are the create args (`model`, `max_tokens`, `temperature`...) already merged;
    `last_tools` are the tools the previous call returned.  When `tools` is empty but the
    history has tool results, those go along, as the API wants the tools defined whenever
    tool calls are in the history (AutoGen's rule).  Nothing passed in is changed.
    """
    if not messages:
        raise ValueError("create() needs at least one message.")
    if not model_info["vision"] and _has_image(messages):
        raise ValueError("Model does not support vision and image was provided")
    if isinstance(json_output, type):
        raise ValueError("Structured output is currently not supported for Anthropic models")
    if json_output and not model_info["json_output"]:
        raise ValueError("Model does not support JSON output")
    if tools and not model_info["function_calling"]:
        raise ValueError("Model does not support function calling")
    has_results = any(
        isinstance(m, FunctionExecutionResultMessage | gm.FunctionExecutionResultMessage) for m in messages
    )
    if tools:
        last_tools = anthropic_tools(tools)
    tool_params = last_tools if tools or has_results else []
    extra = {k: args[k] for k in _PASSED if args.get(k) is not None}
    sampling = {k: args[k] for k in _SAMPLING if args.get(k) is not None}
    if sampling:
        extra["extra_body"] = sampling
    if isinstance(tool_choice, Tool):
        name = tool_choice.schema["name"]
        if not tool_params:
            raise ValueError("tool_choice specified but no tools provided")
        if name not in {t["name"] for t in tool_params}:
            raise ValueError(f"tool_choice references '{name}' but it's not in the available tools")
    if tool_params:
        extra["tool_choice"] = convert_tool_choice_anthropic(tool_choice)
    max_tokens = args.get("max_tokens")
    params, names = to_params(
        guide_messages(messages),
        model=str(args["model"]),
        max_tokens=_DEFAULT_MAX_TOKENS if max_tokens is None else int(max_tokens),
        tools=tool_params or None,
        **extra,
    )
    return Request(params, names, last_tools)
