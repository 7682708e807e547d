"""A `pcache-emulator` server's clock, as a URL-mode session reads it: without a request per read.

The server's clock stands still until advanced, so the session keeps the time it was last told:
by every answer of the server (its `NOW_HEADER`, heard through a response hook on our own HTTP
clients), by the answer to our own `advance`, and, when neither came for `resync_s` seconds of
real time, by asking `/_emulator/state` (another client may have moved it meanwhile).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx2

from .emulator_http import NOW_HEADER, emulator_now, told_now

__all__ = ["MAX_RETRY_S", "RETRY_S", "SLOW_S", "ServerClock"]

#: After the server failed to tell its time, its clock is asked again after this long, doubled on
#: each failure up to `MAX_RETRY_S`: a server that never answers costs a read its deadline
#: (`emulator_http.DEADLINE_S`) now and then, not on every read.
RETRY_S, MAX_RETRY_S = 1.0, 60.0
#: An answer that took longer than this many seconds counts as a failure for the wait above (the
#: time it told is kept): a server answering just under the deadline would otherwise cost every read.
SLOW_S = 1.0
#: The request extension that says how many times our own asks had told the time when it was sent.
_TOLD_KEY = "pcache_clock_told"


class ServerClock:
    """A `pcache-emulator`'s clock without a request per read: its clock stands still until advanced,
    so the time it last told is kept, replaced by what each answer tells (`NOW_HEADER`, `heard`) and
    what our own `advance` returns, and asked again once `resync_s` seconds of real time have passed
    without either (another client may have moved it meanwhile).

    While the server cannot be reached, or answers other than with its time (a redirect, which is
    not followed; nothing within `emulator_http.DEADLINE_S`), it answers the last time it told (calls
    then fail with their own one-line error, instead of every magic failing on the clock), and asks
    again after `RETRY_S`, then twice as long each time; an answer slower than `SLOW_S` is kept but
    counts the same.  Each ask reads at most `emulator_http.MAX_BYTES`.  `monotonic`: the real-time
    clock (a test's, to step it).

    An answer to a request sent before our latest ask told the time (another thread's call in
    flight across our `advance`) is passed by: its time may be from before the advance.
    """

    def __init__(
        self, url: str, *, resync_s: float = 1.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.url = url
        self.resync_s = resync_s
        self._monotonic = monotonic
        self._now = time.time()
        self._synced_at: float | None = None  # monotonic() of the last answer
        self._retry_s, self._retry_at = 0.0, -math.inf  # after a failure: the wait, and when it ends
        self._told = 0  # times our own asks told the time (`learn`): stamped on each request sent
        self._lock = threading.Lock()  # an answer's check and write, whole against our own `learn`

    def __call__(self) -> float:
        now, synced = self._monotonic(), self._synced_at
        if (synced is None or now - synced >= self.resync_s) and now >= self._retry_at:
            waited = self._retry_s
            try:
                self.learn(_emulator_now(f"{self.url}/_emulator/state", None))
            except OSError:  # EmulatorCallError too: bounded, never followed elsewhere
                self._wait_longer(waited)
            else:
                if self._monotonic() - now > SLOW_S:  # kept, but not asked again at once
                    self._wait_longer(waited)
        return self._now

    def _wait_longer(self, waited: float) -> None:
        """After a failed or slow ask: wait `RETRY_S`, or twice the last wait, before the next."""
        self._retry_s = min(2 * waited, MAX_RETRY_S) if waited else RETRY_S
        self._retry_at = self._monotonic() + self._retry_s

    def advance(self, seconds: float) -> float:
        """Move the server's clock (`/_emulator/advance`); its answer is the new time, learned."""
        now = _emulator_now(f"{self.url}/_emulator/advance", {"seconds": seconds})
        self.learn(now)
        return now

    def learn(self, now: float) -> None:
        """The server's time, as its answer to our ask (`/_emulator/state`, an advance) told it."""
        at = self._monotonic()
        with self._lock:
            self._now, self._synced_at = now, at
            self._retry_s, self._retry_at = 0.0, -math.inf
            self._told += 1

    def stamp(self, request: httpx2.Request) -> None:
        """An HTTP client's request hook: the request carries how often our asks had told the time."""
        request.extensions[_TOLD_KEY] = self._told

    def heard(self, response: httpx2.Response) -> None:
        """An HTTP client's response hook: the time every answer of the server tells in `NOW_HEADER`
        is learned, so a session in use never asks for it (a value that is no time is passed by, and
        so is an answer to a request sent before our latest ask told the time).  A wait after a
        failed ask stands: a server whose calls answer says nothing of its clock's."""
        now = told_now(response.headers.get(NOW_HEADER))
        if now is None:
            return
        at = self._monotonic()
        with self._lock:
            if response.request.extensions.get(_TOLD_KEY) == self._told:
                self._now, self._synced_at = now, at

    async def astamp(self, request: httpx2.Request) -> None:
        """`stamp`, for an async client (its hooks are awaited)."""
        self.stamp(request)

    async def aheard(self, response: httpx2.Response) -> None:
        """`heard`, for an async client."""
        self.heard(response)

    def listen(self, client: httpx2.Client | httpx2.AsyncClient) -> None:
        """Learn from every answer this HTTP client (our own, never a caller's) receives."""
        hooks = client.event_hooks
        if isinstance(client, httpx2.AsyncClient):
            hooks["request"].append(self.astamp)
            hooks["response"].append(self.aheard)
        else:
            hooks["request"].append(self.stamp)
            hooks["response"].append(self.heard)


def _emulator_now(url: str, payload: Mapping[str, Any] | None = None) -> float:
    """The server's time (`emulator_http`: a bounded read, within a deadline, no redirect)."""
    return emulator_now(url, payload)
