"""Block digests: what the cache keys a block by, as the model reads it (markers excluded).

The emulator's cache table, the session's ledger and the token estimator's memo all key blocks
by these digests, so a block re-sent with another marker is the same entry, and one with its
keys reordered is not.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

__all__ = ["DigestMemo", "block_digest"]

_TEXT_KEYS = frozenset({"type", "text", "cache_control"})


def block_digest(block: Mapping[str, Any]) -> bytes:
    """A digest of a block's content as the model reads it, ignoring its `cache_control` marker.

    Markers do not change what the model reads, so a block re-sent with a
    different marker must hash (and count) the same.
    """
    text = block.get("text")
    if block.get("type") == "text" and isinstance(text, str) and block.keys() <= _TEXT_KEYS:
        # Fast path for the bulk of a long prompt: hash the text, not its escaped JSON.
        # The tag cannot begin a JSON document, so these digests never collide with the others.
        return hashlib.sha256(b"\0text\0" + text.encode("utf-8", "surrogatepass")).digest()
    # The block's own fields in a fixed order (the API renders them in its own format), but what is
    # inside them as sent: a tool input or schema with its keys reordered is another prompt, a miss.
    fields = {k: block[k] for k in sorted(block) if k != "cache_control"}
    raw = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).digest()


class DigestMemo:
    """Block digests remembered by object identity, for a caller that re-sends the same dicts.

    The session renders each unchanged block to the same dict objects call after
    call; recognising them by identity makes re-keying a long conversation a
    lookup per block.  A text block copied to move its marker (`cache="auto"` places markers
    on copies) keeps its text string, so plain text blocks are also remembered by the identity
    of their text: a long document is not hashed again for a marker.  Each entry holds its
    object, so an id is never reused while remembered.  Only for dicts that are never mutated
    after rendering.
    """

    def __init__(self, size: int = 50_000) -> None:
        self._items: OrderedDict[int, tuple[Mapping[str, Any], bytes]] = OrderedDict()
        self._texts: OrderedDict[int, tuple[str, bytes]] = OrderedDict()
        self._size = size

    def digest(self, block: Mapping[str, Any]) -> bytes:
        hit = self._items.get(id(block))
        if hit is not None and hit[0] is block:
            return hit[1]
        text = block.get("text")
        if type(text) is str and block.get("type") == "text" and block.keys() <= _TEXT_KEYS:
            kept = self._texts.get(id(text))
            if kept is not None and kept[0] is text:
                value = kept[1]
            else:
                value = block_digest(block)
                self._texts[id(text)] = (text, value)
                if len(self._texts) > self._size:
                    self._texts.popitem(last=False)
        else:
            value = block_digest(block)
        self._items[id(block)] = (block, value)
        if len(self._items) > self._size:
            self._items.popitem(last=False)
        return value
