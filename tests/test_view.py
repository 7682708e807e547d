"""The ipywidgets CachePanel: state after calls, O(1) appends, countdown, controls, teardown.

Sessions run against the in-process emulator, whose clock stands still until advanced, so
the countdown figures are exact.  Outside a kernel ipywidgets uses a no-op comm, so widget
values are plain strings to inspect.
"""

from __future__ import annotations

import contextlib
import gc
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import ipywidgets as widgets
import pytest
from IPython.core.formatters import DisplayFormatter
from ipywidgets.widgets.widget import _instances as open_widgets

from pcache_magic.analysis.diagnose import explain_all
from pcache_magic.emulator import Emulator
from pcache_magic.session.session import Session
from pcache_magic.session.transport import connect
from pcache_magic.view.panel import CachePanel
from pcache_magic.view.render import render_session

from _helpers import cell, parse, select, text

MODEL = "claude-sonnet-4-5"
LONG = " ".join(f"Rule {i}: review every function for missing tests and unclear names." for i in range(120))


def why(row: ET.Element) -> str:
    """A calls row's "why" whole, as its opened details show it (the folded first line puts the
    cause first: `folded`)."""
    (whole,) = select(cell(row, "pcache-why"), "div", "pcache-why-text")
    return text(whole)


def folded(row: ET.Element) -> str:
    """A calls row's "why" as its folded first line (`<summary>`) shows it."""
    (summary,) = cell(row, "pcache-why").iter("summary")
    (line,) = select(summary, "span", "pcache-why-line")
    return text(line)


def calls_html(panel: CachePanel) -> ET.Element:
    """The calls table as shown (the "Show all" button, when there is one, is not HTML)."""
    return parse("".join(child.value for child in panel.calls.children if child is not panel.show_all_button))


@pytest.fixture
def session(emu: Emulator) -> Session:
    """Not conftest.py's: no retries, and a cached system block named "intro"."""
    s = Session(model=MODEL, connection=connect(emulator=emu, max_retries=0))
    s.system(LONG, cache="5m", name="intro")
    return s


@pytest.fixture
def panel(session: Session) -> Iterator[CachePanel]:
    p = CachePanel(session)
    yield p
    p.close()


def test_panel_tracks_blocks_and_calls(session: Session, panel: CachePanel) -> None:
    assert "No calls yet" in panel.calls_head.value
    session.ask("q1", stream=False)
    session.ask("q1", stream=False)
    blocks = parse(panel.blocks.value)
    (intro,) = select(blocks, "tr", "pcache-block", data_block="intro")
    assert text(cell(intro, "pcache-marker")) == "5m"
    assert select(blocks, "tr", "pcache-block", data_block="reply-2")
    calls = calls_html(panel)
    for rec in session.calls:
        (tr,) = select(calls, "tr", "pcache-call", data_call=str(rec.index))
        assert int(cell(tr, "pcache-read").get("data-tokens") or -1) == rec.tokens.read
        assert int(cell(tr, "pcache-write").get("data-tokens") or -1) == rec.tokens.written
        assert text(cell(tr, "pcache-outcome")).split()[0] == rec.outcome == tr.get("data-outcome")
    second = select(calls, "tr", "pcache-call", data_call="2")[0]
    assert int(cell(second, "pcache-read").get("data-tokens") or 0) > 0
    assert text(cell(second, "pcache-outcome")) == "hit ✓"  # as the pre-flight predicted
    assert "2 calls (0 failed)" in panel.header.value
    assert "No calls yet" not in panel.calls_head.value


def test_why_column_explains_each_call_as_it_comes(session: Session, panel: CachePanel) -> None:
    session.ask("q1", stream=False)
    session.advance(6 * 60)
    session.ask("q2", stream=False)
    session.ask("q3", stream=False)
    whys = [why(tr) for tr in select(calls_html(panel), "tr", "pcache-call")]
    assert whys[0].startswith("wrote") and "expired 5m entry at 'intro'" in whys[1]
    assert whys[2].startswith("hit")
    panel.refresh()  # a full re-render explains the same way as the incremental one
    assert [why(tr) for tr in select(calls_html(panel), "tr", "pcache-call")] == whys


def test_a_new_call_appends_one_row_and_leaves_earlier_rows_alone(session: Session) -> None:
    panel = CachePanel(session, chunk=1)  # one row per chunk widget: any re-render is visible
    try:
        session.ask("q1", stream=False)
        session.ask("q1", stream=False)
        rows = list(panel._rows)
        chunks = list(panel._chunks)
        changes: list[Any] = []
        for chunk in chunks:
            chunk.observe(changes.append, names="value")
        session.ask("q2", stream=False)
        assert len(panel._rows) == 3 and all(a is b for a, b in zip(rows, panel._rows, strict=False))
        assert panel._chunks[:2] == chunks and changes == []
        assert panel.calls.children == (panel.calls_head, *panel._chunks)
        assert select(calls_html(panel), "tr", "pcache-call", data_call="3")
    finally:
        panel.close()


def test_rows_fill_chunks_in_order(session: Session) -> None:
    panel = CachePanel(session, chunk=2)
    try:
        for i in range(5):
            session.ask(f"q{i}", stream=False)
        assert len(panel._chunks) == 3
        values = [c.value for c in panel._chunks]
        assert [len(select(parse(v), "tr", "pcache-call")) for v in values] == [2, 2, 1]
        indexes = [tr.get("data-call") for tr in select(calls_html(panel), "tr", "pcache-call")]
        assert indexes == ["1", "2", "3", "4", "5"]
    finally:
        panel.close()


def test_a_bigger_call_rescales_every_bar(session: Session, panel: CachePanel) -> None:
    session.ask("q1", stream=False)
    scale, first = panel._scale, panel._rows[0]
    session.context(LONG * 3, name="big")
    session.ask("q2", stream=False)
    assert panel._scale > scale
    assert panel._rows[0] is not first and panel._rows[0] != first  # bar redrawn on the new scale
    assert len(select(calls_html(panel), "tr", "pcache-call")) == 2


def test_countdown_follows_the_emulator_clock(session: Session, panel: CachePanel) -> None:
    session.ask("q1", stream=False)
    (entry,) = select(parse(panel.countdown.value), "tr", "pcache-entry", data_block="intro")
    assert text(cell(entry, "pcache-expires")) == "expires in 5m 00s"
    session.advance(120)
    (entry,) = select(parse(panel.countdown.value), "tr", "pcache-entry", data_block="intro")
    assert text(cell(entry, "pcache-expires")) == "expires in 3m 00s"
    session.advance(181)
    assert not select(parse(panel.countdown.value), "tr", "pcache-entry")
    assert "No live cache entries" in panel.countdown.value
    assert not panel.ticking  # offline: no timer thread, events drive the countdown


def test_advance_and_refresh_buttons(session: Session, panel: CachePanel) -> None:
    assert panel.advance_button is not None
    assert panel.advance_button.description == "Advance 5 min"
    assert "pcache-advance" in panel.advance_button._dom_classes
    assert "pcache-refresh" in panel.refresh_button._dom_classes
    session.ask("q1", stream=False)
    start = session.now()
    panel.advance_button.click()
    assert session.now() == start + 300
    assert "No live cache entries" in panel.countdown.value
    panel.header.value = "stale"
    panel.refresh_button.click()
    assert "1 call (0 failed)" in panel.header.value


def test_failed_call_row_shows_failed(session: Session, panel: CachePanel) -> None:
    with pytest.raises(anthropic.BadRequestError):
        session.ask("q", stream=True, max_tokens=0)  # pre-warming cannot stream: a 400
    (tr,) = select(calls_html(panel), "tr", "pcache-call", data_call="1")
    assert text(cell(tr, "pcache-outcome")) == "failed"
    assert "400" in text(cell(tr, "pcache-why"))
    assert "1 call (1 failed)" in panel.header.value  # every call the table lists


def test_running_totals_match_the_sessions(session: Session, panel: CachePanel) -> None:
    session.ask("q1", stream=False)
    with pytest.raises(anthropic.BadRequestError):
        session.ask("q", stream=True, max_tokens=0)
    session.ask("q2", stream=False)
    running = panel.header.value
    assert "3 calls (1 failed)" in running
    panel.refresh()  # from session.totals: every call summed again
    assert panel.header.value == running


def test_close_unsubscribes(session: Session) -> None:
    before = len(session._observers)
    panel = CachePanel(session)
    assert len(session._observers) == before + 1
    panel.close()
    assert len(session._observers) == before
    session.ask("q1", stream=False)
    assert "No calls yet" in panel.calls_head.value


@pytest.mark.parametrize("fails", ["refresh", "_ensure_ticking"])
def test_a_panel_that_fails_to_open_closes_what_it_built(
    session: Session, fails: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before it subscribes, or after: no widget of it stays open, nothing stays subscribed, and
    collecting it later is quiet (was: "Exception ignored ... no attribute '_unsubscribe'")."""
    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    opened, observers = set(open_widgets), len(session._observers)

    def broken(*_: object) -> None:
        raise RuntimeError("cannot open")

    monkeypatch.setattr(CachePanel, fails, broken)
    with pytest.raises(RuntimeError, match="cannot open"):
        CachePanel(session)
    new = [w for key, w in open_widgets.items() if key not in opened]
    left = [w for w in new if isinstance(w, widgets.DOMWidget)]  # closing leaves layouts and styles open
    for widget in left:  # the old code left these open (and closing the panel raised): not for later tests
        with contextlib.suppress(AttributeError):
            widget.close()
    assert (left, len(session._observers)) == ([], observers)
    gc.collect()
    assert unraisable == []


def test_reset_clears_the_panel(session: Session, panel: CachePanel) -> None:
    session.ask("q1", stream=False)
    session.reset()
    assert panel._rows == [] and panel._chunks == []
    assert "No calls yet" in panel.calls_head.value
    assert "0 calls (0 failed)" in panel.header.value


def test_a_rendering_error_never_fails_the_call(
    session: Session, panel: CachePanel, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> None:
        raise RuntimeError("render <bug>")

    monkeypatch.setattr(panel, "_render_blocks", broken)
    session.ask("q1", stream=False)
    assert len(session.calls) == 1
    assert "RuntimeError: render &lt;bug&gt;" in panel.status.value


def test_online_countdown_ticks_and_stops_on_close(emu: Emulator) -> None:
    # Not offline (no connection), but on the emulator's clock so time is under test control.
    s = Session(model=MODEL, client=emu.client(), clock=emu.now)
    s.system(LONG, cache="5m", name="intro")
    panel = CachePanel(s, refresh_every=0.01)
    assert panel.advance_button is None
    try:
        s.ask("q1", stream=False)
        assert panel.ticking
        emu.advance(60)  # no session event: only the timer can notice
        deadline = time.monotonic() + 5
        while "expires in 4m 00s" not in panel.countdown.value and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "expires in 4m 00s" in panel.countdown.value
        emu.advance(300)
        deadline = time.monotonic() + 5
        while panel.ticking and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not panel.ticking  # nothing live: the thread exits until the next event
        s.ask("q2", stream=False)
        assert panel.ticking
    finally:
        panel.close()
    assert not panel.ticking


def test_repr_html_is_the_static_session_view(session: Session, panel: CachePanel) -> None:
    session.ask("q1", stream=False)
    copy = render_session(session, note=panel.snapshot_note())
    assert panel._repr_html_() == copy
    data, _ = DisplayFormatter().format(panel)
    assert "application/vnd.jupyter.widget-view+json" in data
    assert data["text/html"] == copy


def test_a_long_session_opens_on_its_latest_page_and_shows_all_on_demand(session: Session) -> None:
    for i in range(23):
        session.ask(f"q{i % 3}", stream=False)
        if i == 11:
            session.advance(6 * 60)  # one expiry in the middle: the "why"s differ from call to call
    full = CachePanel(session, chunk=5, page=None)
    paged = CachePanel(session, chunk=5, page=8)
    try:
        everything = [(tr.get("data-call"), why(tr)) for tr in select(calls_html(full), "tr", "pcache-call")]
        assert [i for i, _ in everything] == [str(n) for n in range(1, 24)]
        shown = [(tr.get("data-call"), why(tr)) for tr in select(calls_html(paged), "tr", "pcache-call")]
        assert shown == everything[15:]  # whole chunks (3 of 5) hidden, at least a page (8) shown
        assert paged.calls.children == (paged.calls_head, paged.show_all_button, *paged._chunks)
        assert paged.show_all_button.description == "Show all 23 calls"
        static = parse(paged._repr_html_())  # the static copy shows the widget's page, and says so
        assert [(tr.get("data-call"), why(tr)) for tr in select(static, "tr", "pcache-call")] == shown
        (more,) = select(static, "p", "pcache-more")
        assert text(more).startswith("15 earlier calls not shown")
        session.ask("q9", stream=False)  # a new call still appends to the page
        paged.show_all_button.click()
        after = [(tr.get("data-call"), why(tr)) for tr in select(calls_html(paged), "tr", "pcache-call")]
        assert after[:23] == everything and after[23][0] == "24"
        # the button stays, the other way round (a keyboard's focus stays on it)
        assert paged.calls.children == (paged.calls_head, paged.show_all_button, *paged._chunks)
        assert paged.show_all_button.description == "Show the latest 9 only"  # whole chunks: 24 - 15
        assert "Show all" not in "".join(c.value for c in paged._chunks)
        copy = render_session(session, note=paged.snapshot_note())
        assert paged._repr_html_() == copy == full._repr_html_()
        paged.show_all_button.click()  # and back to the latest page
        again = [(tr.get("data-call"), why(tr)) for tr in select(calls_html(paged), "tr", "pcache-call")]
        assert again == after[15:] and paged.show_all_button.description == "Show all 24 calls"
    finally:
        full.close()
        paged.close()


def test_a_panel_opened_again_reuses_the_sessions_explanations_and_rows(session: Session) -> None:
    for i in range(7):
        session.ask(f"q{i % 2}", stream=False)
        if i == 3:
            session.advance(6 * 60)
    first = CachePanel(session, chunk=2, page=4)
    second = CachePanel(session, chunk=2, page=4)
    try:
        assert [row for _, row in second._rows] == [row for _, row in first._rows]
        assert all(a[1] is b[1] for a, b in zip(first._rows, second._rows, strict=True))  # not re-rendered
        expected = [e.summary for e in explain_all(session)]
        second.show_all()
        assert [why(tr) for tr in select(calls_html(second), "tr", "pcache-call")] == expected
        second.refresh()  # a refresh after "Show all" keeps every call shown
        assert [why(tr) for tr in select(calls_html(second), "tr", "pcache-call")] == expected
    finally:
        first.close()
        second.close()


def test_a_loaded_sessions_panel_explains_as_before_saving(
    session: Session, emu: Emulator, tmp_path: Path
) -> None:
    session.ask("q1", stream=False)
    session.advance(6 * 60)
    session.ask("q2", stream=False)
    session.ask("q3", stream=False)
    panel = CachePanel(session)
    before = [(tr.get("data-call"), why(tr)) for tr in select(calls_html(panel), "tr", "pcache-call")]
    panel.close()
    assert "expired 5m entry at 'intro'" in before[1][1]
    path = session.save(tmp_path / "s.json")
    loaded = Session(model=MODEL, connection=connect(emulator=Emulator(), max_retries=0))
    loaded.load(path)
    again = CachePanel(loaded)
    try:
        after = [(tr.get("data-call"), why(tr)) for tr in select(calls_html(again), "tr", "pcache-call")]
        assert after == before
        assert again._repr_html_() == render_session(session, note=again.snapshot_note())
    finally:
        again.close()


def test_a_renamed_block_redraws_the_rows_that_name_it(session: Session, panel: CachePanel) -> None:
    session.ask("q1", stream=False)
    session.advance(6 * 60)
    session.ask("q2", stream=False)
    assert "expired 5m entry at 'intro'" in why(select(calls_html(panel), "tr", "pcache-call")[1])
    intro = session.conversation.drop("intro")
    session.conversation.add(intro.model_copy(update={"name": "rules"}))
    session.ask("q3", stream=False)
    whys = [why(tr) for tr in select(calls_html(panel), "tr", "pcache-call")]
    assert "expired 5m entry at 'rules'" in whys[1] and len(whys) == 3
    # folded, the cause comes first: a narrow cell cuts the end, and the columns show the tokens
    row = select(calls_html(panel), "tr", "pcache-call")[1]
    assert folded(row) == "expired 5m entry at 'rules' (1h would have kept it) · wrote 1,695 (5m)"
    # opened, it says where the advice is; a hit has nothing to do
    (more,) = select(cell(row, "pcache-why"), "div", "pcache-call-more")
    assert text(more) == "What to do: %claude_explain 2 (in Python: explain(session, 2))"
    first, hit = (select(calls_html(panel), "tr", "pcache-call")[i] for i in (0, 2))
    assert why(first).startswith("wrote ") and ": " not in why(first)  # the first write: expected
    assert not select(cell(first, "pcache-why"), "div", "pcache-call-more")
    assert not select(cell(hit, "pcache-why"), "div", "pcache-call-more")
    assert whys == [e.summary for e in explain_all(session)]


def test_the_static_copy_says_it_is_the_panel_as_shown(session: Session) -> None:
    """A saved notebook keeps the copy made when the panel was shown: it says so, with how many calls
    and when, so reopened without a kernel it does not read as the session now."""
    panel = CachePanel(session)
    try:
        (note,) = select(parse(panel._repr_html_()), "p", "pcache-snapshot")
        assert text(note).startswith(
            "The panel as it was when shown, before any call (09:00:00 on the emulator's"
        )
        assert "%claude_session show prints it as it is now" in text(note)
        session.ask("q1", stream=False)
        (note,) = select(parse(panel._repr_html_()), "p", "pcache-snapshot")
        assert text(note).startswith("The panel as it was when shown, after 1 call (")
        assert repr(panel).endswith(", as shown)")
    finally:
        panel.close()
