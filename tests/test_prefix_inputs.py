"""The settings salts taken from the previous layout while their inputs are the same objects."""

from __future__ import annotations

from typing import Any

from pcache_magic.core.cache_settings import default_settings
from pcache_magic.core.prefix_inputs import salts, thinking_cut

from _helpers import sample_request

COUNTS = {"images": 0, "citations": 0}


def _fresh(params: dict[str, Any], counts: dict[str, int] = COUNTS) -> tuple[bytes, bytes]:
    table = default_settings()
    return table.salt(params, counts, "system"), table.salt(params, counts, "messages")


def test_the_same_objects_give_the_previous_salts_without_working_them_out() -> None:
    table = default_settings()
    first = sample_request(tool_choice={"type": "any"})
    previous = salts(first, table, COUNTS)
    assert previous[:2] == _fresh(first)
    # The next request: new lists, the same tool and setting objects.
    second = {**first, "tools": list(first["tools"]), "messages": [*first["messages"]]}
    again = salts(second, table, dict(COUNTS), previous)
    assert again[0] is previous[0] and again[1] is previous[1]


def test_another_object_or_count_works_them_out_again() -> None:
    table = default_settings()
    first = sample_request(tool_choice={"type": "any"})
    previous = salts(first, table, COUNTS)
    changes: list[tuple[dict[str, Any], dict[str, int]]] = [
        ({**first, "tool_choice": {"type": "auto"}}, COUNTS),  # a messages-level setting
        ({**first, "speed": "fast"}, COUNTS),  # a system-level one
        ({**first, "tools": [{"type": "web_search_20250305", "name": "web_search"}]}, COUNTS),
        ({**first, "tool_choice": {"type": "any"}}, COUNTS),  # equal, not the same: worked out (equal)
        (first, {"images": 1, "citations": 0}),
        (first, {"images": 0, "citations": 2}),
    ]
    for params, counts in changes:
        got = salts(params, table, counts, previous)
        assert got[:2] == _fresh(params, counts)
    assert salts(changes[0][0], table, COUNTS, previous)[1] != previous[1]
    assert salts(changes[1][0], table, COUNTS, previous)[0] != previous[0]


def test_a_true_that_equals_one_is_not_taken_for_it() -> None:
    table = default_settings()
    first = sample_request(thinking={"type": "enabled", "budget_tokens": 1})
    previous = salts(first, table, COUNTS)
    second = {**first, "thinking": {"type": "enabled", "budget_tokens": True}}
    assert second["thinking"] == first["thinking"]
    assert salts(second, table, COUNTS, previous)[1] == _fresh(second)[1] != previous[1]


def test_thinking_cut_is_the_last_user_turn_that_is_not_tool_results() -> None:
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]}
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
        {"role": "assistant", "content": "d"},
        result,
    ]
    assert thinking_cut(messages) == 2
    assert thinking_cut(messages[:2]) == 0
