"""The block index: names and positions kept right whatever changed the list, from where it changed."""

from __future__ import annotations

from pcache_magic.core.blockindex import BlockIndex
from pcache_magic.core.conversation import Block


def block(name: str, role: str = "user", tool: bool = False) -> Block:
    item = (
        {"type": "tool_use", "id": f"t-{name}", "name": "f", "input": {}}
        if tool
        else {"type": "text", "text": name}
    )
    return Block(name=name, role=role, kind="reply" if role == "assistant" else "prompt", content=[item])  # type: ignore[arg-type]


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
