"""The session's cache replayed by the rules, so `diagnose` knows what each call could have read.

A call's usage says only how much it read, not what was cached or why not.  Replaying every
call by the emulator's rules (`rules.plan`) rebuilds the entries as they were, with their
lifetimes, and keeps expired ones: those are what explain a miss.  `ReplayedCall` lays a recorded
call out once and names its blocks, since every cause is reported by block name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..core.fmt import labelled, quoted
from ..core.prefix import Layout
from ..core.record import CallRecord
from ..core.rules import Breakpoint, CacheRuleError, Plan, plan, resolve_breakpoints
from ..core.ttl import TTL_SECONDS
from ..core.usage import Tokens

__all__ = ["ReplayState", "ReplayedCall", "block_name", "rendered_blocks", "sent_names"]


@dataclass(slots=True)
class _Entry:
    tokens: int
    ttl: str
    call: int
    touched_at: float
    expires_at: float
    by: int
    """The call whose write made it readable (a rewrite while it lived keeps the first's)."""


class ReplayState:
    """The session's cache entries as the rules say they were; expired ones are kept to explain misses.

    `unready`: the calls in flight when the call being replayed began (`CallRecord.in_flight`):
    what they wrote was not readable to it yet."""

    def __init__(self) -> None:
        self.entries: dict[bytes, _Entry] = {}
        self.unready: frozenset[int] = frozenset()

    def live(self, key: bytes, now: float) -> bool:
        entry = self.entries.get(key)
        return entry is not None and entry.expires_at > now and entry.by not in self.unready

    def plan(self, lay: Layout, points: list[Breakpoint], minimum: int, now: float) -> Plan:
        return plan(lay, points, minimum, lambda key: self.live(key, now))

    def apply(self, call: ReplayedCall, planned: Plan | None = None) -> None:
        """Refresh what the call read and keep what it wrote, as the emulator (and `cache.Ledger`) do
        (`planned`: this state's plan for the call, when the caller has it already)."""
        lay, now, minimum = call.lay, call.record.started_at, call.info.min_cache_tokens
        outcome = planned if planned is not None else self.plan(lay, call.points, minimum, now)
        if outcome.hit >= 0 and call.tokens.read == 0:  # the API read nothing: those were gone
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
            ends, old = now + TTL_SECONDS[point.ttl], self.entries.get(p.key)
            by = old.by if old is not None and old.expires_at > now else call.record.index
            self.entries[p.key] = _Entry(p.cumulative, point.ttl, call.record.index, now, ends, by)


class ReplayedCall:
    """One successful call, laid out once, with its block names."""

    def __init__(self, record: CallRecord, session: Any, rendered: Mapping[str, tuple[bytes, str]]) -> None:
        self.record, self.params = record, record.request
        self.tokens: Tokens = record.tokens  # built from the usage on each read: read once
        self.lay: Layout = session.layout(self.params)
        try:
            self.points = resolve_breakpoints(self.lay, self.params.get("cache_control"))
        except CacheRuleError:
            self.points = []
        self.info = session.models.get(record.model)
        sent = sent_names(session)
        names = ((p.path, block_name(rendered, sent, p.path, p.digest)) for p in self.lay.positions)
        self.names: Mapping[str, str] = {path: name for path, name in names if name is not None}

    def name(self, path: str) -> str:
        """The block at `path` as an explanation's sentence names it: `'rules' (system.0)`."""
        return labelled(self.names, path)

    def short(self, path: str) -> str:
        """The block at `path` as a one-line "why" names it: `'rules'`, or its path."""
        return quoted(self.names[path]) if path in self.names else path


def sent_names(session: Any) -> Mapping[tuple[str, bytes], str]:
    """(path, block digest) -> the name the block there was sent under (`CacheBook.names`); empty
    for a session without a book."""
    names = getattr(getattr(session, "book", None), "names", None)
    return names if isinstance(names, Mapping) else {}


def block_name(
    rendered: Mapping[str, tuple[bytes, str]], sent: Mapping[tuple[str, bytes], str], path: str, digest: bytes
) -> str | None:
    """The name explanations give the block at `path` with `digest`: the conversation's now where
    the content there still matches (a rename shows), else the name it was sent under (a block
    edited or dropped since), else none."""
    now = rendered.get(path)
    return now[1] if now is not None and now[0] == digest else sent.get((path, digest))


def rendered_blocks(session: Any) -> dict[str, tuple[bytes, str]]:
    """Path -> (block digest, block name) for the conversation as it renders now."""
    conversation = getattr(session, "conversation", None)
    if conversation is None:
        return {}
    params, names = conversation.render(model=str(getattr(session, "model", "")), max_tokens=1)
    return {p.path: (p.digest, names[p.path]) for p in session.layout(params).positions if p.path in names}
