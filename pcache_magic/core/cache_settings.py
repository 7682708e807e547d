"""What a request's settings do to its cache: the docs' invalidation table, as data.

``data/cache_settings.json`` holds one row per setting: how its value is read from a request
body (a *reader*), the value that is the same as omitting it (``default``), and the first cache
level a change of it invalidates: ``system`` (system and messages; tools stay cached),
``messages`` (messages only), or none (not part of the prefix: tools with ``defer_loading``).
Tool definitions need no row: they *are* the tools level, every later key chains them.
A structured-output format (`output_config.format`) is a system-level row: the API renders it as
an extra system prompt, whose estimated tokens `prefix.layout` adds (`output_format.format_tokens`).

`prefix.layout` salts the keys from each level on with the values of that level's rows, so a
changed setting misses exactly where the docs say; the emulator's diagnostics compare the same
values (``unavailable`` when only a setting differs); the session's diagnosis names the row.

The file also holds the **uncached tail** (`RequestSettings.tail_tokens`): with the breakpoint on
the very last block, the real API still bills a few ``input_tokens``, the opening of the
assistant turn that follows the last block.  It is part of every prompt and of no cached prefix:
Anthropic's prompt-caching cookbook, recorded with claude-sonnet-4-5, shows 3 on each of four
turns whose breakpoint is on the last user block, and turn N+1 reads exactly what turn N wrote
(an earlier recording shows 4).  The file names its sources.  Pure: no I/O after the first load.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

__all__ = [
    "RequestSettings",
    "Setting",
    "ToolRole",
    "count_citations",
    "default_settings",
]

Level = Literal["tools", "system", "messages"]
ToolRole = Literal["prefix", "setting", "deferred"]
"""How a tool definition enters the prefix: as a tools-level key (`prefix`), as a setting rendered
into the system prompt (`setting`: web search), or not at all (`deferred`)."""

_CITED = frozenset({"document", "search_result"})


@dataclass(frozen=True, slots=True)
class Setting:
    """One row of the table."""

    name: str
    label: str
    reader: str
    level: Level | None
    """The first level a change invalidates (that one and every later one); None: no level."""
    path: tuple[str, ...] = ()
    default: Any = None
    unavailable: bool = True
    """Whether cache diagnostics answer `unavailable` when only this setting differs (images are
    content: an added image is a change of the messages)."""
    match: str = ""
    source: str = ""
    note: str = ""


def _cites(block: Mapping[str, Any]) -> bool:
    citations = block.get("citations")
    return isinstance(citations, Mapping) and citations.get("enabled") is True


def count_citations(message: Mapping[str, Any]) -> int:
    """Documents and search results with citations enabled in a message, tool results included."""
    content = message.get("content") if isinstance(message, Mapping) else None
    if not isinstance(content, list):
        return 0
    count = 0
    for block in content:
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind in _CITED:
            count += _cites(block)
        elif kind == "tool_result" and isinstance(block.get("content"), list):
            count += sum(1 for b in block["content"] if isinstance(b, Mapping) and _cites(b))
    return count


def _field(row: Setting, params: Mapping[str, Any], counts: Mapping[str, int]) -> Any:
    value: Any = params
    for part in row.path:
        value = value.get(part) if isinstance(value, Mapping) else None
    return None if value == row.default else value


def _server_tools(row: Setting, params: Mapping[str, Any], counts: Mapping[str, int]) -> Any:
    found = [
        {k: v for k, v in tool.items() if k != "cache_control"}
        for tool in params.get("tools") or ()
        if isinstance(tool, Mapping)
        and str(tool.get("type", "")).startswith(row.match)
        and tool.get("defer_loading") is not True
    ]
    return found or None


def _citations(row: Setting, params: Mapping[str, Any], counts: Mapping[str, int]) -> Any:
    return True if counts.get("citations") else None


def _images(row: Setting, params: Mapping[str, Any], counts: Mapping[str, int]) -> Any:
    return counts.get("images", 0)


def _deferred(row: Setting, params: Mapping[str, Any], counts: Mapping[str, int]) -> Any:
    names = [
        t.get("name") for t in params.get("tools") or () if isinstance(t, Mapping) and t.get("defer_loading")
    ]
    return names or None


#: How each reader named in the data file reads a setting's value from a request (None: omitted).
_READERS: dict[str, Callable[[Setting, Mapping[str, Any], Mapping[str, int]], Any]] = {
    "field": _field,
    "server_tools": _server_tools,
    "citations": _citations,
    "images": _images,
    "deferred_tools": _deferred,
}


@functools.lru_cache(maxsize=256)
def _digest(raw: str) -> bytes:
    return hashlib.sha256(raw.encode()).digest()


@dataclass(frozen=True, slots=True)
class RequestSettings:
    """The invalidation table and the uncached tail, with their sources."""

    rows: tuple[Setting, ...]
    tail_tokens: int
    as_of: str
    sources: Mapping[str, str]

    def row(self, name: str) -> Setting:
        return next(r for r in self.rows if r.name == name)

    def values(
        self, params: Mapping[str, Any], counts: Mapping[str, int], level: Level | None = None
    ) -> dict[str, Any]:
        """Each keyed setting's value in `params` (None: omitted or the default), for one level or all.

        `counts` are the request's `images` and `citations` (see `count_citations`), which the
        layout keeps per message so that a growing conversation is not scanned again.
        """
        return {
            r.name: _READERS[r.reader](r, params, counts)
            for r in self.rows
            if r.level is not None and (level is None or r.level == level)
        }

    def diagnosed(self, params: Mapping[str, Any], counts: Mapping[str, int]) -> dict[str, Any]:
        """The values whose difference alone makes cache diagnostics answer `unavailable`."""
        unavailable = {r.name for r in self.rows if r.unavailable}
        return {k: v for k, v in self.values(params, counts).items() if k in unavailable}

    def salt(self, params: Mapping[str, Any], counts: Mapping[str, int], level: Level) -> bytes:
        """A digest of the level's setting values: chained into every key from that level on."""
        raw = json.dumps(self.values(params, counts, level), sort_keys=True, default=str)
        return _digest(raw)

    def changed(
        self,
        before: Mapping[str, Any],
        after: Mapping[str, Any],
        counts: tuple[Mapping[str, int], Mapping[str, int]],
    ) -> list[Setting]:
        """The keyed rows whose value differs between two requests, in table order."""
        old, new = self.values(before, counts[0]), self.values(after, counts[1])
        return [r for r in self.rows if r.name in old and old[r.name] != new[r.name]]

    def tool_role(self, tool: Mapping[str, Any]) -> ToolRole:
        """Whether a tool definition is a tools-level key, a system-level setting, or absent."""
        if tool.get("defer_loading") is True:
            return "deferred"
        kind = tool.get("type")
        if isinstance(kind, str) and any(
            r.reader == "server_tools" and kind.startswith(r.match) for r in self.rows
        ):
            return "setting"
        return "prefix"


def _row(data: Mapping[str, Any]) -> Setting:
    reader = str(data["reader"])
    if reader not in _READERS:
        raise ValueError(f"cache_settings.json: setting {data.get('name')!r} has unknown reader {reader!r}")
    level = data.get("invalidates")
    if level not in ("tools", "system", "messages", None):
        raise ValueError(f"cache_settings.json: setting {data.get('name')!r} invalidates {level!r}")
    path = data.get("path")
    return Setting(
        name=str(data["name"]),
        label=str(data.get("label") or data["name"]),
        reader=reader,
        level=level,
        path=tuple(str(path).split(".")) if path else (),
        default=data.get("default"),
        unavailable=data.get("diagnostics", "unavailable") == "unavailable",
        match=str(data.get("match", "")),
        source=str(data.get("source", "")),
        note=str(data.get("note", "")),
    )


@functools.cache
def default_settings() -> RequestSettings:
    """The packaged table (parsed once per process; immutable)."""
    text = (resources.files(__package__ or "pcache_magic.core") / "data" / "cache_settings.json").read_text(
        encoding="utf-8"
    )
    data = json.loads(text)
    return RequestSettings(
        rows=tuple(_row(r) for r in data["settings"]),
        tail_tokens=int(data["uncached_tail"]["tokens"]),
        as_of=str(data["as_of"]),
        sources=dict(data["sources"]),
    )
