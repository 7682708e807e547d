"""The AutoGen guide's samples on `pcache_magic.autogen`, against the emulator (in process and over HTTP).

Only the client's import differs from the guide. The requests are read off the
wire by a recording transport in front of the emulator, so the tests see the
markers exactly as the API would.
"""

from __future__ import annotations

import asyncio
import base64
import json
import pickle
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("autogen_ext.models.anthropic", reason="pcache-magic[autogen] not installed")

import anthropic
import httpx2
from autogen_core import FunctionCall, Image
from autogen_core.models import (
    AssistantMessage,
    CreateResult,
    FunctionExecutionResult,
    LLMMessage,
    RequestUsage,
    SystemMessage,
    UserMessage,
)
from autogen_core.tools import ToolSchema

from pcache_magic.autogen import (
    AnthropicUserMessage,
    CacheControl,
    CachingAnthropicChatCompletionClient,
    CachingCreateResult,
)
from pcache_magic.emulator import Emulator
from pcache_magic.emulator.server import serve
from pcache_magic.session.session import PreflightError, Session
from pcache_magic.session.transport import ConfigError, connect

# The guide's import, with only the module changed.
AnthropicChatCompletionClient = CachingAnthropicChatCompletionClient

MODEL = "claude-sonnet-4-5"
#: Far above claude-sonnet-4-5's 1,024-token minimum, as the guide's `large_document`.
LARGE_DOCUMENT = "Section 4.2 of the agreement covers liability, indemnity and the notice period. " * 100
WEATHER_TOOL: ToolSchema = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


class Wire:
    """The emulator behind a real `AsyncAnthropic`, keeping every request body sent."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.bodies: list[dict[str, Any]] = []

    async def _handle(self, request: httpx2.Request) -> httpx2.Response:
        self.bodies.append(json.loads(request.content))
        return self.emu.handle(request)

    def client(self) -> anthropic.AsyncAnthropic:
        transport = httpx2.MockTransport(self._handle)
        return anthropic.AsyncAnthropic(
            api_key="sk-ant-test",
            base_url="http://pcache-emulator.invalid",
            http_client=httpx2.AsyncClient(transport=transport),
        )

    @property
    def last(self) -> dict[str, Any]:
        return self.bodies[-1]


@pytest.fixture
def wire() -> Wire:
    return Wire(Emulator())


@pytest.fixture
def client(wire: Wire) -> CachingAnthropicChatCompletionClient:
    return AnthropicChatCompletionClient(model=MODEL, anthropic_client=wire.client())


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _image() -> Image:
    return Image.from_base64(base64.b64encode(_png()).decode("ascii"))


def _markers(blocks: list[dict[str, Any]]) -> list[int]:
    return [i for i, b in enumerate(blocks) if "cache_control" in b]


def _twice(
    client: CachingAnthropicChatCompletionClient, messages: list[LLMMessage], **kwargs: Any
) -> tuple[CachingCreateResult, CachingCreateResult]:
    async def run() -> tuple[CachingCreateResult, CachingCreateResult]:
        return await client.create(messages, **kwargs), await client.create(messages, **kwargs)

    return asyncio.run(run())


def _assert_honest(result: CachingCreateResult) -> None:
    """`prompt_tokens` is the whole prompt (uncached + written + read), as the raw usage says."""
    assert isinstance(result, CreateResult) and isinstance(result.usage, RequestUsage)
    assert result.raw is not None
    raw = result.raw.usage
    written, read = raw.cache_creation_input_tokens or 0, raw.cache_read_input_tokens or 0
    assert result.usage.prompt_tokens == raw.input_tokens + written + read
    assert result.usage.completion_tokens == raw.output_tokens
    assert result.cached is (read > 0)
    if written or read:
        assert result.usage.cache_usage is not None
        assert result.usage.cache_usage.cache_write_tokens == written
        assert result.usage.cache_usage.cache_read_tokens == read
    else:
        assert result.usage.cache_usage is None


# -- the guide's samples --------------------------------------------------------------------


def test_cached_system_message_second_call_reads_from_cache(
    client: CachingAnthropicChatCompletionClient, wire: Wire
) -> None:
    system_msg = client.cached_system_message(LARGE_DOCUMENT)
    user_msg = UserMessage(content="What does section 4.2 cover?", source="user")
    first, second = _twice(client, [system_msg, user_msg])

    assert isinstance(system_msg, SystemMessage)
    assert wire.last["system"] == [
        {"type": "text", "text": LARGE_DOCUMENT, "cache_control": {"type": "ephemeral"}}
    ]
    assert first.cached is False and first.usage.cache_usage is not None
    assert first.usage.cache_usage.cache_write_tokens > 0 and first.usage.cache_usage.cache_read_tokens == 0
    assert second.cached is True and second.usage.cache_usage is not None
    assert second.usage.cache_usage.cache_read_tokens > 0 and second.usage.cache_usage.cache_write_tokens == 0
    assert second.usage.prompt_tokens == first.usage.prompt_tokens > 1024
    for result in (first, second):
        _assert_honest(result)
    assert isinstance(second.content, str) and second.content and second.finish_reason == "stop"
    total = client.total_usage()
    assert total.prompt_tokens == 2 * first.usage.prompt_tokens
    assert total.cache_usage is not None
    assert total.cache_usage.cache_read_tokens == second.usage.cache_usage.cache_read_tokens


def test_cached_user_message_for_a_large_document(
    client: CachingAnthropicChatCompletionClient, wire: Wire
) -> None:
    context_msg = client.cached_user_message(content=LARGE_DOCUMENT, source="user")
    question = UserMessage(content="Summarise the key points.", source="user")
    first, second = _twice(
        client, [SystemMessage(content="You are a careful reader."), context_msg, question]
    )
    content = wire.last["messages"][0]["content"]
    assert [b["text"] for b in content] == [LARGE_DOCUMENT, "Summarise the key points."]
    assert _markers(content) == [0]
    assert first.cached is False and second.cached is True
    _assert_honest(second)


def test_short_prompt_is_not_cached(client: CachingAnthropicChatCompletionClient) -> None:
    """Below the minimum the marker is ignored silently: `cache_usage` is None, `cached` False."""
    _, second = _twice(
        client, [client.cached_system_message("Be brief."), UserMessage(content="Hi", source="user")]
    )
    assert second.usage.cache_usage is None and second.cached is False
    _assert_honest(second)


def test_monitoring_snippet(client: CachingAnthropicChatCompletionClient) -> None:
    messages: list[LLMMessage] = [
        client.cached_system_message(LARGE_DOCUMENT),
        UserMessage(content="Go.", source="user"),
    ]
    lines: list[str] = []
    for response in _twice(client, messages):
        if response.usage.cache_usage:
            lines.append(f"Cache read tokens: {response.usage.cache_usage.cache_read_tokens}")
        if response.cached:
            lines.append("Response used cached tokens")
    assert lines[0] == "Cache read tokens: 0"
    assert lines[1].startswith("Cache read tokens: ") and int(lines[1].split(": ")[1]) > 0
    assert lines[2] == "Response used cached tokens"


def test_multipart_content_marks_the_last_text_block(
    client: CachingAnthropicChatCompletionClient, wire: Wire
) -> None:
    multipart_content: list[str | Image] = [LARGE_DOCUMENT, _image(), "What is in this image?"]
    user_msg = AnthropicUserMessage(
        content=multipart_content, source="user", cache_control=CacheControl(type="ephemeral")
    )
    assert isinstance(user_msg, UserMessage)
    first, second = _twice(client, [user_msg])
    content = wire.last["messages"][0]["content"]
    assert [b["type"] for b in content] == ["text", "image", "text"]
    assert _markers(content) == [2]
    assert content[1]["source"]["type"] == "base64" and content[1]["source"]["media_type"] == "image/png"
    assert first.cached is False and second.cached is True


def test_cached_user_message_multipart_and_index(
    client: CachingAnthropicChatCompletionClient, wire: Wire
) -> None:
    helper = client.cached_user_message([LARGE_DOCUMENT, _image(), "Thanks."])
    asyncio.run(client.create([helper]))
    assert _markers(wire.last["messages"][0]["content"]) == [2]
    on_image = client.cached_user_message([LARGE_DOCUMENT, _image(), "Thanks."], index=1)
    asyncio.run(client.create([on_image]))
    assert _markers(wire.last["messages"][0]["content"]) == [1]
    with pytest.raises(ValueError, match=r"Cache index 3 out of range for 3 content blocks"):
        client.cached_user_message(["a", "b", "c"], index=3)


def _results() -> list[FunctionExecutionResult]:
    return [
        FunctionExecutionResult(
            content=f"result {i}: " + LARGE_DOCUMENT, name=f"tool_{i}", call_id=f"call_{i}"
        )
        for i in range(3)
    ]


def test_cached_tool_results_indices(client: CachingAnthropicChatCompletionClient, wire: Wire) -> None:
    tool_results = _results()
    tool_msg = client.cached_tool_results(content=tool_results, cached_indices=[1])
    assert set(tool_msg.cache_control_config) == {1} and tool_msg.content == tool_results
    first, second = _twice(client, [SystemMessage(content="You analyse tool output."), tool_msg])
    content = wire.last["messages"][0]["content"]
    assert _markers(content) == [1]
    # No tool call precedes them, so they go as text (tool_result blocks would be a 400).
    assert content[1]["text"].startswith("[tool result] tool_1 (call_1): result 1: ")
    assert first.cached is False and second.cached is True


def test_cached_tool_results_cache_all(client: CachingAnthropicChatCompletionClient, wire: Wire) -> None:
    tool_msg = client.cached_tool_results(content=_results(), cache_all=True)
    asyncio.run(client.create([tool_msg]))
    assert _markers(wire.last["messages"][0]["content"]) == [0, 1, 2]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cached_indices": [10]}, r"^Cache index 10 out of range for 3 tool results \(valid: 0\.\.2\)$"),
        ({"cached_indices": [-1]}, "Cache index -1 out of range"),
        ({"cached_indices": [0], "cache_all": True}, "not both"),
        ({}, "cached_indices"),
        ({"cache_all": True, "policy": "persistent"}, 'only "ephemeral" cache policy is supported'),
    ],
)
def test_cached_tool_results_errors(
    client: CachingAnthropicChatCompletionClient, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        client.cached_tool_results(content=_results(), **kwargs)


def test_where_the_reference_implementation_differs(client: CachingAnthropicChatCompletionClient) -> None:
    """The guide's reference implementation (an unmerged AutoGen branch) sends no markers for the
    first call, lets cache_all win in the second, and says cached=True on a write; not here."""
    with pytest.raises(ValueError, match=r"^Say which tool results to cache: cached_indices=\[\.\.\.\] or "):
        client.cached_tool_results(content=_results())
    with pytest.raises(ValueError, match=r"^Pass either cached_indices or cache_all=True, not both\.$"):
        client.cached_tool_results(content=_results(), cached_indices=[0], cache_all=True)
    messages: list[LLMMessage] = [
        client.cached_system_message(LARGE_DOCUMENT),
        UserMessage(content="Hi", source="user"),
    ]
    wrote = asyncio.run(client.create(messages))
    assert wrote.usage.cache_usage is not None and wrote.usage.cache_usage.cache_write_tokens > 0
    assert wrote.cached is False
    assert asyncio.run(client.create(messages)).cached is True


def test_policy_and_ttl_errors(client: CachingAnthropicChatCompletionClient) -> None:
    with pytest.raises(ValueError, match='only "ephemeral" cache policy is supported'):
        client.cached_system_message("text", policy="persistent")
    with pytest.raises(ValueError, match='only "ephemeral" cache policy is supported'):
        client.cached_user_message("text", policy="persistent")
    with pytest.raises(ValueError, match="ttl"):
        client.cached_system_message("text", ttl="2h")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        client.cached_system_message("   ")


def test_mixing_cached_and_regular_messages(client: CachingAnthropicChatCompletionClient, wire: Wire) -> None:
    messages: list[LLMMessage] = [
        client.cached_system_message(LARGE_DOCUMENT, ttl="1h"),
        UserMessage(content="First question.", source="user"),
        AssistantMessage(content="First answer.  ", source="assistant"),
        client.cached_user_message("Second question."),
    ]
    first, second = _twice(client, messages)
    request = wire.last
    assert request["system"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert [m["role"] for m in request["messages"]] == ["user", "assistant", "user"]
    assert _markers(request["messages"][0]["content"]) == []
    assert _markers(request["messages"][2]["content"]) == [0]
    assert first.usage.cache_usage is not None and first.usage.cache_usage.cache_write_1h_tokens > 0
    assert second.cached is True


def test_each_system_message_keeps_its_own_marker(
    client: CachingAnthropicChatCompletionClient, wire: Wire
) -> None:
    """AutoGen's client merges system messages into one string; here each is a block."""
    messages: list[LLMMessage] = [
        SystemMessage(content="You are terse."),
        client.cached_system_message(LARGE_DOCUMENT),
        UserMessage(content="Go.", source="user"),
    ]
    asyncio.run(client.create(messages))
    assert [b["text"] for b in wire.last["system"]] == ["You are terse.", LARGE_DOCUMENT]
    assert _markers(wire.last["system"]) == [1]


# -- tools, streaming, sessions -------------------------------------------------------------


def test_tool_call_round_trip_caches_the_results(
    client: CachingAnthropicChatCompletionClient, wire: Wire
) -> None:
    system_msg = client.cached_system_message(LARGE_DOCUMENT)
    question = UserMessage(content="Use get_weather for Paris.", source="user")

    async def run() -> tuple[CachingCreateResult, CachingCreateResult]:
        call = await client.create([system_msg, question], tools=[WEATHER_TOOL])
        assert isinstance(call.content, list)
        results = client.cached_tool_results(
            [FunctionExecutionResult(content="18C, clear", name="get_weather", call_id=call.content[0].id)],
            cache_all=True,
        )
        assistant = AssistantMessage(content=call.content, thought=call.thought, source="assistant")
        # No tools passed: the definitions of the last call go along, as the API requires.
        return call, await client.create([system_msg, question, assistant, results])

    call, answer = asyncio.run(run())
    assert call.finish_reason == "function_calls"
    assert isinstance(call.content, list) and isinstance(call.content[0], FunctionCall)
    assert call.content[0].name == "get_weather"
    assert json.loads(call.content[0].arguments) == {"city": "example"}
    assert wire.bodies[0]["tools"][0]["input_schema"]["required"] == ["city"]
    assert wire.last["tools"] == wire.bodies[0]["tools"]
    assert wire.last["tool_choice"] == {"type": "auto"}
    assert wire.last["messages"][2]["content"] == [
        {
            "type": "tool_result",
            "tool_use_id": call.content[0].id,
            "content": "18C, clear",
            "cache_control": {"type": "ephemeral"},
        }
    ]
    assert answer.finish_reason == "stop" and answer.cached is True


def test_create_stream_keeps_the_cache_figures(client: CachingAnthropicChatCompletionClient) -> None:
    messages: list[LLMMessage] = [
        client.cached_system_message(LARGE_DOCUMENT),
        UserMessage(content="Hello", source="user"),
    ]

    async def run() -> list[list[str | CreateResult]]:
        return [[chunk async for chunk in client.create_stream(messages)] for _ in range(2)]

    first, second = asyncio.run(run())
    for chunks in (first, second):
        assert all(isinstance(c, str) for c in chunks[:-1]) and len(chunks) > 1
        assert isinstance(chunks[-1], CachingCreateResult)
        assert "".join(str(c) for c in chunks[:-1]) == chunks[-1].content
        _assert_honest(chunks[-1])
    assert isinstance(first[-1], CachingCreateResult) and isinstance(second[-1], CachingCreateResult)
    assert first[-1].cached is False and second[-1].cached is True


def test_calls_are_recorded_in_a_session() -> None:
    emu = Emulator()
    session = Session(model=MODEL, connection=connect(emulator=emu))
    client = AnthropicChatCompletionClient(model=MODEL, session=session)
    messages: list[LLMMessage] = [
        client.cached_system_message(LARGE_DOCUMENT),
        UserMessage(content="Hi", source="user"),
    ]
    _, second = _twice(client, messages, extra_create_args={"temperature": 0.5})
    assert [c.kind for c in session.calls] == ["create", "create"]
    assert [c.outcome for c in session.calls] == ["write", "hit"]
    assert session.calls[1].response is second.raw
    assert session.calls[1].request["extra_body"] == {"temperature": 0.5}
    assert session.totals.tokens.read == second.usage.cache_usage.cache_read_tokens  # type: ignore[union-attr]
    assert session.calls[1].prediction  # the session predicted the hit before sending

    too_many: list[LLMMessage] = [client.cached_system_message(LARGE_DOCUMENT)]
    too_many += [client.cached_user_message(f"Question {i}.") for i in range(1, 5)]
    with pytest.raises(PreflightError, match="5 cache markers"):
        asyncio.run(client.create(too_many))
    assert len(session.calls) == 2  # refused before sending, nothing recorded


@pytest.fixture
def server_url() -> Iterator[str]:
    server = serve(Emulator(), "127.0.0.1", 0, timeout=5.0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_over_http_with_the_guides_constructor(server_url: str) -> None:
    """`AnthropicChatCompletionClient(model=..., api_key=...)` as in the guide, plus the parent's base_url."""

    async def run() -> tuple[CachingCreateResult, CachingCreateResult]:
        client = AnthropicChatCompletionClient(model=MODEL, api_key="sk-ant-emulator", base_url=server_url)
        messages: list[LLMMessage] = [
            client.cached_system_message(LARGE_DOCUMENT),
            UserMessage(content="What does section 4.2 cover?", source="user"),
        ]
        try:
            return await client.create(messages), await client.create(messages)
        finally:
            await client.close()

    first, second = asyncio.run(run())
    assert first.cached is False and second.cached is True
    _assert_honest(second)


# -- the rest of the client -----------------------------------------------------------------


def test_newer_models_get_vision_and_tools() -> None:
    """AutoGen 0.7.5 would take claude-sonnet-5 for Claude 2.1 (no vision, no tools)."""
    client = AnthropicChatCompletionClient(
        model="claude-sonnet-5", anthropic_client=Wire(Emulator()).client()
    )
    assert client.model_info["vision"] and client.model_info["function_calling"]
    assert AnthropicChatCompletionClient(model=MODEL, api_key="x").model_info["family"] == "claude-4-sonnet"


def test_count_tokens_is_offline_and_close_spares_a_borrowed_client(
    client: CachingAnthropicChatCompletionClient,
) -> None:
    messages: list[LLMMessage] = [
        client.cached_system_message(LARGE_DOCUMENT),
        UserMessage(content="Hi", source="user"),
    ]
    counted = client.count_tokens(messages)
    result = asyncio.run(client.create(messages))
    assert counted == result.usage.prompt_tokens  # the emulator counts with the same estimator
    assert client.remaining_tokens(messages) == 200_000 - counted

    async def close_then_call() -> CachingCreateResult:
        await client.close()
        return await client.create(messages)

    assert asyncio.run(close_then_call()).cached is True


def test_empty_or_foreign_messages_are_errors(client: CachingAnthropicChatCompletionClient) -> None:
    with pytest.raises(ValueError, match="at least one message"):
        asyncio.run(client.create([]))
    with pytest.raises(TypeError, match="not an AutoGen LLMMessage"):
        asyncio.run(client.create(["hello"]))  # type: ignore[list-item]


def test_automatic_cache_marks_every_request() -> None:
    session = Session(model=MODEL, connection=connect(emulator=Emulator()))
    client = AnthropicChatCompletionClient(model=MODEL, session=session, automatic_cache="1h")
    messages: list[LLMMessage] = [
        SystemMessage(content=LARGE_DOCUMENT),
        UserMessage(content="Hi", source="u"),
    ]
    first, second = _twice(client, messages)
    assert session.calls[0].request["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert session.calls[0].tokens.write_1h > 1_000 and second.cached and not first.cached
    with pytest.raises(ValueError, match="automatic_cache must be"):
        AnthropicChatCompletionClient(model=MODEL, session=session, automatic_cache="2h")  # type: ignore[arg-type]


def test_an_assistant_agent_runs_on_the_cached_client() -> None:
    agents = pytest.importorskip("autogen_agentchat.agents", reason="autogen-agentchat not installed")
    session = Session(model=MODEL, connection=connect(emulator=Emulator()))
    client = AnthropicChatCompletionClient(model=MODEL, session=session, automatic_cache=True)

    def lookup_section(number: int) -> str:
        """Return one numbered section of the guide."""
        return LARGE_DOCUMENT[:200]

    agent = agents.AssistantAgent(
        "reviewer",
        model_client=client,
        tools=[lookup_section],
        system_message=LARGE_DOCUMENT,
        reflect_on_tool_use=True,  # after the tool, one more call to answer with its result
    )

    async def two_tasks() -> None:
        await agent.run(task="Use lookup_section to find the first section.")
        await agent.run(task="Summarise it.")

    asyncio.run(two_tasks())
    tool_call, reflection, second_task = session.calls
    assert tool_call.request["tools"] and tool_call.outcome == "write"
    # The reflection changes tool_choice, which invalidates the messages level (as the API does);
    # automatic caching had its only entry there, so that call reads nothing.
    assert reflection.request.get("tool_choice") != tool_call.request.get("tool_choice")
    assert reflection.outcome == "write"
    assert second_task.outcome == "hit+write" and second_task.tokens.read == tool_call.tokens.written


# -- no key, many calls at once, a key quoted back ------------------------------------------


@pytest.fixture
def bare_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No key and nothing that chooses a mode: the environment of a first try."""
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL", "PCACHE_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("PCACHE_EMULATOR_URL", raising=False)
    return monkeypatch


def test_without_a_key_the_client_uses_the_emulator_and_says_so_once(bare_env: pytest.MonkeyPatch) -> None:
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        client = AnthropicChatCompletionClient(model=MODEL, max_retries=0)
        first, second = _twice(
            client, [client.cached_system_message(LARGE_DOCUMENT), UserMessage(content="Hi", source="u")]
        )
    assert [str(w.message) for w in said] == [
        "pcache_magic.autogen: offline: calls go to the built-in emulator (set ANTHROPIC_API_KEY to go live)"
    ]
    assert said[0].filename == __file__  # it points at the line that built the client
    assert first.cached is False and second.cached is True
    assert client._client.max_retries == 0  # AutoGen's options reach the emulator's client
    with pytest.warns(UserWarning, match="offline: calls go to the built-in emulator"):
        copy = pickle.loads(pickle.dumps(client))  # rebuilt from its config: the emulator again
    assert asyncio.run(copy.create([UserMessage(content="Hi", source="u")])).finish_reason == "stop"


def test_the_environment_chooses_as_for_a_session(bare_env: pytest.MonkeyPatch) -> None:
    bare_env.setenv("ANTHROPIC_API_KEY", "sk-ant-a-real-looking-key")
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        live = AnthropicChatCompletionClient(model=MODEL)
        assert said == [] and live._client.api_key == "sk-ant-a-real-looking-key"  # AutoGen's own client
        bare_env.setenv("PCACHE_OFFLINE", "1")
        offline = AnthropicChatCompletionClient(model=MODEL)
    assert [str(w.message) for w in said] == [
        "pcache_magic.autogen: offline: calls go to the built-in emulator "
        "(PCACHE_OFFLINE is set; unset it to use ANTHROPIC_API_KEY)"
    ]
    assert asyncio.run(offline.create([UserMessage(content="Hi", source="u")])).finish_reason == "stop"
    bare_env.delenv("PCACHE_OFFLINE")
    bare_env.setenv("ANTHROPIC_BASE_URL", "ht!tp://x")
    with pytest.raises(ConfigError, match="ANTHROPIC_BASE_URL='ht!tp://x' is not an http"):
        AnthropicChatCompletionClient(model=MODEL)


def test_twenty_gathered_creates_are_numbered_apart_in_the_session() -> None:
    session = Session(model=MODEL, connection=connect(emulator=Emulator()))
    client = AnthropicChatCompletionClient(model=MODEL, session=session)

    async def gathered() -> list[CachingCreateResult]:
        return await asyncio.gather(
            *(client.create([UserMessage(content=f"Question {i}", source="u")]) for i in range(20))
        )

    results = asyncio.run(gathered())
    assert sorted(c.index for c in session.calls) == list(range(1, 21))
    assert {r.raw.id for r in results if r.raw} == {c.response.id for c in session.calls if c.response}


def test_an_error_that_quotes_the_key_is_re_raised_without_it() -> None:
    key = "sk-ant-QUOTED-back-by-a-careless-endpoint"

    def echo(request: httpx2.Request) -> httpx2.Response:
        error = {
            "type": "invalid_request_error",
            "message": f"bad key: {request.headers.get('x-api-key') or request.headers['authorization']}",
        }
        return httpx2.Response(400, json={"type": "error", "error": error})

    sdk = anthropic.AsyncAnthropic(
        api_key=key,
        base_url="http://careless.invalid",
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(echo)),
    )
    session = Session(model=MODEL, connection=connect(emulator=Emulator()))
    client = AnthropicChatCompletionClient(model=MODEL, anthropic_client=sdk, session=session)
    with pytest.raises(anthropic.BadRequestError) as caught:
        asyncio.run(client.create([UserMessage(content="Hi", source="u")]))
    shown = f"{caught.value} {caught.value!r} {caught.value.body} {session.calls[-1].error}"
    assert key not in shown
    assert "bad key: Bearer [API key]" in str(caught.value)  # the endpoint did quote it, blotted out
