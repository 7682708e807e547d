"""Keep-warm on the offline clock: refreshes go out just before entries die, while they pay."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from pcache_magic.analysis.cachebook import CacheBook
from pcache_magic.core.models import default_models
from pcache_magic.emulator import Emulator
from pcache_magic.session.keepwarm import LEAD, KeepWarmer
from pcache_magic.session.observers import Observers
from pcache_magic.session.session import Session

RULES = "Review the paper with care: check every claim against its evidence. " * 200


def _rhythm(session: Session, gap: float, calls: int = 3) -> None:
    """A marked system prompt and `calls` questions `gap` seconds apart."""
    session.system(RULES, cache=True, name="rules")
    for i in range(calls):
        if i:
            session.advance(gap)
        session.ask(f"Question {i}?")


def _kinds(session: Session) -> list[str]:
    return [c.kind for c in session.calls]


def test_a_refresh_goes_out_before_the_entry_dies_and_the_next_call_reads(
    session: Session, emu: Emulator
) -> None:
    _rhythm(session, 360.0)  # calls six minutes apart: every 5m entry dies just before the next call
    assert session.calls[-1].tokens.write_5m > 0  # the entry died between calls: written again each time
    keeper = session.keepwarm
    (advice,) = [a for a in keeper.advice() if a.block == "rules"]
    assert advice.worth
    keeper.start()
    start = session.now()
    session.advance(360.0)
    assert _kinds(session)[-1] == "prewarm"
    assert session.calls[-1].started_at == pytest.approx(start + 300.0 - LEAD)
    assert keeper.refreshes == 1
    assert session.now() == pytest.approx(start + 360.0)
    session.ask("Question 3?")
    last = session.calls[-1]
    assert last.tokens.read >= advice.tokens  # read, not written again
    assert last.tokens.write_5m < advice.tokens


def test_without_keep_warm_the_clock_just_moves(session: Session) -> None:
    _rhythm(session, 360.0)
    calls = len(session.calls)
    session.advance(360.0)
    assert len(session.calls) == calls


def test_a_long_pause_is_not_kept_warm(session: Session) -> None:
    _rhythm(session, 3 * 3_600.0)  # hours apart: twelve-plus refreshes cost more than one rewrite
    keeper = session.keepwarm
    keeper.start()
    assert keeper.due() is None
    calls = len(session.calls)
    session.advance(3 * 3_600.0)
    assert len(session.calls) == calls


def test_refreshing_stops_once_the_expected_call_has_passed(session: Session) -> None:
    _rhythm(session, 360.0)
    session.keepwarm.start()
    session.advance(6 * 3_600.0)  # the user never came back: a refresh or two, then nothing
    assert 1 <= session.keepwarm.refreshes <= 2
    assert session.keepwarm.due() is None


def test_a_failed_refresh_stops_keep_warm_with_a_reason() -> None:
    def prewarm() -> None:
        raise ConnectionError("unreachable")

    book = CacheBook(default_models())
    keeper = KeepWarmer(book, [], lambda: 0.0, prewarm, Observers(), live=False)
    keeper.start()
    assert not keeper.refresh()
    assert not keeper.on
    assert keeper.stopped == "keep-warm stopped: the refresh failed (ConnectionError)"


def test_live_keep_warm_arms_a_daemon_timer_and_stop_cancels_it(session: Session) -> None:
    _rhythm(session, 360.0)
    fired = threading.Event()
    observers = Observers()
    keeper = KeepWarmer(session.book, session.calls, session.now, fired.set, observers, live=True)
    keeper.start()
    timer = keeper._timer
    assert timer is not None and timer.daemon and timer.is_alive()
    assert len(observers) == 1  # live, it re-arms after every call
    keeper.stop()
    assert len(observers) == 0
    assert not timer.is_alive() or timer.finished.is_set()
    assert keeper._timer is None
    assert not fired.is_set()


def test_a_reset_or_a_load_stops_keep_warm(session: Session, tmp_path: Path) -> None:
    _rhythm(session, 360.0)
    path = session.save(tmp_path / "s.json")
    session.keepwarm.start()
    session.reset()
    assert not session.keepwarm.on
    session.keepwarm.start()
    session.load(path)
    assert not session.keepwarm.on
    calls = len(session.calls)
    session.advance(360.0)
    assert len(session.calls) == calls  # nothing kept warm for a conversation that was replaced


def test_unloading_the_extension_stops_keep_warm(ip: Any) -> None:
    import pcache_magic

    session = pcache_magic.current_session()
    session.keepwarm.start()
    assert session.keepwarm.on
    ip.run_line_magic("unload_ext", "pcache_magic")
    assert not session.keepwarm.on
    ip.run_line_magic("load_ext", "pcache_magic")  # the fixture unloads it again
