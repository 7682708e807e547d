"""The session's ledger of its own cache writes, and what it predicts for the next call.

`Ledger` records what the session wrote, when, with which TTL and for which model;
`Ledger.predict()` says per breakpoint whether the next call will read, write or skip it,
by the same rules (`core.rules.plan`) the emulator applies.  Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..core.models import ModelInfo
from ..core.prefix import Layout
from ..core.preflight import Finding, block_name
from ..core.rules import LOOKBACK, Breakpoint, Plan, plan
from ..core.ttl import TTL_SECONDS

__all__ = ["Ledger", "Prediction"]


@dataclass(frozen=True, slots=True)
class Prediction:
    """What the session expects at one breakpoint of the next call (a few per call: kept light)."""

    path: str
    block: str | None
    ttl: str
    tokens: int
    status: Literal["hit", "hit+write", "write", "below-minimum", "covered"]
    """`hit+write`: reads an earlier entry through the 20-block lookback, writes the rest;
    `covered`: a longer prefix is read, so this breakpoint neither reads nor writes."""
    read: int = 0
    """Tokens this breakpoint is expected to read from cache."""

    def as_dict(self) -> dict[str, Any]:
        """As a call record keeps it (plain JSON)."""
        return {
            "path": self.path,
            "block": self.block,
            "ttl": self.ttl,
            "tokens": self.tokens,
            "status": self.status,
            "read": self.read,
        }


@dataclass(slots=True)
class _Write:
    tokens: int
    ttl: str
    expires_at: float
    path: str
    block: str | None
    model: str


class Ledger:
    """The session's record of its cache writes, to predict the next call's outcome."""

    def __init__(self) -> None:
        self._writes: dict[bytes, _Write] = {}
        self._soonest = float("inf")
        """No write expires before this (a refresh only moves one later): nothing to drop until then."""
        self._kept: tuple[Layout, list[Breakpoint], int, float, Plan] | None = None
        """The last plan: a call's prediction and its record plan the same request, often at
        the same time (the emulator's clock stands still during a call)."""

    def live(self, key: bytes, now: float) -> bool:
        write = self._writes.get(key)
        return write is not None and write.expires_at > now

    def plan(self, lay: Layout, points: list[Breakpoint], info: ModelInfo, now: float) -> Plan:
        kept, minimum = self._kept, info.min_cache_tokens
        if kept is not None and kept[0] is lay and kept[1] is points and kept[2:4] == (minimum, now):
            return kept[4]
        outcome = plan(lay, points, minimum, lambda key: self.live(key, now))
        self._kept = (lay, points, minimum, now, outcome)
        return outcome

    def predict(
        self,
        lay: Layout,
        points: list[Breakpoint],
        info: ModelInfo,
        now: float,
        names: Mapping[str, str] | None = None,
    ) -> tuple[list[Prediction], list[Finding]]:
        """Per-breakpoint predictions, plus findings about writes the lookback cannot reach."""
        names = names or {}
        outcome = self.plan(lay, points, info, now)
        # The first breakpoint whose lookback window holds the hit is the one that reads it.
        reader = next(
            (b.position for b in points if 0 <= outcome.hit <= b.position < outcome.hit + LOOKBACK), None
        )
        predictions = []
        for point in points:
            p = lay.positions[point.position]
            read = outcome.read if point.position == reader else 0
            if p.cumulative < info.min_cache_tokens:
                status: Any = "below-minimum"
            elif point in outcome.writes:
                status = "hit+write" if read else "write"
            elif read:
                status = "hit"
            else:
                status = "covered" if point.position < outcome.hit else "write"
            predictions.append(
                Prediction(
                    path=p.path,
                    block=names.get(p.path),
                    ttl=point.ttl,
                    tokens=p.cumulative,
                    status=status,
                    read=read,
                )
            )
        return predictions, self._unreachable(lay, points, outcome, now, names)

    def _unreachable(
        self,
        lay: Layout,
        points: list[Breakpoint],
        outcome: Plan,
        now: float,
        names: Mapping[str, str],
    ) -> list[Finding]:
        """A live earlier write that no breakpoint can reach within the 20-block lookback."""
        if not points:
            return []
        # The last live write: searched from the end, where a steady conversation finds it at once.
        best = next((p for p in reversed(lay.positions) if self.live(p.key, now)), None)
        if best is None:
            return []
        if best.index <= outcome.hit:
            return []
        nearest = min((b.position for b in points if b.position >= best.index), default=None)
        if nearest is None or nearest - best.index < LOOKBACK:
            return []
        return [
            Finding(
                level="warning",
                code="beyond-lookback",
                block=block_name(names, best.path),
                message=f"The cache entry at {best.path} is {nearest - best.index} blocks before "
                f"the next marker; the API looks back only {LOOKBACK} blocks, so it will be missed.",
                fix="Add a marker within 20 blocks of the last one (e.g. on the latest reply).",
            )
        ]

    def record(
        self,
        lay: Layout,
        points: list[Breakpoint],
        info: ModelInfo,
        now: float,
        read: int,
        names: Mapping[str, str] | None = None,
    ) -> None:
        """Apply a finished call: refresh what it read, remember what it wrote.

        `read` is the call's actual `cache_read_input_tokens`: when the API read
        nothing although the ledger expected a hit, the stale entries are dropped.
        """
        outcome = self.plan(lay, points, info, now)
        positions = lay.positions
        self._kept = None  # the writes change from here on
        if outcome.hit >= 0 and read == 0:
            for p in positions[: outcome.hit + 1]:
                self._writes.pop(p.key, None)
            outcome = self.plan(lay, points, info, now)
            self._kept = None
        if outcome.hit >= 0:
            refreshed = [b.position for b in points if b.position < outcome.hit] + [outcome.hit]
            for index in refreshed:
                write = self._writes.get(positions[index].key)
                if write is not None and write.expires_at > now:
                    write.expires_at = now + TTL_SECONDS[write.ttl]
        for point in outcome.writes:
            p = positions[point.position]
            block = (names or {}).get(p.path)
            expires = now + TTL_SECONDS[point.ttl]
            self._writes[p.key] = _Write(p.cumulative, point.ttl, expires, p.path, block, info.id)
            self._soonest = min(self._soonest, expires)
        if self._soonest <= now:  # a pass over every write only when one may have expired
            self._writes = {k: w for k, w in self._writes.items() if w.expires_at > now}
            self._soonest = min((w.expires_at for w in self._writes.values()), default=float("inf"))

    def entries(self, now: float) -> list[dict[str, Any]]:
        """Live entries, soonest to expire first (for the panel's countdown)."""
        rows = [
            {
                "block": w.block,
                "path": w.path,
                "model": w.model,
                "tokens": w.tokens,
                "ttl": w.ttl,
                "expires_at": w.expires_at,
                "expires_in": w.expires_at - now,
            }
            for w in self._writes.values()
            if w.expires_at > now
        ]
        return sorted(rows, key=lambda r: r["expires_at"])

    def clear(self) -> None:
        self._writes.clear()
        self._soonest = float("inf")
        self._kept = None

    def dump(self) -> list[dict[str, Any]]:
        """Every write with its key (hex), expired ones not yet pruned included: what a saved
        session keeps, so predictions after loading are those before saving."""
        return [
            {
                "key": key.hex(),
                "tokens": w.tokens,
                "ttl": w.ttl,
                "expires_at": w.expires_at,
                "path": w.path,
                "block": w.block,
                "model": w.model,
            }
            for key, w in self._writes.items()
        ]

    def load(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Replace the writes with `rows` as `dump` gives them (checked by the caller)."""
        self._writes = {
            bytes.fromhex(r["key"]): _Write(
                r["tokens"], r["ttl"], r["expires_at"], r["path"], r["block"], r["model"]
            )
            for r in rows
        }
        self._soonest = min((w.expires_at for w in self._writes.values()), default=float("inf"))
        self._kept = None
