"""`_autogen_request`: the SDK request for an AutoGen call, built without a client or a network."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("autogen_ext.models.anthropic", reason="pcache-magic[autogen] not installed")

import PIL.Image
from autogen_core import FunctionCall, Image
from autogen_core import models as ag
from autogen_core.tools import FunctionTool, ToolSchema
from autogen_ext.models.anthropic._model_info import get_info
from pydantic import BaseModel

from pcache_magic.core.conversation import CacheControl
from pcache_magic.integrations.autogen import request as req
from pcache_magic.integrations.autogen.convert import AnthropicSystemMessage
from pcache_magic.session import guide_messages as gm

MODEL = "claude-sonnet-4-5"
ARGS: dict[str, Any] = {"model": MODEL}
WEATHER: ToolSchema = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
HELLO: list[ag.LLMMessage] = [ag.UserMessage(content="Hello", source="user")]


def info(*, vision: bool = True, function_calling: bool = True, json_output: bool = True) -> ag.ModelInfo:
    """A model that can do everything, but for what is turned off."""
    return ag.ModelInfo(
        vision=vision,
        function_calling=function_calling,
        json_output=json_output,
        family=ag.ModelFamily.UNKNOWN,
        structured_output=False,
        multiple_system_messages=True,
    )


def get_time() -> str:
    """The time now."""
    return "noon"


TIME_TOOL = FunctionTool(get_time, description="The time now.")


def build(
    messages: list[ag.LLMMessage] = HELLO,
    tools: list[Any] | None = None,
    tool_choice: Any = "auto",
    json_output: Any = None,
    args: dict[str, Any] = ARGS,
    model_info: ag.ModelInfo | None = None,
    last_tools: list[dict[str, Any]] | None = None,
) -> req.Request:
    return req.build_request(
        messages, tools or [], tool_choice, json_output, args, model_info or info(), last_tools or []
    )


def tool_round() -> list[ag.LLMMessage]:
    """A user turn, the model's tool call, and its result."""
    return [
        ag.UserMessage(content="Weather in Paris?", source="user"),
        ag.AssistantMessage(
            content=[FunctionCall(id="call_1", arguments='{"city": "Paris"}', name="get_weather")],
            source="assistant",
        ),
        ag.FunctionExecutionResultMessage(
            content=[ag.FunctionExecutionResult(content="18C", name="get_weather", call_id="call_1")]
        ),
    ]


# -- model_info_for -----------------------------------------------------------------------------------
def test_model_info_for_a_model_autogen_misclassifies() -> None:
    assert not get_info("claude-sonnet-5")["function_calling"]  # AutoGen's prefix fallback
    fixed = req.model_info_for("claude-sonnet-5")
    assert fixed is not None
    assert fixed["vision"] and fixed["function_calling"] and fixed["json_output"]
    assert fixed["multiple_system_messages"] and fixed["family"] == ag.ModelFamily.UNKNOWN


@pytest.mark.parametrize("model", [MODEL, "claude-2.1", "gpt-4o", None])
def test_model_info_for_leaves_known_and_foreign_models_to_autogen(model: object) -> None:
    """AutoGen's entry is right for claude-sonnet-4-5; models outside pcache_magic's table are not ours."""
    assert req.model_info_for(model) is None


# -- AutoGen's checks ---------------------------------------------------------------------------------
def _image_message() -> ag.UserMessage:
    return ag.UserMessage(content=["Look:", Image(PIL.Image.new("RGB", (2, 2), "red"))], source="user")


class Answer(BaseModel):
    text: str


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"messages": []}, "create() needs at least one message."),
        (
            {"messages": [_image_message()], "model_info": info(vision=False)},
            "Model does not support vision and image was provided",
        ),
        ({"json_output": Answer}, "Structured output is currently not supported for Anthropic models"),
        ({"json_output": True, "model_info": info(json_output=False)}, "Model does not support JSON output"),
        (
            {"tools": [WEATHER], "model_info": info(function_calling=False)},
            "Model does not support function calling",
        ),
        ({"tool_choice": TIME_TOOL}, "tool_choice specified but no tools provided"),
        (
            {"tools": [WEATHER], "tool_choice": TIME_TOOL},
            "tool_choice references 'get_time' but it's not in the available tools",
        ),
    ],
)
def test_autogen_checks_raise_with_autogens_wording(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as raised:
        build(**kwargs)
    assert str(raised.value) == message


def test_an_image_in_a_guide_message_needs_vision_too() -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
    guide_user = gm.UserMessage(content=["Look:", png], source="user")
    with pytest.raises(ValueError, match="Model does not support vision and image was provided"):
        build(messages=[guide_user], model_info=info(vision=False))  # type: ignore[list-item]


def test_what_the_checks_let_through() -> None:
    """Text-only messages need no vision; JSON output on a model that has it; a listed tool_choice."""
    build(model_info=info(vision=False))
    build(json_output=True)
    chosen = build(tools=[WEATHER, TIME_TOOL], tool_choice=TIME_TOOL)
    assert chosen.params["tool_choice"] == {"type": "tool", "name": "get_time"}


# -- tools --------------------------------------------------------------------------------------------
def test_tools_are_sent_and_returned_to_remember() -> None:
    request = build(tools=[WEATHER])
    assert request.params["tools"] == request.last_tools
    assert request.last_tools == [
        {
            "name": "get_weather",
            "description": "The current weather in a city.",
            "input_schema": WEATHER["parameters"],
        }
    ]
    assert request.params["tool_choice"] == {"type": "auto"}


@pytest.mark.parametrize(
    "results", [tool_round()[-1], gm.FunctionExecutionResultMessage(content=[])], ids=["autogen", "guide"]
)
def test_remembered_tools_go_along_when_the_history_has_tool_results(results: Any) -> None:
    remembered = build(tools=[WEATHER]).last_tools
    messages = [*tool_round()[:-1], results]
    request = build(messages, last_tools=remembered)
    assert request.params["tools"] == remembered and request.last_tools is remembered
    assert request.params["tool_choice"] == {"type": "auto"}
    if isinstance(results, ag.FunctionExecutionResultMessage):
        assert request.params["messages"][2]["content"][0]["type"] == "tool_result"


def test_remembered_tools_stay_home_without_tool_results() -> None:
    remembered = build(tools=[WEATHER]).last_tools
    request = build(last_tools=remembered)
    assert "tools" not in request.params and "tool_choice" not in request.params
    assert request.last_tools is remembered  # still remembered for a later tool round


def test_new_tools_replace_the_remembered_ones_without_touching_them() -> None:
    remembered = build(tools=[WEATHER]).last_tools
    snapshot = [dict(t) for t in remembered]
    request = build(tool_round(), tools=[TIME_TOOL], last_tools=remembered)
    assert [t["name"] for t in request.last_tools] == ["get_time"]
    assert request.params["tools"] == request.last_tools
    assert remembered == snapshot  # the caller's list is not changed


@pytest.mark.parametrize(("choice", "sent"), [("required", {"type": "any"}), ("none", {"type": "none"})])
def test_tool_choice_is_converted_as_autogen_does(choice: str, sent: dict[str, str]) -> None:
    assert build(tools=[WEATHER], tool_choice=choice).params["tool_choice"] == sent


# -- create args --------------------------------------------------------------------------------------
def test_max_tokens_defaults_to_autogens_4096() -> None:
    assert build().params["max_tokens"] == 4096
    assert build(args={**ARGS, "max_tokens": "256"}).params["max_tokens"] == 256


def test_sampling_args_go_in_extra_body_and_the_rest_as_they_are() -> None:
    args = {
        "model": MODEL,
        "temperature": 0.0,
        "top_p": 0.9,
        "top_k": None,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u1"},
        "thinking": None,
        "cache_control": {"type": "ephemeral", "ttl": "1h"},
        "unknown": 1,
    }
    params = build(args=args).params
    assert params["extra_body"] == {"temperature": 0.0, "top_p": 0.9}  # 0.0 is set, None is not
    assert params["stop_sequences"] == ["END"] and params["metadata"] == {"user_id": "u1"}
    assert params["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert "thinking" not in params and "unknown" not in params and "top_k" not in params
    assert "extra_body" not in build().params


def test_markers_and_names_come_through_to_params() -> None:
    messages: list[ag.LLMMessage] = [
        AnthropicSystemMessage(content="Rules.", cache_control=CacheControl(ttl="1h")),
        *HELLO,
    ]
    request = build(messages)
    assert request.params["model"] == MODEL
    assert request.params["system"] == [
        {"type": "text", "text": "Rules.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    ]
    assert request.names == {"system.0": "system", "messages.0.content.0": "user-1"}


# -- the client's other requests ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("setting", "args"),
    [
        (False, {}),
        (True, {"cache_control": {"type": "ephemeral"}}),
        ("5m", {"cache_control": {"type": "ephemeral", "ttl": "5m"}}),
        ("1h", {"cache_control": {"type": "ephemeral", "ttl": "1h"}}),
    ],
)
def test_automatic_cache_args(setting: Any, args: dict[str, Any]) -> None:
    assert req.automatic_cache_args(setting) == args


@pytest.mark.parametrize("setting", ["2h", "ephemeral", None, 0, 1])
def test_automatic_cache_args_refuse_other_settings(setting: Any) -> None:
    with pytest.raises(ValueError, match="automatic_cache must be True, False, '5m' or '1h', not "):
        req.automatic_cache_args(setting)


def test_count_params_has_the_tools_but_no_checks_or_create_args() -> None:
    params = req.count_params([_image_message()], [WEATHER], MODEL)
    assert params["model"] == MODEL and params["max_tokens"] == 1
    assert [t["name"] for t in params["tools"]] == ["get_weather"] and "tool_choice" not in params
    assert [b["type"] for b in params["messages"][0]["content"]] == ["text", "image"]
    assert "tools" not in req.count_params(HELLO, [], MODEL)
