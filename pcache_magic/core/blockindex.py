"""Names and positions of a conversation's blocks without a walk of the conversation per lookup.

`Conversation.add`, `get`, `drop` and `unique_name` run on every turn; a linear scan of a
thousand blocks each time made the session's own work grow with the conversation.  The block
list is public and is changed from outside too (`blocks[:] = ...`, `del blocks[i]`), so the
index keeps the list it was built from and, when the two differ, re-indexes from where they
part only (`common_prefix`): a turn that appends costs a lookup, not a scan.  Whether a block
calls tools is kept as read when it was indexed, so a content list edited in place (blocks are
frozen, their lists are not) cannot throw the count off.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from .identity import common_prefix

__all__ = ["BlockIndex"]


class Block(Protocol):
    """What the index reads of a `conversation.Block` (which imports this module)."""

    @property
    def name(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def content(self) -> Sequence[Mapping[str, Any]]: ...


class BlockIndex:
    """Block name -> position of its first block, and how many replies call tools."""

    __slots__ = ("_callers", "_calls", "_contents", "_names", "_seen", "_sizes")

    def __init__(self) -> None:
        self._seen: list[Block] = []
        """The blocks the index describes (a copy of the list, the same blocks)."""
        self._names: dict[str, int] = {}
        self._calls: list[bool] = []
        """Whether each block of `_seen` held a tool call when it was indexed (a block leaving
        takes off what it added, so the count never drifts even if its content list is edited)."""
        self._callers = 0
        """How many of `_calls` are true."""
        self._contents: list[Sequence[Mapping[str, Any]]] = []
        self._sizes: list[int] = []
        """Each block's content list and its length when indexed: a list grown or cut in place
        since (one C loop to see) means the tool calls are counted again."""

    def positions(self, blocks: Sequence[Block]) -> dict[str, int]:
        """Name -> position of the first block of that name in `blocks` (read-only)."""
        seen = self._seen
        if len(seen) == len(blocks) and seen == blocks:
            return self._names
        keep = common_prefix(blocks, seen)
        names = self._names
        for at in range(keep, len(seen)):
            gone = seen[at]
            if names.get(gone.name, -1) >= keep:
                del names[gone.name]
        calls, contents, sizes = self._calls, self._contents, self._sizes
        del calls[keep:], contents[keep:], sizes[keep:]
        for at in range(keep, len(blocks)):
            block = blocks[at]
            names.setdefault(block.name, at)
            calls.append(_calls_tools(block))
            contents.append(block.content)
            sizes.append(len(block.content))
        self._callers = calls.count(True)  # one C loop
        self._seen = list(blocks)
        return names

    def changed(self, blocks: Sequence[Block], block: Block, at: int | None) -> None:
        """`block` was just put at `at` in `blocks` (None: appended), right after `positions(blocks)`."""
        seen = self._seen
        if at is None:
            if len(seen) + 1 == len(blocks):
                self._names.setdefault(block.name, len(seen))
                self._calls.append(calls := _calls_tools(block))
                self._contents.append(block.content)
                self._sizes.append(len(block.content))
                self._callers += calls
                seen.append(block)
        elif at < len(seen) and seen[at].name == block.name:
            calls = _calls_tools(block)
            self._callers += calls - self._calls[at]
            self._calls[at], seen[at] = calls, block
            self._contents[at], self._sizes[at] = block.content, len(block.content)

    def calls_tools(self, blocks: Sequence[Block]) -> bool:
        """Whether any assistant block of `blocks` holds a tool call.  Content lists grown or cut in
        place are counted again (~25 us per 1000 blocks to see), and before a False the last reply
        is read again.  An item swapped in place at the same length in an older reply is not seen
        (nor is it by the kept rendering, which copied the items)."""
        self.positions(blocks)
        if list(map(len, self._contents)) != self._sizes:  # a content list changed in place
            self._seen = []
            self.positions(blocks)
        if self._callers > 0:
            return True
        last = next((b for b in reversed(blocks) if b.role == "assistant"), None)
        return last is not None and _calls_tools(last)


def _calls_tools(block: Block) -> bool:
    return block.role == "assistant" and any(item.get("type") == "tool_use" for item in block.content)
