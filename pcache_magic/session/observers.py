"""Who is told when a session changes: the panel, the magics' outputs, anything that `subscribe`s.

A part of its own so that the parts that change the session (blocks, calls, asking) are given
`Observers.emit` and nothing else of the session: they announce a change, and need not know who
listens.

An observer that raises does not stop the change it was told of, nor the observers after it:
by then the change is made (a paid call recorded, the ledger taught), so undoing the caller's
work would leave the session disagreeing with itself.  As IPython's event callbacks, the error
is shown and the telling goes on: one warning line the first time each observer fails.  A
Ctrl-C (or exit) is not an observer's error and goes through.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from typing import Any, Literal

from ..core.env import without_api_key
from ..core.fmt import cut, visible

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
        self._failed: list[Observer] = []  # those already warned about (compared by identity)

    def __len__(self) -> int:
        return len(self._observers)

    def subscribe(self, observer: Observer) -> Callable[[], None]:
        """Call `observer(event, payload)` on every change; returns the unsubscribe function."""
        self._observers.append(observer)
        return lambda: self._forget(observer)

    def _forget(self, observer: Observer) -> None:
        """Unsubscribe `observer`: no longer told, nor held (once warned about, it is again)."""
        if observer in self._observers:
            self._observers.remove(observer)
        self._failed = [o for o in self._failed if o is not observer]

    def emit(self, event: SessionEvent, payload: Any = None) -> None:
        """Tell every observer; one that unsubscribes while being told does not upset the others,
        and one that raises is warned about once and skipped (see the module's docstring)."""
        for observer in list(self._observers):
            try:
                observer(event, payload)
            except Exception as error:
                self._warn(observer, event, error)

    def _warn(self, observer: Observer, event: SessionEvent, error: Exception) -> None:
        if any(o is observer for o in self._failed):
            return
        self._failed.append(observer)
        name = visible(str(getattr(observer, "__qualname__", None) or type(observer).__name__))
        try:  # an error's own text may fail, hold the key or drive a terminal
            said = visible(without_api_key(cut(" ".join(str(error).split()), 200), pieces=True))
        except Exception:
            said = ""
        kind = visible(type(error).__name__)
        message = (
            f"A session observer ({name}) raised {kind}"
            + (f": {said}" if said else "")
            + f" when told of {event!r}; the session went on, and told the others. "
            "Fix or unsubscribe it (this is said once per observer)."
        )
        with contextlib.suppress(Warning):  # warnings made errors (`-W error`) would undo the change
            warnings.warn(message, RuntimeWarning, stacklevel=3)
