"""`ipython.live_panel`: a replaced `%claude_panel` leaves a line in its output, live and saved."""

from __future__ import annotations

from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from pcache_magic.emulator import Emulator
from pcache_magic.ipython import live_panel
from pcache_magic.session.session import Session
from pcache_magic.session.transport import connect
from pcache_magic.view.panel import CachePanel

from _helpers import loaded_magics, parse, text

WIDGET = "application/vnd.jupyter.widget-view+json"


def _panel(ip: InteractiveShell) -> tuple[CachePanel, str]:
    """Run `%claude_panel`: the panel shown, and the display id its output has."""
    with capture_output() as out:
        ip.run_line_magic("claude_panel", "")
    (shown,) = [o for o in out.outputs if WIDGET in o.data]
    panel = loaded_magics(ip)._panel
    assert panel is not None and not shown.update
    return panel, shown.transient["display_id"]


def test_a_second_panel_leaves_a_line_in_the_first_ones_output(ip: InteractiveShell) -> None:
    """R16U2: the first panel's output went blank, and read "model not found" once reopened."""
    first, first_id = _panel(ip)
    with capture_output() as out:
        ip.run_line_magic("claude_panel", "")
    updates = [o for o in out.outputs if o.update]
    (update,) = updates
    assert update.transient == {"display_id": first_id}  # the first panel's output, not a new one
    assert WIDGET not in update.data  # the widget is gone from it, in the page and in the file
    assert update.data["text/plain"] == live_panel.REPLACED
    assert text(parse(update.data["text/html"])) == live_panel.REPLACED
    assert first._closed
    second = loaded_magics(ip)._panel
    assert second is not first and not second._closed
    (shown,) = [o for o in out.outputs if WIDGET in o.data]
    assert shown.transient["display_id"] != first_id and not shown.update


def test_a_new_session_leaves_a_line_and_unloading_none(ip: InteractiveShell) -> None:
    panel, panel_id = _panel(ip)
    with capture_output() as out:
        loaded_magics(ip).use(Session(connection=connect(emulator=Emulator(), max_retries=0)))
    (update,) = out.outputs
    assert update.update and update.transient == {"display_id": panel_id}
    assert update.data["text/plain"] == live_panel.NEW_SESSION and panel._closed
    panel, _ = _panel(ip)
    with capture_output() as out:
        ip.run_line_magic("unload_ext", "pcache_magic")
    assert panel._closed and not [o for o in out.outputs if o.update]
    with capture_output():
        ip.run_line_magic("load_ext", "pcache_magic")


def test_a_panel_shown_from_python_just_closes() -> None:
    panel = CachePanel(Session(connection=connect(emulator=Emulator(), max_retries=0)))
    assert panel.display_handle is None
    live_panel.close(panel, live_panel.REPLACED)  # no display id to update: nothing to say it in
    assert panel._closed
    assert repr(live_panel.Closed("a $5 line")) == "a $5 line"
    assert "mathjax_ignore" in live_panel.Closed("a $5 line")._repr_html_()
