"""How a conversation renders again without walking its past: the state after each block is kept.

`Conversation.render` runs on every call.  A notebook's conversation only grows at its end, so
the rendering resumes from the state the last one had after the blocks the two share (`Builder`),
renders each block once while it stays (`RenderMemo`), and hands back the same message dicts
call after call.  Its messages (`RenderedMessages`) say how many of them are the very dicts of
the rendering before: the layout and the key guard then skip those without a look at each.
Every rendering is read-only: the next one builds on it.  Pure.
"""

from __future__ import annotations

import copy
import weakref
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .blockindex import BlockIndex
from .content import ReadOnlyList
from .identity import common_prefix

__all__ = ["Builder", "RenderMemo", "RenderedMessages", "Rendering", "shared_prefix"]


class Block(Protocol):
    """What a rendering reads of a `conversation.Block` (which imports this module)."""

    @property
    def name(self) -> str: ...
    @property
    def role(self) -> str: ...
    def rendered(self, marker: Any = None) -> list[dict[str, Any]]: ...


CacheControl = object
"""A `conversation.CacheControl`: only told apart by identity here."""

#: Counts `Builder.marks` keeps per block.
_MARKS = 5
#: Renderings with fewer messages do not say which they share (a scan of so few is cheaper than
#: the bookkeeping with cold caches: measured at 17 messages, `benchmarks/overhead.py`).
_TOLD_FROM = 64


class RenderedMessages(ReadOnlyList):
    """The messages of a rendering: built from frozen blocks and never changed afterwards (an edit
    in place raises), so a check of them can remember them by identity, and the next rendering
    builds on them.  A copy (or a pickle) is a plain list, free to edit."""

    __slots__ = ("__weakref__", "_bases")
    refusal = (
        "A request's messages cannot be edited in place (the conversation's next request builds "
        "on them): edit a copy, list(params['messages'])."
    )

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._bases: tuple[tuple[Callable[[], object], int], ...] = ()
        """(weak reference to an earlier rendering's messages, how many leading dicts are its): the
        one this was built on, then the one that was built on (a rendering in between, a view's,
        may be gone already)."""

    def shared_with(self, other: object) -> int:
        """How many leading messages are `other`'s very dicts, when `other` is the rendering these
        were built on, or the one that was built on (a view may render in between); -1 when that
        cannot be told without comparing them."""
        for ref, shared in self._bases:
            if ref() is other:
                return shared
        return -1

    def built_on(self, base: RenderedMessages, shared: int) -> None:
        """Note that the first `shared` of these messages are the very dicts of `base` (weakly)."""
        if base._bases:
            before, kept = base._bases[0]
            self._bases = ((weakref.ref(base), shared), (before, min(shared, kept)))
        else:
            self._bases = ((weakref.ref(base), shared),)

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        out: list[Any] = []
        memo[id(self)] = out
        out.extend(copy.deepcopy(item, memo) for item in self)
        return out

    def __reduce__(self) -> tuple[type[list[Any]], tuple[list[Any]]]:
        return list, (list(self),)


def shared_prefix(messages: Sequence[Any], kept: Sequence[Any], *, identical: bool = False) -> int:
    """How many leading `messages` `kept` holds too: told by a rendering built on `kept` (no look at
    each, and always the very dicts), else found by `common_prefix` (`identical`: as it says)."""
    told = messages.shared_with(kept) if type(messages) is RenderedMessages else -1
    return told if told >= 0 else common_prefix(messages, kept, identical=identical)


class Builder:
    """A request built block by block, with the state after each block to resume from."""

    __slots__ = (
        "_current",
        "_kept",
        "_role",
        "_shared",
        "marks",
        "messages",
        "names",
        "rendered",
        "system",
        "tools",
    )

    def __init__(self) -> None:
        self.tools: list[dict[str, Any]] = []
        self.system: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        self.rendered: RenderedMessages | None = None
        """The messages handed out by `finish` (a copy: a caller's edit cannot reach this state)."""
        self.names: dict[str, str] = {}
        """Request path -> block name, in block order (a resumed state drops the last ones)."""
        self.marks = array("q")
        """After each block, five counts: tools, system items, messages, items in the last message,
        names (machine ints: resuming copies them at C speed, no object per block to touch)."""
        self._current: list[dict[str, Any]] = []
        self._role = ""
        self._shared = False
        """Whether the last message belongs to an earlier request (extend a copy, not it)."""
        self._kept: tuple[RenderedMessages, int] | None = None
        """The messages of the rendering this one resumed, and how many it began with."""

    @classmethod
    def resume(cls, kept: Builder, done: int) -> Builder:
        """The state `kept` had after its first `done` blocks, sharing what it had built."""
        tools, system, messages, items, names = kept.marks[_MARKS * (done - 1) : _MARKS * done]
        state = cls()
        state.tools, state.system = kept.tools[:tools], kept.system[:system]
        state.messages = kept.messages[:messages]
        state._kept = (kept.rendered, messages) if kept.rendered is not None else None
        state.names = kept.names.copy()
        while len(state.names) > names:
            state.names.popitem()
        state.marks = kept.marks[: _MARKS * done]
        if messages:
            last = state.messages[-1]
            state._role, state._current = last["role"], last["content"]
            if len(state._current) == items:
                state._shared = True
            else:  # the message went on with blocks that are gone
                state._current = state._current[:items]
                state.messages[-1] = {"role": state._role, "content": state._current}
        return state

    def add(self, block: Block, content: list[dict[str, Any]]) -> None:
        role, name = block.role, block.name
        if role == "user" or role == "assistant":
            if content:
                if role != self._role:
                    self._current, self._role, self._shared = [], role, False
                    self.messages.append({"role": role, "content": self._current})
                elif self._shared:
                    self._current, self._shared = list(self._current), False
                    self.messages[-1] = {"role": role, "content": self._current}
                prefix, start = f"messages.{len(self.messages) - 1}.content.", len(self._current)
                self.names.update((f"{prefix}{j}", name) for j in range(start, start + len(content)))
                self._current.extend(content)
        else:
            target = self.tools if role == "tools" else self.system
            self.names.update((f"{role}.{j}", name) for j in range(len(target), len(target) + len(content)))
            target.extend(content)
        self.marks.extend(
            (len(self.tools), len(self.system), len(self.messages), len(self._current), len(self.names))
        )

    def finish(self) -> RenderedMessages:
        """The messages to send, saying how many are the very dicts of the rendering this one
        resumed: all it began with, but the last if a block was added to it (a new dict then).
        Said from `_TOLD_FROM` messages on: below, comparing them costs less than saying it."""
        out = self.rendered = RenderedMessages(self.messages)
        if self._kept is not None and len(out) >= _TOLD_FROM:
            kept, shared = self._kept
            if shared and out[shared - 1] is not kept[shared - 1]:
                shared -= 1
            out.built_on(kept, shared)
            self._kept = None  # the rendering before is not kept alive by this one
        return out


class RenderMemo:
    """The conversation's one render memo: the last rendering, and each block's content as
    rendered (the same dicts call after call, so the session's digest memo recognises them by
    identity and a long conversation is not hashed again).  Treat them as read-only.

    Both halves pay, measured on `Session.ask` in the steady state of `benchmarks/overhead.py`:
    without the kept contents every call hashes the whole prompt again (+7-12% on its 50k
    tokens); without the last rendering every block is walked again and the layout loses its
    same-message fast path (render 2x slower at 18 blocks; 5x at 200, +4-12% on the call)."""

    __slots__ = ("index", "items", "last")

    def __init__(self) -> None:
        self.index = BlockIndex()
        self.last: Rendering | None = None
        self.items: dict[tuple[int, bool], tuple[Block, CacheControl | None, list[dict[str, Any]]]] = {}

    def rendered(
        self, block: Block, marker: CacheControl | None, blocks: Sequence[Block]
    ) -> list[dict[str, Any]]:
        """`block.rendered(marker)`, kept while `block` is one of the conversation's `blocks`."""
        key = (id(block), marker is None)
        kept = self.items.get(key)
        if kept is not None and kept[0] is block and kept[1] is marker:
            return kept[2]
        if len(self.items) > 2 * len(blocks) + 16:  # forget the blocks that are gone
            present = {id(b): b for b in blocks}
            self.items = {k: v for k, v in self.items.items() if present.get(k[0]) is v[0]}
        items = block.rendered(marker)
        self.items[key] = (block, marker, items)
        return items


@dataclass(frozen=True, slots=True)
class Rendering:
    """The last rendering: which blocks (the marked one with which marker) built what."""

    blocks: Sequence[Block]
    """A copy of the list (a list, so that comparing it with the next one is one C loop)."""
    marked: Block | None
    marked_at: int
    """Where `marked` stood in `blocks` (-1: none)."""
    marker: CacheControl | None
    state: Builder

    def kept_prefix(
        self, blocks: Sequence[Block], marked: Block | None, marked_at: int, marker: CacheControl | None
    ) -> int:
        """How many leading blocks render exactly as last time: the same (or equal) blocks, marked
        alike.  A block marked now and not then, or the other way round, renders anew."""
        kept = common_prefix(blocks, self.blocks)
        if marked is not self.marked or marker is not self.marker:
            for at in (marked_at, self.marked_at):
                if 0 <= at < kept:
                    kept = at
        return kept
