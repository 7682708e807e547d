"""The reasons a call read less than it could have: a changed block, an expired entry, a marker.

Each finder compares a call with the replayed cache (`_diagnose_replay`) or with the previous
call, and returns `Cause`s that name the block, the character offset and a before/after
excerpt, so the user sees what to change.  Kept apart from `diagnose`, which only ranks these
causes and words the summary.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..core.cache_settings import default_settings
from ..core.fmt import clock, duration
from ..core.rules import LOOKBACK, Plan
from ..core.ttl import TTL_SECONDS
from ._diagnose_replay import ReplayedCall, ReplayState
from .volatile import block_at, volatile_values

__all__ = ["Cause", "changed_cause", "marker_causes", "storage_causes"]


@dataclass(frozen=True, slots=True)
class Cause:
    """One reason a call read less than it could have: what, where, and what changed."""

    code: str
    short: str
    message: str
    path: str | None = None
    block: str | None = None
    offset: int | None = None
    before: str | None = None
    after: str | None = None
    missed: int = 0
    """Cache tokens this cause cost the call (an estimate; 0 when it cost nothing)."""


def _text(block: Mapping[str, Any]) -> str:
    if block.get("type") == "text" and isinstance(block.get("text"), str):
        return str(block["text"])
    return json.dumps({k: v for k, v in block.items() if k not in ("cache_control", "type")})  # as sent


def _excerpt(text: str, offset: int, width: int = 24) -> str:
    start, end = max(0, offset - width), min(len(text), offset + width)
    return ("…" if start else "") + text[start:end].replace("\n", "⏎") + ("…" if end < len(text) else "")


def _word(text: str, offset: int, limit: int = 32) -> str:
    """The whitespace-delimited run of `text` around `offset`: a changed timestamp, id or word."""
    start = max(text.rfind(" ", 0, offset), text.rfind("\n", 0, offset)) + 1
    end = min((i for i in (text.find(" ", offset), text.find("\n", offset)) if i >= 0), default=len(text))
    return text[start:end][:limit] if end > start else text[offset : offset + limit]


def _change(before: str, after: str, offset: int, limit: int = 32) -> str:
    """The change at `offset` in a few words: the word replaced, or the text added or removed at
    the end (where the words around `offset` would read the same on both sides)."""
    if offset >= len(before):
        return f"added {after[offset : offset + limit]!r}"
    if offset >= len(after):
        return f"removed {before[offset : offset + limit]!r}"
    old, new = _word(before, offset, limit), _word(after, offset, limit)
    if old == new:  # a change of blanks or punctuation at a word's edge: the characters themselves
        old, new = before[offset : offset + limit], after[offset : offset + limit]
    return f"{old!r} → {new!r}"


def _tools(params: Mapping[str, Any]) -> list[str]:
    return [str(t.get("name")) for t in params.get("tools") or ()]


_LEVELS = ("tools", "system", "messages")


def changed_cause(
    prev: ReplayedCall, cur: ReplayedCall, replay: ReplayState
) -> tuple[Cause | None, set[str | None]]:
    """The first change against the previous call, and the API reasons consistent with it."""
    a, b = prev.lay.positions, cur.lay.positions
    if prev.record.model != cur.record.model:
        cached = max((e.tokens for p in a if (e := replay.entries.get(p.key))), default=0)
        move = f"{prev.record.model} → {cur.record.model}"
        message = f"The model changed ({move}); caches are per model."
        return Cause("model_changed", f"model changed ({move})", message, missed=cached), {"model_changed"}
    d = next((i for i in range(min(len(a), len(b))) if a[i].key != b[i].key), None)
    if d is None:  # one call is a prefix of the other; the API compares whole messages, so it may differ
        extended = bool(a) and len(b) > len(a) and b[len(a)].message == a[-1].message
        return None, {None, "messages_changed"} if extended or len(b) < len(a) else {None}
    cached = max((e.tokens for p in a[d:] if (e := replay.entries.get(p.key))), default=0)
    missed = max(0, cached - (a[d - 1].cumulative if d else 0))
    old, new = a[d], b[d]
    level = min(old.level, new.level, key=_LEVELS.index)
    # where the change is: the block of the outer level (a removed system block, not the message after it)
    place, there = (new.path, cur) if new.level == level else (old.path, prev)
    at = Cause("", "", "", path=place, block=there.names.get(place), missed=missed)
    tools = _tools(prev.params), _tools(cur.params)
    same_tools = sorted(p.digest for p in a[: len(tools[0])]) == sorted(p.digest for p in b[: len(tools[1])])
    if level == "tools" and tools[0] != tools[1] and same_tools:
        before, after = ", ".join(tools[0]), ", ".join(tools[1])
        message = (
            f"The tools were reordered ({before} → {after}); the cached prefix starts with tools, so "
            "everything was written again. Define the tools in one fixed order."
        )
        return replace(
            at, code="tools_changed", short="tools reordered", message=message, before=before, after=after
        ), {"tools_changed"}
    if old.path == new.path and old.digest == new.digest:  # same block, new key: a setting's salt
        rows = default_settings().changed(prev.params, cur.params, (prev.lay.counts(), cur.lay.counts()))
        if rows:  # in table order: the system-level ones first
            # a setting "changed"; a row whose label is the change itself ("images added or removed")
            changed = " and ".join(r.label if " or " in r.label else f"{r.name} changed" for r in rows)
            system = rows[0].level == "system"
            levels = (
                "system and messages caches (tools stay"
                if system
                else "messages cache (tools and system stay"
            )
            # what to do: keep a setting as it was; put what is added or removed (images) in first
            same = [r.name for r in rows if " or " not in r.label]
            first = [r.label.split()[0] for r in rows if " or " in r.label]
            advice = " and ".join(
                ([f"keep {' and '.join(same)} the same from call to call"] if same else [])
                + ([f"put {' and '.join(first)} in the first turn"] if first else [])
            )
            message = (
                f"Since call {prev.record.index}, {changed}: that invalidates the {levels} cached). "
                f"{advice[0].upper()}{advice[1:]}, or expect this rewrite."
            )
            again = "system prompt and messages" if system else "messages"
            short = f"{changed} since call {prev.record.index} ({again} cached again)"
            api: set[str | None] = (
                {"unavailable"}
                if any(r.unavailable for r in rows)
                else {None, "unavailable", "messages_changed"}
            )
            return replace(at, code="settings_changed", short=short, message=message), api
    code = f"{level}_changed"
    if old.path != new.path:
        message = f"{prev.name(old.path)} is now {cur.name(new.path)}: a block was added or removed."
        return replace(
            at,
            code=code,
            short=f"{level} changed: a block added or removed at {there.short(place)}",
            message=message,
        ), {code}
    before_text, after_text = _text(block_at(prev.params, old.path)), _text(block_at(cur.params, new.path))
    offset = next((i for i, (x, y) in enumerate(zip(before_text, after_text, strict=False)) if x != y), None)
    offset = min(len(before_text), len(after_text)) if offset is None else offset
    before, after = _excerpt(before_text, offset), _excerpt(after_text, offset)
    word = _word(before_text, offset)
    looks = next(
        (f" That looks like {what}: it changes on every call." for *_, what in volatile_values(word)), ""
    )
    cost = (
        "Everything from there on is written again; keep changing content after the last marker."
        if missed
        else "That is past all the call read from the cache, so it cost nothing."
    )
    message = (
        f"{level} changed in {cur.name(new.path)}, character {offset}: {before!r} → {after!r}.{looks} {cost}"
    )
    # a table cell: the user's block name and "character", not "system.0 @44"
    where = cur.short(new.path)
    short = f"{level} changed in {where}, character {offset}: " + _change(before_text, after_text, offset)
    return replace(at, code=code, short=short, message=message, offset=offset, before=before, after=after), {
        code
    }


def storage_causes(cur: ReplayedCall, expected: Plan, replay: ReplayState) -> list[Cause]:
    """Entries of this prefix that the call did not read: expired, or out of every breakpoint's reach."""
    causes, now = [], cur.record.started_at
    entries, unready = replay.entries, replay.unready  # a call in flight's write: not readable yet
    deeper = [
        p
        for p in cur.lay.positions[expected.hit + 1 :]
        if p.key in entries and entries[p.key].by not in unready
    ]
    dead = [p for p in deeper if not replay.live(p.key, now)]
    if dead:
        p, entry = dead[-1], replay.entries[dead[-1].key]
        gap = now - entry.touched_at
        kept = entry.ttl == "5m" and gap < TTL_SECONDS["1h"]
        verdict = "a 1h lifetime would have kept it" if kept else "no lifetime would have kept it"
        verdict += "" if kept else " (pre-warm, or call sooner)"
        message = (
            f"The {entry.ttl} entry at {cur.name(p.path)}, {entry.tokens:,} tokens, last written or read "
            f"by call {entry.call} at {clock(entry.touched_at)}, expired at {clock(entry.expires_at)}, "
            f"{duration(now - entry.expires_at)} before this call ({duration(gap)} gap); {verdict}."
        )
        short = f"expired {entry.ttl} entry at {cur.short(p.path)}" + (" (1h would have kept it)" * kept)
        # A shallower entry of the other lifetime that expired too (a 1h one under a 5m one: what it
        # held is paid again); those of the same lifetime are the earlier calls' and say nothing new.
        other = next((q for q in reversed(dead) if replay.entries[q.key].ttl != entry.ttl), None)
        if other is not None:
            also = replay.entries[other.key]
            message += (
                f" The {also.ttl} entry at {cur.name(other.path)}, {also.tokens:,} tokens, had expired too, "
                f"at {clock(also.expires_at)} ({duration(now - also.touched_at)} gap)."
            )
            short += f" (and the {also.ttl} at {cur.short(other.path)})"
        causes.append(
            Cause(
                "expired", short, message, p.path, cur.names.get(p.path), missed=entry.tokens - expected.read
            )
        )
    alive = [p for p in deeper if replay.live(p.key, now)]
    if alive:
        p = alive[-1]
        after = [b.position - p.index for b in cur.points if b.position >= p.index]
        if after:
            code, short = (
                "beyond_lookback",
                f"entry {min(after)} blocks before the nearest marker (lookback {LOOKBACK})",
            )
            message = (
                f"The live entry at {cur.name(p.path)} is {min(after)} blocks before the nearest marker; "
                f"the API looks back only {LOOKBACK} blocks. Add a marker within {LOOKBACK} blocks after it."
            )
        else:
            code, short = (
                "marker_moved",
                f"no marker at or after {cur.short(p.path)} (moved or removed)",
            )
            message = (
                f"The live entry at {cur.name(p.path)} is not read: no marker sits at or after it any more."
            )
        causes.append(
            Cause(code, short, message, p.path, cur.names.get(p.path), missed=p.cumulative - expected.read)
        )
    return causes


def marker_causes(cur: ReplayedCall) -> list[Cause]:
    if not cur.points:
        return [
            Cause(
                "no_markers",
                "no cache markers",
                "No cache markers and no automatic caching: nothing is cached.",
            )
        ]
    minimum, low = cur.info.min_cache_tokens, [cur.lay.positions[b.position] for b in cur.points]
    low = [p for p in low if p.cumulative < minimum]
    if not low:
        return []
    p, many = low[-1], f"{len(low)} markers were" if len(low) > 1 else "this marker was"
    message = (
        f"The prefix up to {cur.name(p.path)} is an estimated {p.cumulative:,} tokens; "
        f"{cur.info.id} caches from {minimum:,}, so {many} ignored. "
        "Mark a later block, or add content before it."
    )
    short = f"below {cur.info.id}'s minimum ({p.cumulative:,} < {minimum:,} tokens)"
    return [Cause("below_minimum", short, message, p.path, cur.names.get(p.path))]
