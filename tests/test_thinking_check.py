"""Thinking blocks sent back: signed by the emulator, first in their message, and present in a
tool loop with thinking enabled (emulator/thinking_check.py), with the API's wordings."""

from __future__ import annotations

from typing import Any

import pytest

from pcache_magic.emulator.errors import ApiError
from pcache_magic.emulator.reply import sign_thought, thinking_key
from pcache_magic.emulator.thinking_check import check_thinking

KEY = thinking_key()
THOUGHT = {"type": "thinking", "thinking": "Look it up.", "signature": sign_thought(KEY, "Look it up.")}
USE = {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}}
RESULT = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "42"}
TEXT = {"type": "text", "text": "Checking."}


def loop(*reply: dict[str, Any]) -> list[dict[str, Any]]:
    """A question, the assistant's turn of `reply` blocks, and the tool's result (a loop in progress)."""
    return [
        {"role": "user", "content": "What is it?"},
        {"role": "assistant", "content": list(reply)},
        {"role": "user", "content": [RESULT]},
    ]


def refused(messages: list[dict[str, Any]], mode: str | None = "enabled") -> str:
    with pytest.raises(ApiError) as caught:
        check_thinking(messages, mode, KEY)
    return str(caught.value)


def test_a_tool_loop_that_kept_its_thinking_passes() -> None:
    check_thinking(loop(THOUGHT, TEXT, USE), "enabled", KEY)
    check_thinking(loop(TEXT, USE), None, KEY)  # without thinking, nothing is asked of the turn
    check_thinking(loop(TEXT, USE), "adaptive", KEY)


def test_thinking_after_text_or_a_tool_call_is_refused_wherever_it_is() -> None:
    for reply, found in (((TEXT, THOUGHT, USE), "text"), ((USE, THOUGHT), "tool_use")):
        said = refused(loop(*reply), None)
        assert said.startswith("messages.1.content.0: If an assistant message contains any thinking blocks")
        assert said.endswith(f"the first block must be thinking or redacted_thinking. Found {found}.")


def test_thinking_enabled_needs_the_loops_assistant_turn_to_start_with_its_thinking() -> None:
    said = refused(loop(TEXT, USE))
    assert said.startswith(
        "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `text`."
    )
    assert "a final `assistant` message must start with a thinking block" in said
    assert "found `tool_use`" in refused(loop(USE))
    answered = [
        *loop(TEXT, USE),
        {"role": "assistant", "content": [TEXT]},
        {"role": "user", "content": "Thanks."},
    ]
    check_thinking(answered, "enabled", KEY)  # a new question: the earlier loop is done


def test_a_forged_or_foreign_signature_is_refused_and_unchecked_without_a_key() -> None:
    forged = {**THOUGHT, "thinking": "Something else."}
    assert "messages.1.content.0: Invalid `signature` in `thinking` block" in refused(loop(forged, USE))
    check_thinking(loop(forged, USE), "enabled", None)
    redacted = {"type": "redacted_thinking", "data": "x"}
    assert "Invalid `data` in `redacted_thinking` block" in refused(loop(redacted, USE))
