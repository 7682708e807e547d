"""Building the conversation block by block: the part of `Session` that the magics' cells call.

A mixin, so that `Session` reads as the call path while this module holds the rules for
what a block may be (a cached block needs content; names replace in place).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..core.conversation import Block, CacheControl, Conversation
from ..core.toolspec import tool_param
from ..core.ttl import TTL, TTLS
from ..core.turns import as_content, tool_results_for

__all__ = ["BlocksAPI"]


def _marker(cache: TTL | bool | None, default: TTL | None) -> CacheControl | None:
    """`None`/False: no marker; True: the default lifetime; "5m"/"1h": that lifetime."""
    if cache is None or cache is False:
        return None
    if cache is True:
        return CacheControl(ttl=default)
    if cache not in TTLS:
        raise ValueError(f"cache must be '5m' or '1h' (or None), not {cache!r}")
    return CacheControl(ttl=cache)


class BlocksAPI:
    """`system`, `context`, `tools` and `drop`, mixed into `Session`."""

    if TYPE_CHECKING:  # provided by Session
        conversation: Conversation
        default_ttl: TTL | None

        def _emit(self, event: Any, payload: Any = None) -> None: ...

    def _add(self, block: Block) -> Block:
        self.conversation.add(block)
        self._emit("blocks", block)
        return block

    def system(self, text: str, *, cache: TTL | bool | None = None, name: str | None = None) -> Block:
        """Add (or replace, by name) a system text block."""
        marker = _marker(cache, self.default_ttl)
        if marker and not text.strip():
            raise ValueError("A cached system block needs text: cache_control on an empty block is a 400.")
        block_name = name or self.conversation.unique_name("system")
        content = [{"type": "text", "text": text}] if text else []
        return self._add(Block(name=block_name, role="system", kind="system", content=content, cache=marker))

    def context(
        self,
        content: str | Sequence[Mapping[str, Any]],
        *,
        cache: TTL | bool | None = None,
        name: str | None = None,
        source: str | None = None,
    ) -> Block:
        """Add (or replace) a user context block: text, or SDK content blocks (documents, images)."""
        marker = _marker(cache, self.default_ttl)
        items = [i for i in as_content(content) if not (i.get("type") == "text" and not i.get("text"))]
        if marker and not items:
            raise ValueError("A cached context block needs content: the cell is empty.")
        block_name = name or self.conversation.unique_name("context")
        return self._add(
            Block(name=block_name, role="user", kind="context", content=items, cache=marker, source=source)
        )

    def tools(
        self,
        defs: Iterable[Mapping[str, Any] | Callable[..., Any]],
        *,
        cache: TTL | bool | None = None,
        name: str | None = None,
    ) -> Block:
        """Add (or replace) a group of tool definitions (dicts, or functions described by their signature)."""
        marker = _marker(cache, self.default_ttl)
        params = [tool_param(d) for d in defs]
        if not params:
            raise ValueError("No tools given: pass tool definitions (dicts) or functions.")
        block_name = name or self.conversation.unique_name("tools")
        return self._add(
            Block(
                name=block_name, role="tools", kind="tools", content=[dict(p) for p in params], cache=marker
            )
        )

    def drop(self, name: str) -> Block:
        """Remove a block; a reply's tool results go with it (alone they are a 400)."""
        block = self.conversation.get(name)
        answers = tool_results_for(self.conversation, block) if block and block.role == "assistant" else []
        block = self.conversation.drop(name)
        for result in answers:
            self.conversation.drop(result.name)
        self._emit("blocks", block)
        return block
