"""The pure helpers between a turn and the SDK: keyword arguments, content, tool results."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import pytest
from anthropic.types import Message

from pcache_magic.core.conversation import Block, Conversation
from pcache_magic.core.turns import (
    answer_unanswered_tool_uses,
    as_content,
    describe_failure,
    run_tools,
    sdk_kwargs,
    tool_results_for,
)


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool_use(id_: str, name: str, **input_: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": id_, "name": name, "input": input_}


def reply(*content: dict[str, Any]) -> Message:
    return Message.model_validate(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": list(content),
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 1, "output_tokens": 1},
        }
    )


def test_fields_the_sdk_has_no_keyword_for_travel_in_extra_body() -> None:
    params = {"model": "m", "max_tokens": 5, "messages": [], "temperature": 0.2, "future_field": {"x": 1}}
    kwargs = sdk_kwargs(params)
    assert kwargs["extra_body"]["future_field"] == {"x": 1} and "future_field" not in kwargs
    sent = {k: v for k, v in kwargs.items() if k != "extra_body"} | kwargs["extra_body"]
    assert sent == params  # the same request on the wire, whatever this SDK version names
    assert sdk_kwargs({"model": "m", "extra_body": {"a": 1}, "zzz": 2})["extra_body"] == {"a": 1, "zzz": 2}
    known = {"model": "m", "max_tokens": 5, "messages": []}
    assert sdk_kwargs(known) == known and sdk_kwargs(known) is not known  # a copy, nothing moved


def test_content_is_a_text_block_or_a_copy() -> None:
    assert as_content("hi") == [text("hi")]
    given = [text("a")]
    copied = as_content(given)
    assert copied == given and copied[0] is not given[0]


def test_tools_run_and_failures_go_back_to_the_model() -> None:
    def run(name: str, args: dict[str, Any]) -> Any:
        if name == "boom":
            raise RuntimeError("no network")
        return args["x"] * 2

    message = reply(text("thinking"), tool_use("t1", "double", x=21), tool_use("t2", "boom"))
    assert run_tools(message, run) == [
        {"type": "tool_result", "tool_use_id": "t1", "content": "42"},
        {"type": "tool_result", "tool_use_id": "t2", "is_error": True, "content": "RuntimeError: no network"},
    ]


def turn(name: str, role: str, kind: str, *content: dict[str, Any]) -> Block:
    return Block(name=name, role=role, kind=kind, content=list(content))  # type: ignore[arg-type]


def result(id_: str) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": id_, "content": "ok"}


def test_tool_calls_nobody_ran_get_error_results_right_after_the_reply() -> None:
    conversation = Conversation()
    conversation.add(turn("q", "user", "prompt", text("q")))
    assert answer_unanswered_tool_uses(conversation) == []
    conversation.add(turn("reply", "assistant", "reply", text("a"), tool_use("t1", "lookup")))
    conversation.add(turn("sys", "system", "system", text("s")))  # other roles do not count
    conversation.add(turn("ctx", "user", "context", text("added after the reply")))
    (block,) = answer_unanswered_tool_uses(conversation)
    assert conversation.names() == ["q", "reply", "reply-not-run", "sys", "ctx"]
    assert block.role == "user" and [(r["tool_use_id"], r["is_error"]) for r in block.content] == [
        ("t1", True)
    ]
    assert "'lookup' was not run" in block.content[0]["content"]
    assert answer_unanswered_tool_uses(conversation) == []  # answered now


def test_only_the_missing_results_are_added() -> None:
    conversation = Conversation()
    conversation.add(turn("q", "user", "prompt", text("q")))
    conversation.add(turn("r1", "assistant", "reply", tool_use("t1", "a"), tool_use("t2", "b")))
    conversation.add(turn("r1-results", "user", "tool_result", result("t1")))
    conversation.add(turn("r2", "assistant", "reply", text("done")))
    (block,) = answer_unanswered_tool_uses(conversation)
    assert [r["tool_use_id"] for r in block.content] == ["t2"]
    assert conversation.names() == ["q", "r1", "r1-not-run", "r1-results", "r2"]


def test_the_results_that_answer_a_reply() -> None:
    conversation = Conversation()
    reply_block = turn("r1", "assistant", "reply", tool_use("t1", "a"))
    for block in (
        turn("q", "user", "prompt", text("q")),
        reply_block,
        turn("r1-results", "user", "tool_result", result("t1")),
        turn("other", "user", "tool_result", result("t9")),
    ):
        conversation.add(block)
    assert [b.name for b in tool_results_for(conversation, reply_block)] == ["r1-results"]
    assert tool_results_for(conversation, turn("r0", "assistant", "reply", text("no tools"))) == []


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (KeyboardInterrupt(), "interrupted"),
        (ValueError("bad"), "ValueError: bad"),
        (
            anthropic.RateLimitError(
                "slow down",
                response=httpx2.Response(429, request=httpx2.Request("POST", "http://x")),
                body=None,
            ),
            "429 RateLimitError: slow down",
        ),
    ],
)
def test_failures_are_described_in_one_line(error: BaseException, expected: str) -> None:
    assert describe_failure(error) == expected


def test_a_stream_cut_mid_reply_is_found_bare_or_wrapped_by_the_sdk() -> None:
    import anthropic
    import httpx2

    from pcache_magic.core.turns import broken_stream, describe_failure

    cut = httpx2.RemoteProtocolError("closed in the middle of the stream")
    wrapped = anthropic.APIConnectionError(request=httpx2.Request("POST", "http://emulator.invalid"))
    wrapped.__cause__ = cut  # SDK 2.17 and later
    assert broken_stream(cut) is cut and broken_stream(wrapped) is cut
    assert (
        describe_failure(wrapped)
        == describe_failure(cut)
        == "RemoteProtocolError: closed in the middle of the stream"
    )
    never_opened = anthropic.APIConnectionError(request=httpx2.Request("POST", "http://emulator.invalid"))
    never_opened.__cause__ = httpx2.ConnectError("refused")
    assert broken_stream(never_opened) is None
    assert broken_stream(ValueError("x")) is None
