"""Requests packed for a session file, and unpacked again exactly as they were sent.

A conversation's Nth request repeats the N-1 before it, so a file of the requests as sent grows
with the square of the conversation.  Packed, each distinct content item and each distinct
message is written once (`SessionFile.items`, `.messages`), and a call's messages are the
previous call's first `keep` plus those it `add`s: the file grows with what is new.  Items are
told apart by their JSON, key order included (a reordered tool schema is another prompt), and
recognised first by identity, since the session sends the same dicts call after call.
Unpacking shares the objects again (requests are read-only), so a loaded session holds each
item once in memory too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .schema import PackedMessage, PackedRequest, RawMessage, SavedCall

__all__ = ["Packer", "unpack_requests"]

_PACKED = ("tools", "system", "messages")
#: The messages every call's request holds, summed over the calls: each is a reference, but a file
#: of a few MB could ask for billions (`keep` them all, call after call) and every load replays them.
MAX_SENT_MESSAGES = 5_000_000


def _text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class Packer:
    """Packs requests one after the other (in call order: `keep` refers to the previous one)."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.messages: list[dict[str, Any]] = []
        self._item_at: dict[str, int] = {}
        self._message_at: dict[str, int] = {}
        self._seen: dict[int, tuple[Any, int]] = {}
        """id(object) -> (object, index): kept alive while packing, so an id is never reused."""
        self._seen_messages: dict[int, tuple[Any, int]] = {}
        self._previous: list[int] = []

    def item(self, value: Any) -> int:
        seen = self._seen.get(id(value))
        if seen is not None and seen[0] is value:
            return seen[1]
        text = _text(value)
        index = self._item_at.get(text)
        if index is None:
            index = self._item_at[text] = len(self.items)
            self.items.append(value)
        self._seen[id(value)] = (value, index)
        return index

    def message(self, message: Any) -> int:
        seen = self._seen_messages.get(id(message))
        if seen is not None and seen[0] is message:
            return seen[1]
        content = message.get("content") if isinstance(message, dict) else None
        packed: dict[str, Any]
        if (
            isinstance(message, dict)
            and list(message) == ["role", "content"]
            and message["role"] in ("user", "assistant")
            and isinstance(content, str | list)
        ):
            items = content if isinstance(content, str) else [self.item(c) for c in content]
            packed = {"role": message["role"], "content": items}
        else:
            packed = {"raw": message}
        text = _text(packed)
        index = self._message_at.get(text)
        if index is None:
            index = self._message_at[text] = len(self.messages)
            self.messages.append(packed)
        self._seen_messages[id(message)] = (message, index)
        return index

    def request(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """`params` packed (a `PackedRequest` as JSON-ready data)."""
        fields: dict[str, Any] = {}
        packed: dict[str, Any] = {"keys": list(params), "fields": fields}
        refs: list[int] = []
        for key, value in params.items():
            if key == "tools" and isinstance(value, list):
                packed["tools"] = [self.item(tool) for tool in value]
            elif key == "system" and isinstance(value, str | list):
                packed["system"] = value if isinstance(value, str) else [self.item(v) for v in value]
            elif key == "messages" and isinstance(value, list):
                refs = [self.message(m) for m in value]
            else:
                fields[key] = value
        previous, keep = self._previous, 0
        limit = min(len(refs), len(previous))
        while keep < limit and refs[keep] == previous[keep]:
            keep += 1
        if "messages" not in fields and "messages" in params:
            packed["keep"], packed["add"] = keep, refs[keep:]
        self._previous = refs
        return packed


def _message(packed: PackedMessage | RawMessage, items: Sequence[Any], where: str) -> Any:
    if isinstance(packed, RawMessage):
        return packed.raw
    content = packed.content
    if isinstance(content, str):
        return {"role": packed.role, "content": content}
    for i in content:
        if i >= len(items):
            raise ValueError(f"{where}.content: item {i} is not in items (it holds {len(items)})")
    return {"role": packed.role, "content": [items[i] for i in content]}


def _indices(refs: list[int], limit: int, where: str, what: str) -> list[int]:
    bad = next((i for i in refs if i >= limit), None)
    if bad is not None:
        raise ValueError(f"{where}: {what} {bad} is not in the file (it holds {limit})")
    return refs


def unpack_requests(
    items: Sequence[Any], messages: Sequence[PackedMessage | RawMessage], calls: Sequence[SavedCall]
) -> list[dict[str, Any]]:
    """Every call's request as it was sent; ValueError ('where: what') for a reference that is
    not in the file."""
    pool = [_message(m, items, f"messages.{n}") for n, m in enumerate(messages)]
    previous: list[Any] = []
    requests = []
    sent = 0
    for n, call in enumerate(calls):
        packed: PackedRequest = call.request
        where = f"calls.{n}.request"
        params: dict[str, Any] = {}
        current: list[Any] = []
        for key in packed.keys:
            if key in packed.fields:
                params[key] = packed.fields[key]
            elif key == "tools" and packed.tools is not None:
                params[key] = [items[i] for i in _indices(packed.tools, len(items), where, "item")]
            elif key == "system" and packed.system is not None:
                system = packed.system
                params[key] = (
                    system
                    if isinstance(system, str)
                    else [items[i] for i in _indices(system, len(items), where, "item")]
                )
            elif key == "messages":
                if packed.keep > len(previous):
                    raise ValueError(
                        f"{where}.keep: {packed.keep} messages of the previous call, which had "
                        f"{len(previous)}"
                    )
                added = _indices(packed.add, len(pool), where, "message")
                sent += min(packed.keep, len(previous)) + len(added)
                if sent > MAX_SENT_MESSAGES:
                    raise ValueError(
                        f"{where}: the requests so far send over {MAX_SENT_MESSAGES:,} messages in all, "
                        "more than a session's file holds"
                    )
                current = params[key] = previous[: packed.keep] + [pool[i] for i in added]
            else:
                raise ValueError(f"{where}.keys: {key!r} has no value in the file")
        unknown = set(packed.fields) - set(packed.keys)
        if unknown:
            raise ValueError(f"{where}.fields: {sorted(unknown)[0]!r} is not one of its keys")
        previous = current
        requests.append(params)
    return requests
