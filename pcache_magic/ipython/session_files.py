"""`%claude_session save|load|export`: the store's files, its errors as one-line UsageErrors.

A refused save, load or export leaves the session as it was (the store validates a whole
file before it changes anything); what the magic prints comes back as one string.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from IPython.core.error import UsageError

from ..core.fmt import plural
from .output import one_line

if TYPE_CHECKING:
    from ..session.session import Session

__all__ = ["EXPORTS", "session_file"]

#: What `%claude_session export` writes.
EXPORTS = ("python", "ipynb", "json")
#: The longest export printed into the cell's output (longer ones go to a file).
MAX_PRINTED = 100_000


def session_file(session: Session, command: str, target: str, path: str | None, max_mb: float | None) -> str:
    """Save to, load from or export to `target` (`path`: where an export goes); the line to print."""
    from ..session import store  # here: loading the extension does not import the store

    if command == "export" and target not in EXPORTS:
        raise UsageError(
            "%claude_session export takes python, ipynb or json: %claude_session export python replay.py"
        )
    try:
        if command == "save":
            return f"Saved {plural(len(session.calls), 'call')} and the blocks to {session.save(target)}."
        if command == "export":
            text = session.export(target)  # type: ignore[arg-type]
            if path is None and len(text) > MAX_PRINTED:  # a page nobody reads in a notebook's output
                file = _free(
                    {"python": "replay.py", "ipynb": "replay.ipynb", "json": "session_export.json"}[target]
                )
                raise UsageError(
                    f"The {target} export is {text.count(chr(10)) + 1:,} lines ({len(text):,} characters),"
                    f" too long to print here; write it to a file: %claude_session export {target} {file}"
                )
            return text if path is None else f"Wrote {store.write_atomic(path, text)}."
        loaded = session.load(target, max_bytes=None if max_mb is None else int(max_mb * 2**20))
        return "\n".join([loaded.summary(), *loaded.notes])
    except (store.StoreError, OSError) as error:
        raise UsageError(one_line(error)) from None


def _free(name: str) -> str:
    """`name`, or `replay-2.py`, `replay-3.py`...: a file name the working directory does not hold yet
    (the advice to write an export there must not overwrite a file of the user's)."""
    stem, dot, ext = name.partition(".")
    return next(
        n for n in (name, *(f"{stem}-{i}{dot}{ext}" for i in range(2, 10_000))) if not os.path.lexists(n)
    )
