"""Who is told when a session changes: the panel, the magics' outputs, anything that `subscribe`s.

A part of its own so that the parts that change the session (blocks, calls, asking) are given
`Observers.emit` and nothing else of the session: they announce a change, and need not know who
listens.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

__all__ = ["Emit", "Observer", "Observers", "SessionEvent"]

SessionEvent = Literal["blocks", "call", "reset"]
"""What changed: the conversation's blocks (or the clock), a call recorded, or everything."""
Observer = Callable[[SessionEvent, Any], None]
"""`observer(event, payload)`: the payload is the block or call record concerned, or None."""
Emit = Callable[[SessionEvent, Any], None]
"""How a part announces a change: `Observers.emit`, given to the part by the session."""


class Observers:
    """The observers of one session, told of every change in the order they subscribed."""

    def __init__(self) -> None:
        self._observers: list[Observer] = []

    def __len__(self) -> int:
        return len(self._observers)

    def subscribe(self, observer: Observer) -> Callable[[], None]:
        """Call `observer(event, payload)` on every change; returns the unsubscribe function."""
        self._observers.append(observer)
        return lambda: self._observers.remove(observer) if observer in self._observers else None

    def emit(self, event: SessionEvent, payload: Any = None) -> None:
        """Tell every observer; one that unsubscribes while being told does not upset the others."""
        for observer in list(self._observers):
            observer(event, payload)
