"""The AutoGen prompt-caching guide's examples, run against the in-process emulator.

On a Session, mostly; `GuideRules` and `Guide` are also built alone (the rules need nothing;
the guide needs a call pipeline and the settings).
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import zlib
from typing import Any

import pytest

from pcache_magic.analysis.cachebook import CacheBook
from pcache_magic.core.conversation import CacheControl
from pcache_magic.core.models import default_models
from pcache_magic.core.record import CallRecord
from pcache_magic.emulator import Emulator
from pcache_magic.session.calls import CallPipeline
from pcache_magic.session.guide import Guide, GuideRules, to_params
from pcache_magic.session.guide_messages import (
    AnthropicUserMessage,
    AssistantMessage,
    CreateResult,
    FunctionCall,
    FunctionExecutionResult,
    FunctionExecutionResultMessage,
    GuideMessage,
    SystemMessage,
    UserMessage,
)
from pcache_magic.session.requests import Planners
from pcache_magic.session.session import PreflightError, Session
from pcache_magic.session.session_settings import Settings

from _helpers import MODEL

#: The guide's "large_document * 100": far above claude-sonnet-4-5's 1,024-token minimum.
LARGE_DOCUMENT = "Section 4.2 of the agreement covers liability, indemnity and the notice period. " * 100
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def _png(width: int = 2, height: int = 2) -> bytes:
    """A valid PNG, so the emulator's image sizing sees a real header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


class FakeImage:
    """Quacks like `autogen_core.Image`: `to_base64()` and `data_uri`."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def to_base64(self) -> str:
        return base64.b64encode(self._data).decode("ascii")

    @property
    def data_uri(self) -> str:
        return f"data:image/png;base64,{self.to_base64()}"


class Base64Only:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def to_base64(self) -> str:
        return base64.b64encode(self._data).decode("ascii")


def _request(session: Session) -> dict[str, Any]:
    return session.calls[-1].request


def _markers(blocks: list[dict[str, Any]]) -> list[int]:
    return [i for i, b in enumerate(blocks) if "cache_control" in b]


def _assert_totals(result: CreateResult) -> None:
    """`prompt_tokens` is the whole prompt: uncached + written + read, as the raw usage says."""
    assert result.raw is not None
    raw = result.raw.usage
    written = raw.cache_creation_input_tokens or 0
    read = raw.cache_read_input_tokens or 0
    assert result.usage.prompt_tokens == raw.input_tokens + written + read
    assert result.usage.completion_tokens == raw.output_tokens
    if result.usage.cache_usage is not None:
        assert result.usage.cache_usage.cache_write_tokens == written
        assert result.usage.cache_usage.cache_read_tokens == read


# -- the parts alone ------------------------------------------------------------------------


def test_the_rules_alone_use_their_default_lifetime() -> None:
    rules = GuideRules(default_ttl="1h")
    assert rules.cached_system_message("Rules.").cache_control == CacheControl(ttl="1h")
    assert rules.cached_system_message("Rules.", ttl="5m").cache_control == CacheControl(ttl="5m")
    assert GuideRules().cached_user_message("Hi").cache_control == CacheControl()
    with pytest.raises(ValueError, match="out of range"):
        rules.cached_tool_results([FunctionExecutionResult(content="x", name="t", call_id="c")], [3])


def test_the_guide_alone_sends_through_the_pipeline_it_is_given(emu: Emulator) -> None:
    models = default_models()
    calls: list[CallRecord] = []
    book, settings = CacheBook(models), Settings(model="claude-haiku-4-5", max_tokens=64)
    pipeline = CallPipeline(
        client=emu.client(),
        async_client=emu.async_client(),
        models=models,
        book=book,
        calls=calls,
        planners=Planners(models, book, calls),
        settings=settings,
        clock=emu.now,
        emit=lambda event, payload: None,
    )
    guide = Guide(pipeline, settings)
    settings.model, settings.default_ttl = MODEL, "1h"  # read at each call, not when the guide was made
    messages: list[GuideMessage] = [guide.rules.cached_system_message(LARGE_DOCUMENT)]
    messages.append(UserMessage(content="Summarise.", source="user"))
    first = guide.create(messages)
    second = asyncio.run(guide.acreate(messages))
    assert (first.cached, second.cached) == (False, True)
    assert [(c.kind, c.model, c.request["max_tokens"]) for c in calls] == [("create", MODEL, 64)] * 2
    assert calls[0].request["system"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}


# -- caching a system message ---------------------------------------------------------------


def test_cached_system_message_writes_then_reads(session: Session) -> None:
    system_msg = session.cached_system_message(LARGE_DOCUMENT)
    user_msg = UserMessage(content="What does section 4.2 cover?", source="user")

    first = session.create([system_msg, user_msg])
    assert first.cached is False
    assert first.usage.cache_usage is not None
    assert first.usage.cache_usage.cache_write_tokens > 0
    assert first.usage.cache_usage.cache_write_5m_tokens == first.usage.cache_usage.cache_write_tokens
    assert first.usage.cache_usage.cache_read_tokens == 0
    _assert_totals(first)

    second = session.create([system_msg, user_msg])
    assert second.cached is True
    assert second.usage.cache_usage is not None
    assert second.usage.cache_usage.cache_read_tokens > 0
    assert second.usage.cache_usage.cache_write_tokens == 0
    _assert_totals(second)
    assert second.usage.prompt_tokens == first.usage.prompt_tokens
    assert isinstance(second.content, str) and second.content
    assert second.finish_reason == "stop"

    request = _request(session)
    assert request["system"] == [
        {"type": "text", "text": LARGE_DOCUMENT, "cache_control": {"type": "ephemeral"}}
    ]
    assert [c.kind for c in session.calls] == ["create", "create"]


def test_short_prompt_is_not_cached(session: Session) -> None:
    """Below the model's minimum the marker is silently ignored: no cache usage at all."""
    result = session.create(
        [session.cached_system_message("You are brief."), UserMessage(content="Hi", source="user")]
    )
    assert result.usage.cache_usage is None
    assert result.cached is False
    _assert_totals(result)
    assert result.usage.prompt_tokens > 0


def test_ttl_one_hour(session: Session) -> None:
    system_msg = session.cached_system_message(LARGE_DOCUMENT, ttl="1h")
    result = session.create([system_msg, UserMessage(content="Summarise.", source="user")])
    assert _request(session)["system"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert result.usage.cache_usage is not None
    assert result.usage.cache_usage.cache_write_1h_tokens == result.usage.cache_usage.cache_write_tokens > 0


def test_monitoring_snippet(session: Session) -> None:
    """The guide's `if response.usage.cache_usage: ...` snippet."""
    messages: list[GuideMessage] = [
        session.cached_system_message(LARGE_DOCUMENT),
        UserMessage(content="Go.", source="user"),
    ]
    lines: list[str] = []
    for _ in range(2):
        response = session.create(messages)
        if response.usage.cache_usage:
            lines.append(f"Cache read tokens: {response.usage.cache_usage.cache_read_tokens}")
            lines.append(f"Cached: {response.cached}")
    assert lines[1] == "Cached: False"
    assert lines[3] == "Cached: True"
    assert int(lines[2].split(": ")[1]) > 0


# -- user messages --------------------------------------------------------------------------


def test_cached_user_message_string_is_cached_whole(session: Session) -> None:
    user_msg = session.cached_user_message(LARGE_DOCUMENT + " Question: what is covered?")
    first = session.create([user_msg])
    second = session.create([user_msg])
    content = _request(session)["messages"][0]["content"]
    assert len(content) == 1 and content[0]["cache_control"] == {"type": "ephemeral"}
    assert first.cached is False and second.cached is True


def test_multipart_only_last_text_block_is_marked(session: Session) -> None:
    png = _png()
    user_msg = session.cached_user_message(
        [LARGE_DOCUMENT, FakeImage(png), "Describe the image.", png, "Thanks."], source="user"
    )
    session.create([user_msg])
    content = _request(session)["messages"][0]["content"]
    assert [b["type"] for b in content] == ["text", "image", "text", "image", "text"]
    assert _markers(content) == [4]
    assert content[1]["source"] == {
        "type": "base64",
        "media_type": "image/png",
        "data": base64.b64encode(png).decode("ascii"),
    }
    assert content[3]["source"]["media_type"] == "image/png"


def test_multipart_explicit_index_marks_that_block(session: Session) -> None:
    user_msg = session.cached_user_message([LARGE_DOCUMENT, Base64Only(_png()), "And?"], index=1)
    session.create([user_msg])
    content = _request(session)["messages"][0]["content"]
    assert _markers(content) == [1]
    assert content[1]["type"] == "image"
    with pytest.raises(ValueError, match="Cache index 3 out of range"):
        session.cached_user_message(["a", "b", "c"], index=3)


def test_explicit_anthropic_user_message(session: Session) -> None:
    """The guide's `AnthropicUserMessage(..., cache_control=CacheControl(type="ephemeral"))`."""
    multipart_content = [LARGE_DOCUMENT, {"type": "image", "source": _b64_source(_png())}, "What is this?"]
    user_msg = AnthropicUserMessage(
        content=multipart_content, source="user", cache_control=CacheControl(type="ephemeral")
    )
    first = session.create([user_msg])
    second = session.create([user_msg])
    assert _markers(_request(session)["messages"][0]["content"]) == [2]
    assert first.usage.cache_usage is not None and first.usage.cache_usage.cache_write_tokens > 0
    assert second.cached is True


def _b64_source(data: bytes) -> dict[str, str]:
    return {"type": "base64", "media_type": "image/png", "data": base64.b64encode(data).decode("ascii")}


def test_mixing_cached_and_regular_messages(session: Session) -> None:
    messages: list[GuideMessage] = [
        session.cached_system_message(LARGE_DOCUMENT),
        UserMessage(content="First question.", source="user"),
        AssistantMessage(content="First answer.", source="assistant"),
        session.cached_user_message("Second question."),
    ]
    first = session.create(messages)
    second = session.create(messages)
    request = _request(session)
    assert _markers(request["system"]) == [0]
    assert [m["role"] for m in request["messages"]] == ["user", "assistant", "user"]
    assert _markers(request["messages"][0]["content"]) == []
    assert _markers(request["messages"][2]["content"]) == [0]
    assert first.cached is False and second.cached is True


def test_consecutive_user_messages_are_merged() -> None:
    params, names = to_params(
        [
            SystemMessage(content="Be brief."),
            UserMessage(content="one", source="user"),
            UserMessage(content="two", source="user"),
        ],
        model=MODEL,
        max_tokens=10,
    )
    assert params["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]}
    ]
    assert names == {"system.0": "system", "messages.0.content.0": "user-1", "messages.0.content.1": "user-2"}


# -- tool results ---------------------------------------------------------------------------


def _results(n: int = 3) -> list[FunctionExecutionResult]:
    return [
        FunctionExecutionResult(
            content=f"result {i}: " + LARGE_DOCUMENT, name=f"tool_{i}", call_id=f"call_{i}"
        )
        for i in range(n)
    ]


def test_cached_tool_results_indices(session: Session) -> None:
    """The guide's sample: tool results straight after a system message, result 1 cached."""
    tool_msg = session.cached_tool_results(content=_results(), cached_indices=[1])
    assert set(tool_msg.cache_control_config) == {1}
    first = session.create([SystemMessage(content="You analyse tool output."), tool_msg])
    second = session.create([SystemMessage(content="You analyse tool output."), tool_msg])
    content = _request(session)["messages"][0]["content"]
    assert _markers(content) == [1]
    # No preceding tool_use, so the API would reject tool_result blocks: they go as text.
    assert [b["type"] for b in content] == ["text", "text", "text"]
    assert content[1]["text"].startswith("[tool result] tool_1 (call_1): result 1: ")
    assert first.cached is False and second.cached is True


def test_cached_tool_results_cache_all(session: Session) -> None:
    tool_msg = session.cached_tool_results(content=_results(), cache_all=True)
    session.create([tool_msg])
    assert _markers(_request(session)["messages"][0]["content"]) == [0, 1, 2]


def test_tool_results_after_a_tool_call_are_tool_result_blocks(session: Session) -> None:
    question = UserMessage(content="Use get_weather for Paris.", source="user")
    call = session.create([session.cached_system_message(LARGE_DOCUMENT), question], tools=[WEATHER_TOOL])
    assert call.finish_reason == "function_calls"
    assert isinstance(call.content, list) and len(call.content) == 1
    function_call = call.content[0]
    assert isinstance(function_call, FunctionCall) and function_call.name == "get_weather"
    assert json.loads(function_call.arguments) == {"city": "example"}
    assert call.thought

    results = session.cached_tool_results(
        [
            FunctionExecutionResult(content="18C, clear", name="get_weather", call_id=function_call.id),
            FunctionExecutionResult(content="unused", name="other", call_id="call_unknown", is_error=True),
        ],
        cache_all=True,
    )
    messages: list[GuideMessage] = [
        session.cached_system_message(LARGE_DOCUMENT),
        question,
        AssistantMessage(content=call.content, thought=call.thought, source="assistant"),
        results,
    ]
    answer = session.create(messages, tools=[WEATHER_TOOL])
    request = _request(session)
    assistant, user = request["messages"][1], request["messages"][2]
    assert assistant["content"][-1] == {
        "type": "tool_use",
        "id": function_call.id,
        "name": "get_weather",
        "input": {"city": "example"},
    }
    assert user["content"][0] == {
        "type": "tool_result",
        "tool_use_id": function_call.id,
        "content": "18C, clear",
        "cache_control": {"type": "ephemeral"},
    }
    # An id the assistant never called stays valid as a text block.
    assert user["content"][1]["type"] == "text"
    assert user["content"][1]["text"] == "[tool error] other (call_unknown): unused"
    assert answer.finish_reason == "stop" and isinstance(answer.content, str)
    assert answer.cached is True  # the system prefix written by the first call


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cached_indices": [10]}, r"Cache index 10 out of range for 3 tool results \(valid: 0\.\.2\)"),
        ({"cached_indices": [-1]}, "Cache index -1 out of range"),
        ({"cached_indices": [0], "cache_all": True}, "not both"),
        ({}, "cached_indices"),
        ({"cached_indices": []}, "cached_indices"),
        ({"cache_all": True, "policy": "persistent"}, "ephemeral"),
    ],
)
def test_cached_tool_results_errors(session: Session, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        session.cached_tool_results(content=_results(), **kwargs)


def test_where_the_reference_implementation_differs(session: Session) -> None:
    """The three places the guide is silent and its reference implementation (an unmerged AutoGen
    branch) chose otherwise; this project's choices, with their messages, are pinned here."""
    # There: a message without markers.  Here: a "cached" helper that caches nothing is refused.
    with pytest.raises(ValueError) as neither:
        session.cached_tool_results(_results())
    assert str(neither.value) == "Say which tool results to cache: cached_indices=[...] or cache_all=True."
    # There: cache_all wins.  Here: two disagreeing arguments are refused.
    with pytest.raises(ValueError) as both:
        session.cached_tool_results(_results(), cached_indices=[1], cache_all=True)
    assert str(both.value) == "Pass either cached_indices or cache_all=True, not both."
    # There: True on a write.  Here: `cached` means read ("This response used cached content").
    messages: list[GuideMessage] = [
        session.cached_system_message(LARGE_DOCUMENT),
        UserMessage(content="Hi", source="user"),
    ]
    wrote = session.create(messages)
    assert wrote.usage.cache_usage is not None and wrote.usage.cache_usage.cache_write_tokens > 0
    assert wrote.usage.cache_usage.cache_read_tokens == 0 and wrote.cached is False
    assert session.create(messages).cached is True


def test_policy_other_than_ephemeral_is_a_value_error(session: Session) -> None:
    with pytest.raises(ValueError, match='only "ephemeral" cache policy is supported'):
        session.cached_system_message("text", policy="persistent")
    with pytest.raises(ValueError, match='only "ephemeral" cache policy is supported'):
        session.cached_user_message("text", policy="persistent")
    with pytest.raises(ValueError, match="ttl"):
        session.cached_system_message("text", ttl="2h")  # type: ignore[arg-type]


def test_invalid_function_call_arguments(session: Session) -> None:
    bad = AssistantMessage(content=[FunctionCall(id="c1", arguments="{not json", name="f")], source="a")
    with pytest.raises(ValueError, match="not JSON"):
        session.create([UserMessage(content="hi", source="user"), bad])
    assert session.calls == []


# -- pre-flight -----------------------------------------------------------------------------


def test_more_than_four_cached_messages_is_refused_before_sending(
    session: Session, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests: list[str] = []
    respond = emu.respond

    def counting(method: str, path: str, headers: Any, body: bytes, arrived: int | None = None) -> Any:
        requests.append(path)
        return respond(method, path, headers, body, arrived)

    monkeypatch.setattr(emu, "respond", counting)
    messages: list[GuideMessage] = [session.cached_system_message(LARGE_DOCUMENT)]
    messages += [session.cached_user_message(f"Question {i}.") for i in range(1, 5)]
    with pytest.raises(PreflightError) as caught:
        session.create(messages)
    text = str(caught.value)
    assert "5 cache markers" in text
    for name in ("system", "user-1", "user-2", "user-3", "user-4"):
        assert name in text
    assert any(f.code == "too-many-breakpoints" for f in caught.value.findings)
    assert session.calls == []
    assert requests == []

    session.create(messages[:4])  # four is fine, and goes out
    assert len(requests) == 1 and len(session.calls) == 1


# -- async ----------------------------------------------------------------------------------


def test_acreate_with_the_async_client(session: Session) -> None:
    messages: list[GuideMessage] = [
        session.cached_system_message(LARGE_DOCUMENT),
        UserMessage(content="Hello", source="user"),
    ]

    async def run() -> tuple[CreateResult, CreateResult]:
        first = await session.acreate(messages)
        second = await session.acreate(messages)
        return first, second

    first, second = asyncio.run(run())
    assert first.cached is False and second.cached is True
    assert second.usage.cache_usage is not None and second.usage.cache_usage.cache_read_tokens > 0
    _assert_totals(second)
    assert [c.kind for c in session.calls] == ["create", "create"]


def test_acreate_without_an_async_client_says_so(emu: Emulator) -> None:
    session = Session(model=MODEL, client=emu.client())
    assert session.async_client is None
    messages: list[GuideMessage] = [UserMessage(content="Hello", source="user")]
    with pytest.raises(RuntimeError, match="no async client: pass async_client="):
        asyncio.run(session.acreate(messages))
    assert session.calls == []


def test_the_sessions_default_ttl_reaches_the_helpers_when_it_changes(session: Session) -> None:
    assert session.cached_system_message("Rules.").cache_control == CacheControl()
    session.default_ttl = "1h"
    assert session.cached_user_message("Hi").cache_control == CacheControl(ttl="1h")
    results = [FunctionExecutionResult(content="x", name="t", call_id="c")]
    assert session.cached_tool_results(results, cache_all=True).cache_control_config == {
        0: CacheControl(ttl="1h")
    }


def test_plain_tool_results_message_without_markers() -> None:
    message = FunctionExecutionResultMessage(
        content=[FunctionExecutionResult(content="", name="t", call_id="c1")]
    )
    params, _ = to_params(
        [
            UserMessage(content="go", source="user"),
            AssistantMessage(content=[FunctionCall(id="c1", arguments="", name="t")], source="a"),
            message,
        ],
        model=MODEL,
        max_tokens=10,
    )
    assert params["messages"][1]["content"] == [{"type": "tool_use", "id": "c1", "name": "t", "input": {}}]
    assert params["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": "c1"}]
