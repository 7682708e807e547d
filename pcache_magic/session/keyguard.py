"""The API key never travels in a request body: a request holding it anywhere is refused.

A key pasted into a cell, or expanded into a prompt from a variable, would be sent, kept in the
call record, shown by the views, saved and exported.  Every request is scanned before it goes
(`CallPipeline.begin_call`) for the keys `transport.secrets` knows.  The session re-sends the
same block objects call after call, so a block found clean is remembered by identity and not
scanned again.  The messages of a conversation's rendering (`RenderedMessages`) are never
changed once built, so those the last clean request began with are skipped whole: a rendering
built on it says how many are its very dicts; otherwise the same or equal dicts are found at C
speed.  A call costs a scan of its new blocks only, not a walk of a thousand-message
conversation.  Every other field (`thinking`, `metadata`, `service_tier`, any extra keyword, a
message's own fields) is small and scanned whole each time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..core.conversation import RenderedMessages
from ..core.env import holds_piece
from ..core.preflight import Finding
from ..core.rendering import shared_prefix
from .transport import STAND_IN

__all__ = ["KeyGuard", "refuse_key_in_name"]

#: Blocks remembered as clean; past this the memory starts over (a scan is cheap, memory is not).
_REMEMBERED = 20_000

#: The fields `_blocks` walks block by block (remembering clean blocks); all others are scanned whole.
_WALKED = frozenset({"system", "tools", "messages"})


class KeyGuard:
    """Finds an API key anywhere in a request body: its system, tools and messages block by block
    (remembering clean blocks), every other field whole at each call."""

    def __init__(self) -> None:
        self._clean: dict[int, object] = {}  # id -> the block itself, so the id is not reused
        self._keys: tuple[str, ...] = ()
        """The keys the memory holds for: other keys mean every block is scanned again."""
        self._messages: list[Any] = []
        """The rendered messages of the last request found clean (never changed: not copied)."""

    def check(
        self, params: Mapping[str, Any], keys: Sequence[str], names: Mapping[str, str] | None = None
    ) -> Finding | None:
        """An error finding naming the first block that holds one of `keys`, or None (`names`: the
        block names by request path, to name the block)."""
        if not keys:
            return None
        names = names or {}
        if tuple(keys) != self._keys:
            self._keys, self._clean, self._messages = tuple(keys), {}, []
        messages = params.get("messages")
        rendered = messages if type(messages) is RenderedMessages else None
        skip = shared_prefix(rendered, self._messages) if rendered is not None else 0
        for path, block in _blocks(params, skip):
            if isinstance(block, dict | list) and self._clean.get(id(block)) is block:
                continue
            if _holds(block, keys):
                return _found(path, names, keys)
            if isinstance(block, dict | list):
                if len(self._clean) >= _REMEMBERED:
                    self._clean.clear()
                self._clean[id(block)] = block
        for path, value in _fields(params, skip):
            if _holds(value, keys):  # small fields: scanned every time, never remembered
                return _found(path, names, keys)
        self._messages = rendered if rendered is not None else []
        return None


def refuse_key_in_name(name: str, keys: Sequence[str]) -> None:
    """ValueError, never repeating it, if block name `name` holds one of `keys`, or a piece of a
    secret one (`env.holds_piece`: a key split by a space or a dot, or with a character added): a
    name is never sent, but every view shows it and the session file keeps it, so a key typed where
    a name goes is refused when the block is added."""
    secret = [key for key in keys if not key.startswith(STAND_IN)]  # a stand-in hides nothing
    if any(key in name for key in keys if len(key) <= len(name)) or holds_piece(name, secret):
        raise ValueError("That block name holds the API key; give the block another name (--name).")


def _found(path: str, names: Mapping[str, str], keys: Sequence[str]) -> Finding:
    """The finding for a key at `path`; the key itself is never repeated (a field named by the
    key shows as `<key>`)."""
    for key in keys:
        path = path.replace(key, "<key>")
    return Finding(
        level="error",
        code="api-key-in-request",
        block=names.get(path, path),
        message=f"The request holds the API key (at {path}); it is never sent.",
        fix="Take the key out of that prompt, block, tool or option, then run the cell again.",
    )


def _holds(value: Any, keys: Sequence[str]) -> bool:
    """Whether a key is in one of the strings of `value` (its texts and field names): a substring
    search of each, rather than of the block's JSON, which would first copy a long text whole.
    Walked with a stack, so a value nested deeper than Python recurses is still searched."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            for k, v in item.items():
                stack += (k, v)
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif item is not None and not isinstance(item, int | float):
            text = item if isinstance(item, str) else str(item)
            if any(key in text for key in keys):
                return True
    return False


def _blocks(params: Mapping[str, Any], skip: int = 0) -> Iterator[tuple[str, Any]]:
    """Each top-level piece of a request that can carry text, with its request path, but the
    first `skip` messages."""
    for name in ("system", "tools"):
        value = params.get(name)
        if isinstance(value, list | tuple):
            yield from ((f"{name}.{i}", b) for i, b in enumerate(value))
        elif value is not None:
            yield name, value
    messages = _messages(params)
    if messages is None:
        yield "messages", params.get("messages")
        return
    for m in range(skip, len(messages)):
        message = messages[m]
        content = message.get("content") if isinstance(message, Mapping) else message
        if isinstance(content, list):
            yield from ((f"messages.{m}.content.{i}", b) for i, b in enumerate(content))
        else:
            yield f"messages.{m}", content


def _fields(params: Mapping[str, Any], skip: int = 0) -> Iterator[tuple[str, Any]]:
    """Every other part of the request body, with its path: each top-level field but the three
    `_blocks` walks (`thinking`, `metadata`, `service_tier`, `container`, any extra keyword; the
    field's name too), and each field of a message past `skip` but its content (`role`, extras)."""
    for name, value in params.items():
        if name not in _WALKED:
            yield str(name), name
            yield str(name), value
    for m in range(skip, len(_messages(params) or ())):
        message = params["messages"][m]
        if isinstance(message, Mapping):
            for name, value in message.items():
                if name != "content":
                    yield f"messages.{m}.{name}", (name, value)


def _messages(params: Mapping[str, Any]) -> Sequence[Any] | None:
    """The request's messages as a list to walk one by one; None if they are something else
    (then scanned whole)."""
    messages = params.get("messages")
    if messages is None:
        return ()
    return messages if isinstance(messages, list | tuple) else None
