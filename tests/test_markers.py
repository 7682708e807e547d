"""Rewriting a request's markers without copying what does not change; markers with their reasons."""

from __future__ import annotations

from typing import Any

from pcache_magic.analysis.markers import Decision, Marker, with_markers

MODEL = "claude-sonnet-4-5"


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def test_with_markers_replaces_every_marker() -> None:
    params = {
        "model": MODEL,
        "max_tokens": 5,
        "cache_control": {"type": "ephemeral"},
        "system": "plain system",
        "messages": [{"role": "user", "content": "plain"}, {"role": "assistant", "content": [text("x")]}],
    }
    out = with_markers(params, {"system.0": "1h", "messages.0.content.0": "5m"})
    assert "cache_control" not in out
    assert out["system"] == [
        {"type": "text", "text": "plain system", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    ]
    assert out["messages"][0]["content"] == [
        {"type": "text", "text": "plain", "cache_control": {"type": "ephemeral", "ttl": "5m"}}
    ]
    assert with_markers(out, {})["messages"][0]["content"][0] == text("plain")
    assert params["system"] == "plain system"  # the input is not modified


def test_unchanged_blocks_and_messages_are_shared_not_copied() -> None:
    kept, marked = {"role": "user", "content": [text("a")]}, text("b")
    params = {"model": MODEL, "max_tokens": 5, "messages": [kept, {"role": "assistant", "content": [marked]}]}
    out = with_markers(params, {"messages.1.content.0": "5m"})
    assert out["messages"][0] is kept  # the session's own dicts: the layout and digest memos recognise them
    assert out["messages"][1]["content"][0] == {**marked, "cache_control": {"type": "ephemeral", "ttl": "5m"}}
    user_marked = {"role": "user", "content": [{**text("c"), "cache_control": {"type": "ephemeral"}}]}
    stripped = with_markers({**params, "messages": [user_marked]}, {})
    assert stripped["messages"][0]["content"] == [text("c")]


def test_a_decision_lists_its_reasons_by_path() -> None:
    markers = (
        Marker("system.0", "1h", "keep", 2_000, "keep: refreshes the 1h entry"),
        Marker("messages.2.content.0", "5m", "write", 2_400, "write 5m: 400 tokens"),
    )
    decision = Decision({"model": MODEL}, markers)
    assert decision.reasons() == {
        "system.0": "keep: refreshes the 1h entry",
        "messages.2.content.0": "write 5m: 400 tokens",
    }
    assert Decision({}).reasons() == {}
