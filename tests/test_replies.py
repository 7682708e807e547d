"""`replies`: what a Messages API answer must be before a call is recorded, and the SDK's failures to
read one, as `MalformedReply` (a failed call, one line that names what was wrong, never the reply).

The session-level cases (a real hostile server, the session after it) are in test_calls.py.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx2
import pydantic
import pytest
from _hostile_http import GOOD
from anthropic._models import construct_type
from anthropic.types import Message

from pcache_magic.core import strict_json
from pcache_magic.core.strict_json import MAX_DEPTH
from pcache_magic.emulator import Emulator
from pcache_magic.session.replies import (
    MAX_TOKENS,
    MalformedReply,
    check_reply,
    read,
    reraise,
    server_of,
    unreadable,
    usage_problem,
)
from pcache_magic.session.transport import ConfigError

MODEL = "claude-sonnet-4-5"
CLIENT = anthropic.Anthropic(
    api_key="sk-ant-test-key-0123456789", base_url="http://user:pw@gw.example:8443/v1"
)
SERVER = "http://gw.example:8443"


def built(**changes: Any) -> Any:
    """What the SDK makes of a body (it builds its types without validating them)."""
    return construct_type(type_=Message, value={**GOOD, **changes})


def _nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


def refused(reply: object) -> MalformedReply:
    with pytest.raises(MalformedReply) as raised:
        check_reply(reply, CLIENT)
    return raised.value


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_the_emulators_replies_pass(stream: bool) -> None:
    """No false alarm: the built-in emulator's answers, plain and streamed, with tools and thinking."""
    client = Emulator().client()
    tool = {"name": "ping", "description": "Ping.", "input_schema": {"type": "object", "properties": {}}}
    params: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 2048,
        "messages": [{"role": "user", "content": "Call ping, please."}],
        "tools": [tool],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }
    if stream:
        with client.messages.stream(**params) as events:
            reply: Message = events.get_final_message()
    else:
        reply = client.messages.create(**params)
    assert check_reply(reply, client) is reply
    prewarm = client.messages.create(model=MODEL, max_tokens=0, messages=params["messages"])
    assert check_reply(prewarm, client) is prewarm  # no content, stop_reason max_tokens


def test_a_whole_reply_built_by_the_sdk_passes() -> None:
    reply = built(usage={"input_tokens": 0, "output_tokens": MAX_TOKENS - 1, "cache_read_input_tokens": None})
    assert check_reply(reply, CLIENT) is reply
    split = {"ephemeral_5m_input_tokens": 3, "ephemeral_1h_input_tokens": 0}
    assert check_reply(built(usage={**GOOD["usage"], "cache_creation": split}), CLIENT)
    assert check_reply(built(content=[{"type": "a_block_newer_than_the_sdk", "x": 1}]), CLIENT)
    for reason in (None, {"type": "a_reason_newer_than_the_sdk"}, {"type": "system_changed"}):
        assert check_reply(built(diagnostics={"cache_miss_reason": reason}), CLIENT)


@pytest.mark.parametrize(
    ("reply", "what"),
    [
        ("event: message_start\ndata: {}", "the reply is plain text, not a message"),
        (None, "the reply is a NoneType, not a message"),
        ({"id": "msg"}, "the reply is a dict, not a message"),
        (built(id=5), "the message has no id"),
        (built(content="SECRET-REPLY-TEXT"), "its content is not a list of content blocks"),
        (built(content=[7]), "its content holds something that is not a content block"),
        (built(content=[{"type": "text", "text": 5}]), "a text block has no text"),
        (built(stop_reason=None), "the message is incomplete: it has no stop_reason"),
        (built(usage=None), "it has no usage"),
        (
            built(usage={"input_tokens": "many", "output_tokens": 1}),
            "usage.input_tokens is not a whole number",
        ),
        (built(usage={"input_tokens": 1, "output_tokens": -5}), "usage.output_tokens is not a whole number"),
        (built(usage={"input_tokens": 10**30, "output_tokens": 1}), "usage.input_tokens is not"),
        (built(usage={"input_tokens": MAX_TOKENS, "output_tokens": 1}), "usage.input_tokens is not"),
        (built(usage={"input_tokens": True, "output_tokens": 1}), "usage.input_tokens is not"),
        (
            built(usage={**GOOD["usage"], "cache_read_input_tokens": 1e308}),
            "usage.cache_read_input_tokens is",
        ),
        (built(usage={**GOOD["usage"], "cache_creation_input_tokens": 2.5}), "usage.cache_creation_input_t"),
        (built(usage={**GOOD["usage"], "cache_creation": 3}), "usage.cache_creation is not a split"),
        (
            built(usage={**GOOD["usage"], "cache_creation": {"ephemeral_5m_input_tokens": -1}}),
            "usage.cache_creation.ephemeral_5m_input_tokens is not",
        ),
        (built(diagnostics="SECRET-REPLY-TEXT"), "its diagnostics do not say a cache miss reason"),
        (built(diagnostics={"cache_miss_reason": "x"}), "its diagnostics do not say"),
        (built(diagnostics={"cache_miss_reason": {"type": 5}}), "its diagnostics do not say"),
        (
            built(
                diagnostics={
                    "cache_miss_reason": {"type": "system_changed", "cache_missed_input_tokens": "x"}
                }
            ),
            "its diagnostics do not say",
        ),
        (built(type="completion"), "it is not a message"),
        (built(content=[{"type": "thinking", "thinking": 5, "signature": "s"}]), "a thinking block has no"),
        (built(content=[{"type": "redacted_thinking"}]), "a redacted_thinking block has no data"),
        (
            built(content=[{"type": "tool_use", "id": "t", "name": "p", "input": "s"}]),
            "a tool_use block has no",
        ),
        (built(content=[{"type": "text", "text": "t", "citations": {}}]), "a text block's citations are"),
        (
            built(content=[{"type": "tool_use", "id": "t", "name": "p", "input": {"x": float("inf")}}]),
            "it holds a number that is not finite",
        ),
        (built(content=[{"type": "newer", "x": [float("nan")]}]), "it holds a number that"),
        (built(content=[{"type": "newer", "x": -(10**40)}]), "it holds an integer of more"),
        (built(content=[{"type": "text", "text": "t", "x": float("nan")}]), "it holds a number that"),
        (built(extra_top=10**50), "it holds an integer of more"),
        (built(usage={**GOOD["usage"], "future": {"a": float("inf")}}), "it holds a number that"),
        (built(container={"id": "c", "x": _nested(95)}), "it nests deeper than 92 levels"),
    ],
)
def test_what_is_no_messages_api_answer_is_refused_in_one_plain_line(reply: object, what: str) -> None:
    error = refused(reply)
    assert what in str(error) and error.what.startswith(what)
    assert str(error).startswith(f"The server at {SERVER} did not answer like the Messages API (")
    assert "PCACHE_EMULATOR_URL or ANTHROPIC_BASE_URL" in str(error)
    assert "\n" not in str(error) and "SECRET" not in str(error) and "pw" not in str(error)
    assert isinstance(error, ConfigError) and isinstance(error, ValueError)


def test_the_line_names_what_became_of_the_call() -> None:
    error = MalformedReply("its body is not valid JSON", SERVER)
    assert "(its body is not valid JSON); the call failed. Check" in str(error)
    assert "(its body is not valid JSON); the conversation is unchanged. Check" in error.said(
        "the conversation is unchanged"
    )


def test_the_server_is_named_without_credentials_or_path() -> None:
    assert server_of(CLIENT) == SERVER
    assert server_of(Emulator().client()).startswith("http")
    assert server_of(object()) == "its base URL"


def _validation_error() -> pydantic.ValidationError:
    class Counted(pydantic.BaseModel):
        n: int

    try:
        Counted(n="SECRET-REPLY-TEXT")  # type: ignore[arg-type]
    except pydantic.ValidationError as error:
        return error
    raise AssertionError("not refused")


def _raised_in_a_call(error: BaseException, streaming: bool = False) -> None:
    """`error` raised by an SDK call with `reraise` around it, as the session calls the SDK."""
    try:
        raise error
    except BaseException:
        reraise(CLIENT, streaming=streaming)


@pytest.mark.parametrize(
    ("error", "what"),
    [
        (json.JSONDecodeError("Expecting value", '{"SECRET', 2), "its body is not valid JSON"),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), "its body is not UTF-8 text"),
        (_validation_error(), "its fields are not of the types the API sends"),
        (AssertionError(), "no message came in its event stream"),
    ],
)
def test_the_sdks_failures_to_read_a_reply_become_one_error(error: Exception, what: str) -> None:
    malformed = unreadable(error, CLIENT)
    assert isinstance(malformed, MalformedReply) and malformed.what == what
    with pytest.raises(MalformedReply) as raised:
        _raised_in_a_call(error)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__  # no reply text chained
    assert "SECRET" not in str(raised.value)


def test_other_errors_pass_as_they_are() -> None:
    request = httpx2.Request("POST", "http://x/v1/messages")
    others: list[BaseException] = [
        ValueError("Streaming is strongly recommended"),  # the SDK refusing a request: not a reply
        TypeError("unexpected keyword"),
        anthropic.APIConnectionError(request=request),
        KeyboardInterrupt(),
        RuntimeError("Unexpected event order"),  # only a stream's events can be out of order
    ]
    for error in others:
        assert unreadable(error, CLIENT) is error
        with pytest.raises(type(error)) as raised:
            _raised_in_a_call(error)
        assert raised.value is error
    for error in (
        RuntimeError("Unexpected event order"),
        IndexError("list index out of range"),
        TypeError("can only concatenate str (not 'NoneType') to str"),  # a thinking delta onto null
    ):
        assert isinstance(unreadable(error, CLIENT, streaming=True), MalformedReply)


@pytest.mark.parametrize("streaming", [False, True])
def test_reraise_raises_the_handled_error_or_its_malformed_reply(streaming: bool) -> None:
    def failing(error: BaseException) -> None:
        _raised_in_a_call(error, streaming)

    with pytest.raises(MalformedReply) as raised:
        failing(json.JSONDecodeError("Expecting value", '{"SECRET', 2))
    assert raised.value.__suppress_context__ and "SECRET" not in str(raised.value)
    for error in (ValueError("ours"), KeyboardInterrupt()):
        with pytest.raises(type(error)) as kept:
            failing(error)
        assert kept.value is error


def test_read_wraps_the_sdks_iteration_only() -> None:
    def events() -> Any:
        yield "a"
        raise json.JSONDecodeError("Expecting value", "", 0)

    got: list[str] = []
    with pytest.raises(MalformedReply):
        for item in read(events(), CLIENT):
            got.append(item)
    assert got == ["a"]
    with pytest.raises(json.JSONDecodeError):  # the caller's own error, in its loop: untouched
        for _ in read(["a"], CLIENT):
            raise json.JSONDecodeError("the caller's", "", 0)


def test_an_opening_usage_is_checked_alone_as_a_whole_replys_is() -> None:
    """A stream cut short has no stop_reason (no whole reply), yet its opening usage says what it
    wrote to the cache: `usage_problem` checks that alone, with the whole reply's words."""
    cut = built(stop_reason=None)
    assert usage_problem(cut.usage) is None
    for bad in ("lots", float("nan"), 1e308, -1, MAX_TOKENS):
        usage = built(usage={**GOOD["usage"], "cache_read_input_tokens": bad}).usage
        said = "usage.cache_read_input_tokens is not a whole number of tokens"
        assert said in str(usage_problem(usage)) and said in str(reply_problem_of(usage))
    assert usage_problem(None) == "it has no usage"


def reply_problem_of(usage: Any) -> str | None:
    with pytest.raises(MalformedReply) as raised:
        check_reply(built(usage=usage.model_dump(warnings=False)), CLIENT)
    return raised.value.what


def test_the_deepest_reply_taken_fits_in_a_batch_request_that_sends_it_back() -> None:
    """`_DATA_DEPTH` is `MAX_DEPTH - 8`, not the `- 4` its comment once counted: the deepest block
    the check takes parses in a Message Batches request; 4 levels more would not."""

    def batch_of(levels: int) -> bytes:
        block = {"type": "newer", "x": _nested(levels)}
        params = {"messages": [{"role": "assistant", "content": [block]}]}
        return strict_json.dumps({"requests": [{"custom_id": "a", "params": params}]}).encode()

    deepest = max(n for n in range(MAX_DEPTH) if check(built(content=[{"type": "newer", "x": _nested(n)}])))
    assert strict_json.loads(batch_of(deepest))
    with pytest.raises(ValueError, match="nesting deeper"):
        strict_json.loads(batch_of(deepest + 4))


def check(reply: object) -> bool:
    try:
        check_reply(reply, CLIENT)
    except MalformedReply:
        return False
    return True
