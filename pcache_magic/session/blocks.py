"""Building the conversation block by block: what the magics' cells call, through `Session`.

The rules for what a block may be live here (a cached block needs content; a name replaces
the block of that name in place; a reply's tool results go with it).  `Blocks` is given the
session's settings (for the default marker lifetime) and its `emit`; each call names the
conversation it changes, since a session replaces its conversation on reset or load.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..core.conversation import Block, CacheControl, Conversation
from ..core.toolspec import tool_param
from ..core.ttl import TTL, TTLS
from ..core.turns import as_content, tool_results_for
from .observers import Emit
from .session_settings import Settings

__all__ = ["Blocks", "marker", "named_turn", "plain_json", "take_place"]


def marker(cache: TTL | bool | None, default: TTL | None) -> CacheControl | None:
    """`None`/False: no marker; True: the `default` lifetime; "5m"/"1h": that lifetime."""
    if cache is None or cache is False:
        return None
    if cache is True:
        return CacheControl(ttl=default)
    if cache not in TTLS:
        raise ValueError(f"cache must be '5m' or '1h' (or None), not {cache!r}")
    return CacheControl(ttl=cache)


def plain_json(items: Sequence[Mapping[str, Any]], what: str) -> None:
    """Refuse, at the door, content the request could never be sent with (a set, NaN, an object):
    admitted, it would fail every later call with a raw TypeError and poison the session."""
    try:
        json.dumps(items, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as error:
        problem = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise ValueError(
            f"{what} must be plain JSON (dicts, lists, strings, finite numbers, booleans, None): {problem}. "
            "Convert sets to lists and other objects to strings."
        ) from None


def take_place(conversation: Conversation, name: str, of: str) -> bool:
    """Move block `name` to where block `of` stands, if both exist and share a role.

    A cell whose block comes back under another name (its first words, its file or its
    `--name` changed) keeps its place in the conversation, as a re-run under the same name
    does; the caller then drops `of`.  The conversation renders by block identity, so moving
    a block only re-renders from the first block that moved.
    """
    blocks = conversation.blocks
    names = [b.name for b in blocks]
    if name not in names or of not in names or name == of:
        return False
    block = blocks[names.index(name)]
    if block.role != blocks[names.index(of)].role:
        return False
    blocks.pop(names.index(name))
    blocks.insert([b.name for b in blocks].index(of), block)
    return True


def named_turn(conversation: Conversation, name: str) -> list[Block]:
    """The prompt called `name` and its replies and tool results: what asking it again replaces.

    Replacing only the prompt in place would leave its old reply after it, and a request may
    not end on an assistant turn.  ValueError if `name` is a block other than a prompt.
    """
    blocks = conversation.blocks
    start = next((i for i, b in enumerate(blocks) if b.name == name), None)
    if start is None:
        return []
    if blocks[start].kind != "prompt":
        raise ValueError(f"{name!r} names a {blocks[start].kind} block; give the turn another --name.")
    end = next((i for i in range(start + 1, len(blocks)) if blocks[i].kind == "prompt"), len(blocks))
    return [blocks[start], *(b for b in blocks[start + 1 : end] if b.kind in ("reply", "tool_result"))]


class Blocks:
    """`system`, `context`, `tools` and `drop` on a conversation; each change is announced."""

    def __init__(self, settings: Settings, emit: Emit, check_name: Callable[[str], object] = str) -> None:
        self._settings = settings
        self._emit = emit
        self._check_name = check_name
        """ValueError for a name holding an API key (`Requests.check_name`; by default any name goes)."""

    def _add(self, conversation: Conversation, block: Block) -> Block:
        self._check_name(block.name)
        conversation.add(block)
        self._emit("blocks", block)
        return block

    def system(
        self,
        conversation: Conversation,
        text: str,
        *,
        cache: TTL | bool | None = None,
        name: str | None = None,
    ) -> Block:
        """Add (or replace, by name) a system text block."""
        mark = marker(cache, self._settings.default_ttl)
        if mark and not text.strip():
            raise ValueError("A cached system block needs text: cache_control on an empty block is a 400.")
        block_name = name or conversation.unique_name("system")
        content = [{"type": "text", "text": text}] if text else []
        block = Block(name=block_name, role="system", kind="system", content=content, cache=mark)
        return self._add(conversation, block)

    def context(
        self,
        conversation: Conversation,
        content: str | Sequence[Mapping[str, Any]],
        *,
        cache: TTL | bool | None = None,
        name: str | None = None,
        source: str | None = None,
    ) -> Block:
        """Add (or replace) a user context block: text, or SDK content blocks (documents, images)."""
        mark = marker(cache, self._settings.default_ttl)
        items = [i for i in as_content(content) if not (i.get("type") == "text" and not i.get("text"))]
        if mark and not items:
            raise ValueError("A cached context block needs content: the cell is empty.")
        plain_json(items, "Context content")
        block_name = name or conversation.unique_name("context")
        block = Block(name=block_name, role="user", kind="context", content=items, cache=mark, source=source)
        return self._add(conversation, block)

    def tools(
        self,
        conversation: Conversation,
        defs: Iterable[Mapping[str, Any] | Callable[..., Any]],
        *,
        cache: TTL | bool | None = None,
        name: str | None = None,
    ) -> Block:
        """Add (or replace) a group of tool definitions (dicts, or functions described by their signature)."""
        mark = marker(cache, self._settings.default_ttl)
        params = [tool_param(d) for d in defs]
        if not params:
            raise ValueError("No tools given: pass tool definitions (dicts) or functions.")
        content = [dict(p) for p in params]
        plain_json(content, "Tool definitions")
        block_name = name or conversation.unique_name("tools")
        return self._add(
            conversation, Block(name=block_name, role="tools", kind="tools", content=content, cache=mark)
        )

    def drop(self, conversation: Conversation, name: str) -> Block:
        """Remove a block; a reply's tool results go with it (alone they are a 400)."""
        block = conversation.get(name)
        answers = tool_results_for(conversation, block) if block and block.role == "assistant" else []
        block = conversation.drop(name)
        for result in answers:
            conversation.drop(result.name)
        self._emit("blocks", block)
        return block
