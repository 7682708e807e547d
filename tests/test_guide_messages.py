"""`guide_messages`: the AutoGen-guide message and result models, and the image conversions."""

from __future__ import annotations

import base64
import typing
from typing import Any

import pytest
from anthropic.types import Message
from pydantic import BaseModel, ValidationError

from pcache_magic.core.conversation import CacheControl
from pcache_magic.session import guide_messages as gm

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 24
GIF87 = b"GIF87a" + b"\x01" * 24
GIF89 = b"GIF89a" + b"\x01" * 24
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 20


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class DataUri:
    """Quacks like `autogen_core.Image` through `data_uri` alone."""

    def __init__(self, uri: str) -> None:
        self.data_uri = uri


class Base64Only:
    def __init__(self, data: str) -> None:
        self._data = data

    def to_base64(self) -> str:
        return self._data


def usage(**cache: int) -> gm.RequestUsage:
    return gm.RequestUsage(
        prompt_tokens=10, completion_tokens=2, cache_usage=gm.CacheUsage(**cache) if cache else None
    )


# -- images ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "media"),
    [
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (GIF87, "image/gif"),
        (GIF89, "image/gif"),
        (WEBP, "image/webp"),
    ],
)
def test_raw_bytes_become_a_base64_block_of_the_right_type(data: bytes, media: str) -> None:
    expected = {"type": "image", "source": {"type": "base64", "media_type": media, "data": b64(data)}}
    assert gm.image_block(data) == expected
    assert gm.image_block(bytearray(data)) == expected
    assert gm.image_block(Base64Only(b64(data))) == expected  # type from the decoded magic number


@pytest.mark.parametrize(
    "data", [b"BM\x00\x00 a bitmap", b"RIFF\x24\x00\x00\x00WAVEfmt ", b"", b"<svg></svg>"]
)
def test_other_bytes_are_refused_before_the_api_would(data: bytes) -> None:
    with pytest.raises(ValueError, match="only PNG, JPEG, GIF and WebP"):
        gm.image_block(data)


def test_a_data_uri_names_its_own_type() -> None:
    declared = gm.image_block(DataUri(f"data:image/jpeg;base64,{b64(JPEG)}"))
    assert declared["source"] == {"type": "base64", "media_type": "image/jpeg", "data": b64(JPEG)}
    unnamed = gm.image_block(DataUri(f"data:;base64,{b64(GIF89)}"))
    assert unnamed["source"]["media_type"] == "image/gif"


def test_a_data_uri_that_is_not_base64_falls_back_to_to_base64() -> None:
    class Both(Base64Only):
        data_uri = "https://example.com/cat.png"

    assert gm.image_block(Both(b64(PNG)))["source"]["media_type"] == "image/png"
    with pytest.raises(ValueError, match="Cannot send DataUri as an image"):
        gm.image_block(DataUri("https://example.com/cat.png"))


def test_broken_base64_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="not valid base64"):
        gm.image_block(Base64Only("a"))


def test_an_sdk_image_dict_is_copied_as_it_is() -> None:
    given = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    block = gm.image_block(given)
    assert block == given and block is not given
    with pytest.raises(ValueError, match="must be SDK image blocks, not type 'text'"):
        gm.image_block({"type": "text", "text": "hi"})


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (PNG, True),
        (bytearray(PNG), True),
        ({"type": "image", "source": {}}, True),
        ({"type": "text", "text": "x"}, False),
        (DataUri("data:image/png;base64,"), True),
        (Base64Only(""), True),
        ("just text", False),
        (42, False),
    ],
)
def test_is_image(item: object, expected: bool) -> None:
    assert gm.is_image(item) is expected


def test_cannot_send_other_objects() -> None:
    with pytest.raises(
        ValueError, match="Cannot send int as an image: expected bytes, an image dict or Image"
    ):
        gm.image_block(42)


# -- messages -------------------------------------------------------------------------------------
def test_each_message_carries_its_autogen_type_name() -> None:
    results = [gm.FunctionExecutionResult(content="ok", name="f", call_id="c1")]
    messages: list[BaseModel] = [
        gm.SystemMessage(content="Be brief."),
        gm.UserMessage(content="Hi", source="user"),
        gm.AssistantMessage(content="Hello", source="assistant"),
        gm.FunctionExecutionResultMessage(content=results),
        gm.AnthropicSystemMessage(content="Be brief."),
        gm.AnthropicUserMessage(content="Hi", source="user"),
        gm.AnthropicFunctionExecutionResultMessage(content=results),
    ]
    assert [m.model_dump()["type"] for m in messages] == [
        "SystemMessage",
        "UserMessage",
        "AssistantMessage",
        "FunctionExecutionResultMessage",
        "SystemMessage",  # the cached variants keep the type AutoGen code dispatches on
        "UserMessage",
        "FunctionExecutionResultMessage",
    ]
    with pytest.raises(ValidationError):
        gm.SystemMessage(content="x", type="UserMessage")  # type: ignore[arg-type]


def test_user_content_is_text_or_strings_and_images() -> None:
    mixed = gm.UserMessage(content=["Look:", PNG, DataUri("data:image/png;base64,"), "ok?"], source="user")
    assert isinstance(mixed.content, list) and len(mixed.content) == 4
    with pytest.raises(ValidationError, match=r"content\[1\] is int: expected str or an image"):
        gm.UserMessage(content=["Look:", 3], source="user")
    with pytest.raises(ValidationError, match=r"content\[0\] is dict"):
        gm.UserMessage(content=[{"type": "text", "text": "no dicts but images"}], source="user")
    with pytest.raises(ValidationError, match="source"):
        gm.UserMessage(content="Hi")  # type: ignore[call-arg]


def test_assistant_content_is_text_or_function_calls() -> None:
    calls = gm.AssistantMessage(
        content=[{"id": "c1", "arguments": '{"city": "Paris"}', "name": "get_weather"}],  # type: ignore[list-item]
        source="assistant",
        thought="I should check the weather.",
    )
    assert calls.content == [gm.FunctionCall(id="c1", arguments='{"city": "Paris"}', name="get_weather")]
    assert calls.thought == "I should check the weather."
    assert gm.AssistantMessage(content="Hi", source="a").thought is None
    with pytest.raises(ValidationError):
        gm.AssistantMessage(content=[{"id": "c1"}], source="a")  # type: ignore[list-item]


def test_function_results_default_to_no_error() -> None:
    result = gm.FunctionExecutionResult(content="Sunny", name="get_weather", call_id="c1")
    assert result.is_error is False
    assert gm.FunctionExecutionResult(content="boom", name="f", call_id="c2", is_error=True).is_error
    assert gm.FunctionExecutionResult(content="ok", name="f", call_id="c3", is_error=None).is_error is False  # type: ignore[arg-type]


def test_cached_variants_carry_their_markers() -> None:
    one_hour = CacheControl(ttl="1h")
    assert gm.AnthropicSystemMessage(content="x", cache_control=one_hour).cache_control == one_hour
    assert gm.AnthropicSystemMessage(content="x").cache_control is None
    user = gm.AnthropicUserMessage(content=["a", PNG], source="u", cache_control={"ttl": "5m"}, cache_index=1)  # type: ignore[arg-type]
    assert user.cache_control == CacheControl(ttl="5m") and user.cache_index == 1
    with pytest.raises(ValidationError):
        gm.AnthropicSystemMessage(content="x", cache_control={"type": "persistent"})  # type: ignore[arg-type]


def test_each_results_message_has_its_own_marker_table() -> None:
    first = gm.AnthropicFunctionExecutionResultMessage(content=[])
    first.cache_control_config[0] = CacheControl()
    assert gm.AnthropicFunctionExecutionResultMessage(content=[]).cache_control_config == {}
    keyed = gm.AnthropicFunctionExecutionResultMessage(content=[], cache_control_config={"2": {"ttl": "1h"}})  # type: ignore[dict-item]
    assert keyed.cache_control_config == {2: CacheControl(ttl="1h")}


CACHED: list[tuple[type[BaseModel], type[BaseModel], type[BaseModel]]] = [
    (gm.AnthropicSystemMessage, gm.SystemMessage, gm.CacheFields),
    (gm.AnthropicUserMessage, gm.UserMessage, gm.UserCacheFields),
    (gm.AnthropicFunctionExecutionResultMessage, gm.FunctionExecutionResultMessage, gm.ToolResultCacheFields),
]


@pytest.mark.parametrize(("cached", "plain", "mixin"), CACHED)
def test_a_cached_variant_is_its_plain_message_plus_one_cache_mixin(
    cached: type[BaseModel], plain: type[BaseModel], mixin: type[BaseModel]
) -> None:
    assert issubclass(cached, plain) and issubclass(cached, mixin)
    assert list(cached.model_fields) == [*plain.model_fields, *mixin.model_fields]  # the message's own first


def test_cache_fields_and_has_marker_read_the_mixins() -> None:
    one_hour = CacheControl(ttl="1h")
    user = gm.AnthropicUserMessage(content="x", source="u", cache_control=one_hour, cache_index=0)
    results = gm.AnthropicFunctionExecutionResultMessage(content=[], cache_control_config={1: one_hour})
    assert gm.cache_fields(user) == {"cache_control": one_hour, "cache_index": 0}
    assert gm.cache_fields(gm.AnthropicSystemMessage(content="x")) == {"cache_control": None}
    assert gm.cache_fields(results) == {"cache_control_config": {1: one_hour}}
    assert gm.cache_fields(gm.UserMessage(content="x", source="u")) == {}
    assert gm.has_marker(user) and gm.has_marker(results)
    assert not gm.has_marker(gm.AnthropicUserMessage(content="x", source="u", cache_index=0))
    assert not gm.has_marker(gm.AnthropicFunctionExecutionResultMessage(content=[]))
    assert not gm.has_marker(gm.SystemMessage(content="x"))


def test_cached_variants_round_trip_through_json() -> None:
    user = gm.AnthropicUserMessage(
        content="x", source="u", cache_control=CacheControl(ttl="1h"), cache_index=0
    )
    assert gm.AnthropicUserMessage.model_validate_json(user.model_dump_json()) == user
    results = gm.AnthropicFunctionExecutionResultMessage(
        content=[gm.FunctionExecutionResult(content="ok", name="f", call_id="c1")],
        cache_control_config={0: CacheControl()},
    )
    assert (
        gm.AnthropicFunctionExecutionResultMessage.model_validate_json(results.model_dump_json()) == results
    )


# -- usage and results ----------------------------------------------------------------------------
def test_cache_usage_defaults_to_zero_and_is_frozen() -> None:
    empty = gm.CacheUsage()
    assert empty.model_dump() == {
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "cache_write_5m_tokens": 0,
        "cache_write_1h_tokens": 0,
    }
    with pytest.raises(ValidationError, match="frozen"):
        empty.cache_read_tokens = 5
    assert gm.CacheUsage(cache_read_tokens=5) == gm.CacheUsage(cache_read_tokens=5)
    assert len({gm.CacheUsage(cache_read_tokens=5), gm.CacheUsage(cache_read_tokens=5)}) == 1


def test_request_usage_needs_both_counts_and_is_frozen() -> None:
    assert usage().cache_usage is None
    assert usage(cache_read_tokens=8).cache_usage == gm.CacheUsage(cache_read_tokens=8)
    with pytest.raises(ValidationError, match="completion_tokens"):
        gm.RequestUsage(prompt_tokens=1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="frozen"):
        usage().prompt_tokens = 0


@pytest.mark.parametrize("reason", ["stop", "length", "function_calls", "content_filter", "unknown"])
def test_create_result_takes_autogens_finish_reasons(reason: str) -> None:
    result = gm.CreateResult(finish_reason=reason, content="Hi", usage=usage(), cached=False)  # type: ignore[arg-type]
    assert (result.finish_reason, result.raw, result.thought) == (reason, None, None)


def test_create_result_refuses_the_apis_stop_reasons() -> None:
    with pytest.raises(ValidationError, match="finish_reason"):
        gm.CreateResult(finish_reason="end_turn", content="Hi", usage=usage(), cached=False)  # type: ignore[arg-type]


def test_create_result_keeps_the_sdk_message_and_tool_calls() -> None:
    raw = Message.model_validate(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "tool_use", "id": "c1", "name": "f", "input": {}}],
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": {"input_tokens": 3, "output_tokens": 4},
        }
    )
    result = gm.CreateResult(
        finish_reason="function_calls",
        content=[gm.FunctionCall(id="c1", arguments="{}", name="f")],
        usage=usage(cache_read_tokens=7, cache_write_tokens=0),
        cached=True,
        raw=raw,
        thought="Calling f.",
    )
    assert result.raw is raw
    assert isinstance(result.content, list) and result.content[0].name == "f"


def test_the_shapes_match_autogen_core() -> None:
    """Where AutoGen is installed, every field AutoGen's types have is here too (bar `logprobs`)."""
    models = pytest.importorskip("autogen_core.models")
    autogen_core = pytest.importorskip("autogen_core")
    pairs: list[tuple[Any, type[BaseModel]]] = [
        (models.SystemMessage, gm.SystemMessage),
        (models.UserMessage, gm.UserMessage),
        (models.AssistantMessage, gm.AssistantMessage),
        (models.FunctionExecutionResult, gm.FunctionExecutionResult),
        (models.FunctionExecutionResultMessage, gm.FunctionExecutionResultMessage),
        (models.CreateResult, gm.CreateResult),
    ]
    for theirs, ours in pairs:
        assert set(theirs.model_fields) - {"logprobs"} <= set(ours.model_fields), theirs.__name__
    dataclasses: list[tuple[Any, type[BaseModel]]] = [
        (models.RequestUsage, gm.RequestUsage),
        (autogen_core.FunctionCall, gm.FunctionCall),
    ]
    for dataclass, model in dataclasses:
        assert set(dataclass.__dataclass_fields__) <= set(model.model_fields), dataclass.__name__
    theirs_reasons = typing.get_args(models.CreateResult.model_fields["finish_reason"].annotation)
    assert set(theirs_reasons) == set(typing.get_args(gm.FinishReason))
