"""The API key never travels in a request body: a prompt, block or tool that holds it is refused.

A key pasted into a cell, or expanded into a prompt from a variable, would be sent, kept in the
call record, shown by the views, saved and exported.  Every request is scanned before it goes
(`CallPipeline.begin_call`) for the keys `transport.secrets` knows.  The session re-sends the
same block objects call after call, so a block found clean is remembered by identity and not
scanned again.  The messages of a conversation's rendering (`RenderedMessages`) are never
changed once built, so those the last clean request began with (the same or equal dicts,
compared at C speed) are skipped whole: a call costs a scan of its new blocks only, not a walk
of a thousand-message conversation.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..core.conversation import RenderedMessages
from ..core.identity import common_prefix
from ..core.preflight import Finding

__all__ = ["KeyGuard"]

#: Blocks remembered as clean; past this the memory starts over (a scan is cheap, memory is not).
_REMEMBERED = 20_000


class KeyGuard:
    """Finds an API key in a request's system, tools and messages, remembering clean blocks."""

    def __init__(self) -> None:
        self._clean: dict[int, object] = {}  # id -> the block itself, so the id is not reused
        self._keys: tuple[str, ...] = ()
        """The keys the memory holds for: other keys mean every block is scanned again."""
        self._messages: list[Any] = []
        """The rendered messages of the last request found clean (a copy of its list)."""

    def check(
        self, params: Mapping[str, Any], keys: Sequence[str], names: Mapping[str, str]
    ) -> Finding | None:
        """An error finding naming the first block that holds one of `keys`, or None."""
        if not keys:
            return None
        if tuple(keys) != self._keys:
            self._keys, self._clean, self._messages = tuple(keys), {}, []
        messages = params.get("messages")
        rendered = messages if type(messages) is RenderedMessages else None
        skip = common_prefix(rendered, self._messages) if rendered is not None else 0
        for path, block in _blocks(params, skip):
            if isinstance(block, dict | list) and self._clean.get(id(block)) is block:
                continue
            if _holds(block, keys):
                return Finding(
                    level="error",
                    code="api-key-in-request",
                    block=names.get(path, path),
                    message=f"The request holds the API key (at {path}); it is never sent.",
                    fix="Take the key out of that prompt, block or tool, then run the cell again.",
                )
            if isinstance(block, dict | list):
                if len(self._clean) >= _REMEMBERED:
                    self._clean.clear()
                self._clean[id(block)] = block
        self._messages = list(rendered) if rendered is not None else []
        return None


def _holds(value: Any, keys: Sequence[str]) -> bool:
    """Whether a key is in one of the strings of `value` (its texts and field names): a substring
    search of each, rather than of the block's JSON, which would first copy a long text whole."""
    if isinstance(value, str):
        return any(key in value for key in keys)
    if isinstance(value, Mapping):
        return any(_holds(k, keys) or _holds(v, keys) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_holds(v, keys) for v in value)
    if value is None or isinstance(value, int | float):
        return False
    return _holds(str(value), keys)


def _blocks(params: Mapping[str, Any], skip: int = 0) -> Iterator[tuple[str, Any]]:
    """Each top-level piece of a request that can carry text, with its request path, but the
    first `skip` messages."""
    system = params.get("system")
    if isinstance(system, str):
        yield "system", system
    elif isinstance(system, list):
        yield from ((f"system.{i}", b) for i, b in enumerate(system))
    for i, tool in enumerate(params.get("tools") or ()):
        yield f"tools.{i}", tool
    messages = params.get("messages") or ()
    for m in range(skip, len(messages)):
        message = messages[m]
        content = message.get("content") if isinstance(message, Mapping) else message
        if isinstance(content, list):
            yield from ((f"messages.{m}.content.{i}", b) for i, b in enumerate(content))
        else:
            yield f"messages.{m}", content
    for field in ("stop_sequences", "metadata", "output_config", "tool_choice"):
        if field in params:
            yield field, params[field]
