"""Block digests: markers ignored, keys' order kept, and the memo's two ways of knowing a block."""

from __future__ import annotations

from pcache_magic.core.digest import DigestMemo, block_digest

EPH = {"type": "ephemeral"}


def test_a_marker_does_not_change_the_digest_but_the_content_does() -> None:
    block = {"type": "text", "text": "Hello"}
    assert block_digest(block) == block_digest({**block, "cache_control": EPH})
    assert block_digest(block) != block_digest({"type": "text", "text": "Hello!"})
    tool = {"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1, "b": 2}}
    reordered = {**tool, "input": {"b": 2, "a": 1}}
    assert block_digest(tool) != block_digest(reordered)


def test_the_memo_knows_a_block_and_a_marked_copy_of_its_text() -> None:
    memo = DigestMemo(size=4)
    text = "A long document. " * 1000
    block = {"type": "text", "text": text}
    first = memo.digest(block)
    assert first == block_digest(block) and memo.digest(block) == first
    marked = {**block, "cache_control": EPH}  # the same text object, another dict
    assert memo.digest(marked) == first
    assert len(memo._texts) == 1  # known by its text: not hashed again
    other = {"type": "text", "text": text + "!"}
    assert memo.digest(other) == block_digest(other) != first
    extra = {"type": "text", "text": text, "citations": []}  # not a plain text block: its own digest
    assert memo.digest(extra) == block_digest(extra) != first
    for i in range(10):  # bounded: the oldest entries go
        memo.digest({"type": "text", "text": f"t{i}"})
    assert len(memo._items) <= 4 and len(memo._texts) <= 4
