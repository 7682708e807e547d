"""`emulator.diagnostics`: fingerprints, the bounded history, and the earliest divergence reported."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pcache_magic.core.prefix import layout
from pcache_magic.core.tokens import TokenEstimator
from pcache_magic.emulator.diagnostics import Fingerprint, History, diagnose

WORKSPACE = b"workspace-a"
ESTIMATOR = TokenEstimator()
EPH = {"type": "ephemeral"}
TOOL = {"name": "lookup", "description": "Look a word up.", "input_schema": {"type": "object"}}


def request(**changes: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 100,
        "tools": [copy.deepcopy(TOOL)],
        "system": [
            {"type": "text", "text": "You review code. " * 40},
            {"type": "text", "text": "Be brief.", "cache_control": dict(EPH)},
        ],
        "messages": [
            {"role": "user", "content": "First question?"},
            {"role": "assistant", "content": "First answer."},
            {"role": "user", "content": [{"type": "text", "text": "Second?", "cache_control": dict(EPH)}]},
        ],
    }
    params.update(changes)
    return params


def fingerprint(params: dict[str, Any], cached: int = 900, workspace: bytes = WORKSPACE) -> Fingerprint:
    model = str(params["model"])
    return Fingerprint.of(workspace, model, params, layout(params, ESTIMATOR, workspace=workspace), cached)


def reason(previous: dict[str, Any], current: dict[str, Any], cached: int = 900) -> dict[str, Any] | None:
    found = diagnose(fingerprint(previous, cached), fingerprint(current))
    return None if found is None else found["cache_miss_reason"]


def test_an_unknown_previous_message_is_not_found() -> None:
    assert diagnose(None, fingerprint(request())) == {
        "cache_miss_reason": {"type": "previous_message_not_found"}
    }


def test_another_workspaces_message_is_not_found() -> None:
    theirs = fingerprint(request(), workspace=b"workspace-b")
    assert diagnose(theirs, fingerprint(request())) == {
        "cache_miss_reason": {"type": "previous_message_not_found"}
    }


def test_the_same_request_or_a_longer_conversation_has_no_divergence() -> None:
    assert reason(request(), request()) is None
    longer = request()
    longer["messages"] += [
        {"role": "assistant", "content": "Second answer."},
        {"role": "user", "content": "Third?"},
    ]
    assert reason(request(), longer) is None


def test_moving_markers_is_not_a_divergence() -> None:
    moved = request()
    del moved["system"][1]["cache_control"]
    moved["tools"][0]["cache_control"] = dict(EPH)
    moved["messages"][2]["content"] = "Second?"
    assert reason(request(), moved) is None


def test_a_system_string_equals_its_single_text_block() -> None:
    as_string = request(system="Be brief.")
    as_block = request(system=[{"type": "text", "text": "Be brief."}])
    assert reason(as_string, as_block) is None


@pytest.mark.parametrize(
    ("changes", "kind"),
    [
        ({"model": "claude-opus-4-5"}, "model_changed"),
        ({"tools": [{**TOOL, "description": "Look it up."}]}, "tools_changed"),
        ({"tools": []}, "tools_changed"),
        ({"system": [{"type": "text", "text": "You review prose. " * 40}]}, "system_changed"),
        ({"messages": [{"role": "user", "content": "Edited question?"}]}, "messages_changed"),
    ],
)
def test_each_level_names_its_change(changes: dict[str, Any], kind: str) -> None:
    found = reason(request(), request(**changes))
    assert found is not None and found["type"] == kind
    assert found["cache_missed_input_tokens"] >= 0


def test_only_the_earliest_divergence_is_reported() -> None:
    changes: dict[str, Any] = {
        "model": "claude-opus-4-5",
        "tools": [],
        "system": "Other.",
        "tool_choice": {"type": "none"},
        "messages": [{"role": "user", "content": "Other?"}],
    }
    order = ["model_changed", "tools_changed", "system_changed", "unavailable", "messages_changed"]
    for key, kind in zip(list(changes), order, strict=True):  # undo one change at a time, earliest first
        found = reason(request(), request(**changes))
        assert found is not None and found["type"] == kind
        del changes[key]
    assert reason(request(), request(**changes)) is None


@pytest.mark.parametrize(
    "setting",
    [{"tool_choice": {"type": "any"}}, {"thinking": {"type": "enabled", "budget_tokens": 1_024}}],
)
def test_settings_alone_make_the_reason_unavailable(setting: dict[str, Any]) -> None:
    assert reason(request(), request(**setting)) == {"type": "unavailable"}  # and no token estimate


def test_the_missed_tokens_are_the_cached_tokens_past_the_shared_prefix() -> None:
    before, after = request(), request()
    after["system"][1]["text"] = "Be very brief."
    lay = layout(before, ESTIMATOR, workspace=WORKSPACE)
    shared = lay.positions[1].cumulative  # the tool and the first system block are unchanged
    cached = lay.positions[2].cumulative  # written up to the system breakpoint
    assert reason(before, after, cached=cached) == {
        "type": "system_changed",
        "cache_missed_input_tokens": cached - shared,
    }


def test_a_model_change_misses_everything_cached() -> None:
    assert reason(request(), request(model="claude-opus-4-5"), cached=1_234) == {
        "type": "model_changed",
        "cache_missed_input_tokens": 1_234,
    }


def test_the_missed_estimate_is_never_negative() -> None:
    found = reason(request(), request(system="Other."), cached=0)
    assert found == {"type": "system_changed", "cache_missed_input_tokens": 0}


def test_a_role_change_with_the_same_text_changes_the_messages() -> None:
    swapped = request()
    swapped["messages"][1] = {"role": "user", "content": "First answer."}
    found = reason(request(), swapped)
    assert found is not None and found["type"] == "messages_changed"


def test_a_shorter_history_changes_the_messages() -> None:
    found = reason(request(), request(messages=request()["messages"][:1]))
    assert found is not None and found["type"] == "messages_changed"


def test_common_tokens_count_the_shared_prefix() -> None:
    base = fingerprint(request())
    assert base.common_tokens(base) == base.cumulative[-1]
    edited = request()
    edited["messages"][1]["content"] = "Another answer."
    lay = layout(request(), ESTIMATOR, workspace=WORKSPACE)
    first_changed = next(p.index for p in lay.positions if p.path == "messages.1.content.0")
    assert base.common_tokens(fingerprint(edited)) == lay.positions[first_changed - 1].cumulative


def test_history_is_bounded_by_size_oldest_first() -> None:
    prints = [fingerprint(request(), cached=n) for n in range(3)]
    size = prints[0].nbytes
    assert all(fp.nbytes == size for fp in prints) and size > 0
    history = History(max_bytes=2 * size)
    for n, fp in enumerate(prints):
        history.add(f"msg_{n}", fp)
    assert history.get("msg_0") is None
    assert history.get("msg_1") is prints[1] and history.get("msg_2") is prints[2]
    assert history.nbytes == 2 * size and len(history) == 2
    history.clear()
    assert history.get("msg_2") is None and history.nbytes == 0


def test_history_size_grows_with_the_request_not_the_count() -> None:
    """A fingerprint of a long conversation weighs more: a few of them fill the budget alone."""
    small = fingerprint(request())
    turns = [{"role": r, "content": f"turn {i}"} for i in range(400) for r in ("user", "assistant")]
    big = fingerprint(request(messages=[*turns, {"role": "user", "content": "last"}]))
    assert big.nbytes > 50 * small.nbytes
    history = History(max_bytes=big.nbytes + small.nbytes)
    history.add("msg_small", small)
    history.add("msg_big", big)
    assert history.get("msg_small") is small and history.get("msg_big") is big
    history.add("msg_big_2", big)  # over budget: the oldest go until it fits
    assert history.get("msg_small") is None and history.get("msg_big") is None
    assert history.nbytes <= big.nbytes + small.nbytes
    history.add("msg_small", small)
    assert history.get("msg_big_2") is big


def test_a_fingerprint_larger_than_the_whole_budget_is_not_kept() -> None:
    small = fingerprint(request())
    history = History(max_bytes=small.nbytes)
    history.add("msg_0", small)
    history.add("msg_huge", fingerprint(request(messages=[{"role": "user", "content": "x"}] * 50)))
    assert history.get("msg_huge") is None and history.get("msg_0") is small
    with pytest.raises(ValueError, match="at least 1"):
        History(max_bytes=0)


def test_common_tokens_match_a_walk_of_the_keys_wherever_they_part() -> None:
    turns = [{"role": r, "content": f"turn {i}"} for i in range(30) for r in ("user", "assistant")]
    base_params = request(messages=[*turns, {"role": "user", "content": "last"}])
    base = fingerprint(base_params)
    lay = layout(base_params, ESTIMATOR, workspace=WORKSPACE)
    for at in (0, 1, 7, 30, 60):
        edited = copy.deepcopy(base_params)
        edited["messages"][at]["content"] = "changed"
        first = next(p.index for p in lay.positions if p.path == f"messages.{at}.content.0")
        expected = lay.positions[first - 1].cumulative if first else 0
        assert base.common_tokens(fingerprint(edited)) == expected
    shorter = fingerprint(request(messages=turns[:10]))
    assert base.common_tokens(shorter) == shorter.common_tokens(base) == shorter.cumulative[-1]
