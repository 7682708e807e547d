"""The emulator's cache table: prefix entries with lifetimes, evicted when stale.

Thread-safe: the HTTP server serves clients on several threads, and an entry
written by one response must be readable by the next, never half-updated.
Memory is bounded: expired entries are dropped, and past `max_entries` the
least recently used live entry goes first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from ..core.ttl import TTL_SECONDS

__all__ = ["CacheTable", "Entry"]


@dataclass(frozen=True, slots=True)
class Entry:
    """A cached prefix: how many tokens it covers, for which model, until when."""

    model: str
    tokens: int
    ttl: str
    written_at: float
    expires_at: float
    ready: int = 0
    """The engine's ticket when the response that wrote it began: a request that arrived before
    then does not read it (`Engine.ticket`)."""


class CacheTable:
    """Prefix key -> Entry, with lifetimes on an injected clock."""

    def __init__(self, clock: Callable[[], float], max_entries: int = 10_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._clock = clock
        self._max = max_entries
        self._entries: OrderedDict[bytes, Entry] = OrderedDict()
        self._lock = threading.RLock()

    @property
    def lock(self) -> threading.RLock:
        """Held by the engine across one request's read-then-write, so requests don't interleave."""
        return self._lock

    def find(self, key: bytes) -> Entry | None:
        """The live entry for `key`, or None (an expired one is dropped on sight)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry.expires_at <= self._clock():
                del self._entries[key]
                return None
            return entry

    def refresh(self, keys: Iterable[bytes]) -> None:
        """A hit restarts the entry's lifetime at no cost."""
        now = self._clock()
        with self._lock:
            for key in keys:
                entry = self._entries.get(key)
                if entry is not None and entry.expires_at > now:
                    self._entries[key] = replace(entry, expires_at=now + TTL_SECONDS[entry.ttl])
                    self._entries.move_to_end(key)

    def write(self, key: bytes, model: str, tokens: int, ttl: str, ready: int = 0) -> None:
        """Write the entry for `key`; one rewritten while live stays as readable as it was (`ready`
        kept), or requests in before the rewrite would each miss and rewrite it in turn."""
        now = self._clock()
        with self._lock:
            live = self.find(key)
            if live is not None:
                ready = min(ready, live.ready)
            self._entries[key] = Entry(model, tokens, ttl, now, now + TTL_SECONDS[ttl], ready)
            self._entries.move_to_end(key)
            if len(self._entries) > self._max:
                self.evict()
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def restore(self, key: bytes, entry: Entry) -> bool:
        """Put back an entry the API would still hold (a saved session loaded into a fresh emulator);
        False, and nothing changed, when the key already has a live entry."""
        with self._lock:
            if self.find(key) is not None or entry.expires_at <= self._clock():
                return False
            self._entries[key] = entry
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
            return True

    def evict(self) -> int:
        """Drop every expired entry; returns how many went."""
        now = self._clock()
        with self._lock:
            stale = [k for k, e in self._entries.items() if e.expires_at <= now]
            for key in stale:
                del self._entries[key]
            return len(stale)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def live(self) -> list[Entry]:
        """Live entries, soonest to expire first."""
        self.evict()
        with self._lock:
            return sorted(self._entries.values(), key=lambda e: e.expires_at)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
