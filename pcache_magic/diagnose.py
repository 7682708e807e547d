"""Why each call hit, wrote or missed the cache, in words a notebook user can act on.

Silent misses are the top complaint about prompt caching: a timestamp in the system
prompt, a reordered tool, a block just under the minimum, an expired entry.  `explain()`
replays the session's calls by the rules the emulator applies (`prefix.plan`), so it knows
which entries existed, when they expired and which breakpoint could reach them, and it
compares each call with the previous one to find the first block that changed (level,
block, character offset, a before/after excerpt).  When the API sent its own
`diagnostics.cache_miss_reason`, it is shown beside the local explanation and a
disagreement is flagged, not hidden.  Pure: reads the session, imports no IPython.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from html import escape
from typing import Any

from .prefix import LOOKBACK, TTL_SECONDS, Breakpoint, CacheRuleError, Layout, Plan, plan, resolve_breakpoints
from .usage import CallRecord
from .volatile import block_at, volatile_values

__all__ = ["Cause", "Explainer", "Explanation", "Mark", "explain", "explain_all"]

_LEVELS = ("tools", "system", "messages")
#: Most specific first: the summary names the first cause that cost the call something.
_PRIORITY = (
    "model_changed",
    "workspace_changed",
    "tools_changed",
    "system_changed",
    "messages_changed",
    "settings_changed",
    "expired",
    "beyond_lookback",
    "marker_moved",
    "below_minimum",
    "no_markers",
    "unexplained",
)


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


@dataclass(frozen=True, slots=True)
class Mark:
    """What one breakpoint did: `hit`, `wrote`, `covered` (a longer prefix was read) or `below-minimum`."""

    path: str
    block: str | None
    ttl: str
    tokens: int
    status: str


@dataclass(frozen=True)
class Explanation:
    """A call's cache outcome explained: `.summary` for a table cell, `.lines` for the details."""

    call: int
    outcome: str
    summary: str
    lines: tuple[str, ...] = ()
    causes: tuple[Cause, ...] = ()
    marks: tuple[Mark, ...] = ()
    api: str | None = None
    """The API's cache_miss_reason type, "none" (no divergence), "pending", or None (not requested)."""
    agrees: bool | None = None
    """Whether the API's reason matches the local explanation; None when there is nothing to compare."""

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.causes)

    def to_html(self) -> str:
        items = "".join(f"<li>{escape(line)}</li>" for line in self.lines)
        rows = "".join(
            f"<tr><td>{escape(m.block or '')}</td><td>{escape(m.path)}</td><td>{m.ttl}</td>"
            f"<td>{m.tokens:,}</td><td>{escape(m.status)}</td></tr>"
            for m in self.marks
        )
        head = "".join(f"<th>{h}</th>" for h in ("block", "path", "ttl", "prefix tokens", "breakpoint"))
        table = f'<table class="pcache-table"><tr>{head}</tr>{rows}</table>' if rows else ""
        cls = " pcache-disagree" if self.agrees is False else ""
        return (
            f'<div class="pcache-explain{cls}" data-call="{self.call}"><p><b>Call {self.call}</b>: '
            f"{escape(self.summary)}</p><ul>{items}</ul>{table}</div>"
        )

    def _repr_html_(self) -> str:
        return self.to_html()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # IPython's plain-text display
        printer.text(str(self))

    def __str__(self) -> str:
        return "\n".join([f"Call {self.call}: {self.summary}", *(f"  - {line}" for line in self.lines)])


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")


def _duration(seconds: float) -> str:
    s = max(0, round(seconds))
    return f"{s // 3600}h {s % 3600 // 60}m" if s >= 3600 else f"{s // 60}m {s % 60}s" if s >= 60 else f"{s}s"


def _text(block: Mapping[str, Any]) -> str:
    if block.get("type") == "text" and isinstance(block.get("text"), str):
        return str(block["text"])
    return json.dumps({k: v for k, v in block.items() if k not in ("cache_control", "type")}, sort_keys=True)


def _excerpt(text: str, offset: int, width: int = 24) -> str:
    start, end = max(0, offset - width), min(len(text), offset + width)
    return ("…" if start else "") + text[start:end].replace("\n", "⏎") + ("…" if end < len(text) else "")


def _word(text: str, offset: int, limit: int = 32) -> str:
    """The whitespace-delimited run of `text` around `offset`: a changed timestamp, id or word."""
    start = max(text.rfind(" ", 0, offset), text.rfind("\n", 0, offset)) + 1
    end = min((i for i in (text.find(" ", offset), text.find("\n", offset)) if i >= 0), default=len(text))
    return text[start:end][:limit] if end > start else text[offset : offset + limit]


def _images(params: Mapping[str, Any]) -> int:
    contents = [m.get("content") for m in params.get("messages") or ()]
    return sum(1 for c in contents if isinstance(c, list) for b in c if b.get("type") == "image")


def _tools(params: Mapping[str, Any]) -> list[str]:
    return [str(t.get("name")) for t in params.get("tools") or ()]


@dataclass(slots=True)
class _Entry:
    tokens: int
    ttl: str
    call: int
    touched_at: float
    expires_at: float


class _Replay:
    """The session's cache entries as the rules say they were; expired ones are kept to explain misses."""

    def __init__(self) -> None:
        self.entries: dict[bytes, _Entry] = {}

    def live(self, key: bytes, now: float) -> bool:
        entry = self.entries.get(key)
        return entry is not None and entry.expires_at > now

    def plan(self, lay: Layout, points: list[Breakpoint], minimum: int, now: float) -> Plan:
        return plan(lay, points, minimum, lambda key: self.live(key, now))

    def apply(self, call: _Call) -> None:
        """Refresh what the call read and keep what it wrote, as the emulator (and `cache.Ledger`) do."""
        lay, now, minimum = call.lay, call.record.started_at, call.info.min_cache_tokens
        outcome = self.plan(lay, call.points, minimum, now)
        if outcome.hit >= 0 and call.record.tokens.read == 0:  # the API read nothing: those were gone
            for p in lay.positions[: outcome.hit + 1]:
                self.entries.pop(p.key, None)
            outcome = self.plan(lay, call.points, minimum, now)
        if outcome.hit >= 0:
            for index in [b.position for b in call.points if b.position < outcome.hit] + [outcome.hit]:
                entry = self.entries.get(lay.positions[index].key)
                if entry is not None and entry.expires_at > now:
                    entry.expires_at, entry.touched_at = now + TTL_SECONDS[entry.ttl], now
                    entry.call = call.record.index
        for point in outcome.writes:
            p = lay.positions[point.position]
            ends = now + TTL_SECONDS[point.ttl]
            self.entries[p.key] = _Entry(p.cumulative, point.ttl, call.record.index, now, ends)


class _Call:
    """One successful call, laid out once, with its block names."""

    def __init__(self, record: CallRecord, session: Any, rendered: Mapping[str, tuple[bytes, str]]) -> None:
        self.record, self.params = record, record.request
        self.lay: Layout = session.layout(self.params)
        try:
            self.points = resolve_breakpoints(self.lay, self.params.get("cache_control"))
        except CacheRuleError:
            self.points = []
        self.info = session.models.get(record.model)
        names = getattr(record, "names", None)
        if not isinstance(names, Mapping):  # the conversation's names now, where the content still matches
            names = {
                p.path: rendered[p.path][1]
                for p in self.lay.positions
                if p.path in rendered and rendered[p.path][0] == p.digest
            }
        self.names: Mapping[str, str] = names

    def name(self, path: str) -> str:
        return f"{self.names[path]} ({path})" if path in self.names else path


def _rendered(session: Any) -> dict[str, tuple[bytes, str]]:
    """Path -> (block digest, block name) for the conversation as it renders now."""
    conversation = getattr(session, "conversation", None)
    if conversation is None:
        return {}
    params, names = conversation.render(model=str(getattr(session, "model", "")), max_tokens=1)
    return {p.path: (p.digest, names[p.path]) for p in session.layout(params).positions if p.path in names}


def _changed(prev: _Call, cur: _Call, replay: _Replay) -> tuple[Cause | None, set[str | None]]:
    """The first change against the previous call, and the API reasons consistent with it."""
    a, b = prev.lay.positions, cur.lay.positions
    if prev.record.model != cur.record.model:
        cached = max((e.tokens for p in a if (e := replay.entries.get(p.key))), default=0)
        move = f"{prev.record.model} → {cur.record.model}"
        message = f"The model changed ({move}); caches are per model."
        return Cause("model_changed", f"model changed ({move})", message, missed=cached), {"model_changed"}
    d = next((i for i in range(min(len(a), len(b))) if a[i].key != b[i].key), None)
    if d is None:  # the call extends the previous one; the API compares whole messages, so it may differ
        extended = bool(a) and len(b) > len(a) and b[len(a)].message == a[-1].message
        return None, {None, "messages_changed"} if extended else {None}
    cached = max((e.tokens for p in a[d:] if (e := replay.entries.get(p.key))), default=0)
    missed = max(0, cached - (a[d - 1].cumulative if d else 0))
    old, new = a[d], b[d]
    level = min(old.level, new.level, key=_LEVELS.index)
    at = Cause("", "", "", path=new.path, block=cur.names.get(new.path), missed=missed)
    tools = _tools(prev.params), _tools(cur.params)
    same_tools = sorted(p.digest for p in a[: len(tools[0])]) == sorted(p.digest for p in b[: len(tools[1])])
    if level == "tools" and tools[0] != tools[1] and same_tools:
        before, after = ", ".join(tools[0]), ", ".join(tools[1])
        message = f"The tools were reordered ({before} → {after}); the cached prefix starts with tools."
        return replace(
            at, code="tools_changed", short="tools reordered", message=message, before=before, after=after
        ), {"tools_changed"}
    if old.path == new.path and old.digest == new.digest:  # same block, new key: the messages-level salt
        settings = {
            "tool_choice": (prev.params.get("tool_choice"), cur.params.get("tool_choice")),
            "thinking": (prev.params.get("thinking"), cur.params.get("thinking")),
            "images": (_images(prev.params), _images(cur.params)),
        }
        changed = " and ".join(k for k, (x, y) in settings.items() if x != y)
        if changed:
            message = (
                f"{changed} changed: that invalidates the messages cache (tools and system stay cached)."
            )
            short = f"{changed} changed (messages level invalidated)"
            api: set[str | None] = (
                {"unavailable"} if changed != "images" else {None, "unavailable", "messages_changed"}
            )
            return replace(at, code="settings_changed", short=short, message=message), api
    code = f"{level}_changed"
    if old.path != new.path:
        message = f"{prev.name(old.path)} is now {cur.name(new.path)}: a block was added or removed."
        return replace(
            at, code=code, short=f"{level} changed: block added or removed at {new.path}", message=message
        ), {code}
    before_text, after_text = _text(block_at(prev.params, old.path)), _text(block_at(cur.params, new.path))
    offset = next((i for i, (x, y) in enumerate(zip(before_text, after_text, strict=False)) if x != y), None)
    offset = min(len(before_text), len(after_text)) if offset is None else offset
    before, after = _excerpt(before_text, offset), _excerpt(after_text, offset)
    word = _word(before_text, offset)
    looks = next(
        (f" That looks like {what}: it changes on every call." for *_, what in volatile_values(word)), ""
    )
    message = (
        f"{level} changed at {cur.name(new.path)}, character {offset}: {before!r} → {after!r}.{looks} "
        "Everything from there on is written again; keep changing content after the last marker."
    )
    short = f"{level} changed at {new.path} @{offset}: {word!r} → {_word(after_text, offset)!r}"
    return replace(at, code=code, short=short, message=message, offset=offset, before=before, after=after), {
        code
    }


def _storage(cur: _Call, expected: Plan, replay: _Replay) -> list[Cause]:
    """Entries of this prefix that the call did not read: expired, or out of every breakpoint's reach."""
    causes, now = [], cur.record.started_at
    deeper = [p for p in cur.lay.positions[expected.hit + 1 :] if p.key in replay.entries]
    dead = [p for p in deeper if not replay.live(p.key, now)]
    if dead:
        p, entry = dead[-1], replay.entries[dead[-1].key]
        gap = now - entry.touched_at
        kept = entry.ttl == "5m" and gap < TTL_SECONDS["1h"]
        verdict = "a 1h lifetime would have kept it" if kept else "no lifetime would have kept it"
        verdict += "" if kept else " (pre-warm, or call sooner)"
        message = (
            f"The {entry.ttl} entry at {cur.name(p.path)} ({entry.tokens:,} tokens), last written or read "
            f"by call {entry.call} at {_clock(entry.touched_at)}, expired at {_clock(entry.expires_at)}, "
            f"{_duration(now - entry.expires_at)} before this call ({_duration(gap)} gap); {verdict}."
        )
        short = f"expired {entry.ttl} entry at {cur.names.get(p.path, p.path)}" + (
            " (1h would have kept it)" * kept
        )
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
                f"no marker at or after {cur.names.get(p.path, p.path)} (moved or removed)",
            )
            message = (
                f"The live entry at {cur.name(p.path)} is not read: no marker sits at or after it any more."
            )
        causes.append(
            Cause(code, short, message, p.path, cur.names.get(p.path), missed=p.cumulative - expected.read)
        )
    return causes


def _markers(cur: _Call) -> list[Cause]:
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
        f"The prefix up to {cur.name(p.path)} is about {p.cumulative:,} tokens; {cur.info.id} caches from "
        f"{minimum:,}, so {many} ignored. Mark a later block, or add content before it."
    )
    short = f"below minimum ({p.cumulative:,} < {minimum:,} tokens)"
    return [Cause("below_minimum", short, message, p.path, cur.names.get(p.path))]


def _api(record: CallRecord) -> str | None:
    if not isinstance(record.request.get("diagnostics"), Mapping) or record.response is None:
        return None
    diagnostics = getattr(record.response, "diagnostics", None)
    if diagnostics is None:
        return "none"
    return "pending" if diagnostics.cache_miss_reason is None else str(diagnostics.cache_miss_reason.type)


def _analyse(cur: _Call, prev: _Call | None, replay: _Replay) -> Explanation:
    record, now = cur.record, cur.record.started_at
    expected, actual, api = (
        replay.plan(cur.lay, cur.points, cur.info.min_cache_tokens, now),
        record.tokens,
        _api(record),
    )
    lines: list[str] = []
    causes: list[Cause] = []
    consistent: set[str | None] = {None}
    if prev is None:
        lines.append("First call of the session: there was nothing to read yet.")
    else:
        change, consistent = _changed(prev, cur, replay)
        causes += [change] if change else []
    causes += _markers(cur) + _storage(cur, expected, replay)
    if actual.read < expected.read:
        missed = expected.read - actual.read
        if api == "previous_message_not_found":
            consistent = {api}
            message = (
                f"The API read {actual.read:,} tokens where {expected.read:,} were cached and did not find "
                "the previous message: the API key or workspace changed (caches are per workspace)."
            )
            causes.append(Cause("workspace_changed", "API key/workspace changed", message, missed=missed))
        else:
            message = (
                f"The API read {actual.read:,} tokens; by the rules {expected.read:,} were cached (an entry "
                "evicted early, another API key or workspace, or estimated token counts)."
            )
            causes.append(
                Cause("unexplained", f"API read {actual.read:,} of {expected.read:,}", message, missed=missed)
            )
    elif actual.read > expected.read:
        lines.append(
            f"The API read {actual.read:,} tokens, more than the {expected.read:,} the rules expected."
        )
    causes.sort(key=lambda c: _PRIORITY.index(c.code))
    parts = [f"hit {actual.read:,}"] if actual.read else []
    parts += [f"wrote {n:,} ({ttl})" for ttl, n in (("1h", actual.write_1h), ("5m", actual.write_5m)) if n]
    summary = " + ".join(parts) or "uncached"
    top = next((c for c in causes if c.missed > 0 or c.code in ("below_minimum", "no_markers")), None)
    summary += f": {top.short}" if top else ""
    agrees: bool | None = None
    if api == "pending":
        lines.append("API diagnostics: the comparison was still pending.")
    elif api == "previous_message_not_found" and consistent != {api}:
        lines.append("API diagnostics: the API did not find the previous message.")
    elif api is not None:
        said = None if api == "none" else api
        agrees = said in consistent
        local = " or ".join(sorted(str(t) for t in consistent if t)) or "no divergence"
        verdict = "agrees." if agrees else f"DISAGREES (locally: {local})."
        lines.append(f"API diagnostics: {f'cache_miss_reason {api}' if said else 'no divergence'}; {verdict}")
        summary += "" if agrees else f" ≠ API: {api}"
    marks = tuple(_mark(cur, b, expected) for b in cur.points)
    return Explanation(
        record.index,
        record.outcome,
        summary,
        tuple(c.message for c in causes) + tuple(lines),
        tuple(causes),
        marks,
        api,
        agrees,
    )


def _mark(cur: _Call, point: Breakpoint, expected: Plan) -> Mark:
    p = cur.lay.positions[point.position]
    if p.cumulative < cur.info.min_cache_tokens:
        status = "below-minimum"
    elif point in expected.writes:
        status = "wrote"
    elif expected.hit >= 0 and 0 <= point.position - expected.hit < LOOKBACK:
        status = "hit"
    else:
        status = "covered"
    return Mark(p.path, cur.names.get(p.path), point.ttl, p.cumulative, status)


class Explainer:
    """Explains a session's calls one at a time, in order, keeping the replayed cache in between.

    For a live view: each new call costs one layout, not a replay of the whole session.  Feed
    every call once, in order (failed ones too); `explain()` and `explain_all()` use one.
    """

    def __init__(self, session: Any, *, names: Mapping[str, tuple[bytes, str]] | None = None) -> None:
        self.session = session
        self._replay = _Replay()
        self._by_id: dict[str, _Call] = {}
        self._previous: _Call | None = None
        self._names = names

    def explain(self, record: CallRecord) -> Explanation:
        """The explanation of `record`, the call after the last one explained."""
        if not record.ok:
            summary = f"failed: {record.error or 'no response'}"
            return Explanation(record.index, "failed", summary, (summary,))
        cur = _Call(record, self.session, self._names if self._names is not None else _rendered(self.session))
        wanted = (record.request.get("diagnostics") or {}).get("previous_message_id")
        prev = self._by_id.get(wanted, self._previous) if isinstance(wanted, str) else self._previous
        result = _analyse(cur, prev, self._replay)
        self._replay.apply(cur)
        if record.response is not None:
            self._by_id[record.response.id] = cur
        self._previous = cur
        return result


def _walk(session: Any, stop: int | None) -> list[Explanation]:
    """Explain calls in order up to `stop` (an index), replaying the cache once along the way."""
    explainer, out = Explainer(session, names=_rendered(session)), []
    for record in session.calls:
        out.append(explainer.explain(record))
        if record.index == stop:
            break
    return out


def explain_all(session: Any) -> list[Explanation]:
    """Every call explained, in one pass (for the panel's "why" column)."""
    return _walk(session, None)


def explain(session: Any, call_index: int | None = None) -> Explanation:
    """Explain one call by its number in the calls table (`CallRecord.index`); default: the last call."""
    calls: Sequence[CallRecord] = session.calls
    if not calls:
        raise ValueError("No calls yet: there is nothing to explain.")
    index = calls[-1].index if call_index is None else call_index
    if not any(r.index == index for r in calls):
        raise ValueError(f"No call {index}: calls are numbered {calls[0].index} to {calls[-1].index}.")
    return _walk(session, index)[-1]
