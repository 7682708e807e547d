"""The cache's view of a request: an ordered list of prefix positions and their keys.

The API caches *prefixes*: `tools`, then `system`, then `messages`, up to and
including a block that carries a breakpoint.  This module flattens a request
into those positions, with each position's estimated tokens, its cumulative
prefix tokens and a chained hash that identifies the whole prefix up to it.
It also resolves the breakpoints of a request (explicit markers plus the
top-level automatic one) under the documented rules.

Both the emulator (which caches by these keys) and the session's pre-flight
checks (which predict what the emulator or the API will do) use it, so the
prediction and the outcome are computed by the same rules.  Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .tokens import MESSAGE_OVERHEAD, TOOLS_PREAMBLE, DigestMemo, TokenEstimator, block_digest

__all__ = [
    "LOOKBACK",
    "MAX_BREAKPOINTS",
    "Breakpoint",
    "CacheRuleError",
    "Layout",
    "Level",
    "Plan",
    "Position",
    "layout",
    "lookback_window",
    "message_blocks",
    "plan",
    "resolve_breakpoints",
]

Level = Literal["tools", "system", "messages"]
TTL = Literal["5m", "1h"]

#: Most blocks with `cache_control` in one request.
MAX_BREAKPOINTS = 4
#: Positions checked per breakpoint when looking back for an earlier write (itself included).
LOOKBACK = 20
#: Block types that may never carry a breakpoint.
_UNCACHEABLE = frozenset({"thinking", "redacted_thinking"})
TTL_SECONDS: dict[str, int] = {"5m": 300, "1h": 3600}


class CacheRuleError(ValueError):
    """A request that breaks a cache rule; the message is the API's own wording."""


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
class Breakpoint:
    """A position where the request asks for a cache write, with its lifetime."""

    position: int
    ttl: TTL
    automatic: bool = False


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


def _messages_salt(params: Mapping[str, Any]) -> bytes:
    """What invalidates only the messages level: tool_choice, thinking, and image presence."""
    images = 0
    for message in params.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            images += sum(1 for b in content if isinstance(b, dict) and b.get("type") == "image")
    salt = {
        "tool_choice": params.get("tool_choice"),
        "thinking": params.get("thinking"),
        "i": images,
    }
    return json.dumps(salt, sort_keys=True, default=str).encode()


def message_blocks(message: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A message's content as a list of blocks (a string is one text block)."""
    content = message.get("content", "")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content if isinstance(b, dict)]


def _entries(
    params: Mapping[str, Any],
) -> Iterator[tuple[Level, str, Mapping[str, Any], bytes, int | None, int]]:
    """(level, path, block, tag, message index, framing tokens) for each prefix position, in order."""
    for i, tool in enumerate(params.get("tools") or ()):
        yield "tools", f"tools.{i}", tool, b"T", None, TOOLS_PREAMBLE if i == 0 else 0
    system = params.get("system")
    if isinstance(system, str):
        system = [{"type": "text", "text": system}] if system else []
    for i, block in enumerate(system or ()):
        yield "system", f"system.{i}", block, b"S", None, 0
    for m, message in enumerate(params.get("messages") or ()):
        role = str(message.get("role", "")).encode()
        for j, block in enumerate(message_blocks(message)):
            tag = b"m" + role + str(m).encode() + b"." + str(j).encode()
            yield "messages", f"messages.{m}.content.{j}", block, tag, m, MESSAGE_OVERHEAD if j == 0 else 0


def layout(
    params: Mapping[str, Any],
    estimator: TokenEstimator,
    *,
    workspace: bytes = b"",
    memo: DigestMemo | None = None,
    previous: Layout | None = None,
) -> Layout:
    """Flatten `params` (a Messages request body) into prefix positions.

    `workspace` isolates caches (the emulator passes a digest of the API key);
    the model is part of every key because caches are per model.  `memo`
    recognises blocks already digested (see `tokens.DigestMemo`); with
    `previous`, the positions a request shares with the previous one (the very
    same block objects, as the session re-sends them) are reused, so a growing
    conversation costs only its new blocks.
    """
    digest_of = memo.digest if memo is not None else block_digest
    root = hashlib.sha256(workspace + b"\0" + str(params.get("model", "")).encode()).digest()
    salt = hashlib.sha256(_messages_salt(params)).digest()
    reusable = previous if previous is not None and previous.root == root else None
    positions: list[Position] = []
    blocks: list[Mapping[str, Any]] = []
    key, total = root, 0
    salted = False
    for level, path, block, tag, message, framing in _entries(params):
        if level == "messages" and not salted:
            key, salted = _chain(key, b"M", salt), True
            if reusable is not None and reusable.salt != salt:
                reusable = None
        index = len(positions)
        if reusable is not None and index < len(reusable.blocks) and reusable.blocks[index] is block:
            kept = reusable.positions[index]
            if kept.path == path:
                positions.append(kept)
                blocks.append(block)
                key, total = kept.key, kept.cumulative
                continue
        reusable = None
        digest = digest_of(block)
        if level == "tools":
            tokens, kind = estimator.tool(block, digest), "tool"
        else:
            tokens, kind = estimator.block(block, digest), str(block.get("type"))
        tokens += framing
        key = _chain(key, tag, digest)
        total += tokens
        cacheable = level == "tools" or _cacheable(block)
        positions.append(
            Position(
                index,
                level,
                path,
                kind,
                tokens,
                total,
                key,
                _marker(block),
                cacheable,
                digest,
                message,
            )
        )
        blocks.append(block)
    return Layout(tuple(positions), total, root=root, salt=salt, blocks=tuple(blocks))


def resolve_breakpoints(lay: Layout, automatic: Mapping[str, Any] | None = None) -> list[Breakpoint]:
    """The request's breakpoints in prefix order, or CacheRuleError as the API words it.

    `automatic` is the request's top-level `cache_control`: one breakpoint on
    the last block that can carry one (walking back past those that cannot).
    """
    points = [Breakpoint(p.index, p.marker) for p in lay.positions if p.marker is not None]
    if automatic is not None:
        ttl: TTL = "1h" if automatic.get("ttl") == "1h" else "5m"
        target = next((p for p in reversed(lay.positions) if p.cacheable), None)
        if target is not None:
            if target.marker is None:
                points.append(Breakpoint(target.index, ttl, automatic=True))
            elif target.marker != ttl:
                raise CacheRuleError(
                    f"{target.path}: automatic cache_control (ttl {ttl}) conflicts with the "
                    f"block's own cache_control (ttl {target.marker})."
                )
    if len(points) > MAX_BREAKPOINTS:
        raise CacheRuleError(
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {len(points)}."
        )
    seen_5m = False
    for point in sorted(points, key=lambda b: b.position):
        if point.ttl == "5m":
            seen_5m = True
        elif seen_5m:
            raise CacheRuleError(
                "A 'ttl'='1h' cache_control block must not come after a 'ttl'='5m' "
                "cache_control block. Note that blocks are processed in the following "
                "order: `tools`, `system`, `messages`."
            )
    return sorted(points, key=lambda b: b.position)


def lookback_window(position: int) -> Sequence[int]:
    """Positions searched for an earlier write from a breakpoint at `position`, nearest first."""
    return range(position, max(-1, position - LOOKBACK), -1)


@dataclass(frozen=True, slots=True)
class Plan:
    """What one request reads and writes, and how its input tokens are billed."""

    hit: int
    writes: tuple[Breakpoint, ...]
    read: int
    write_5m: int
    write_1h: int
    uncached: int

    @property
    def written(self) -> int:
        return self.write_5m + self.write_1h


def plan(lay: Layout, points: Sequence[Breakpoint], minimum: int, is_live: Callable[[bytes], bool]) -> Plan:
    """Apply the read, write and billing rules to one request.

    Reads: from each breakpoint, walk back at most LOOKBACK positions to the
    nearest live entry; the highest such position A is read.  Writes: every
    breakpoint after A whose prefix reaches the model's `minimum` (below it the
    request is processed uncached, silently).  Billing with mixed TTLs: read A,
    write up to the last 1h breakpoint B at the 1h rate, then up to the last
    breakpoint C at the 5m rate; `input_tokens` is what follows.
    """
    positions = lay.positions
    hit = -1
    for point in points:
        for j in lookback_window(point.position):
            if j <= hit:
                break
            if is_live(positions[j].key):
                hit = j
                break
    read = lay.tokens_at(hit)
    writes = tuple(p for p in points if p.position > hit and lay.tokens_at(p.position) >= minimum)
    one_hour = [p for p in writes if p.ttl == "1h"]
    top_1h = lay.tokens_at(one_hour[-1].position) if one_hour else read
    last = lay.tokens_at(writes[-1].position) if writes else read
    return Plan(hit, writes, read, last - top_1h, top_1h - read, lay.total_tokens - last)
