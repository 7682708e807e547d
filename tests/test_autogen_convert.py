"""`_autogen_convert`: AutoGen's message, tool and result types mapped onto the guide's, and back."""

from __future__ import annotations

import pytest

pytest.importorskip("autogen_ext.models.anthropic", reason="pcache-magic[autogen] not installed")

import PIL.Image
from anthropic.types import Message
from autogen_core import FunctionCall, Image
from autogen_core import models as ag
from autogen_core.tools import FunctionTool, ToolSchema
from pydantic import BaseModel, TypeAdapter, ValidationError

from pcache_magic.core.conversation import CacheControl
from pcache_magic.integrations.autogen import convert as convert
from pcache_magic.session import guide_messages as gm

ONE_HOUR = CacheControl(ttl="1h")


def results() -> list[ag.FunctionExecutionResult]:
    return [
        ag.FunctionExecutionResult(content="Sunny", name="get_weather", call_id="c1", is_error=None),
        ag.FunctionExecutionResult(content="boom", name="get_time", call_id="c2", is_error=True),
        ag.FunctionExecutionResult(content="ok", name="get_time", call_id="c3", is_error=False),
    ]


# -- messages -------------------------------------------------------------------------------------
def test_system_messages_keep_a_marker_only_when_they_have_one() -> None:
    plain, cached, unmarked = convert.guide_messages(
        [
            ag.SystemMessage(content="Be brief."),
            convert.AnthropicSystemMessage(content="Rules.", cache_control=ONE_HOUR),
            convert.AnthropicSystemMessage(content="No marker."),
        ]
    )
    assert type(plain) is gm.SystemMessage and plain.content == "Be brief."
    assert isinstance(cached, gm.AnthropicSystemMessage) and cached.cache_control == ONE_HOUR
    assert type(unmarked) is gm.SystemMessage and unmarked.content == "No marker."


def test_user_messages_keep_text_images_marker_and_index() -> None:
    image = Image(PIL.Image.new("RGB", (2, 2), "red"))
    parts: list[str | Image] = ["Look:", image]
    plain, cached = convert.guide_messages(
        [
            ag.UserMessage(content="Hi", source="alice"),
            convert.AnthropicUserMessage(content=parts, source="bob", cache_control=ONE_HOUR, cache_index=1),
        ]
    )
    assert type(plain) is gm.UserMessage and (plain.content, plain.source) == ("Hi", "alice")
    assert isinstance(cached, gm.AnthropicUserMessage)
    assert cached.content == parts and cached.content is not parts  # a copy, not AutoGen's own list
    assert (cached.source, cached.cache_control, cached.cache_index) == ("bob", ONE_HOUR, 1)
    assert gm.image_block(cached.content[1])["source"]["media_type"] == "image/png"


def test_assistant_messages_keep_calls_and_thought() -> None:
    calls = [FunctionCall(id="c1", arguments='{"city": "Paris"}', name="get_weather")]
    converted, _ = convert.guide_messages(
        [
            ag.AssistantMessage(content=calls, source="assistant", thought="Checking."),
            ag.UserMessage(content="And?", source="user"),
        ]
    )
    assert isinstance(converted, gm.AssistantMessage)
    assert converted.content == [gm.FunctionCall(id="c1", arguments='{"city": "Paris"}', name="get_weather")]
    assert (converted.source, converted.thought) == ("assistant", "Checking.")


def test_only_a_final_assistant_text_is_right_stripped() -> None:
    earlier, last = convert.guide_messages(
        [
            ag.AssistantMessage(content="Earlier text.  \n", source="a"),
            ag.AssistantMessage(content="  The answer is  \n", source="a"),
        ]
    )
    assert earlier.content == "Earlier text.  \n"
    assert last.content == "  The answer is"  # the API rejects a prefill ending in white space
    calls = [FunctionCall(id="c1", arguments="{}", name="f")]
    (final_calls,) = convert.guide_messages([ag.AssistantMessage(content=calls, source="a")])
    assert final_calls.content == [gm.FunctionCall(id="c1", arguments="{}", name="f")]


def test_tool_results_map_autogens_none_to_no_error() -> None:
    assert [(r.call_id, r.is_error) for r in convert.guide_results(results())] == [
        ("c1", False),
        ("c2", True),
        ("c3", False),
    ]
    (message,) = convert.guide_messages([ag.FunctionExecutionResultMessage(content=results())])
    assert type(message) is gm.FunctionExecutionResultMessage
    assert message.content == convert.guide_results(results())


def test_cached_tool_results_keep_their_marker_table() -> None:
    config = {0: ONE_HOUR, 2: CacheControl()}
    original = convert.AnthropicFunctionExecutionResultMessage(content=results(), cache_control_config=config)
    (message,) = convert.guide_messages([original])
    assert isinstance(message, gm.AnthropicFunctionExecutionResultMessage)
    assert message.cache_control_config == config
    message.cache_control_config.clear()
    assert original.cache_control_config == config  # the guide's copy is its own


def test_guide_messages_pass_through_and_foreign_objects_are_named() -> None:
    own = gm.UserMessage(content="Already a guide message", source="user")
    assert convert.guide_messages([own])[0] is own
    assert convert.guide_messages([]) == []
    with pytest.raises(TypeError, match=r"messages\[1\] is dict, not an AutoGen LLMMessage"):
        convert.guide_messages([ag.SystemMessage(content="x"), {"role": "user", "content": "hi"}])


def test_cached_autogen_messages_keep_autogens_type_names() -> None:
    assert convert.AnthropicSystemMessage(content="x", cache_control=ONE_HOUR).type == "SystemMessage"
    assert convert.AnthropicUserMessage(content="x", source="u").type == "UserMessage"
    assert (
        convert.AnthropicFunctionExecutionResultMessage(content=[]).type == "FunctionExecutionResultMessage"
    )
    assert isinstance(convert.AnthropicSystemMessage(content="x"), ag.SystemMessage)


@pytest.mark.parametrize(
    ("cached", "autogen", "guide", "mixin"),
    [
        (convert.AnthropicSystemMessage, ag.SystemMessage, gm.AnthropicSystemMessage, gm.CacheFields),
        (convert.AnthropicUserMessage, ag.UserMessage, gm.AnthropicUserMessage, gm.UserCacheFields),
        (
            convert.AnthropicFunctionExecutionResultMessage,
            ag.FunctionExecutionResultMessage,
            gm.AnthropicFunctionExecutionResultMessage,
            gm.ToolResultCacheFields,
        ),
    ],
)
def test_both_families_are_built_from_one_cache_mixin(
    cached: type[BaseModel], autogen: type[BaseModel], guide: type[BaseModel], mixin: type[BaseModel]
) -> None:
    """AutoGen's subclass and the guide's cached message share the mixin: the fields are defined once."""
    assert issubclass(cached, autogen) and issubclass(cached, mixin) and issubclass(guide, mixin)
    assert list(cached.model_fields) == [*autogen.model_fields, *mixin.model_fields]
    assert cached.model_fields["type"].default == guide.model_fields["type"].default


def test_cached_autogen_messages_validate_serialise_and_pass_autogens_union() -> None:
    user = convert.AnthropicUserMessage(content="x", source="u", cache_control=ONE_HOUR, cache_index=0)
    dumped = user.model_dump()
    assert dumped == {
        "content": "x",
        "source": "u",
        "type": "UserMessage",
        "cache_control": {"type": "ephemeral", "ttl": "1h"},
        "cache_index": 0,
    }
    assert convert.AnthropicUserMessage.model_validate_json(user.model_dump_json()) == user
    llm_message: TypeAdapter[ag.LLMMessage] = TypeAdapter(ag.LLMMessage)
    assert llm_message.validate_python(user) is user  # AutoGen's discriminated union takes it as it is
    assert type(llm_message.validate_python(dumped)) is ag.UserMessage  # AutoGen's loading drops the marker
    marked = convert.AnthropicFunctionExecutionResultMessage(
        content=results(), cache_control_config={1: ONE_HOUR}
    )
    assert (
        convert.AnthropicFunctionExecutionResultMessage.model_validate_json(marked.model_dump_json())
        == marked
    )
    with pytest.raises(ValidationError):
        convert.AnthropicSystemMessage(content="x", cache_control={"type": "persistent"})  # type: ignore[arg-type]


def test_cached_autogen_messages_without_a_marker_convert_to_plain_ones() -> None:
    user, tool_results = convert.guide_messages(
        [
            convert.AnthropicUserMessage(content="x", source="u", cache_index=0),
            convert.AnthropicFunctionExecutionResultMessage(content=results()),
        ]
    )
    assert type(user) is gm.UserMessage and type(tool_results) is gm.FunctionExecutionResultMessage


# -- tools ----------------------------------------------------------------------------------------
def test_tools_become_tool_params() -> None:
    def add(a: int, b: int) -> int:
        return a + b

    schema: ToolSchema = {
        "name": "get_weather",
        "description": "The weather.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
    weather, adder = convert.anthropic_tools([schema, FunctionTool(add, description="Add two numbers.")])
    assert weather == {
        "name": "get_weather",
        "description": "The weather.",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
    assert adder["name"] == "add" and adder["description"] == "Add two numbers."
    assert adder["input_schema"]["required"] == ["a", "b"]


def test_a_bare_tool_gets_an_empty_object_schema_and_no_empty_description() -> None:
    assert convert.anthropic_tools([{"name": "ping"}, {"name": "pong", "description": ""}]) == [
        {"name": "ping", "input_schema": {"type": "object", "properties": {}}},
        {"name": "pong", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert convert.anthropic_tools([]) == []


# -- results and usage ----------------------------------------------------------------------------
def raw_message() -> Message:
    return Message.model_validate(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "Hi"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 3, "output_tokens": 4},
        }
    )


def test_a_text_result_becomes_autogens_with_the_cache_figures() -> None:
    cache = gm.CacheUsage(cache_read_tokens=1_000, cache_write_tokens=24, cache_write_5m_tokens=24)
    raw = raw_message()
    guide = gm.CreateResult(
        finish_reason="stop",
        content="Hi",
        usage=gm.RequestUsage(prompt_tokens=1_027, completion_tokens=4, cache_usage=cache),
        cached=True,
        raw=raw,
        thought="Thinking.",
    )
    result = convert.autogen_result(guide)
    assert isinstance(result, convert.CachingCreateResult) and isinstance(result, ag.CreateResult)
    assert isinstance(result.usage, convert.CachingRequestUsage) and isinstance(result.usage, ag.RequestUsage)
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (1_027, 4)
    assert result.usage.cache_usage == cache
    assert (result.finish_reason, result.content, result.cached, result.thought) == (
        "stop",
        "Hi",
        True,
        "Thinking.",
    )
    assert result.raw is raw
    assert "raw" not in result.model_dump()  # the SDK message is not serialised


def test_a_tool_call_result_becomes_autogen_function_calls() -> None:
    guide = gm.CreateResult(
        finish_reason="function_calls",
        content=[gm.FunctionCall(id="c1", arguments='{"city": "Rome"}', name="get_weather")],
        usage=gm.RequestUsage(prompt_tokens=10, completion_tokens=5),
        cached=False,
    )
    result = convert.autogen_result(guide)
    assert result.content == [FunctionCall(id="c1", arguments='{"city": "Rome"}', name="get_weather")]
    assert result.usage.cache_usage is None and result.raw is None


def test_add_usage_keeps_the_cache_figures_autogens_sum_drops() -> None:
    first = convert.CachingRequestUsage(
        prompt_tokens=1_100,
        completion_tokens=10,
        cache_usage=gm.CacheUsage(cache_write_tokens=1_024, cache_write_1h_tokens=1_024),
    )
    second = convert.CachingRequestUsage(
        prompt_tokens=1_200,
        completion_tokens=20,
        cache_usage=gm.CacheUsage(cache_read_tokens=1_024, cache_write_tokens=50, cache_write_5m_tokens=50),
    )
    total = convert.add_usage(
        convert.add_usage(ag.RequestUsage(prompt_tokens=0, completion_tokens=0), first), second
    )
    assert (total.prompt_tokens, total.completion_tokens) == (2_300, 30)
    assert total.cache_usage == gm.CacheUsage(
        cache_read_tokens=1_024,
        cache_write_tokens=1_074,
        cache_write_5m_tokens=50,
        cache_write_1h_tokens=1_024,
    )


def test_add_usage_with_no_cache_on_either_side() -> None:
    uncached = convert.CachingRequestUsage(prompt_tokens=5, completion_tokens=1)
    cached = convert.CachingRequestUsage(
        prompt_tokens=5, completion_tokens=1, cache_usage=gm.CacheUsage(cache_read_tokens=3)
    )
    assert convert.add_usage(uncached, uncached).cache_usage is None
    assert convert.add_usage(uncached, cached).cache_usage == gm.CacheUsage(cache_read_tokens=3)
    assert convert.add_usage(cached, uncached).cache_usage == gm.CacheUsage(cache_read_tokens=3)
