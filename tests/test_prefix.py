"""Prefix positions and keys: the shared ground of emulator and predictions."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from pcache_magic.core.cache_settings import default_settings
from pcache_magic.core.prefix import count_images, layout
from pcache_magic.core.tokens import TokenEstimator
from pcache_magic.emulator.reply import sign_thought, thinking_key

from _helpers import sample_request

EPH: dict[str, Any] = {"type": "ephemeral"}


def test_order_paths_and_cumulative_tokens() -> None:
    lay = layout(sample_request(), TokenEstimator())
    assert [p.path for p in lay.positions] == [
        "tools.0",
        "system.0",
        "messages.0.content.0",
        "messages.0.content.1",
        "messages.1.content.0",
        "messages.2.content.0",
    ]
    assert [p.level for p in lay.positions][:2] == ["tools", "system"]
    running = 0
    for p in lay.positions:
        running += p.tokens
        assert p.cumulative == running
    # The prompt also holds the uncached tail (the assistant turn's opening), which no position holds.
    assert lay.total_tokens == running + default_settings().tail_tokens == running + 3


def test_keys_are_stable_and_markers_do_not_change_them() -> None:
    est = TokenEstimator()
    a = layout(sample_request(), est)
    marked = sample_request()
    marked["system"][0]["cache_control"] = EPH
    b = layout(marked, est)
    assert [p.key for p in a.positions] == [p.key for p in b.positions]
    assert b.positions[1].marker == "5m"


@pytest.mark.parametrize(
    ("change", "first_changed"),
    [
        ({"tools": [{"name": "other", "input_schema": {"type": "object"}}]}, 0),
        ({"system": "Different."}, 1),
        ({"tool_choice": {"type": "any"}}, 2),
        ({"thinking": {"type": "enabled", "budget_tokens": 2000}}, 2),
        ({"model": "claude-opus-4-5"}, 0),
    ],
)
def test_invalidation_by_level(change: dict[str, Any], first_changed: int) -> None:
    est = TokenEstimator()
    base = layout(sample_request(), est)
    other = layout(sample_request(**change), est)
    same = [a.key == b.key for a, b in zip(base.positions, other.positions, strict=False)]
    assert same == [i < first_changed for i in range(len(same))]


def test_workspace_isolates_keys() -> None:
    est = TokenEstimator()
    a = layout(sample_request(), est, workspace=b"a")
    b = layout(sample_request(), est, workspace=b"b")
    assert all(x.key != y.key for x, y in zip(a.positions, b.positions, strict=True))


def test_image_added_later_invalidates_earlier_message_keys() -> None:
    est = TokenEstimator()
    base = sample_request()
    with_image = sample_request()
    image = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    with_image["messages"][2]["content"] = [image, {"type": "text", "text": "Bye"}]
    a, b = layout(base, est), layout(with_image, est)
    assert a.positions[1].key == b.positions[1].key  # system unchanged
    assert a.positions[2].key != b.positions[2].key  # messages level invalidated


def test_an_image_inside_a_tool_result_invalidates_the_messages_level_too() -> None:
    est = TokenEstimator()
    base = sample_request()
    image = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    result = {"type": "tool_result", "tool_use_id": "t1", "content": [image]}
    with_image = sample_request()
    with_image["messages"][2]["content"] = [result, {"type": "text", "text": "Bye"}]
    assert count_images(with_image["messages"][2]) == 1
    a, b = layout(base, est), layout(with_image, est)
    assert a.positions[1].key == b.positions[1].key  # system unchanged
    assert a.positions[2].key != b.positions[2].key  # every messages key changed


@pytest.mark.parametrize(
    "change",
    [
        "append",
        "edit-middle",
        "tool_choice",
        "model",
        "marker-moved",
        "none",
        "role",
        "extend",
        "image",
        "speed",
        "citations",
        "deferred-tool",
    ],
)
def test_layout_reusing_the_previous_one_equals_a_fresh_layout(change: str) -> None:
    est = TokenEstimator()
    first = sample_request()
    before = layout(first, est)
    second = {**first, "messages": [dict(m) for m in first["messages"]]}  # same block objects inside
    if change == "append":
        second["messages"].append({"role": "assistant", "content": [{"type": "text", "text": "more"}]})
    elif change == "edit-middle":
        second["messages"][0] = {"role": "user", "content": [{"type": "text", "text": "Changed"}]}
    elif change == "tool_choice":
        second["tool_choice"] = {"type": "any"}
    elif change == "model":
        second["model"] = "claude-opus-4-5"
    elif change == "marker-moved":
        second["system"] = [{**first["system"][0], "cache_control": EPH}]
    elif change == "role":  # the same block objects in a message of another role
        second["messages"][0] = {"role": "assistant", "content": first["messages"][0]["content"]}
    elif change == "extend":  # one more block in the first message, after the same two
        second["messages"][0]["content"] = [*first["messages"][0]["content"], {"type": "text", "text": "!"}]
    elif change == "image":  # an image anywhere changes every messages key (the salt)
        second["messages"].append({"role": "assistant", "content": [{"type": "image", "source": {}}]})
    elif change == "speed":  # a system-level salt: every key past the tools changes
        second["speed"] = "fast"
    elif change == "citations":  # a cited document appended: the system salt, counted per message
        cited = {"type": "document", "source": {}, "citations": {"enabled": True}}
        second["messages"].append({"role": "user", "content": [cited]})
    elif change == "deferred-tool":  # no key of its own in the chain, no tokens
        second["tools"] = [{"name": "later", "input_schema": {}, "defer_loading": True}, *first["tools"]]
    reused = layout(second, est, previous=before)
    fresh = layout(second, TokenEstimator())
    assert reused.positions == fresh.positions
    assert reused.markers() == fresh.markers() == tuple(p.index for p in fresh.positions if p.marker)
    shared = sum(1 for a, b in zip(before.positions, reused.positions, strict=False) if a is b)
    if change in ("none", "append"):
        # Every position is reused: a string-content message (a new dict each time) holds a block
        # of the same digest, so even its positions, and those after it, are the previous ones.
        assert shared == len(before.positions) == 6


def test_a_marker_moved_onto_a_copy_keeps_every_position_and_changes_only_the_markers() -> None:
    # `cache="auto"` marks copies of blocks: the marker leaves one block and lands on another.
    est = TokenEstimator()
    first = sample_request()
    first["messages"][0] = {
        **first["messages"][0],
        "content": [
            {**first["messages"][0]["content"][0], "cache_control": EPH},
            first["messages"][0]["content"][1],
        ],
    }
    before = layout(first, est)
    hello, there = first["messages"][0]["content"]
    plain = {k: v for k, v in hello.items() if k != "cache_control"}
    second = {
        **first,
        "messages": [
            {
                "role": "user",
                "content": [plain, {**there, "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
            },
            *first["messages"][1:],
        ],
    }
    reused = layout(second, est, previous=before)
    fresh = layout(second, TokenEstimator())
    assert reused.positions == fresh.positions
    assert reused.markers() == fresh.markers() == (3,)
    assert [p.marker for p in reused.positions] == [None, None, None, "1h", None, None]
    assert reused.positions[:2] == before.positions[:2]
    assert all(a is b for a, b in zip(before.positions[4:], reused.positions[4:], strict=True))
    assert before.markers() == (2,)  # the previous layout is untouched


def test_a_block_of_the_same_digest_at_another_path_is_laid_out_anew() -> None:
    # The same text after a stripped thinking block: the same index, another content number.
    est = TokenEstimator()
    text = {"type": "text", "text": "Hi"}
    thought = {"type": "thinking", "thinking": "hm", "signature": "s"}
    first = sample_request(
        messages=[
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": [{**text}]},
            {"role": "user", "content": "Bye"},
        ]
    )
    second = {
        **first,
        "messages": [
            first["messages"][0],
            {"role": "assistant", "content": [thought, {**text}]},
            first["messages"][2],
        ],
    }
    before = layout(first, est, keep_thinking=False)
    reused = layout(second, est, previous=before, keep_thinking=False)
    fresh = layout(second, TokenEstimator(), keep_thinking=False)
    assert [p.path for p in reused.positions][3] == "messages.1.content.1"
    assert reused.positions == fresh.positions
    assert reused.positions[3].key != before.positions[3].key


def test_the_same_message_dicts_are_reused_whole_even_with_string_content() -> None:
    est = TokenEstimator()
    first = sample_request()
    before = layout(first, est)
    second = {**first, "messages": [*first["messages"], {"role": "assistant", "content": "Later"}]}
    reused = layout(second, est, previous=before)
    assert all(a is b for a, b in zip(before.positions, reused.positions, strict=False))
    assert reused.positions == layout(second, TokenEstimator()).positions
    assert reused.images == (0, 0, 0, 0)


def test_messages_equal_in_python_but_not_on_the_wire_are_laid_out_again() -> None:
    """`True == 1 == 1.0` in Python, but the API reads `true`, `1` and `1.0`: a message equal to the
    previous one's but for such a value has other keys, which reuse must not take over."""
    est = TokenEstimator()
    use = {"type": "tool_use", "id": "toolu_1", "name": "count", "input": {"n": 1}}
    first = {**sample_request(), "messages": [{"role": "assistant", "content": [use]}]}
    first["messages"].append({"role": "user", "content": "Hi"})
    before = layout(first, est)
    for value in (True, 1.0):
        second = copy.deepcopy(first)
        second["messages"][0]["content"][0]["input"]["n"] = value
        assert second["messages"] == first["messages"]
        reused = layout(second, est, previous=before)
        assert reused.positions == layout(second, TokenEstimator()).positions
        assert reused.positions[2].key != before.positions[2].key


def test_reusing_a_layout_agrees_with_a_fresh_one_on_random_edits() -> None:
    """Requests sharing block objects with the previous one, edited at random: reuse changes nothing."""
    rng = random.Random(20260105)
    marks = [None, None, EPH, {"type": "ephemeral", "ttl": "1h"}]

    def block() -> dict[str, Any]:
        kind = rng.choice(["text", "text", "empty", "image", "thinking"])
        made: dict[str, Any] = {
            "text": {"type": "text", "text": rng.choice(["a", "b c", "d e f"])},
            "empty": {"type": "text", "text": ""},
            "image": {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
            "thinking": {"type": "thinking", "thinking": "t", "signature": "s"},
        }[kind]
        mark = rng.choice(marks)
        return {**made, "cache_control": mark} if mark else made

    def message() -> dict[str, Any]:
        role = rng.choice(["user", "assistant"])
        return {"role": role, "content": rng.choice(["text", [block() for _ in range(rng.randint(0, 3))]])}

    for _ in range(300):
        first = sample_request(messages=[message() for _ in range(rng.randint(0, 5))])
        # The very same message dicts (as the session re-sends them), or copies sharing the blocks.
        shared = rng.random() < 0.5
        second = {**first, "messages": [m if shared else {**m} for m in first["messages"]]}
        for _ in range(rng.randint(0, 3)):
            edit = rng.choice(
                ["append", "drop", "replace", "role", "extend", "shorten", "system", "salt", "cite"]
            )
            messages = second["messages"]
            if edit == "append" or not messages:
                messages.append(message())
                continue
            i = rng.randrange(len(messages))
            picked, content = messages[i], messages[i]["content"]
            if edit == "drop":
                messages.pop(i)
            elif edit == "replace":
                messages[i] = message()
            elif edit == "role":
                messages[i] = {**picked, "role": "user" if picked["role"] == "assistant" else "assistant"}
            elif edit == "extend" and isinstance(content, list):
                messages[i] = {**picked, "content": [*content, block()]}
            elif edit == "shorten" and isinstance(content, list):  # the same blocks but the last
                messages[i] = {**picked, "content": content[:-1]}
            elif edit == "system":  # one position more before the messages: every message moves
                second["system"] = [*second.get("system", []), block()]
            elif edit == "salt":
                second["tool_choice"] = {"type": "any"}
            elif edit == "cite":  # a system-level salt, counted per message
                messages[i] = {**picked, "content": [{"type": "document", "citations": {"enabled": True}}]}
        est = TokenEstimator()
        reused = layout(second, est, previous=layout(first, est))
        fresh = layout(second, TokenEstimator())
        assert reused.positions == fresh.positions
        assert reused.markers() == fresh.markers()
        assert (reused.total_tokens, reused.salt) == (fresh.total_tokens, fresh.salt)
        assert (reused.system_salt, reused.citations) == (fresh.system_salt, fresh.citations)
        assert (reused.roles, reused.starts) == (fresh.roles, fresh.starts)


# -- earlier thinking ------------------------------------------------------------------------------
_THOUGHT_TEXT = "Weighing the options at some length. " * 20
#: Signed as the emulator signs its own thinking (it refuses any other signature).
_SIGNATURE = sign_thought(thinking_key(), _THOUGHT_TEXT)
THOUGHT = {"type": "thinking", "thinking": _THOUGHT_TEXT, "signature": _SIGNATURE}


def thinking_chat(model: str, last: dict[str, Any]) -> dict[str, Any]:
    """A question, a reply that thought first, then `last`: a tool result (the reply called a tool)
    or a new question (the reply answered)."""
    reply = {"type": "tool_use", "id": "t1", "name": "lookup", "input": {}}
    if last is not TOOL_RESULT:
        reply = {"type": "text", "text": "It is 42."}
    return {
        "model": model,
        "max_tokens": 4096,
        "system": [{"type": "text", "text": "You are terse.", "cache_control": EPH}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Look it up."}]},
            {"role": "assistant", "content": [THOUGHT, reply]},
            last,
        ],
    }


TOOL_RESULT = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "42"}]}
NEW_QUESTION = {"role": "user", "content": "Thanks. And then?"}


def test_a_stripping_model_drops_earlier_thinking_once_a_new_question_follows() -> None:
    est = TokenEstimator()
    lay = layout(thinking_chat("claude-sonnet-4-5", NEW_QUESTION), est)
    kept = layout(thinking_chat("claude-sonnet-4-5", NEW_QUESTION), est, keep_thinking=True)
    assert [p.kind for p in lay.positions if p.message == 1] == ["text"]
    assert [p.kind for p in kept.positions if p.message == 1] == ["thinking", "text"]
    assert kept.total_tokens - lay.total_tokens == est.block(THOUGHT)
    assert lay.stripped == 2
    assert [p.path for p in lay.positions if p.message == 1] == ["messages.1.content.1"]
    assert lay.positions[-2].key != kept.positions[-2].key  # not part of the cache prefix either


def test_the_stripped_block_frames_nothing_so_the_message_overhead_moves_to_the_next() -> None:
    est = TokenEstimator()
    lay = layout(thinking_chat("claude-sonnet-4-5", NEW_QUESTION), est)
    kept = layout(thinking_chat("claude-sonnet-4-5", NEW_QUESTION), est, keep_thinking=True)
    answer = next(p for p in lay.positions if p.message == 1)
    kept_answer = next(p for p in kept.positions if p.message == 1 and p.kind == "text")
    assert answer.tokens > kept_answer.tokens  # it now carries the message's framing


def test_thinking_stays_within_a_tool_loop_and_on_models_that_keep_it() -> None:
    est = TokenEstimator()
    loop = layout(thinking_chat("claude-sonnet-4-5", TOOL_RESULT), est)
    assert [p.kind for p in loop.positions if p.message == 1] == ["thinking", "tool_use"]
    assert loop.stripped == 0
    for model in ("claude-sonnet-5", "claude-opus-4-5", "an-unknown-model"):
        kept = layout(thinking_chat(model, NEW_QUESTION), est)
        assert [p.kind for p in kept.positions if p.message == 1] == ["thinking", "text"], model


def test_a_layout_reused_across_a_new_question_agrees_with_a_fresh_one() -> None:
    est = TokenEstimator()
    loop = thinking_chat("claude-sonnet-4-5", TOOL_RESULT)
    after = {**loop, "messages": [*loop["messages"], {"role": "assistant", "content": "Done."}, NEW_QUESTION]}
    reused = layout(after, est, previous=layout(loop, est))
    fresh = layout(after, TokenEstimator())
    assert reused.positions == fresh.positions and reused.stripped == fresh.stripped == 4
    assert "thinking" not in [p.kind for p in reused.positions]


def test_the_emulator_bills_and_caches_earlier_thinking_as_the_api_does() -> None:
    """Fidelity: a tool loop reads its thinking from the cache; the next question neither bills
    nor caches it (on a stripping model), while a model that keeps thinking bills it."""
    from pcache_magic.emulator import Emulator
    from pcache_magic.session.transport import connect

    def usage(model: str, last: dict[str, Any]) -> tuple[int, int]:
        client = connect(emulator=Emulator()).client
        body = thinking_chat(model, last)
        body["tools"] = [{"name": "lookup", "input_schema": {"type": "object"}}]
        body["system"] = [{"type": "text", "text": "You are terse. " * 300}]  # above the minimum
        marked = [*_blocks(last)]
        marked[-1] = {**marked[-1], "cache_control": EPH}
        body["messages"][-1] = {**last, "content": marked}
        first = client.messages.create(**body)
        again = client.messages.create(**body)
        counted = client.messages.count_tokens(**{k: v for k, v in body.items() if k != "max_tokens"})
        assert again.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
        total = again.usage.cache_read_input_tokens + again.usage.input_tokens
        assert total == counted.input_tokens
        assert again.usage.input_tokens == default_settings().tail_tokens  # the rest was cached
        return total, first.usage.cache_creation_input_tokens

    thought = TokenEstimator().block(THOUGHT)
    usage("claude-sonnet-4-5", TOOL_RESULT)  # a tool loop: its thinking read from the cache too
    asked_total, asked_written = usage("claude-sonnet-4-5", NEW_QUESTION)
    keeps_total, keeps_written = usage("claude-sonnet-4-6", NEW_QUESTION)
    assert keeps_total - asked_total == thought  # the same request; only the stripping differs
    assert keeps_written - asked_written == thought  # and the stripped block is not in the cache


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message["content"]
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
