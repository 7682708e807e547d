"""What a layout reads of a request besides its blocks: thinking cut, images, and the settings salts.

`prefix.layout` keys every position by the request's settings (`cache_settings`): their digests,
the salts, are chained into the keys from their level on.  A session sends the same settings call
after call, so the salts of the previous layout hold while what they were computed from is the
same: the salts are worked out again only when one of those inputs is another object (or the
request's image and citation counts differ).  Pure.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import Any

from .cache_settings import RequestSettings

__all__ = ["Salts", "count_images", "message_blocks", "salts", "thinking_cut"]

#: The readers of the settings table that read nothing but the tools (compared item by item) or
#: the counts (compared by value); a `field` reads its path.  A table with another reader is never
#: memoised.
_KNOWN = frozenset({"field", "server_tools", "deferred_tools", "citations", "images"})

Salts = tuple[bytes, bytes, tuple[Any, ...] | None]
"""(system salt, messages salt, what they were computed from: None when it cannot be told)."""


def _inputs(
    params: Mapping[str, Any], settings: RequestSettings, counts: Mapping[str, int]
) -> tuple[Any, ...] | None:
    """The objects the salts are a function of, or None if the table has a reader not known here."""
    heads: list[Any] = []
    for row in settings.rows:
        if row.reader not in _KNOWN:
            return None
        if row.reader == "field":
            if not row.path:  # the whole request
                return None
            heads.append(params.get(row.path[0]))
    return (settings, counts["images"], counts["citations"], tuple(heads), tuple(params.get("tools") or ()))


def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """The same table and counts, and the very same objects read (an equal copy is not trusted:
    `1 == True`, and a list edited in place compares equal to itself)."""
    if a[0] is not b[0] or a[1] != b[1] or a[2] != b[2] or len(a[3]) != len(b[3]) or len(a[4]) != len(b[4]):
        return False
    return all(map(operator.is_, a[3], b[3])) and all(map(operator.is_, a[4], b[4]))


def salts(
    params: Mapping[str, Any],
    settings: RequestSettings,
    counts: Mapping[str, int],
    previous: Salts | None = None,
) -> Salts:
    """The system and messages salts of `params`: `previous`'s own when computed from the same
    objects (the session's next call), else computed from the table."""
    inputs = _inputs(params, settings, counts)
    if inputs is not None and previous is not None and previous[2] is not None and _same(inputs, previous[2]):
        return previous[0], previous[1], inputs
    return settings.salt(params, counts, "system"), settings.salt(params, counts, "messages"), inputs


def thinking_cut(messages: Sequence[Mapping[str, Any]]) -> int:
    """The last user turn that is not tool results (0 if none): earlier thinking may go before it."""
    for m in range(len(messages) - 1, 0, -1):
        message = messages[m]
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str) or not all(
            isinstance(b, dict) and b.get("type") == "tool_result" for b in content or ()
        ):
            return m
    return 0


def count_images(message: Mapping[str, Any]) -> int:
    """Images in a message, those inside its tool results included (adding one anywhere counts)."""
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        return 0
    count = 0
    for block in content:
        if isinstance(block, dict):
            kind = block.get("type")
            if kind == "image":
                count += 1
            elif kind == "tool_result" and isinstance(block.get("content"), list):
                count += sum(1 for b in block["content"] if isinstance(b, dict) and b.get("type") == "image")
    return count


def message_blocks(message: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A message's content as a list of blocks (a string is one text block)."""
    content = message.get("content", "")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content if isinstance(b, dict)]
