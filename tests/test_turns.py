"""The pure helpers between a turn and the SDK: keyword arguments, content, tool results."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import pytest
from anthropic.types import Message

from pcache_magic.conversation import Block, CacheControl, Conversation
from pcache_magic.turns import (
    as_content,
    describe_failure,
    mark_last_turn,
    pending_tool_results,
    run_tools,
    sdk_kwargs,
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


def test_content_is_a_text_block_or_a_copy() -> None:
    assert as_content("hi") == [text("hi")]
    given = [text("a")]
    copied = as_content(given)
    assert copied == given and copied[0] is not given[0]


def test_the_last_turn_gets_a_marker_and_nothing_else_changes() -> None:
    conversation = Conversation()
    conversation.add(Block(name="sys", role="system", kind="system", content=[text("s")]))
    conversation.add(Block(name="q", role="user", kind="prompt", content=[text("q")]))
    marked = mark_last_turn(conversation, "1h")
    assert marked.blocks[0] is conversation.blocks[0]
    assert marked.blocks[1].cache == CacheControl(ttl="1h") and conversation.blocks[1].cache is None
    own = Conversation()
    own.add(Block(name="q", role="user", kind="prompt", content=[text("q")], cache=CacheControl(ttl="5m")))
    assert mark_last_turn(own, "1h") is own  # a turn's own marker wins
    only_system = Conversation()
    only_system.add(conversation.blocks[0])
    assert mark_last_turn(only_system, None) is only_system


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


def test_tool_calls_nobody_ran_get_error_results() -> None:
    conversation = Conversation()
    conversation.add(Block(name="q", role="user", kind="prompt", content=[text("q")]))
    assert pending_tool_results(conversation) is None
    conversation.add(
        Block(name="reply", role="assistant", kind="reply", content=[text("a"), tool_use("t1", "lookup")])
    )
    block = pending_tool_results(conversation)
    assert block is not None and block.name == "reply-not-run" and block.role == "user"
    assert [(r["tool_use_id"], r["is_error"]) for r in block.content] == [("t1", True)]
    assert "'lookup' was not run" in block.content[0]["content"]
    conversation.add(Block(name="r2", role="assistant", kind="reply", content=[text("done")]))
    assert pending_tool_results(conversation) is None


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
