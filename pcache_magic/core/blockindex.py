"""Names and positions of a conversation's blocks without a walk of the conversation per lookup.

`Conversation.add`, `get`, `drop` and `unique_name` run on every turn; a linear scan of a
thousand blocks each time made the session's own work grow with the conversation.  The block
list is public and is changed from outside too (`blocks[:] = ...`, `del blocks[i]`), so the
index keeps the list it was built from and, when the two differ, re-indexes from where they
part only (`common_prefix`): a turn that appends costs a lookup, not a scan.  Whether a block
calls tools is kept as read when it was indexed.  A validated block's content is a `Content`,
which cannot be edited in place; a plain list (put in by `model_copy(update=...)`, which does
not validate) can be, so those few are looked at again before each answer, and a block leaving
takes off what it added: the count never drifts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from .content import Content
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

    __slots__ = ("_callers", "_calls", "_loose", "_names", "_seen")

    def __init__(self) -> None:
        self._seen: list[Block] = []
        """The blocks the index describes (a copy of the list, the same blocks)."""
        self._names: dict[str, int] = {}
        self._calls: list[bool] = []
        """Whether each block of `_seen` held a tool call when it was indexed."""
        self._callers = 0
        """How many of `_calls` are true."""
        self._loose: dict[int, tuple[Sequence[Mapping[str, Any]], int]] = {}
        """Position -> content list and its length when indexed, for the blocks whose list is a
        plain one (editable in place): one grown or cut since means the calls are counted again."""

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
        calls, loose = self._calls, self._loose
        self._callers -= calls[keep:].count(True)
        del calls[keep:], seen[keep:]
        for at in [at for at in loose if at >= keep]:
            del loose[at]
        for at in range(keep, len(blocks)):
            block = blocks[at]
            names.setdefault(block.name, at)
            self._note(at, block)
            seen.append(block)
        return names

    def _note(self, at: int, block: Block) -> None:
        """Index `block` at `at`, the end of `_calls` (or its place, if it is there already)."""
        calls = _calls_tools(block)
        if at < len(self._calls):
            self._callers += calls - self._calls[at]
            self._calls[at] = calls
        else:
            self._callers += calls
            self._calls.append(calls)
        content = block.content
        if type(content) is Content:
            self._loose.pop(at, None)
        else:
            self._loose[at] = (content, len(content))

    def changed(self, blocks: Sequence[Block], block: Block, at: int | None) -> None:
        """`block` was just put at `at` in `blocks` (None: appended), right after `positions(blocks)`."""
        seen = self._seen
        if at is None:
            if len(seen) + 1 == len(blocks):
                self._names.setdefault(block.name, len(seen))
                self._note(len(seen), block)
                seen.append(block)
        elif at < len(seen) and seen[at].name == block.name:
            self._note(at, block)
            seen[at] = block

    def calls_tools(self, blocks: Sequence[Block]) -> bool:
        """Whether any assistant block of `blocks` holds a tool call.  Plain content lists grown or
        cut in place are counted again, and before a False the last reply is read again.  An item
        swapped in place at the same length in an older plain list is not seen (nor is it by the
        kept rendering, which copied the items)."""
        self.positions(blocks)
        if any(len(content) != size for content, size in self._loose.values()):  # edited in place
            self._seen = []
            self.positions(blocks)
        if self._callers > 0:
            return True
        last = next((b for b in reversed(blocks) if b.role == "assistant"), None)
        return last is not None and _calls_tools(last)


def _calls_tools(block: Block) -> bool:
    return block.role == "assistant" and any(item.get("type") == "tool_use" for item in block.content)
