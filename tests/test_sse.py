"""`emulator.sse`: a Message as the API streams it, and the word-aligned cut for `max_tokens`."""

from __future__ import annotations

import copy
import json
from typing import Any

import pydantic
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from pcache_magic.emulator import Emulator
from pcache_magic.emulator.sse import message_events, truncate_to_tokens

Events = list[tuple[str, dict[str, Any]]]

USAGE: dict[str, Any] = {
    "input_tokens": 12,
    "cache_creation_input_tokens": 1_500,
    "cache_read_input_tokens": 3_000,
    "cache_creation": {"ephemeral_5m_input_tokens": 500, "ephemeral_1h_input_tokens": 1_000},
    "output_tokens": 42,
    "service_tier": "standard",
}
TEXT = "The emulator is not a model.\n\nIt  describes   the request " * 6
TOOL_INPUT = {"city": "Paris, Île-de-France", "days": 3, "units": ["metric", "kelvin"], "note": "x" * 70}


def message(content: list[dict[str, Any]], stop_reason: str = "end_turn") -> dict[str, Any]:
    return {
        "id": "msg_emu_00000000000000000001",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": copy.deepcopy(USAGE),
    }


TOOL_TURN = message(
    [
        {"type": "text", "text": TEXT},
        {"type": "tool_use", "id": "toolu_emu_1", "name": "get_weather", "input": TOOL_INPUT},
    ],
    "tool_use",
)


def rebuild(events: Events) -> dict[str, Any]:
    """The message a client assembles from the events, as the API documents the protocol."""
    (name, start), rest = events[0], events[1:]
    assert name == "message_start"
    built = copy.deepcopy(start["message"])
    partial: dict[int, str] = {}
    for name, data in rest:
        if name == "content_block_start":
            assert data["index"] == len(built["content"])
            built["content"].append(copy.deepcopy(data["content_block"]))
        elif name == "content_block_delta":
            block, delta = built["content"][data["index"]], data["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] += delta["signature"]
            else:
                partial[data["index"]] = partial.get(data["index"], "") + delta["partial_json"]
        elif name == "content_block_stop" and data["index"] in partial:
            built["content"][data["index"]]["input"] = json.loads(partial.pop(data["index"]))
        elif name == "message_delta":
            built.update(data["delta"])
            built["usage"].update(data["usage"])
    return built


def test_events_come_in_the_apis_order() -> None:
    names = [name for name, _ in message_events(TOOL_TURN)]
    assert names[:2] == ["message_start", "ping"] and names[-2:] == ["message_delta", "message_stop"]
    body = names[2:-2]
    for _ in TOOL_TURN["content"]:  # each block opens, streams its deltas, closes; blocks don't interleave
        first = body.index("content_block_start")
        last = body.index("content_block_stop")
        assert first == 0 and set(body[1:last]) == {"content_block_delta"}
        body = body[last + 1 :]
    assert body == []


def test_every_event_is_named_by_its_own_type_and_parses_as_the_sdks() -> None:
    adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(RawMessageStreamEvent)
    for name, data in message_events(TOOL_TURN):
        assert data["type"] == name
        if name != "ping":  # the SDK skips pings before parsing
            assert adapter.validate_python(data).type == name


def test_message_start_carries_all_the_cache_usage_and_no_content() -> None:
    start = message_events(TOOL_TURN)[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None and start["stop_sequence"] is None
    assert start["usage"] == {**USAGE, "output_tokens": 1}
    same = ("id", "type", "role", "model")
    assert {k: start[k] for k in same} == {k: TOOL_TURN[k] for k in same}


def test_message_delta_usage_is_cumulative_and_keeps_the_cache_figures() -> None:
    name, delta = message_events(TOOL_TURN)[-2]
    assert name == "message_delta"
    assert delta["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert delta["usage"] == {
        "input_tokens": 12,
        "cache_creation_input_tokens": 1_500,
        "cache_read_input_tokens": 3_000,
        "output_tokens": 42,
    }


def test_the_events_rebuild_the_message() -> None:
    rebuilt = rebuild(message_events(TOOL_TURN))
    assert rebuilt == TOOL_TURN
    assert Message.model_validate(rebuilt).usage.cache_read_input_tokens == 3_000


def test_tool_input_streams_as_json_fragments_from_an_empty_input() -> None:
    events = message_events(TOOL_TURN)
    opening = next(d for n, d in events if n == "content_block_start" and d["index"] == 1)
    assert opening["content_block"] == {
        "type": "tool_use",
        "id": "toolu_emu_1",
        "name": "get_weather",
        "input": {},
    }
    deltas = [d["delta"] for n, d in events if n == "content_block_delta" and d["index"] == 1]
    fragments = [d["partial_json"] for d in deltas]
    assert len(fragments) > 1 and all(0 < len(f) <= 32 for f in fragments)
    assert json.loads("".join(fragments)) == TOOL_INPUT


def test_text_streams_in_word_aligned_pieces() -> None:
    events = message_events(TOOL_TURN)
    pieces = [d["delta"]["text"] for n, d in events if n == "content_block_delta" and d["index"] == 0]
    assert "".join(pieces) == TEXT
    assert 2 < len(pieces) < len(TEXT.split()) / 3  # pieces of several words, as the API sends them
    for piece in pieces[:-1]:
        assert piece[-1].isspace()  # no word is split across two deltas


def test_a_prewarm_reply_has_no_content_events() -> None:
    empty = message([], "max_tokens")
    empty["usage"]["output_tokens"] = 0
    events = message_events(empty)
    assert [n for n, _ in events] == ["message_start", "ping", "message_delta", "message_stop"]
    assert events[0][1]["message"]["usage"]["output_tokens"] == 0
    assert rebuild(events) == empty


def test_the_message_given_is_not_changed() -> None:
    given_turn = copy.deepcopy(TOOL_TURN)
    message_events(given_turn)
    assert given_turn == TOOL_TURN


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.text(alphabet=st.sampled_from("ab é\n\t."), max_size=300))
def test_any_text_streams_back_exactly(text: str) -> None:
    assert rebuild(message_events(message([{"type": "text", "text": text}]))) == message(
        [{"type": "text", "text": text}]
    )


def words(text: str) -> int:
    return len(text.split())


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        (0, ""),
        (1, "one "),
        (3, "one two  three\n"),
        (5, "one two  three\nfour five"),
        (99, "one two  three\nfour five"),
    ],
)
def test_truncate_keeps_the_longest_prefix_within_the_limit(limit: int, expected: str) -> None:
    assert truncate_to_tokens("one two  three\nfour five", limit, words) == expected


def test_truncate_searches_instead_of_counting_every_prefix() -> None:
    calls: list[str] = []

    def counting(text: str) -> int:
        calls.append(text)
        return words(text)

    text = " ".join(f"w{i}" for i in range(4_096))
    assert truncate_to_tokens(text, 1_000, counting).split() == [f"w{i}" for i in range(1_000)]
    assert len(calls) <= 14  # a binary search over 4,096 words


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.text(alphabet=st.sampled_from("ab \n"), max_size=80), st.integers(min_value=0, max_value=30))
def test_truncate_is_a_maximal_prefix(text: str, limit: int) -> None:
    cut = truncate_to_tokens(text, limit, words)
    assert text.startswith(cut) and words(cut) <= limit
    rest = text[len(cut) :]
    if rest:  # the cut ends at a word (its trailing space kept), and one more word is over the limit
        assert not rest[0].isspace()
        assert words(cut + rest.split(maxsplit=1)[0]) > limit


def test_truncate_to_one_token_keeps_a_piece_of_a_longer_first_word() -> None:
    """Generation emits at least one token: a first word of several gives its first piece(s)."""

    def pieces(text: str) -> int:  # one token per 3 characters, as a tokenizer splits a long word
        return -(-len(text) // 3)

    assert truncate_to_tokens("[pcache_magic offline", 1, pieces) == "[pc"
    assert truncate_to_tokens("[pcache_magic offline", 2, pieces) == "[pcach"
    assert truncate_to_tokens("[pcache_magic offline", 0, pieces) == ""
    assert truncate_to_tokens("abcd", 1, lambda text: 5 * len(text)) == "a"  # never empty at >= 1


def test_thinking_streams_its_deltas_then_the_signature_and_rebuilds_in_the_sdk() -> None:
    thought = {"type": "thinking", "thinking": "A thought of several words " * 4, "signature": "c2ln"}
    events = message_events(message([thought, {"type": "text", "text": "Answer."}]))
    deltas = [data["delta"] for name, data in events if name == "content_block_delta" and data["index"] == 0]
    assert {d["type"] for d in deltas[:-1]} == {"thinking_delta"} and len(deltas) > 2
    assert deltas[-1] == {"type": "signature_delta", "signature": "c2ln"}
    start = next(data for name, data in events if name == "content_block_start")
    assert start["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert rebuild(events)["content"][0] == thought
    emu = Emulator()  # the SDK's own accumulation, over the wire
    body: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 2_000,
        "thinking": {"type": "enabled", "budget_tokens": 1_024},
        "messages": [{"role": "user", "content": "Think."}],
    }
    with emu.client().messages.stream(**body) as stream:
        streamed = stream.get_final_message()
    created = emu.client().messages.create(**body)

    def blocks(m: Message) -> list[tuple[Any, ...]]:
        return [(b.type, getattr(b, "text", None), getattr(b, "thinking", None)) for b in m.content]

    assert blocks(streamed) == blocks(created) and streamed.content[0].type == "thinking"
    assert getattr(streamed.content[0], "signature", None) == getattr(created.content[0], "signature", 0)
    assert streamed.usage.output_tokens == created.usage.output_tokens
