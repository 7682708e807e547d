"""Injected faults: the FIFO of statuses, disconnects and timeouts the next API requests take.

Kept apart from `wire` (which consumes them) because they are state the emulator's controls
change, while the wire layer is the request-to-response mapping.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

from .errors import ERROR_TYPES, ApiError

__all__ = ["Fault", "FaultPlan", "Injected", "fault_error"]

Fault = int | Literal["disconnect", "timeout"]

#: The message the API pairs with each injected status, so an injected fault reads like the
#: real thing in a traceback.
_FAULT_MESSAGES = {
    "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit "
    "(injected by the emulator)",
    "api_error": "Internal server error (injected by the emulator)",
    "overloaded_error": "Overloaded (injected by the emulator)",
}


@dataclass(frozen=True)
class Injected:
    """One fault as a request takes it from the plan."""

    kind: Fault
    retry_after: float | None


class FaultPlan:
    """A thread-safe FIFO of injected faults, consumed one per API request.

    A status fault is taken by the next `POST /v1/messages` or count_tokens request and
    answered before the engine runs, so it never touches the cache. A disconnect waits at
    the head of the queue for the next *streaming* messages request (non-streaming requests
    pass it by): that request runs, so its cache write happens, but its stream is cut after
    `message_start` and part of the content, as when a connection drops mid-answer. A
    timeout is taken by the next API request, streaming or not, and never answered: the
    engine does not run, as when a request is lost on the way.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Runs of one fault and how many requests it still takes: `times` costs O(1), not O(times),
        # so no `/_emulator/inject` body can stall the server or fill its memory.
        self._queue: deque[list[Any]] = deque()

    def inject(self, fault: Fault, *, times: int = 1, retry_after: float | None = None) -> None:
        if fault not in ("disconnect", "timeout") and not (
            isinstance(fault, int) and not isinstance(fault, bool) and 400 <= fault <= 599
        ):
            raise ValueError(
                f"fault must be an HTTP error status (400-599), 'disconnect' or 'timeout', got {fault!r}"
            )
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise ValueError(f"times must be a positive integer, got {times!r}")
        if retry_after is not None and (
            isinstance(retry_after, bool)
            or not isinstance(retry_after, int | float)
            or not (math.isfinite(retry_after) and retry_after >= 0)
        ):
            raise ValueError(f"retry_after must be a finite number >= 0, got {retry_after!r}")
        with self._lock:
            self._queue.append([Injected(fault, retry_after), times])

    def take(self, *, streaming: bool) -> Injected | None:
        """The fault for this request, removed from the queue, or None."""
        with self._lock:
            if not self._queue:
                return None
            run = self._queue[0]
            head: Injected = run[0]
            if head.kind == "disconnect" and not streaming:
                return None
            run[1] -= 1
            if run[1] == 0:
                self._queue.popleft()
            return head

    def put_back(self, fault: Injected) -> None:
        """Put back a disconnect whose request failed before streaming, so it stays pending."""
        with self._lock:
            self._queue.appendleft([fault, 1])

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def __len__(self) -> int:
        with self._lock:
            return sum(count for _, count in self._queue)


def fault_error(fault: Injected) -> ApiError:
    """The API error an injected status fault answers with (its usual type and message)."""
    assert isinstance(fault.kind, int)
    status = fault.kind
    type_ = next((t for t, s in ERROR_TYPES.items() if s == status), None)
    if type_ is None:
        type_ = "api_error" if status >= 500 else "invalid_request_error"
    headers = {}
    if fault.retry_after is not None:
        ra = fault.retry_after
        headers["retry-after"] = str(int(ra)) if float(ra).is_integer() else repr(float(ra))
    message = _FAULT_MESSAGES.get(type_, f"Injected HTTP {status} ({type_})")
    return ApiError(type_, message, status=status, headers=headers)
