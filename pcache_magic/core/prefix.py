"""The cache's view of a request: an ordered list of prefix positions and their keys.

The API caches *prefixes*: `tools`, then `system`, then `messages`, up to and
including a block that carries a breakpoint.  This module flattens a request
into those positions, with each position's estimated tokens, its cumulative
prefix tokens and a chained hash that identifies the whole prefix up to it.
Where the breakpoints are and what a request reads and writes at them is
`rules`, applied to these positions.

Both the emulator (which caches by these keys) and the session's pre-flight
checks (which predict what the emulator or the API will do) use it, so the
prediction and the outcome are computed by the same rules.  Pure: no I/O.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .digest import DigestMemo, block_digest
from .tokens import MESSAGE_OVERHEAD, TOOLS_PREAMBLE, TokenEstimator
from .ttl import TTL

__all__ = [
    "Layout",
    "Level",
    "Position",
    "count_images",
    "layout",
    "message_blocks",
]

Level = Literal["tools", "system", "messages"]

#: Block types that may never carry a breakpoint.
_UNCACHEABLE = frozenset({"thinking", "redacted_thinking"})


@dataclass(frozen=True, slots=True)
class Position:
    """One block of the prefix, in the order the cache reads them."""

    index: int
    level: Level
    path: str
    kind: str
    tokens: int
    cumulative: int
    key: bytes
    marker: TTL | None
    cacheable: bool
    digest: bytes
    message: int | None = None


@dataclass(frozen=True, slots=True)
class Layout:
    """A request flattened for the cache."""

    positions: tuple[Position, ...]
    total_tokens: int
    root: bytes = b""
    """Digest of the workspace and model: the start of every key."""
    salt: bytes = b""
    """Digest of what invalidates the messages level only."""
    blocks: tuple[Mapping[str, Any], ...] = ()
    """The block objects behind the positions (to recognise them in the next request)."""
    marked: tuple[int, ...] | None = None
    """Indices of the positions that carry a marker, as `layout` records them (see `markers`)."""
    roles: tuple[str, ...] = ()
    """The role of each message (part of its positions' keys)."""
    starts: tuple[int, ...] = ()
    """The index of each message's first position."""
    messages: tuple[Mapping[str, Any], ...] = ()
    """The message dicts (the very same ones in the next request are not looked into again)."""
    images: tuple[int, ...] = ()
    """Images in the messages up to and including each one (part of the messages salt)."""

    def markers(self) -> tuple[int, ...]:
        """Indices of the positions that carry a marker, in order."""
        if self.marked is not None:
            return self.marked
        return tuple(p.index for p in self.positions if p.marker is not None)

    def tokens_at(self, index: int) -> int:
        """Cumulative prefix tokens up to and including position `index` (0 before the first)."""
        return self.positions[index].cumulative if index >= 0 else 0


def _marker(block: Mapping[str, Any]) -> TTL | None:
    cc = block.get("cache_control")
    if not isinstance(cc, dict):
        return None
    return "1h" if cc.get("ttl") == "1h" else "5m"


def _cacheable(block: Mapping[str, Any]) -> bool:
    kind = block.get("type", "tool")
    if kind in _UNCACHEABLE:
        return False
    return not (kind == "text" and not block.get("text"))


def _chain(previous: bytes, tag: bytes, digest: bytes) -> bytes:
    return hashlib.sha256(previous + tag + digest).digest()


@functools.lru_cache(maxsize=64)
def _root(workspace: bytes, model: str) -> bytes:
    """The start of every key: the workspace and the model (caches are per workspace and model)."""
    return hashlib.sha256(workspace + b"\0" + model.encode()).digest()


def _salt_digest(salt: Mapping[str, Any]) -> bytes:
    return hashlib.sha256(json.dumps(salt, sort_keys=True, default=str).encode()).digest()


@functools.lru_cache(maxsize=64)
def _plain_salt(images: int) -> bytes:
    """The salt of a request with neither tool_choice nor thinking (most of them), by image count."""
    return _salt_digest({"tool_choice": None, "thinking": None, "i": images})


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


def _messages_salt(params: Mapping[str, Any], images: int) -> bytes:
    """What invalidates only the messages level: tool_choice, thinking, and image presence."""
    tool_choice, thinking = params.get("tool_choice"), params.get("thinking")
    if tool_choice is None and thinking is None:
        return _plain_salt(images)
    return _salt_digest({"tool_choice": tool_choice, "thinking": thinking, "i": images})


def message_blocks(message: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A message's content as a list of blocks (a string is one text block)."""
    content = message.get("content", "")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content if isinstance(b, dict)]


def _position(
    index: int,
    level: Level,
    number: int,
    block: Mapping[str, Any],
    message: int | None,
    role: str,
    before: Position | None,
    context: tuple[bytes, bytes, TokenEstimator, Callable[[Mapping[str, Any]], bytes]],
) -> Position:
    """The position of `block`, the `number`th of its level or message, right after `before`.

    `context` is the request's (root, salt, estimator, digest function).  A key chains the key
    before it (the root for the first), with the salt in between before the first messages position.
    """
    root, salt, estimator, digest_of = context
    key, total = (root, 0) if before is None else (before.key, before.cumulative)
    digest = digest_of(block)
    if level == "tools":
        path, tag = f"tools.{number}", b"T"
        tokens = estimator.tool(block, digest) + (TOOLS_PREAMBLE if number == 0 else 0)
        kind, cacheable = "tool", True
    else:
        if level == "system":
            path, tag, framing = f"system.{number}", b"S", 0
        else:
            path, tag = f"messages.{message}.content.{number}", f"m{role}{message}.{number}".encode()
            framing = MESSAGE_OVERHEAD if number == 0 else 0
            if before is None or before.level != "messages":
                key = _chain(key, b"M", salt)
        tokens = estimator.block(block, digest) + framing
        kind, cacheable = str(block.get("type")), _cacheable(block)
    return Position(
        index,
        level,
        path,
        kind,
        tokens,
        total + tokens,
        _chain(key, tag, digest),
        _marker(block),
        cacheable,
        digest,
        message,
    )


def layout(
    params: Mapping[str, Any],
    estimator: TokenEstimator,
    *,
    workspace: bytes = b"",
    memo: DigestMemo | None = None,
    previous: Layout | None = None,
    model: str | None = None,
) -> Layout:
    """Flatten `params` (a Messages request body) into prefix positions.

    `workspace` isolates caches (the emulator passes a digest of the API key);
    the model is part of every key because caches are per model: pass its
    canonical id as `model` when `params` may name it by an alias.  `memo`
    recognises blocks already digested (see `tokens.DigestMemo`); with
    `previous`, the positions a request shares with the previous one (the very
    same message dicts or block objects, as the session re-sends them, never
    changed in place) are reused, so a growing conversation costs only its new blocks.
    """
    root = _root(workspace, model or str(params.get("model", "")))
    source = previous if previous is not None and previous.root == root else None
    messages: Sequence[Mapping[str, Any]] = params.get("messages") or ()
    # The leading messages that are the source's very dicts (the session re-sends them): their
    # blocks are not looked at again, not even to count images.
    same = 0
    if source is not None:
        kept_messages = source.messages
        limit = min(len(messages), len(kept_messages))
        while same < limit and messages[same] is kept_messages[same]:
            same += 1
    images = list(source.images[:same]) if source is not None and same else []
    for message in messages[same:]:
        images.append((images[-1] if images else 0) + count_images(message))
    salt = _messages_salt(params, images[-1] if images else 0)
    context = (root, salt, estimator, memo.digest if memo is not None else block_digest)
    # Positions are reused while every one so far was: a prefix of the source's.  Then the same
    # block object at the same index, level and message (and role) has the same path and key.
    reusing = source is not None
    kept_positions = source.positions if source is not None else ()
    kept_blocks = source.blocks if source is not None else ()
    kept_roles = source.roles if source is not None else ()
    positions: list[Position] = []
    blocks: list[Mapping[str, Any]] = []
    marked: list[int] = []
    roles: list[str] = []
    reused = 0

    def add(level: Level, number: int, block: Mapping[str, Any], message: int | None, role: str) -> None:
        nonlocal reusing, reused
        index = len(positions)
        if reusing:
            if index < len(kept_blocks) and kept_blocks[index] is block:
                kept = kept_positions[index]
                if kept.level == level and kept.message == message:
                    positions.append(kept)
                    blocks.append(block)
                    reused += 1
                    return
            reusing = False
        p = _position(
            index, level, number, block, message, role, positions[-1] if positions else None, context
        )
        if p.marker is not None:
            marked.append(index)
        positions.append(p)
        blocks.append(block)

    for number, tool in enumerate(params.get("tools") or ()):
        add("tools", number, tool, None, "")
    system = params.get("system")
    if isinstance(system, str):
        system = [{"type": "text", "text": system}] if system else []
    for number, block in enumerate(system or ()):
        add("system", number, block, None, "")
    if source is not None and source.salt != salt:
        reusing = False  # every messages key changes
    kept_starts = source.starts if source is not None else ()
    starts: list[int] = []
    first = 0
    if reusing and same and kept_starts[0] == len(positions):  # those leading messages: one slice
        end = kept_starts[same] if same < len(kept_starts) else len(kept_positions)
        positions += kept_positions[len(positions) : end]
        blocks += kept_blocks[len(blocks) : end]
        roles += kept_roles[:same]
        starts += kept_starts[:same]
        reused, first = end, same
    for m in range(first, len(messages)):
        message = messages[m]
        role = str(message.get("role", ""))
        roles.append(role)
        start = len(positions)
        starts.append(start)
        if reusing and (m >= len(kept_roles) or kept_roles[m] != role or kept_starts[m] != start):
            reusing = False  # the same blocks in a message of another role or place have other keys
        content = message.get("content", "")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        number = 0
        for block in content:
            if isinstance(block, dict):
                add("messages", number, block, m, role)
                number += 1
    if reused:  # a prefix of the source's positions: its markers up to there come first
        assert source is not None
        marked[:0] = [i for i in source.markers() if i < reused]
    return Layout(
        tuple(positions),
        positions[-1].cumulative if positions else 0,
        root=root,
        salt=salt,
        blocks=tuple(blocks),
        marked=tuple(marked),
        roles=tuple(roles),
        starts=tuple(starts),
        messages=tuple(messages),
        images=tuple(images),
    )
