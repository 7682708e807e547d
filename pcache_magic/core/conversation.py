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
from typing import Annotated, Any, Literal, cast

from anthropic.types import CacheControlEphemeralParam
from anthropic.types.message_create_params import MessageCreateParamsNonStreaming
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from .content import Content
from .env import without_api_key
from .rendering import Builder, RenderedMessages, Rendering, RenderMemo
from .ttl import TTL

__all__ = [
    "Block",
    "BlockKind",
    "CacheControl",
    "Conversation",
    "RenderedMessages",
    "Role",
    "cache_control",
    "marker_target",
]

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
    conversation is a shallow copy of its list, and its rendering can be kept (by the
    conversation: a block is created on every call, so it carries no cache of its own).
    """

    model_config = ConfigDict(frozen=True)

    name: str
    role: Role
    kind: BlockKind
    content: Annotated[list[dict[str, Any]], AfterValidator(Content)] = Field(default_factory=Content)
    """SDK content-block params (for `role="tools"`: tool definitions); read-only (`Content`)."""
    cache: CacheControl | None = None
    cache_index: int | None = None
    """Which content item carries the marker; None: the last one that can carry it."""
    source: str | None = None
    """Where the content came from (a file path, a cell), for display."""

    def rendered(self, marker: CacheControl | None = None) -> list[dict[str, Any]]:
        """The content with this block's marker placed, as it goes on the wire (new dicts).

        `marker` is for a block that has none of its own: the rendering of
        `model_copy(update={"cache": marker})` (the session's `cache="last"`).
        `Conversation.render` keeps what this returns, so the same dicts are sent again; nested
        lists and dicts are copied too, so an edit of the block's own items cannot reach what was
        checked (for the API key) and is sent again.
        """
        cache = self.cache if marker is None else marker
        items = [_copied(item) for item in self.content]
        for item in items:
            item.pop("cache_control", None)
        if cache is not None:
            target = marker_target(items, self.cache_index)
            if target is not None:
                items[target]["cache_control"] = cache.param()
        return items


def _copied(item: dict[str, Any]) -> dict[str, Any]:
    """`item` with its nested lists and dicts copied (its strings and numbers are immutable)."""
    out = dict(item)
    for key, value in out.items():
        if isinstance(value, dict | list):
            out[key] = copy.deepcopy(value)
    return out


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

    @functools.cached_property
    def _memo(self) -> RenderMemo:
        """Renderings kept between calls.  Not a field, so never dumped or compared (pydantic
        ignores cached properties); after the first call, a plain instance attribute (~50 ns)."""
        return RenderMemo()

    def add(self, block: Block) -> Block:
        """Append `block`, or replace the block of the same name where it stands."""
        index = self._memo.index
        at = index.positions(self.blocks).get(block.name)
        if at is not None:
            self.blocks[at] = block
        else:
            self.blocks.append(block)
        index.changed(self.blocks, block, at)
        return block

    def get(self, name: str) -> Block | None:
        at = self._memo.index.positions(self.blocks).get(name)
        return None if at is None else self.blocks[at]

    def calls_tools(self) -> bool:
        """Whether a reply holds a tool call (one that may want its result): most turns have none."""
        return self._memo.index.calls_tools(self.blocks)

    def drop(self, name: str) -> Block:
        """Remove a block by name; KeyError naming the known blocks if there is none."""
        at = self._memo.index.positions(self.blocks).get(name)
        if at is not None:
            return self.blocks.pop(at)
        known = ", ".join(b.name for b in self.blocks) or "none"
        raise KeyError(without_api_key(f"no block named {name!r} (blocks: {known})"))  # a key typed as it

    def names(self) -> list[str]:
        return [b.name for b in self.blocks]

    def unique_name(self, stem: str) -> str:
        """`stem`, or `stem-2`, `stem-3`... whichever is free."""
        taken = self._memo.index.positions(self.blocks)
        if stem not in taken:
            return stem
        n = 2
        while f"{stem}-{n}" in taken:
            n += 1
        return f"{stem}-{n}"

    def last_turn(self) -> Block | None:
        """The last user or assistant block (the one a request ends with), if any."""
        return next((b for b in reversed(self.blocks) if b.role == "user" or b.role == "assistant"), None)

    def in_request_order(self) -> Iterator[Block]:
        """Blocks as the cache reads them: tools, then system, then messages."""
        for role in ("tools", "system"):
            yield from (b for b in self.blocks if b.role == role)
        yield from (b for b in self.blocks if b.role in ("user", "assistant"))

    def copy_state(self) -> Conversation:
        """A snapshot, so a failed call can put everything back as it was (blocks are frozen)."""
        snapshot = Conversation(blocks=list(self.blocks))
        snapshot._memo = self._memo  # renderings are checked by identity: sharing them is safe
        return snapshot

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

        Incremental: the blocks the previous rendering began with (the same objects) are
        not rendered again, and their messages are the previous request's own dicts, so a
        growing conversation costs only its new blocks.  Treat the result as read-only.
        """
        blocks = list(self.blocks)  # one snapshot: another thread may add a block meanwhile
        marked: Block | None = None
        marked_at = -1
        if last_turn is not None:
            marked_at = next(
                (i for i in range(len(blocks) - 1, -1, -1) if blocks[i].role in ("user", "assistant")), -1
            )
            if marked_at >= 0 and blocks[marked_at].cache is None:
                marked = blocks[marked_at]
            else:
                marked_at = -1
        memo = self._memo
        kept = memo.last
        done = kept.kept_prefix(blocks, marked, marked_at, last_turn) if kept is not None else 0
        state = Builder.resume(kept.state, done) if kept is not None and done else Builder()
        for block in blocks[done:]:
            state.add(block, memo.rendered(block, last_turn if block is marked else None, blocks))
        memo.last = Rendering(blocks, marked, marked_at, last_turn, state)
        params: dict[str, Any] = {"model": model, "max_tokens": max_tokens}
        if state.tools:
            params["tools"] = state.tools
        if state.system:
            params["system"] = state.system
        params["messages"] = state.finish()
        if automatic is not None:
            params["cache_control"] = automatic.param()
        if extra:
            params.update(copy.deepcopy(extra))
        return cast(MessageCreateParamsNonStreaming, params), state.names  # a resumed state copies it
