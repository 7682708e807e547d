"""`%claude_clock advance`: move the emulator's clock, every way it can fail said in one line.

The clock moves only offline (the live API's lifetimes run in real time); a duration is parsed
by `cells.parse_duration` within the emulator's range; a `PCACHE_EMULATOR_URL` server that does
not answer like ours, or has gone away, is named with what to check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from IPython.core.error import UsageError

from ..core.fmt import duration
from . import cells
from .output import one_line

if TYPE_CHECKING:
    from ..session.session import Session

__all__ = ["advance"]


def advance(session: Session, how_far: str) -> str:
    """Move the clock by `how_far` (`90`, `6m`, `1h30m`, ...); the line to print, or UsageError."""
    from ..emulator.engine import MAX_ADVANCE_S  # here: loading the extension makes no engine

    try:
        seconds = cells.parse_duration(how_far, limit=MAX_ADVANCE_S)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if not session.offline:
        raise UsageError(
            "The clock only moves offline: the live API's cache lifetimes run in real time "
            "(%config ClaudeMagics.offline = True switches to the emulator)."
        )
    from ..session.emulator_http import EmulatorCallError

    try:
        session.advance(seconds)
    except EmulatorCallError as error:  # a server that is not ours: its own line says what it did
        raise UsageError(f"{one_line(error)} The clock may not have moved.") from None
    except (OSError, ValueError, RuntimeError) as error:  # gone away, or out of range
        raise UsageError(f"Could not move the emulator clock ({one_line(error)}).") from None
    return f"Moved the emulator clock on by {duration(seconds)}."
