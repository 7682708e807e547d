"""The live cache panel: an ipywidgets `VBox` that follows a `Session` as calls come in.

It only arranges the pure renderers of `render.py` (re-exported here).  A new
call appends one pre-rendered row: rows live in fixed-size chunks, each its own
`HTML` widget under one shared header, and the totals and the bar scale are kept
running, so an update costs the same after 10 calls or 10,000 and only one chunk
is re-sent to the browser.  That is all the panel keeps, and each piece pays: on
the `benchmarks/panel.py` sample at 1,000 calls, an update without it is slower
per call 3x (re-rendering the chunk's rows), 28x (summing the session's totals)
and 12x (scanning every call for the bar scale).  The "why"s, the totals and the
largest call come from the session's `CallLog`, which explains each call once per
session: a panel opened again over 1,000 calls renders its latest page, not a replay.
Online, a daemon thread re-renders the TTL countdown every second while entries
are live; offline the clock moves only on `advance`, so events suffice.  Standard
ipywidgets only (JupyterLab 4, Notebook 7, VS Code).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from ..analysis.call_log import LogView, call_log
from ..core.fmt import clock, plural
from ..core.record import CallRecord, Totals
from .html import text
from .render import (
    bar_scale,
    calls_table,
    keepwarm_lines,
    kept_rows,
    render_blocks,
    render_call_row,
    render_calls,
    render_countdown,
    render_header,
    render_legend,
    render_session,
    render_summary,
    session_html,
    style,
    summary_text,
)

if TYPE_CHECKING:
    from ..session.session import Session

__all__ = [
    "CHUNK",
    "CachePanel",
    "render_blocks",
    "render_call_row",
    "render_calls",
    "render_countdown",
    "render_session",
    "render_summary",
    "session_html",
    "summary_text",
]

#: Rows per calls-table chunk: an append re-renders at most this many rows.
CHUNK = 25
#: Calls shown when the panel opens (rounded up to whole chunks); earlier ones behind "Show all".
PAGE = 50
ADVANCE_SECONDS = 300
_Row = tuple[str | None, str]
"""A calls-table row: the call's "why" and the row's HTML."""


class CachePanel(widgets.VBox):
    """Blocks, markers, per-call cache tokens and cost, and the TTL countdown of one session.

    `refresh_every`: seconds between countdown refreshes; None picks 1 s online and
    none offline (where time stands still), 0 turns the timer off.  `page`: calls shown when
    the panel opens or refreshes (the latest ones; a button shows the earlier ones), None: all.
    """

    display_handle: Any = None  # where `%claude_panel` showed it (`ipython.live_panel`)

    def __init__(
        self,
        session: Session,
        *,
        refresh_every: float | None = None,
        chunk: int = CHUNK,
        page: int | None = PAGE,
    ) -> None:
        super().__init__()
        # What `close` needs comes first: a panel whose __init__ fails closes what it built (and
        # ipywidgets calls `close` again when the panel is collected).
        self._closed = False
        self._unsubscribe: Callable[[], None] | None = None
        self._chunks: list[widgets.HTML] = []
        self._lock = threading.Lock()  # guards the countdown thread's start and stop
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            self._build(session, refresh_every, chunk, page)
        except BaseException:
            self.close()
            raise

    def _build(self, session: Session, refresh_every: float | None, chunk: int, page: int | None) -> None:
        self.session = session
        self._interval = (0.0 if session.offline else 1.0) if refresh_every is None else refresh_every
        self._chunk = max(1, chunk)
        self._page = self._paged = page
        self._rows: list[_Row] = []
        """Per shown call: its "why" (from the session's `CallLog`) and its row's HTML."""
        self._log = call_log(session)
        self._view: LogView | None = None
        self._hidden = 0
        """Earlier calls not shown yet (a whole number of chunks), rendered on demand."""
        self._scale = 0
        self._totals = Totals()
        self._render_lock = threading.Lock()  # the timer and events both render the countdown

        self.header = widgets.HTML()
        self.blocks = widgets.HTML()
        self.calls_head = widgets.HTML()
        self.show_all_button = _button("Show all", "Show the earlier calls too", "list")
        # One button both ways: it stays where a keyboard's focus is (a removed one drops it to the page).
        self.show_all_button.on_click(
            lambda _: self._guard(self.show_latest if self._page is None else self.show_all)
        )
        self.calls = widgets.VBox([self.calls_head])
        self.countdown = widgets.HTML()
        self.status = widgets.HTML()
        self.refresh_button = _button("Refresh", "Re-render everything from the session", "refresh")
        self.refresh_button.on_click(lambda _: self._guard(self.refresh))
        self.advance_button: widgets.Button | None = None
        controls: list[widgets.Widget] = [self.refresh_button]
        if session.offline:
            self.advance_button = _button(
                "Advance 5 min", "Move the emulator's clock 300 s: entries expire without waiting", "forward"
            )
            self.advance_button.on_click(lambda _: self._guard(lambda: session.advance(ADVANCE_SECONDS)))
            controls.append(self.advance_button)
        self.controls = widgets.HBox([*controls, self.status])
        for widget, name in (
            (self.header, "header"),
            (self.blocks, "blocks"),
            (self.calls, "calls"),
            (self.countdown, "countdown"),
            (self.controls, "controls"),
        ):
            widget.add_class(f"pcache-{name}-widget")
        self.children = (self.header, self.blocks, self.calls, self.countdown, self.controls)
        self.add_class("pcache-panel")
        self.refresh()
        self._unsubscribe = session.subscribe(self._on_event)
        self._ensure_ticking()

    def _repr_html_(self) -> str:
        """The same tables as static HTML, for nbconvert, GitHub and frontends without widgets:
        the calls the widget shows (its page, until "Show all"), so a display costs the page.
        Headed by `snapshot_note`: a saved notebook keeps this copy while the panel moves on."""
        return render_session(self.session, skip=self._hidden, note=self.snapshot_note())

    def snapshot_note(self) -> str:
        """What the static copy is: the panel as shown, after how many calls and when (a notebook
        reopened without its kernel shows the copy, which would otherwise contradict later cells)."""
        calls, now = self.session.calls, clock(self.session.now())
        when = f"after {plural(len(calls), 'call')}" if calls else "before any call"
        at = f"{now} on the emulator's clock" if self.session.offline else f"{now} UTC"
        return (
            f"The panel as it was when shown, {when} ({at}); live, it follows the session. With "
            "the kernel running, %claude_session show prints it as it is now."
        )

    def __repr__(self) -> str:
        """The widget's `text/plain`: the session it follows, not the first 110 characters of its CSS."""
        return f"CachePanel({self.session!r}, as shown)"

    # -- rendering ----------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-render everything from the session (after a reset, or on the Refresh button).

        The session's `CallLog` explains the calls it has not seen yet (all of them after a reset
        or a load) and keeps the totals; only the latest page of rows is rendered and sent.
        """
        view = self._view = self._log.update(self.session)
        n = view.count
        self._totals = view.totals
        self._scale = bar_scale([view.largest] if view.largest is not None else [])
        hidden = self._hidden = self._paged_out(n, self._page)
        self._rows = self._rendered(view, hidden, n)
        self._rebuild_chunks()
        self._render_header()
        self._render_blocks()
        self._render_countdown()
        self.status.value = ""

    def show_all(self) -> None:
        """Render the earlier calls' rows too (their "why"s are kept in the session's `CallLog`);
        later refreshes keep showing them all."""
        self._page = None
        if self._hidden and self._view is not None:
            hidden, view = self._hidden, self._view
            earlier = self._rendered(view, 0, hidden)
            self._hidden = 0
            self._rows = earlier + self._rows
            self._rebuild_chunks()

    def show_latest(self) -> None:
        """Back to the latest page of calls, as the panel opened (after `show_all`)."""
        self._page = self._paged
        self.refresh()

    def _rendered(self, view: LogView, start: int, stop: int) -> list[_Row]:
        """The rows of calls `start` to `stop`; a row rendered at this scale before (by this panel
        or an earlier one on the session) is taken from the log's memo, not rendered again."""
        rows = kept_rows(view, start, stop, self._scale)
        return list(zip(view.whys[start:stop], rows, strict=True))

    def _render_header(self) -> None:
        self.header.value = style() + render_header(self.session, self._totals)

    def _render_blocks(self) -> None:
        self.blocks.value = render_blocks(self.session)

    def _render_countdown(self) -> bool:
        """Re-render the countdown; True while any entry is live."""
        with self._render_lock:
            now = self.session.now()
            entries = self.session.ledger.entries(now)
            advice = keepwarm_lines(self.session.keepwarm, now)
            self.countdown.value = render_countdown(entries, now, offline=self.session.offline, advice=advice)
        return bool(entries)

    def _rebuild_chunks(self) -> None:
        size = self._chunk
        html = [row for _, row in self._rows]
        bodies = ["".join(html[i : i + size]) for i in range(0, len(html), size)]
        for widget in self._chunks[len(bodies) :]:
            widget.close()
        self._chunks = self._chunks[: len(bodies)]
        for i, body in enumerate(bodies):
            if i < len(self._chunks):
                self._chunks[i].value = calls_table(body)
            else:
                self._chunks.append(widgets.HTML(calls_table(body)))
        self._render_calls_head()
        more = (self.show_all_button,) if self._hidden or self._fewer() else ()
        self.calls.children = (self.calls_head, *more, *self._chunks)

    def _paged_out(self, n: int, page: int | None) -> int:
        """The earliest of `n` calls left out on a `page`: whole chunks, so that at least `page`
        calls show and the chunks stay aligned."""
        return 0 if page is None else max(0, n - page) // self._chunk * self._chunk

    def _fewer(self) -> int:
        """How many calls `show_latest` would show, when all show where the panel opened on a
        page of them; else 0."""
        n, out = len(self._rows), self._paged_out(len(self._rows), self._paged)
        return n - out if self._page is None and out else 0

    def _render_calls_head(self) -> None:
        if self._hidden:
            self.show_all_button.description = f"Show all {self._hidden + len(self._rows)} calls"
            self.show_all_button.tooltip = "Show the earlier calls too"
        elif latest := self._fewer():
            self.show_all_button.description = f"Show the latest {latest} only"
            self.show_all_button.tooltip = "Hide the earlier calls again"
        if self._rows:
            self.calls_head.value = (
                f'<div class="pcache-caption">Calls</div>{render_legend()}{calls_table(head=True)}'
            )
        else:
            self.calls_head.value = (
                '<div class="pcache-caption">Calls</div><p class="pcache-empty">No calls yet.</p>'
            )

    def _append(self, record: CallRecord) -> None:
        """One more call: one new row into the last chunk; earlier rows are not touched."""
        before = self._view
        view = self._view = self._log.update(self.session)  # explains the new call (once per session)
        n, shown = view.count, self._hidden + len(self._rows)
        restarted = before is not None and view.whys is not before.whys  # calls replaced, a block renamed
        if restarted or n != shown + 1 or view.records[n - 1] is not record:
            self.refresh()
            return
        self._totals = view.totals
        self._render_header()
        scale = bar_scale([record], floor=self._scale or 1024)
        if scale != self._scale:  # a bigger call: bars are redrawn (powers of two: rare)
            self._scale = scale
            self._rows = self._rendered(view, self._hidden, n)
            self._rebuild_chunks()
            return
        self._rows.extend(self._rendered(view, n - 1, n))
        first = (len(self._rows) - 1) // self._chunk * self._chunk
        body = calls_table("".join(row for _, row in self._rows[first:]))
        if first // self._chunk < len(self._chunks):
            self._chunks[-1].value = body
        else:
            self._chunks.append(widgets.HTML(body))
            self.calls.children = (*self.calls.children, self._chunks[-1])
        if len(self._rows) == 1:
            self._render_calls_head()

    # -- events -------------------------------------------------------------------------
    def _on_event(self, event: str, payload: Any) -> None:
        # An observer runs inside Session.ask: a rendering bug must never fail the user's call.
        self._guard(lambda: self._handle(event, payload))

    def _handle(self, event: str, payload: Any) -> None:
        if self._closed:
            return
        if event == "reset":
            self.refresh()
            return
        if event == "call" and isinstance(payload, CallRecord):
            self._append(payload)
            if payload.kind not in ("ask", "tool_loop"):  # ask ends with a "blocks" event anyway
                self._render_blocks()
        elif event == "blocks":
            self._render_blocks()
        self._render_countdown()
        self._ensure_ticking()

    def _guard(self, action: Any) -> None:
        try:
            action()
        except Exception as error:
            self.status.value = (
                f'<span class="pcache-error">{text(type(error).__name__)}: {text(error)}</span>'
            )

    # -- countdown timer (online) ---------------------------------------------------------
    def _ensure_ticking(self) -> None:
        if self._interval <= 0:
            return
        with self._lock:
            if self._thread is None and not self._closed:
                self._stop.clear()
                self._thread = threading.Thread(target=self._tick, name="pcache-countdown", daemon=True)
                self._thread.start()

    def _tick(self) -> None:
        """Re-render every interval while entries are live; exit when none are (restarted on events)."""
        while not self._stop.wait(self._interval):
            try:
                if self._render_countdown():
                    continue
            except Exception:  # the ledger changed under us, or the clock failed: next tick
                continue
            with self._lock:
                try:  # an event may have added an entry since; it saw this thread still running
                    if self.session.ledger.entries(self.session.now()):
                        continue
                except Exception:
                    continue
                self._thread = None
                return
        with self._lock:
            self._thread = None

    @property
    def ticking(self) -> bool:
        """Whether the countdown thread is running (online, with live entries)."""
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        """Unsubscribe from the session, stop the countdown, close the child widgets; of a panel
        whose __init__ failed part-way, those it had."""
        if not getattr(self, "_closed", True):  # True: not even `super().__init__` ended
            with self._lock:
                self._closed = True
                self._stop.set()
            if self._unsubscribe is not None:
                self._unsubscribe()
            thread = self._thread
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=2)
            for widget in (*self._chunks, *(getattr(self, name, None) for name in _PARTS)):
                if widget is not None:
                    widget.close()
        super().close()


#: The panel's own widgets, closed with it (the calls chunks apart).
_PARTS = (
    *("calls_head", "show_all_button", "calls", "header", "blocks"),
    *("countdown", "status", "refresh_button", "advance_button", "controls"),
)


def _button(description: str, tooltip: str, icon: str) -> widgets.Button:
    button = widgets.Button(description=description, tooltip=tooltip, icon=icon)
    button.add_class("pcache-button")
    button.add_class("pcache-" + description.split()[0].lower())
    return button
