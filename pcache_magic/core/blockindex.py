"""Names and positions of a conversation's blocks without a walk of the conversation per lookup.

`Conversation.add`, `get`, `drop` and `unique_name` run on every turn; a linear scan of a
thousand blocks each time made the session's own work grow with the conversation.  The block
list is public and is changed from outside too (`blocks[:] = ...`, `del blocks[i]`), so the
index keeps the list it was built from and, when the two differ, re-indexes from where they
part only (`common_prefix`): a turn that appends costs a lookup, not a scan.
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

    __slots__ = ("_callers", "_names", "_seen")

    def __init__(self) -> None:
        self._seen: list[Block] = []
        """The blocks the index describes (a copy of the list, the same blocks)."""
        self._names: dict[str, int] = {}
        self._callers = 0
        """Assistant blocks in `_seen` that hold a `tool_use` item."""

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
            self._callers -= _calls_tools(gone)
        for at in range(keep, len(blocks)):
            block = blocks[at]
            names.setdefault(block.name, at)
            self._callers += _calls_tools(block)
        self._seen = list(blocks)
        return names

    def changed(self, blocks: Sequence[Block], block: Block, at: int | None) -> None:
        """`block` was just put at `at` in `blocks` (None: appended), right after `positions(blocks)`."""
        seen = self._seen
        if at is None:
            if len(seen) + 1 == len(blocks):
                self._names.setdefault(block.name, len(seen))
                self._callers += _calls_tools(block)
                seen.append(block)
        elif at < len(seen) and seen[at].name == block.name:
            self._callers += _calls_tools(block) - _calls_tools(seen[at])
            seen[at] = block

    def calls_tools(self, blocks: Sequence[Block]) -> bool:
        """Whether any assistant block of `blocks` holds a tool call."""
        self.positions(blocks)
        return self._callers > 0


def _calls_tools(block: Block) -> bool:
    return block.role == "assistant" and any(item.get("type") == "tool_use" for item in block.content)
