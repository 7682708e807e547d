"""Keep-warm (opt-in): refresh cache entries just before they die, while a refresh pays for itself.

`advice.keep_warm` says, for each live entry that expires before the session's next likely
call, whether reading it again now (a pre-warm: the prefix at the read rate, no output) costs
less than writing it again at that call.  With keep-warm on, the session acts on it: a
pre-warm goes out `LEAD` seconds before such an entry expires.  Refreshing stops by itself
once the expected next call has passed (the advice has nothing left to keep), when a refresh
does not refresh (the entry is no longer part of the conversation), or when one fails.

Offline the emulator's clock moves only when advanced, so `advance` walks the clock from one
refresh to the next and sends each at its time (deterministic, no thread).  Live, a daemon
`threading.Timer` fires at the wall-clock time; its pre-warm goes through the session's
lock like any call.  Pre-warms are recorded as calls of kind `prewarm`; they do not count as
the user's rhythm.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from ..analysis.advice import RECENT_GAPS, KeepWarm
from ..analysis.cachebook import CacheBook
from ..core.record import CallRecord
from .observers import Observers

__all__ = ["LEAD", "KeepWarmer"]

#: Seconds before an entry expires that its refresh goes out: a request's latency fits in it.
LEAD = 15.0
#: At most this many refreshes in one `advance` (a clock moved by a year keeps nothing warm that long).
_MAX_REFRESHES = 500


class KeepWarmer:
    """The session's keep-warm: `due()` says when the next refresh goes out; `advance` and a timer send it."""

    def __init__(
        self,
        book: CacheBook,
        calls: Sequence[CallRecord],
        clock: Callable[[], float],
        prewarm: Callable[[], Any],
        observers: Observers,
        *,
        live: bool,
    ) -> None:
        self._book, self._calls, self._clock = book, calls, clock
        self._prewarm, self._observers, self._live = prewarm, observers, live
        self._unsubscribe: Callable[[], None] | None = None
        self.on = False
        self.refreshes = 0
        """Pre-warms sent by keep-warm since it was turned on."""
        self.stopped: str | None = None
        """Why keep-warm stopped by itself (a failed refresh), for the panel."""
        self._stuck: set[tuple[str, float]] = set()
        self._timer: threading.Timer | None = None

    def advice(self, now: float | None = None) -> list[KeepWarm]:
        """The advice for the live entries (every entry that dies before the next likely call)."""
        now = self._clock() if now is None else now
        starts: list[float] = []  # the user's latest calls: enough for the typical gap, not all of them
        for call in reversed(self._calls):
            if call.ok and call.kind != "prewarm":
                starts.append(call.started_at)
                if len(starts) > RECENT_GAPS:
                    break
        return self._book.keep_warm(sorted(starts), now)

    def due(self, now: float | None = None) -> float | None:
        """When the next refresh should go out (None: nothing worth keeping warm)."""
        now = self._clock() if now is None else now
        worth = [
            a
            for a in self.advice(now)
            if a.worth and (a.block, round(now + a.expires_in, 3)) not in self._stuck
        ]
        return now + max(worth[0].expires_in - LEAD, 0.0) if worth else None

    def start(self) -> None:
        """Opt in: from now on, refresh entries before they die while a refresh pays."""
        self.on, self.stopped, self.refreshes = True, None, 0
        self._stuck.clear()
        if self._unsubscribe is None:  # a reset or load stops it; live, every call moves the next refresh
            self._unsubscribe = self._observers.subscribe(self.observe)
        self.arm()

    def stop(self, reason: str | None = None) -> None:
        """Opt out (or, with a reason, stop by itself)."""
        self.on, self.stopped = False, reason
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def refresh(self) -> bool:
        """Send one pre-warm now; False (and keep-warm stopped) when it failed or refreshed nothing."""
        now = self._clock()
        before = {(a.block, round(now + a.expires_in, 3)) for a in self.advice(now) if a.worth}
        try:
            self._prewarm()
        except Exception as error:  # any failure stops keep-warm; the call record has it
            self.stop(f"keep-warm stopped: the refresh failed ({type(error).__name__})")
            self._observers.emit("blocks", None)  # the panel shows why it stopped
            return False
        self.refreshes += 1
        after = {(a.block, round(self._clock() + a.expires_in, 3)) for a in self.advice()}
        self._stuck |= before & after  # still dying at the same time: this pre-warm cannot refresh it
        return True

    def advance(self, seconds: float, move: Callable[[float], float]) -> float:
        """Move the offline clock by `seconds` with `move`, sending each refresh that falls due on the way."""
        end = self._clock() + seconds
        for _ in range(_MAX_REFRESHES):
            at = self.due() if self.on else None
            if at is None or at >= end:
                break
            move(max(at - self._clock(), 0.0))
            if not self.refresh():
                break
        return move(max(end - self._clock(), 0.0))

    def arm(self) -> None:
        """Live: set the timer for the next refresh (called after every call and refresh)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        at = self.due() if self.on and self._live else None
        if at is None:
            return
        self._timer = threading.Timer(max(at - self._clock(), 0.0), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def observe(self, event: str, payload: Any) -> None:
        """A session observer while on: a reset or a load stops keep-warm (what it kept warm is
        another conversation's); live, every call moves the next refresh."""
        if event == "reset":
            self.stop()
        elif event == "call":
            self.arm()

    def _fire(self) -> None:
        if self.on and self.refresh():
            self.arm()
