"""Why each call hit, wrote or missed the cache, in words a notebook user can act on.

Silent misses are the top complaint about prompt caching: a timestamp in the system
prompt, a reordered tool, a block just under the minimum, an expired entry.  `explain()`
replays the session's calls by the rules the emulator applies (`rules.plan`), so it knows
which entries existed, when they expired and which breakpoint could reach them, and it
compares each call with the previous one to find the first block that changed (level,
block, character offset, a before/after excerpt).  When the API sent its own
`diagnostics.cache_miss_reason`, it is shown beside the local explanation and a
disagreement is flagged, not hidden.  The replay is `_diagnose_replay`, the causes are
found by `_diagnose_causes`; this module ranks them and words the summary.  Pure: reads
the session, imports no IPython.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.fmt import LEFT, html_text, status_cell, visible
from ..core.record import CallRecord, outcome_of
from ..core.rules import LOOKBACK, Breakpoint, Plan
from ._diagnose_causes import Cause, changed_cause, marker_causes, storage_causes
from ._diagnose_replay import ReplayedCall, ReplayState, rendered_blocks

__all__ = ["Cause", "Explainer", "Explanation", "Mark", "explain", "explain_all"]

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
#: Causes that cost no tokens of their own: they explain a call only when it cached nothing.
_NOTHING_CACHED = ("below_minimum", "no_markers")


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
        """The summary, the causes and each breakpoint's part; every text through `fmt.html_text`,
        so a quoted "$" in a changed block's excerpt is never typeset as LaTeX."""
        items = "".join(f"<li>{html_text(line)}</li>" for line in self.lines)
        rows = "".join(
            f"<tr><td{LEFT}>{html_text(m.block or '')}</td><td{LEFT}>{html_text(m.path)}</td>"
            f"<td{LEFT}>{html_text(m.ttl)}</td>"
            f'<td class="pcache-num">{m.tokens:,}</td>{status_cell(m.status)}</tr>'
            for m in self.marks
        )
        head = (
            f"<th{LEFT}>block</th><th{LEFT}>path</th><th{LEFT}>ttl</th>"
            f'<th class="pcache-num">prefix tokens</th><th{LEFT}>breakpoint</th>'
        )
        table = f'<table class="pcache-table"><tr>{head}</tr>{rows}</table>' if rows else ""
        cls = " pcache-disagree" if self.agrees is False else ""
        return (
            f'<div class="pcache-explain{cls}" data-call="{self.call}"><p><b>Call {self.call}</b>: '
            f"{html_text(self.summary)}</p><ul>{items}</ul>{table}</div>"
        )

    def _repr_html_(self) -> str:
        return self.to_html()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # IPython's plain-text display
        printer.text(str(self))

    def __str__(self) -> str:
        """The plain text, its control characters as pictures (`fmt.visible`): a failed call's error
        is a server's words, and a changed block's excerpt a file's, either may hold ESC or RLO."""
        lines = [f"Call {self.call}: {self.summary}", *(f"  - {line}" for line in self.lines)]
        return visible("\n".join(lines))


def _api(record: CallRecord) -> str | None:
    if not isinstance(record.request.get("diagnostics"), Mapping) or record.response is None:
        return None
    diagnostics = getattr(record.response, "diagnostics", None)
    if diagnostics is None:
        return "none"
    return "pending" if diagnostics.cache_miss_reason is None else str(diagnostics.cache_miss_reason.type)


def _calls(indices: Sequence[int], most: int = 5) -> str:
    """`call 3`, `calls 3 and 4`, `calls 3, 4 and 5`; past `most`, `calls 3, 4, 5, 6, 7 and 95 more`."""
    named = [str(i) for i in indices[:most]] + (
        [f"{len(indices) - most} more"] if len(indices) > most else []
    )
    return f"call {named[0]}" if len(named) == 1 else f"calls {', '.join(named[:-1])} and {named[-1]}"


def _analyse(
    cur: ReplayedCall, prev: ReplayedCall | None, replay: ReplayState, expected: Plan
) -> Explanation:
    """`expected`: what the replayed cache says `cur` could read and would write."""
    record, actual, api = cur.record, cur.tokens, _api(cur.record)
    lines: list[str] = []
    causes: list[Cause] = []
    consistent: set[str | None] = {None}
    if replay.unready:
        lines.append(
            f"Sent while {_calls(record.in_flight)} {'was' if len(record.in_flight) == 1 else 'were'} "
            "in flight: an entry is readable only once the response that wrote it has begun, so calls "
            "sent together each write what they share."
        )
    if prev is None:
        lines.append("First call of the session: there was nothing to read yet.")
    else:
        change, consistent = changed_cause(prev, cur, replay)
        causes += [change] if change else []
    if record.in_flight:  # the API compared it with the call before those in flight (or with none)
        consistent = {*consistent, None}
    causes += marker_causes(cur) + storage_causes(cur, expected, replay)
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
    # What cost tokens heads the line; an ignored or missing marker only when nothing was cached.
    top = next((c for c in causes if c.missed > 0 or (not parts and c.code in _NOTHING_CACHED)), None)
    summary += f": {top.short}" if top else ""
    agrees: bool | None = None
    if api == "pending":
        lines.append("API diagnostics: the comparison was still pending.")
    elif api == "previous_message_not_found" and consistent != {api}:
        lines.append(
            "API diagnostics: the API did not find the previous message to compare with (a loaded "
            "session or another process); that says nothing about this call's cache."
        )
    elif api is not None:
        said = None if api == "none" else api
        agrees = said in consistent
        local = " or ".join(sorted(str(t) for t in consistent if t)) or "no divergence"
        verdict = "the local explanation agrees." if agrees else f"DISAGREES (locally: {local})."
        lines.append(f"API diagnostics: {f'cache_miss_reason {api}' if said else 'no divergence'}; {verdict}")
        summary += "" if agrees else f" ≠ API: {api}"
    marks = tuple(_mark(cur, b, expected) for b in cur.points)
    return Explanation(
        record.index,
        outcome_of(actual),
        summary,
        tuple(c.message for c in causes) + tuple(lines),
        tuple(causes),
        marks,
        api,
        agrees,
    )


def _mark(cur: ReplayedCall, point: Breakpoint, expected: Plan) -> Mark:
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
        self._replay = ReplayState()
        self._by_id: dict[str, ReplayedCall] = {}
        self._previous: ReplayedCall | None = None
        self._names = names

    @property
    def last(self) -> ReplayedCall | None:
        """The successful call explained last, laid out and named; None before the first."""
        return self._previous

    def explain(self, record: CallRecord) -> Explanation:
        """The explanation of `record`, the call after the last one explained."""
        if not record.ok:
            summary = f"failed: {record.error or 'no response'}"
            return Explanation(record.index, "failed", summary, (summary,))
        cur = ReplayedCall(
            record, self.session, self._names if self._names is not None else rendered_blocks(self.session)
        )
        wanted = (record.request.get("diagnostics") or {}).get("previous_message_id")
        prev = self._by_id.get(wanted, self._previous) if isinstance(wanted, str) else self._previous
        self._replay.unready = frozenset(record.in_flight)
        expected = self._replay.plan(cur.lay, cur.points, cur.info.min_cache_tokens, record.started_at)
        if record.in_flight and cur.tokens.read > expected.read:  # their answers had begun: it read them
            self._replay.unready = frozenset()
            expected = self._replay.plan(cur.lay, cur.points, cur.info.min_cache_tokens, record.started_at)
        result = _analyse(cur, prev, self._replay, expected)
        self._replay.apply(cur, expected)
        if record.response is not None:
            self._by_id[record.response.id] = cur
        self._previous = cur
        return result


def _walk(session: Any, stop: int | None) -> list[Explanation]:
    """Explain calls in order up to `stop` (an index), replaying the cache once along the way."""
    explainer, out = Explainer(session, names=rendered_blocks(session)), []
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
