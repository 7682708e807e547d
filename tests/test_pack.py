"""pack.py: requests packed for a session file and unpacked exactly as they were sent."""

from __future__ import annotations

from typing import Any

import pytest

from pcache_magic.session.pack import Packer, unpack_requests
from pcache_magic.session.schema import SessionFile


def packed_file(requests: list[dict[str, Any]]) -> SessionFile:
    packer = Packer()
    calls = [
        {"index": n, "kind": "ask", "model": "m", "started_at": 0.0, "request": packer.request(r)}
        for n, r in enumerate(requests, 1)
    ]
    return SessionFile.model_validate(
        {
            "settings": {"model": "m", "max_tokens": 1},
            "clock": {"now": 0.0, "mode": "custom"},
            "blocks": [],
            "items": packer.items,
            "messages": packer.messages,
            "calls": calls,
        }
    )


def round_trip(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    file = packed_file(requests)
    return unpack_requests(file.items, file.messages, file.calls)


def test_a_growing_conversation_is_stored_once_and_comes_back_whole() -> None:
    system = [{"type": "text", "text": "Rules. " * 100, "cache_control": {"type": "ephemeral"}}]
    tools = [{"name": "lookup", "input_schema": {"type": "object", "properties": {"b": {}, "a": {}}}}]
    messages: list[dict[str, Any]] = []
    requests = []
    for n in range(30):
        messages = [*messages, {"role": "user", "content": [{"type": "text", "text": f"Q{n}"}]}]
        requests.append(
            {"model": "m", "max_tokens": 10, "tools": tools, "system": system, "messages": messages}
        )
        messages = [*messages, {"role": "assistant", "content": f"A{n}"}]
    file = packed_file(requests)
    assert len(file.items) == 2 + 30  # the tool, the system text, each question
    assert len(file.messages) == 60 - 1  # each message once (the last answer was never sent)
    assert [c.request.keep for c in file.calls] == [0] + [2 * n - 1 for n in range(1, 30)]
    back = unpack_requests(file.items, file.messages, file.calls)
    assert back == requests
    assert [list(r) for r in back] == [list(r) for r in requests]  # key order kept
    assert back[5]["messages"][0] is back[6]["messages"][0]  # shared again, as in the session


def test_key_order_and_types_tell_items_apart() -> None:
    a = {"type": "tool_use", "input": {"x": 1, "y": 2}}
    b = {"type": "tool_use", "input": {"y": 2, "x": 1}}  # another prompt: its own item
    c = {"type": "tool_use", "input": {"x": 1.0, "y": 2}}
    requests = [{"model": "m", "messages": [{"role": "assistant", "content": [a, b, c]}]}]
    back = round_trip(requests)
    assert [list(i["input"]) for i in back[0]["messages"][0]["content"]] == [
        ["x", "y"],
        ["y", "x"],
        ["x", "y"],
    ]
    assert isinstance(back[0]["messages"][0]["content"][2]["input"]["x"], float)


@pytest.mark.parametrize(
    "request_",
    [
        {"model": "m", "system": "plain text", "messages": [{"role": "user", "content": "hi"}]},
        {
            "model": "m",
            "messages": [{"content": "reordered", "role": "user"}, {"role": "robot", "content": []}],
        },
        {"model": "m", "messages": "not a list", "tools": {"odd": True}, "system": 3},
        {
            "model": "m",
            "max_tokens": 0,
            "metadata": {"user_id": "u"},
            "diagnostics": {"previous_message_id": None},
        },
        {"model": "m", "messages": []},
    ],
)
def test_odd_shapes_are_kept_as_they_were(request_: dict[str, Any]) -> None:
    assert round_trip([request_, request_]) == [request_, request_]


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda d: d["calls"][1]["request"].update(keep=5), r"calls\.1\.request\.keep: 5 messages"),
        (
            lambda d: d["calls"][0]["request"].update(tools=[9]),
            r"calls\.0\.request: item 9 is not in the file",
        ),
        (lambda d: d["calls"][0]["request"].update(add=[9]), r"calls\.0\.request: message 9 is not"),
        (lambda d: d["messages"][0].update(content=[9]), r"messages\.0\.content: item 9 is not in items"),
        (lambda d: d["calls"][0]["request"]["keys"].append("extra"), r"'extra' has no value"),
        (lambda d: d["calls"][0]["request"]["fields"].update(x=1), r"'x' is not one of its keys"),
    ],
)
def test_a_reference_outside_the_file_is_named(damage: Any, words: str) -> None:
    tools = [{"name": "t", "input_schema": {}}]
    requests = [
        {
            "model": "m",
            "tools": tools,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}]}],
        },
        {
            "model": "m",
            "tools": tools,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}]}],
        },
    ]
    data = packed_file(requests).model_dump()
    damage(data)
    file = SessionFile.model_validate(data)
    with pytest.raises(ValueError, match=words):
        unpack_requests(file.items, file.messages, file.calls)


def test_requests_that_send_more_than_a_session_can_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file of a few MB can ask each call to `keep` every message of the one before: 5.5 GB and
    20 s for a 13 MB file (an attacker review). The sum is bounded."""
    from pcache_magic.session import pack

    chat = [{"role": "user", "content": [{"type": "text", "text": f"turn {i}"}]} for i in range(10)]
    requests = [{"model": "m", "messages": chat[: n + 1]} for n in range(10)]
    assert round_trip(requests) == requests  # 55 messages sent in all
    monkeypatch.setattr(pack, "MAX_SENT_MESSAGES", 54)
    with pytest.raises(ValueError, match=r"^calls\.9\.request: the requests so far send over 54 messages"):
        round_trip(requests)
