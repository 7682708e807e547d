"""The cache's view of a request: an ordered list of prefix positions and their keys.

The API caches *prefixes*: `tools`, then `system`, then `messages`, up to and
including a block that carries a breakpoint.  This module flattens a request
into those positions, with each position's estimated tokens, its cumulative
prefix tokens and a chained hash that identifies the whole prefix up to it.
Where the breakpoints are and what a request reads and writes at them is
`rules`, applied to these positions.

Settings that move the cache without being blocks (web search, citations, speed at the system
level; tool_choice, thinking, effort, images at the messages level) are salts chained into the
keys from their level on, read through the table in `cache_settings`; a deferred tool
(`defer_loading`) is no key and no token, and a web search tool no tools-level key.
`Layout.total_tokens` adds the uncached tail (`cache_settings.RequestSettings.tail_tokens`: the
assistant turn's opening after the last block, 3 tokens on the real API), which no breakpoint can
reach: with the breakpoint on the last block a request still bills it as `input_tokens`, as the
real API does (Anthropic's prompt-caching cookbook; the sources are in data/cache_settings.json).

Earlier thinking is no part of the prompt on models that strip it (`models.keeps_thinking`): once a
user turn that is not tool results follows an assistant turn, that turn's thinking blocks are
neither counted nor keyed, as the API drops them; within a tool loop they stay, and are cached.

Both the emulator (which caches by these keys) and the session's pre-flight
checks (which predict what the emulator or the API will do) use it, so the
prediction and the outcome are computed by the same rules.  Pure: no I/O.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from .cache_settings import RequestSettings, count_citations, default_settings
from .digest import DigestMemo, block_digest
from .models import keeps_thinking
from .output_format import format_tokens
from .prefix_inputs import Salts, count_images, message_blocks, salts, thinking_cut
from .rendering import RenderedMessages, shared_prefix
from .tokens import MESSAGE_OVERHEAD, TOOLS_PREAMBLE, TokenEstimator
from .ttl import TTL

__all__ = [
    "Layout",
    "Level",
    "Position",
    "count_images",
    "layout",
    "message_blocks",
    "thinking_cut",
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
    link: bytes = b""
    """The key the next position chains from when it is not this one's own: a tool that is no part
    of the tools prefix (deferred, or web search) passes on the one before it."""


@dataclass(frozen=True, slots=True)
class Layout:
    """A request flattened for the cache."""

    positions: tuple[Position, ...]
    total_tokens: int
    """The whole prompt: every position plus the uncached tail (0 for an empty request)."""
    root: bytes = b""
    """Digest of the workspace and model: the start of every key."""
    salt: bytes = b""
    """Digest of what invalidates the messages level only."""
    system_salt: bytes = b""
    """Digest of what invalidates the system and messages levels (not the tools)."""
    blocks: tuple[Mapping[str, Any], ...] = ()
    """The block objects behind the positions (to recognise them in the next request)."""
    marked: tuple[int, ...] | None = None
    """Indices of the positions that carry a marker, as `layout` records them (see `markers`)."""
    roles: tuple[str, ...] = ()
    """The role of each message (part of its positions' keys)."""
    starts: tuple[int, ...] = ()
    """The index of each message's first position."""
    messages: Sequence[Mapping[str, Any]] = ()
    """The message dicts (the very same ones in the next request are not looked into again): a
    rendering's own `RenderedMessages` (never changed), else a tuple of them."""
    images: tuple[int, ...] = ()
    """Images in the messages up to and including each one (part of the messages salt)."""
    citations: tuple[int, ...] = ()
    """Blocks with citations enabled in the messages up to and including each one (a system salt)."""
    stripped: int = 0
    """Assistant turns before this message index have their thinking blocks stripped (0: none)."""
    salted: Salts | None = field(default=None, compare=False, repr=False)
    """The salts with what they were computed from (`prefix_inputs.salts`), for the next request."""

    def counts(self) -> dict[str, int]:
        """The request's images and cited blocks, as the settings table reads them."""
        return {
            "images": self.images[-1] if self.images else 0,
            "citations": self.citations[-1] if self.citations else 0,
        }

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


_Context = tuple[
    bytes, tuple[bytes, bytes], TokenEstimator, Callable[[Mapping[str, Any]], bytes], RequestSettings, int
]
"""A request's (root, (system salt, messages salt), estimator, digest function, settings table,
tokens its structured-output format adds to the system prompt: `output_format.format_tokens`)."""


def _path(level: Level, number: int, message: int | None) -> str:
    """A position's request path (`tools.0`, `system.1`, `messages.2.content.0`)."""
    return f"messages.{message}.content.{number}" if level == "messages" else f"{level}.{number}"


def _position(
    index: int,
    level: Level,
    number: int,
    block: Mapping[str, Any],
    message: int | None,
    role: str,
    before: Position | None,
    context: _Context,
    digest: bytes | None = None,
) -> Position:
    """The position of `block`, the `number`th of its level or message, right after `before`.

    A key chains the key before it (the root for the first), with the system salt in between
    before the first position past the tools and the messages salt before the first messages one.
    A tool that is a setting (web search) or deferred passes the key before it on unchanged.
    `digest`: the block's, when the caller has it already.
    """
    root, salts, estimator, digest_of, settings, added = context
    key, total = (root, 0) if before is None else (before.link or before.key, before.cumulative)
    digest = digest_of(block) if digest is None else digest
    link = b""
    path = _path(level, number, message)
    if level == "tools":
        tag, kind, cacheable = b"T", "tool", True
        part = settings.tool_role(block)
        if part == "deferred":  # not in the prompt until tool search loads it: no tokens, no breakpoint
            tokens, cacheable, link = 0, False, key
        else:
            tokens = estimator.tool(block, digest) + (TOOLS_PREAMBLE if total == 0 else 0)
            if part == "setting":  # rendered into the system prompt: a system salt, not in the chain
                link = key
    else:
        if before is None or before.level == "tools":
            key = _chain(key, b"S", salts[0])
        if level == "system":
            tag, framing = b"S", 0
        else:
            tag = f"m{role}{message}.{number}".encode()
            # The first block in the prompt frames the message (an earlier one may be stripped thinking).
            framing = MESSAGE_OVERHEAD if before is None or before.message != message else 0
            if before is None or before.level != "messages":
                key = _chain(key, b"M", salts[1])
        added = added if before is None or before.level == "tools" else 0  # the format's prompt, once
        tokens = estimator.block(block, digest) + framing + added
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
        link,
    )


def layout(
    params: Mapping[str, Any],
    estimator: TokenEstimator,
    *,
    workspace: bytes = b"",
    memo: DigestMemo | None = None,
    previous: Layout | None = None,
    model: str | None = None,
    settings: RequestSettings | None = None,
    keep_thinking: bool | None = None,
) -> Layout:
    """Flatten `params` (a Messages request body) into prefix positions.

    `workspace` isolates caches (the emulator passes a digest of the API key);
    the model is part of every key because caches are per model: pass its
    canonical id as `model` when `params` may name it by an alias.  `memo`
    recognises blocks already digested (see `tokens.DigestMemo`); with
    `previous`, the positions a request shares with the previous one (the very
    same message dicts or block objects, as the session re-sends them, never
    changed in place) are reused, so a growing conversation costs only its new blocks.
    `settings` is the invalidation table (the packaged one by default).  `keep_thinking`: whether
    earlier turns' thinking stays in the prompt (by default, as the model table says for the model).
    """
    settings = settings or default_settings()
    model = model or str(params.get("model", ""))
    root = _root(workspace, model)
    source = previous if previous is not None and previous.root == root else None
    messages: Sequence[Mapping[str, Any]] = params.get("messages") or ()
    # The leading messages that are the source's very dicts (the session re-sends them): their
    # blocks are not looked at again, not even to count images (found in one C loop).  The very
    # dicts, not equal ones: `{"n": True} == {"n": 1}`, but the API reads `true` and `1`.
    same = shared_prefix(messages, source.messages, identical=True) if source is not None else 0
    images = list(source.images[:same]) if source is not None and same else []
    citations = list(source.citations[:same]) if source is not None and same else []
    for message in messages[same:]:
        images.append((images[-1] if images else 0) + count_images(message))
        citations.append((citations[-1] if citations else 0) + count_citations(message))
    counts = {"images": images[-1] if images else 0, "citations": citations[-1] if citations else 0}
    if keep_thinking is None:
        keep_thinking = keeps_thinking(model)
    cut = 0 if keep_thinking else thinking_cut(messages)
    salted = salts(params, settings, counts, source.salted if source is not None else None)
    system_salt, salt = salted[0], salted[1]
    digest_of = memo.digest if memo is not None else block_digest
    added = format_tokens(params, estimator)
    context: _Context = (root, (system_salt, salt), estimator, digest_of, settings, added)
    # Positions are reused while every one so far was: a prefix of the source's.  Then the same
    # block at the same index, level, message and path (and role) has the same key: the same
    # object, or one of the same digest (a copy with its marker moved), whose marker is its own.
    reusing = source is not None
    kept_positions = source.positions if source is not None else ()
    kept_blocks = source.blocks if source is not None else ()
    kept_roles = source.roles if source is not None else ()
    positions: list[Position] = []
    blocks: list[Mapping[str, Any]] = []
    marked: list[int] = []
    roles: list[str] = []
    reused = 0
    moved: dict[int, bool] = {}  # reused positions whose marker changed: whether they have one now

    def add(level: Level, number: int, block: Mapping[str, Any], message: int | None, role: str) -> None:
        nonlocal reusing, reused
        index = len(positions)
        digest = None
        if reusing:
            kept = kept_positions[index] if index < len(kept_blocks) else None
            if (
                kept is not None
                and kept.level == level
                and kept.message == message
                and (kept_blocks[index] is block or (digest := digest_of(block)) == kept.digest)
                and kept.path == _path(level, number, message)
            ):
                marker = kept.marker if kept_blocks[index] is block else _marker(block)
                if marker != kept.marker:
                    moved[index] = marker is not None
                    kept = replace(kept, marker=marker)
                positions.append(kept)
                blocks.append(block)
                reused += 1
                return
            reusing = False
        p = _position(
            index, level, number, block, message, role, positions[-1] if positions else None, context, digest
        )
        if p.marker is not None:
            marked.append(index)
        positions.append(p)
        blocks.append(block)

    for number, tool in enumerate(params.get("tools") or ()):
        add("tools", number, tool, None, "")
    if source is not None and source.system_salt != system_salt:
        reusing = False  # every key past the tools changes
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
    if source is not None and source.stripped != cut:  # messages past the lower cut may differ
        same = min(same, source.stripped, cut)
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
        strip = m < cut and role == "assistant"
        for block in content:
            if isinstance(block, dict):
                # A marked one stays: the request is a 400 anyway, which the pre-flight names by it.
                if not (strip and block.get("type") in _UNCACHEABLE and "cache_control" not in block):
                    add("messages", number, block, m, role)
                number += 1
    if reused:  # a prefix of the source's positions: its markers up to there come first
        assert source is not None
        kept_marks = [i for i in source.markers() if i < reused and moved.get(i, True)]
        if moved:
            kept_marks = sorted({*kept_marks, *(i for i, has in moved.items() if has)})
        marked[:0] = kept_marks
    return Layout(
        tuple(positions),
        positions[-1].cumulative + settings.tail_tokens if positions else 0,
        root=root,
        salt=salt,
        system_salt=system_salt,
        blocks=tuple(blocks),
        marked=tuple(marked),
        roles=tuple(roles),
        starts=tuple(starts),
        messages=messages if type(messages) is RenderedMessages else tuple(messages),
        images=tuple(images),
        citations=tuple(citations),
        stripped=cut,
        salted=salted,
    )
