"""A session's calls as its views show them, carried forward one call at a time.

Explaining a call replays every call before it (`diagnose.Explainer`), and a header's totals and
a bar scale read every call: redone each time a panel opens, that grows with the notebook (a
panel over 1,000 calls opened 10x slower than over 10).  `CallLog` lives on the session's
`CacheBook` and keeps the replay, each call's "why", the running totals and the largest call, so
each call is explained once per session and a view opens on what is kept.  It follows
`session.calls` by identity: a reset or a loaded session (new records) starts it over.

A "why" names blocks as the conversation names them now where the block's content still matches,
else as they were sent (`_diagnose_replay.block_name`; a full replay, `explain_all`, does the
same), but only in a few causes: an expired entry, a moved marker, one beyond the lookback.  The
log notes those (path, digest) pairs and the names it used; when a name changes (a block renamed,
or edited so the old content no longer matches), it starts over, so its "why"s stay those of a
full replay and a saved and loaded session shows the same.  Pure.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.record import CallRecord, Totals
from ..core.usage import Cost, Tokens
from ._diagnose_replay import block_name, rendered_blocks, sent_names
from .diagnose import Cause, Explainer

__all__ = ["CallLog", "LogView", "call_log"]

#: Causes whose short text (a "why") names a block: an expired entry, a marker that moved.
_NAMING = frozenset({"expired", "marker_moved", "beyond_lookback"})


@dataclass(frozen=True, slots=True)
class LogView:
    """The log as one update left it: the first `count` records and their "why"s are consistent
    (the lists only grow; a restart replaces them, so a view taken before stays whole)."""

    count: int
    records: Sequence[CallRecord]
    whys: Sequence[str | None]
    """Each call's `Explanation.summary`; None where the diagnosis failed (views fall back)."""
    totals: Totals
    largest: CallRecord | None
    """The call with the most tokens (prompt and output), for a bar scale."""
    memo: dict[Any, Any]
    """What views derived from these calls (a rendered row, by position), dropped on a restart."""


class CallLog:
    """Each call explained once, in order, with running totals; `update` catches up with the session."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # a panel's event and another view may update at once
        self._start()

    def _start(self) -> None:
        self._records: list[CallRecord] = []
        self._whys: list[str | None] = []
        self._sums = _Sums()
        self._largest: CallRecord | None = None
        self._size = -1
        self._memo: dict[Any, Any] = {}
        self._named: dict[tuple[str, bytes], str | None] = {}
        """(path, digest) -> the block name a "why" used for it (see the module's docstring)."""
        self._names = _Names()
        self._explainer: Explainer | None = None

    def _follows(self, calls: Sequence[CallRecord]) -> bool:
        """Whether `calls` still starts with the records explained (first and last by identity:
        the session only appends, or replaces the whole list on a reset or a load)."""
        n = len(self._records)
        return n == 0 or (
            len(calls) >= n and calls[0] is self._records[0] and calls[n - 1] is self._records[-1]
        )

    def behind(self, calls: Sequence[CallRecord]) -> bool:
        """Whether `calls` (a session's) hold calls this log has not explained yet."""
        return len(calls) > len(self._records) or not self._follows(calls)

    def update(self, session: Any) -> LogView:
        """Explain the calls recorded since the last update (all of them after a reset)."""
        with self._lock:
            calls: Sequence[CallRecord] = session.calls
            if not self._follows(calls):
                self._start()
            new = calls[len(self._records) :]
            if new or self._named:
                rendered, sent = rendered_blocks(session), sent_names(session)  # once for the new calls
                if any(block_name(rendered, sent, *key) != used for key, used in self._named.items()):
                    self._start()
                    new = calls[:]
                if self._explainer is None:
                    self._explainer = Explainer(session, names=self._names)
                self._names.current = rendered
                try:
                    for record in new:
                        self._add(self._explainer, record)
                finally:
                    self._names.current = None
            return LogView(
                len(self._records), self._records, self._whys, self._sums.totals(), self._largest, self._memo
            )

    def _add(self, explainer: Explainer, record: CallRecord) -> None:
        try:
            explanation = explainer.explain(record)
            why: str | None = explanation.summary
            self._note_names(explainer, explanation.causes)
        except Exception:  # a diagnosis that fails falls back to the outcome, never breaks a view
            why = None
        self._records.append(record)
        self._whys.append(why)
        last = explainer.last  # the call just explained has its billing split built already
        tokens = last.tokens if last is not None and last.record is record else record.tokens
        self._sums.add(record, tokens)
        size = tokens.prompt + tokens.output
        if size > self._size:
            self._largest, self._size = record, size

    def _note_names(self, explainer: Explainer, causes: Sequence[Cause]) -> None:
        """Note the (path, digest) pairs whose block names a "why" may show."""
        last = explainer.last
        for cause in causes:
            if cause.code in _NAMING and cause.path is not None and last is not None:
                digest = next((p.digest for p in last.lay.positions if p.path == cause.path), None)
                if digest is not None:
                    self._named[(cause.path, digest)] = cause.block


def call_log(session: Any) -> CallLog:
    """The session's log (kept on its `CacheBook`); a fresh one for a session without a book."""
    log = getattr(getattr(session, "book", None), "calls_log", None)
    return log if isinstance(log, CallLog) else CallLog()


class _Sums:
    """`Totals.plus` call after call, as plain numbers: the same sums in the same order (so the
    same floats), without building three models a call; `totals()` builds one when asked."""

    _TOKENS = tuple(Tokens.model_fields)
    _COST = tuple(Cost.model_fields)

    def __init__(self) -> None:
        self.calls = self.failed = 0
        self.tokens = dict.fromkeys(self._TOKENS, 0)
        self.cost = dict.fromkeys(self._COST, 0.0)
        self._built: Totals | None = Totals()

    def add(self, record: CallRecord, tokens: Tokens) -> None:
        self._built = None
        if not record.ok:
            self.failed += 1
            return
        self.calls += 1
        for f in self._TOKENS:
            self.tokens[f] += getattr(tokens, f)
        cost = record.priced(tokens)  # record.cost, without building the split again
        for f in self._COST:
            self.cost[f] += getattr(cost, f)

    def totals(self) -> Totals:
        if self._built is None:
            self._built = Totals(
                calls=self.calls, failed=self.failed, tokens=Tokens(**self.tokens), cost=Cost(**self.cost)
            )
        return self._built


class _Names(Mapping[str, tuple[bytes, str]]):
    """The block names the log's `Explainer` reads: the conversation's, looked up once per update
    (not once per call explained)."""

    def __init__(self) -> None:
        self.current: dict[str, tuple[bytes, str]] | None = None

    def __getitem__(self, key: str) -> tuple[bytes, str]:
        if self.current is None:
            raise KeyError(key)
        return self.current[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.current or {})

    def __len__(self) -> int:
        return len(self.current or {})
