"""Warn, before sending, about values in a cached block that will differ on the next call.

A timestamp, today's date, a UUID, a random hex id or a temporary path inside the cached
prefix changes from one call to the next, so every call writes the cache again and never
reads it: the most common silent miss.  `volatile_findings()` scans only the blocks at or
before the request's last breakpoint (content after it is not cached, so it may change
freely) and reports each kind once per block, as a `cache.Finding` with the fix.  The
patterns are deliberately narrow so ordinary prose, code and numbers ("in 2024 we sold
1,234 units", "version 3.11", "at 10:30") do not raise false alarms: a date alone counts
only when a word such as "today", "current" or "generated" introduces it.  Pure.
"""

from __future__ import annotations

import bisect
import functools
import json
import re
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.fmt import labelled
from ..core.prefix import Layout, Position
from ..core.preflight import Finding
from ..core.rules import Breakpoint, CacheRuleError, resolve_breakpoints

__all__ = ["ScanMemo", "block_at", "volatile_findings", "volatile_values"]

_DATE = r"(?:19|20)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"
_DAY_MONTH_YEAR = rf"{_MONTH} \d{{1,2}},? (?:19|20)\d\d|\d{{1,2}} {_MONTH},? (?:19|20)\d\d"
_WRITTEN_DATE = rf"(?:{_DATE}|\d{{1,2}}/\d{{1,2}}/(?:19|20)\d\d|{_DAY_MONTH_YEAR})"
_CUE = r"\b(?:today|tonight|now|current(?:ly)?|generated|timestamp|as of|last updated|updated at|date|time)\b"


@dataclass(frozen=True, slots=True)
class _Kind:
    """A volatile kind: a cheap anchor (a pattern the regex engine scans for fast, starting with a
    character class), how far around it the value may lie, and the exact pattern checked there."""

    name: str
    what: str
    anchor: re.Pattern[str]
    before: int
    after: int
    pattern: re.Pattern[str]


_CLOCK = re.compile(r"\d:\d\d")
#: Ordered: where two kinds match the same characters, the first wins.
_KINDS = (
    _Kind(
        "timestamp",
        "a timestamp",
        _CLOCK,
        16,
        32,
        re.compile(rf"\b{_DATE}[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:?\d\d)?\b"),
    ),
    _Kind(
        "time",
        "a time of day with seconds",
        _CLOCK,
        4,
        20,
        re.compile(r"(?<![\d:.])\d{1,2}:\d\d:\d\d(?:\.\d+)?(?![\d:])"),
    ),
    _Kind(
        "uuid",
        "a UUID",
        re.compile(r"[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"),
        12,
        40,
        re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
    ),
    _Kind(
        "hex",
        "a random-looking hex id",
        re.compile(r"[0-9a-f]{16}"),
        256,
        256,
        re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{16,}\b"),
    ),
    _Kind(
        "epoch",
        "a Unix timestamp",
        re.compile(r"1[5-9]\d{8}"),
        2,
        24,
        re.compile(r"(?<![\d.,])1[5-9]\d{8}(?:\d{3}|\.\d+)?(?![\d,])"),
    ),
    _Kind(
        "temp-path",
        "a temporary path",
        re.compile(r"tmp|/var/|Temp\\"),
        24,
        300,
        re.compile(
            r"(?:/tmp/|/var/folders/|/private/var/folders/|/var/tmp/|\\AppData\\Local\\Temp\\)[^\s'\"`)\]]+"
            r"|\btmp[a-z0-9_]{6,}\b"
        ),
    ),
    _Kind(
        "date",
        "the current date",
        re.compile(r"(?:19|20)\d\d"),
        80,
        12,
        re.compile(rf"(?i:{_CUE})[^.\n]{{0,40}}?\b{_WRITTEN_DATE}"),
    ),
)
_DATE_ONLY = re.compile(_WRITTEN_DATE)


def _windows(text: str, kind: _Kind) -> Iterator[tuple[int, int]]:
    """Merged ranges around the kind's anchors: the exact pattern runs only there (it is slow)."""
    low = high = -1
    for match in kind.anchor.finditer(text):
        start, end = max(0, match.start() - kind.before), min(len(text), match.end() + kind.after)
        if start > high:
            if high >= 0:
                yield low, high
            low = start
        high = max(high, end)
    if high >= 0:
        yield low, high


def volatile_values(text: str) -> Iterator[tuple[str, str, int, str]]:
    """(kind, matched text, offset, description) for each volatile-looking value in `text`.

    Long texts are remembered: a pre-flight check re-reads the same document on every call.
    """
    return iter(_remembered(text)) if len(text) >= _REMEMBER_FROM else _values(text)


#: Texts at least this long have their findings remembered (shorter ones are scanned in microseconds).
_REMEMBER_FROM = 2_048


@functools.lru_cache(maxsize=256)
def _remembered(text: str) -> tuple[tuple[str, str, int, str], ...]:
    return tuple(_values(text))


def _values(text: str) -> Iterator[tuple[str, str, int, str]]:
    taken: list[tuple[int, int]] = []
    for kind in _KINDS:
        for low, high in _windows(text, kind):
            for match in kind.pattern.finditer(text, low, high):
                start, end = match.span()
                if kind.name == "date":  # report the date itself, not the cue before it
                    date = _DATE_ONLY.search(match.group())
                    start, end = (start + date.start(), start + date.end()) if date else (start, end)
                if any(s < end and start < e for s, e in taken):
                    continue
                taken.append((start, end))
                yield kind.name, text[start:end], start, kind.what


def _texts(block: Mapping[str, Any]) -> Iterator[str]:
    """The text a block puts in the prompt: text, tool_result content, text documents, tool definitions."""
    kind = block.get("type", "tool")
    if kind == "text":
        yield str(block.get("text") or "")
    elif kind == "tool_result":
        content = block.get("content")
        if isinstance(content, str):
            yield content
        for item in content if isinstance(content, list) else ():
            if isinstance(item, Mapping):
                yield from _texts(item)
    elif kind == "document":
        source = block.get("source") or {}
        if source.get("type") == "text":
            yield str(source.get("data") or "")
        elif source.get("type") == "content":
            for item in source.get("content") or ():
                if isinstance(item, Mapping):
                    yield from _texts(item)
    elif kind == "tool":
        yield json.dumps(
            {k: v for k, v in block.items() if k not in ("cache_control", "type")}, sort_keys=True
        )


def block_at(params: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    """The request block at a `prefix.layout` path (`tools.1`, `system.0`, `messages.2.content.0`)."""
    level, *rest = path.split(".")
    if level == "tools":
        return {**params["tools"][int(rest[0])], "type": "tool"}
    if level == "system":
        system = params["system"]
        return {"type": "text", "text": system} if isinstance(system, str) else system[int(rest[0])]
    content = params["messages"][int(rest[0])]["content"]
    return {"type": "text", "text": content} if isinstance(content, str) else content[int(rest[2])]


#: What a block holds, per kind: (kind, first value, its offset, description, how many values).
_Hits = tuple[tuple[str, str, int, str, int], ...]


def _scan(block: Mapping[str, Any]) -> _Hits:
    """The volatile values of one request block (as `block_at` returns it), first of each kind."""
    hits: dict[str, list[tuple[str, int, str]]] = {}
    for text in _texts(block):
        for kind, value, offset, what in volatile_values(text):
            hits.setdefault(kind, []).append((value, offset, what))
    if not hits:
        return ()
    return tuple((kind, *values[0], len(values)) for kind, values in hits.items())


class ScanMemo:
    """What the blocks of a session's requests hold, remembered between calls.

    Per block, by its content digest (`prefix.Position.digest`): a block's text does not
    change from call to call (a changed block has a new digest), so each is scanned once.
    Per cached prefix, by the key of its last position (which chains the digests and paths
    of every block before it): the blocks that hold something, so a call whose cached
    prefix was seen before costs one lookup.  Bounded: past `size` entries of either kind,
    the oldest is forgotten (and worked out again if it comes back).
    """

    def __init__(self, size: int = 4_096) -> None:
        self._blocks: OrderedDict[tuple[bool, bytes], _Hits] = OrderedDict()
        self._prefixes: OrderedDict[bytes, tuple[tuple[int, _Hits], ...]] = OrderedDict()
        self._size = size

    def hits(self, params: Mapping[str, Any], position: Position) -> _Hits:
        """What the block at `position` of `params` holds."""
        # Tools are scanned as definitions, other blocks by their type: the level is part of the key.
        key = (position.level == "tools", position.digest)
        found = self._blocks.get(key)
        if found is None:
            found = self._blocks[key] = _scan(block_at(params, position.path))
            if len(self._blocks) > self._size:
                self._blocks.popitem(last=False)
        return found

    def prefix(self, params: Mapping[str, Any], layout: Layout, last: int) -> tuple[tuple[int, _Hits], ...]:
        """(position index, what it holds) for the blocks up to position `last` that hold something."""
        key = layout.positions[last].key
        found = self._prefixes.get(key)
        if found is None:
            scanned = ((p.index, self.hits(params, p)) for p in layout.positions[: last + 1])
            found = self._prefixes[key] = tuple((index, hits) for index, hits in scanned if hits)
            if len(self._prefixes) > self._size:
                self._prefixes.popitem(last=False)
        return found

    def __len__(self) -> int:
        return len(self._blocks)


def volatile_findings(
    params: Mapping[str, Any],
    layout: Layout,
    names: Mapping[str, str] | None = None,
    *,
    points: Sequence[Breakpoint] | None = None,
    memo: ScanMemo | None = None,
    minimum: int = 0,
) -> list[Finding]:
    """Warnings for volatile values in the cached blocks of `params` (those at or before its last breakpoint).

    `layout` is `prefix.layout(params, ...)`; `names` maps request paths to block names.
    One finding per block and kind, naming the first value found and how many there are.
    `points` are the request's breakpoints when the caller has resolved them already;
    `memo` remembers each block's values between calls (see `ScanMemo`).  `minimum`: the model's
    least cached prefix; a marker below it caches nothing, so it covers no block.
    """
    names = names or {}
    if points is None:
        try:
            points = resolve_breakpoints(layout, params.get("cache_control"))
        except CacheRuleError:  # pre-flight reports the error; still scan up to the last explicit marker
            points = []
    marks = sorted(b.position for b in points) if points else list(layout.markers())
    marks = [m for m in marks if layout.positions[m].cumulative >= minimum]  # those that cache
    if not marks:
        return []
    holding = (memo if memo is not None else ScanMemo()).prefix(params, layout, marks[-1])
    found: list[Finding] = []
    for index, hits in holding:
        position = layout.positions[index]
        block = names.get(position.path, position.path)
        # the first marker whose prefix holds the block: its own, if it has one
        cover = layout.positions[marks[bisect.bisect_left(marks, index)]].path
        marker = "its own marker" if cover == position.path else f"the marker on {labelled(names, cover)}"
        for _, value, offset, what, count in hits:
            more = f" (and {count - 1} more)" if count > 1 else ""
            found.append(
                Finding(
                    level="warning",
                    code="volatile",
                    block=block,
                    message=f"{labelled(names, position.path)} holds {what}, {value!r} at character {offset}"
                    f"{more}, and is cached ({marker} covers it): if it changes, "
                    "the next call misses the cache from this block on.",
                    fix="Move changing values after the last cache marker (e.g. into the prompt), or make "
                    "them stable (a date without the time, a fixed id, a relative path).",
                )
            )
    return found
