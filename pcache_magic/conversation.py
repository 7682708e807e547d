"""The session conversation: named blocks that become exactly the SDK's request params.

A notebook builds a conversation cell by cell.  Each cell is a named `Block`
(a group of tool definitions, a system text, a context document, a prompt, a
reply, tool results); re-running a cell replaces its block in place instead of
appending a duplicate.  A block may carry one cache marker.  `to_params()`
renders the blocks the way a careful engineer would write the request by hand:
`tools`, then `system`, then `messages`, consecutive same-role blocks merged
into one message, each marker on the right content block.  Pure: no I/O.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from typing import Any, Literal, cast

from anthropic.types import CacheControlEphemeralParam
from anthropic.types.message_create_params import MessageCreateParamsNonStreaming
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

__all__ = [
    "TTL",
    "Block",
    "BlockKind",
    "CacheControl",
    "Conversation",
    "Role",
    "cache_control",
    "marker_target",
]

TTL = Literal["5m", "1h"]
Role = Literal["tools", "system", "user", "assistant"]
BlockKind = Literal["tools", "system", "context", "prompt", "reply", "tool_result", "message"]


class CacheControl(BaseModel):
    """A cache marker: the API's `{"type": "ephemeral", "ttl": ...}`."""

    model_config = ConfigDict(frozen=True)

    type: Literal["ephemeral"] = "ephemeral"
    ttl: TTL | None = None
    """None means the API's default lifetime (5 minutes)."""

    @property
    def lifetime(self) -> TTL:
        return self.ttl or "5m"

    def param(self) -> CacheControlEphemeralParam:
        """The SDK's request param for this marker."""
        out: CacheControlEphemeralParam = {"type": "ephemeral"}
        if self.ttl is not None:
            out["ttl"] = self.ttl
        return out


@functools.lru_cache(maxsize=4)
def cache_control(ttl: TTL | None = None) -> CacheControl:
    """The marker for `ttl`, one shared (frozen) instance per lifetime: a rendering kept for it is
    recognised by identity from call to call."""
    return CacheControl(ttl=ttl)


class Block(BaseModel):
    """One named piece of the conversation (one notebook cell, one tool group, one reply).

    Frozen: a change is a new block (`model_copy(update=...)`), so a snapshot of the
    conversation is a shallow copy of its list, and the rendering can be kept.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    role: Role
    kind: BlockKind
    content: list[dict[str, Any]] = Field(default_factory=list)
    """SDK content-block params (for `role="tools"`: tool definitions)."""
    cache: CacheControl | None = None
    cache_index: int | None = None
    """Which content item carries the marker; None: the last one that can carry it."""
    source: str | None = None
    """Where the content came from (a file path, a cell), for display."""

    _rendering: tuple[Any, Any, int | None, list[dict[str, Any]]] | None = PrivateAttr(default=None)
    _marked: tuple[Any, Any, int | None, list[dict[str, Any]]] | None = PrivateAttr(default=None)

    def rendered(self, marker: CacheControl | None = None) -> list[dict[str, Any]]:
        """The content with this block's marker placed, as it goes on the wire.

        `marker` is for a block that has none of its own: the rendering of
        `model_copy(update={"cache": marker})` (the session's `cache="last"`).
        Kept between calls: the same dicts are sent again, so the session's digest
        memo recognises them by identity and a long conversation is not re-hashed.
        Treat the result as read-only.
        """
        cache = self.cache if marker is None else marker
        slot = "_rendering" if cache is self.cache else "_marked"
        kept = (self.__pydantic_private__ or {}).get(slot)
        # Frozen fields: the same objects mean the same rendering (a model_copy may differ).
        if kept is not None and kept[0] is cache and kept[1] is self.content and kept[2] == self.cache_index:
            return kept[3]
        items = [dict(item) for item in self.content]
        for item in items:
            item.pop("cache_control", None)
        if cache is not None:
            target = marker_target(items, self.cache_index)
            if target is not None:
                items[target]["cache_control"] = cache.param()
        setattr(self, slot, (cache, self.content, self.cache_index, items))
        return items


def marker_target(items: list[dict[str, Any]], index: int | None = None) -> int | None:
    """Index of the item a block's marker goes on: `index`, or the last cacheable item."""
    if index is not None:
        return index if 0 <= index < len(items) else None
    for i in range(len(items) - 1, -1, -1):
        kind = items[i].get("type")
        if kind in ("thinking", "redacted_thinking") or (kind == "text" and not items[i].get("text")):
            continue
        return i
    return None


class Conversation(BaseModel):
    """Ordered named blocks; the request is always rebuilt from them, never patched."""

    blocks: list[Block] = Field(default_factory=list)

    def add(self, block: Block) -> Block:
        """Append `block`, or replace the block of the same name where it stands."""
        for i, existing in enumerate(self.blocks):
            if existing.name == block.name:
                self.blocks[i] = block
                return block
        self.blocks.append(block)
        return block

    def get(self, name: str) -> Block | None:
        return next((b for b in self.blocks if b.name == name), None)

    def drop(self, name: str) -> Block:
        """Remove a block by name; KeyError naming the known blocks if there is none."""
        for i, block in enumerate(self.blocks):
            if block.name == name:
                return self.blocks.pop(i)
        known = ", ".join(b.name for b in self.blocks) or "none"
        raise KeyError(f"no block named {name!r} (blocks: {known})")

    def names(self) -> list[str]:
        return [b.name for b in self.blocks]

    def unique_name(self, stem: str) -> str:
        """`stem`, or `stem-2`, `stem-3`... whichever is free."""
        taken = set(self.names())
        if stem not in taken:
            return stem
        n = 2
        while f"{stem}-{n}" in taken:
            n += 1
        return f"{stem}-{n}"

    def in_request_order(self) -> Iterator[Block]:
        """Blocks as the cache reads them: tools, then system, then messages."""
        for role in ("tools", "system"):
            yield from (b for b in self.blocks if b.role == role)
        yield from (b for b in self.blocks if b.role in ("user", "assistant"))

    def copy_state(self) -> Conversation:
        """A snapshot, so a failed call can put everything back as it was (blocks are frozen)."""
        return Conversation(blocks=list(self.blocks))

    def to_params(
        self,
        *,
        model: str,
        max_tokens: int,
        automatic: CacheControl | None = None,
        **extra: Any,
    ) -> MessageCreateParamsNonStreaming:
        """The SDK's request params for this conversation.

        `automatic` adds the API's top-level `cache_control` (automatic caching);
        `extra` passes other request fields through (`tool_choice`, `thinking`...).
        """
        params = self.render(model=model, max_tokens=max_tokens, automatic=automatic, **extra)[0]
        return copy.deepcopy(params)

    def render(
        self,
        *,
        model: str,
        max_tokens: int,
        automatic: CacheControl | None = None,
        last_turn: CacheControl | None = None,
        **extra: Any,
    ) -> tuple[MessageCreateParamsNonStreaming, dict[str, str]]:
        """`to_params()` plus where each block landed: request path -> block name.

        Paths are those of `prefix.layout` (`tools.0`, `system.1`,
        `messages.2.content.0`), so findings and predictions can name blocks.
        `last_turn` marks the last user or assistant block when it has no marker
        of its own (as a copy with that block marked would, without copying the conversation).
        """
        blocks = self.blocks
        marked: Block | None = None
        if last_turn is not None:
            marked = next((b for b in reversed(blocks) if b.role == "user" or b.role == "assistant"), None)
            if marked is not None and marked.cache is not None:
                marked = None
        names: dict[str, str] = {}
        turn_names: dict[str, str] = {}
        tools: list[dict[str, Any]] = []
        system: list[dict[str, Any]] = []
        messages: list[dict[str, Any]] = []
        current: list[dict[str, Any]] = []
        current_role, prefix = "", ""
        for block in blocks:
            role = block.role
            if role == "user" or role == "assistant":
                content = block.rendered(last_turn) if block is marked else block.rendered()
                if not content:
                    continue
                if role != current_role:
                    current, current_role = [], role
                    messages.append({"role": role, "content": current})
                    prefix = f"messages.{len(messages) - 1}.content."
                name = block.name
                for j in range(len(current), len(current) + len(content)):
                    turn_names[f"{prefix}{j}"] = name
                current.extend(content)
            elif role == "tools" or role == "system":
                target = tools if role == "tools" else system
                name = block.name
                for j, item in enumerate(block.rendered(), len(target)):
                    names[f"{role}.{j}"] = name
                    target.append(item)
        names.update(turn_names)
        params: dict[str, Any] = {"model": model, "max_tokens": max_tokens}
        if tools:
            params["tools"] = tools
        if system:
            params["system"] = system
        params["messages"] = messages
        if automatic is not None:
            params["cache_control"] = automatic.param()
        if extra:
            params.update(copy.deepcopy(extra))
        return cast(MessageCreateParamsNonStreaming, params), names
