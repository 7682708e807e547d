"""The session's one live panel as `%claude_panel` shows it: under a display id, so that when a
newer panel replaces it, or a new session closes it, its output keeps one line saying so.

Closing a widget alone leaves its output blank, and a notebook saved then reopens it as "Error
displaying widget: model not found".  Updating the display replaces the widget's output with the
line, in the page and in what the notebook saves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from IPython.display import DisplayHandle, display

from ..core.fmt import html_text

if TYPE_CHECKING:
    from ..view.panel import CachePanel

__all__ = ["NEW_SESSION", "REPLACED", "Closed", "close", "show"]

REPLACED = "This panel was replaced by a newer one (one live panel per session: the latest %claude_panel)."
NEW_SESSION = "This panel closed: its session was replaced (%claude_panel shows the new one)."


class Closed:
    """What a closed panel's output becomes: its one line, as HTML and as plain text."""

    def __init__(self, note: str) -> None:
        self.note = note

    def _repr_html_(self) -> str:
        return f'<p class="pcache-note pcache-closed">{html_text(self.note)}</p>'

    def __repr__(self) -> str:
        return self.note


def show(panel: CachePanel) -> CachePanel:
    """Display `panel` under a display id of its own, kept on the panel for `close`."""
    handle = display(panel, display_id=True)
    panel.display_handle = handle if isinstance(handle, DisplayHandle) else None
    return panel


def close(panel: CachePanel, note: str = "") -> None:
    """Close `panel`; with a `note`, its output first becomes that line (`Closed`)."""
    handle = panel.display_handle
    if note and handle is not None:
        handle.update(Closed(note))
    panel.close()
