"""The block index: names and positions kept right whatever changed the list, from where it changed."""

from __future__ import annotations

import pytest

from pcache_magic.core.blockindex import BlockIndex
from pcache_magic.core.conversation import Block


def block(name: str, role: str = "user", tool: bool = False, *, loose: bool = False) -> Block:
    """A validated block (its content a read-only `Content`); `loose`: one whose content is a plain
    list, as `model_copy(update=...)` puts in without validating, which can be edited in place."""
    item = (
        {"type": "tool_use", "id": f"t-{name}", "name": "f", "input": {}}
        if tool
        else {"type": "text", "text": name}
    )
    made = Block(name=name, role=role, kind="reply" if role == "assistant" else "prompt", content=[item])  # type: ignore[arg-type]
    return made.model_copy(update={"content": [item]}) if loose else made


def expected(blocks: list[Block]) -> dict[str, int]:
    out: dict[str, int] = {}
    for i, b in enumerate(blocks):
        out.setdefault(b.name, i)
    return out


def test_positions_follow_every_change_made_to_the_list_from_outside() -> None:
    index = BlockIndex()
    blocks = [block(f"b{i}") for i in range(6)]
    assert index.positions(blocks) == expected(blocks)
    before = list(blocks)
    blocks.append(block("new"))
    assert index.positions(blocks) == expected(blocks)
    del blocks[2]
    assert index.positions(blocks) == expected(blocks)
    blocks[0] = block("first")
    assert index.positions(blocks) == expected(blocks)
    blocks[:] = before
    assert index.positions(blocks) == expected(blocks)
    blocks.insert(3, block("b1"))  # a duplicate name: the first one is found
    assert index.positions(blocks) == expected(blocks) and index.positions(blocks)["b1"] == 1
    del blocks[1]
    assert index.positions(blocks)["b1"] == 2


def test_changed_keeps_the_index_without_a_walk_and_counts_tool_calls() -> None:
    index = BlockIndex()
    blocks = [block("q"), block("a", "assistant")]
    assert not index.calls_tools(blocks)
    caller = block("a2", "assistant", tool=True)
    index.positions(blocks)
    blocks.append(caller)
    index.changed(blocks, caller, None)
    assert index.positions(blocks) == expected(blocks) and index.calls_tools(blocks)
    plain = block("a2", "assistant")
    blocks[2] = plain
    index.changed(blocks, plain, 2)
    assert not index.calls_tools(blocks)
    blocks.append(caller)  # appended from outside: found on the next look
    assert index.calls_tools(blocks)
    blocks.pop()
    assert not index.calls_tools(blocks)


def tool_use(name: str) -> dict[str, object]:
    return {"type": "tool_use", "id": f"t-{name}", "name": "f", "input": {}}


def test_a_content_list_edited_in_place_never_drives_the_count_negative() -> None:
    """A plain content list can be edited in place: the reviewer's repro (s5_callers_negative)."""
    index = BlockIndex()
    edited = block("r1", "assistant", loose=True)
    blocks = [edited]
    assert not index.calls_tools(blocks)
    edited.content.append(tool_use("x"))  # in place: the index read r1 as no caller
    assert index.calls_tools(blocks)  # the last reply is read again
    del blocks[0]
    assert not index.calls_tools(blocks) and index._callers == 0  # never -1
    caller = block("r2", "assistant", tool=True)
    blocks.append(caller)
    index.changed(blocks, caller, None)
    assert index.calls_tools(blocks)


def test_a_tool_call_put_into_an_older_reply_in_place_is_found() -> None:
    index = BlockIndex()
    older, last = block("a1", "assistant", loose=True), block("a2", "assistant")
    blocks = [block("q1"), older, block("q2"), last]
    assert not index.calls_tools(blocks)
    older.content.append(tool_use("old"))  # grown in place, not the last reply
    assert index.calls_tools(blocks)
    older.content.pop()  # and taken out again: a stale True at worst, then right
    assert not index.calls_tools(blocks)
    assert index._callers == 0


def test_the_count_matches_a_full_scan_under_random_edits() -> None:
    import random

    rng = random.Random(7)
    for _ in range(300):
        index = BlockIndex()
        blocks = [block(f"b{i}", rng.choice(["user", "assistant"]), loose=True) for i in range(4)]
        for _ in range(12):
            op = rng.randrange(5)
            if op == 0 and blocks:
                del blocks[rng.randrange(len(blocks))]
            elif op == 1:
                blocks.insert(
                    rng.randrange(len(blocks) + 1),
                    block(f"n{rng.randrange(9)}", "assistant", rng.random() < 0.3, loose=rng.random() < 0.5),
                )
            elif op == 2 and any(type(b.content) is list for b in blocks):
                target = rng.choice([b for b in blocks if type(b.content) is list])
                if rng.random() < 0.5:
                    target.content.append(tool_use("in-place"))
                else:
                    target.content.clear()
            elif op == 3:
                blocks.reverse()
            truth = any(
                b.role == "assistant" and any(i.get("type") == "tool_use" for i in b.content) for b in blocks
            )
            said = index.calls_tools(blocks)
            assert index._callers >= 0 and (said or not truth)  # a real tool call is never missed


def test_a_validated_block_refuses_an_edit_in_place_so_the_index_need_not_look_again() -> None:
    index = BlockIndex()
    reply = block("r", "assistant")
    blocks = [block("q"), reply]
    assert not index.calls_tools(blocks)
    with pytest.raises(TypeError, match="cannot be edited in place"):
        reply.content.append(tool_use("x"))
    assert not index.calls_tools(blocks) and index._loose == {}


def test_only_plain_content_lists_are_watched_and_they_leave_with_their_blocks() -> None:
    index = BlockIndex()
    blocks = [
        block("q"),
        block("a", "assistant", loose=True),
        block("q2"),
        block("a2", "assistant", loose=True),
    ]
    index.positions(blocks)
    assert sorted(index._loose) == [1, 3]
    del blocks[2:]
    index.positions(blocks)
    assert sorted(index._loose) == [1]
    replaced = block("a", "assistant")
    blocks[1] = replaced
    index.changed(blocks, replaced, 1)
    assert index._loose == {}
