"""The session's CallLog: each call explained once, as a full replay explains it, with the same totals.

Sessions run against the in-process emulator, whose clock moves only when advanced, so the
explanations (an expiry included) are exact.
"""

from __future__ import annotations

import contextlib

import anthropic
import pytest

from pcache_magic.analysis.call_log import CallLog, call_log
from pcache_magic.analysis.diagnose import explain_all
from pcache_magic.core.record import totals
from pcache_magic.emulator import Emulator
from pcache_magic.session.session import Session
from pcache_magic.session.transport import connect

MODEL = "claude-sonnet-4-5"
LONG = " ".join(f"Rule {i}: review every function for missing tests and unclear names." for i in range(120))


@pytest.fixture
def session(emu: Emulator) -> Session:
    s = Session(model=MODEL, connection=connect(emulator=emu, max_retries=0))
    s.system(LONG, cache="5m", name="intro")
    return s


def varied(s: Session, log: CallLog | None = None) -> None:
    """Hits, a write, an expiry, a failed call and a changed system prompt; `log` updated on the way."""
    steps = [
        lambda: s.ask("q1", stream=False),
        lambda: s.ask("q2", stream=False),
        lambda: s.advance(6 * 60),
        lambda: s.ask("q3", stream=False),
        lambda: s.ask("q", stream=True, max_tokens=0),  # pre-warming cannot stream: a 400
        lambda: s.system(LONG + " Today is Monday.", cache="5m", name="intro"),
        lambda: s.ask("q4", stream=False),
        lambda: s.context(LONG * 3, name="big"),
        lambda: s.ask("q5", stream=False),
    ]
    for step in steps:
        with contextlib.suppress(anthropic.BadRequestError):
            step()
        if log is not None:
            log.update(s)


def test_whys_and_totals_are_a_full_replays_whether_updated_per_call_or_at_once(session: Session) -> None:
    per_call = CallLog()
    varied(session, per_call)
    view, at_once = per_call.update(session), CallLog().update(session)
    expected = [e.summary for e in explain_all(session)]
    assert len(expected) == 6 and any(w.startswith("failed") for w in expected)
    # "intro" was edited after the expiry: a full replay names the old content as it was sent
    assert any("expired 5m entry at 'intro'" in w for w in expected)
    assert list(view.whys) == list(at_once.whys) == expected
    assert view.totals == at_once.totals == totals(session.calls) == session.totals
    assert view.totals.failed == 1 and view.count == 6
    largest = max(session.calls, key=lambda r: r.tokens.prompt + r.tokens.output)
    assert view.largest is largest


def test_a_renamed_or_edited_block_is_named_as_a_full_replay_names_it(session: Session) -> None:
    log = call_log(session)
    session.ask("q1", stream=False)
    session.advance(6 * 60)
    session.ask("q2", stream=False)
    before = log.update(session)
    assert "expired 5m entry at 'intro'" in str(before.whys[1])
    assert log.update(session).whys is before.whys  # nothing changed: nothing explained again
    intro = session.conversation.drop("intro")  # the only system block: back in the same place
    session.conversation.add(intro.model_copy(update={"name": "rules"}))
    renamed = log.update(session)
    assert "expired 5m entry at 'rules'" in str(renamed.whys[1]) and before.count == 2
    assert [*renamed.whys] == [e.summary for e in explain_all(session)]
    session.system(LONG + " Edited.", cache="5m", name="rules")
    edited = log.update(session)
    assert "expired 5m entry at 'intro'" in str(edited.whys[1])  # the old content, as it was sent
    session.ask("q3", stream=False)
    assert log.update(session).whys is edited.whys  # named so for good
    assert [*log.update(session).whys] == [e.summary for e in explain_all(session)]


def test_each_call_is_explained_once(session: Session) -> None:
    log = call_log(session)
    assert log is session.book.calls_log is call_log(session)  # kept on the session's book
    session.ask("q1", stream=False)
    first = log.update(session)
    first.memo["row"] = "kept"
    again = log.update(session)
    assert again.whys is first.whys and again.count == 1 and again.memo == {"row": "kept"}
    session.ask("q2", stream=False)
    later = log.update(session)
    assert later.whys is first.whys and later.count == 2 and later.whys[0] == first.whys[0]
    assert first.count == 1  # a view taken before still reads as it was


def test_a_reset_or_replaced_calls_start_the_log_over(session: Session) -> None:
    log = call_log(session)
    session.ask("q1", stream=False)
    session.ask("q2", stream=False)
    before = log.update(session)
    before.memo["row"] = "stale"
    session.reset()
    empty = log.update(session)
    assert empty.count == 0 and empty.totals.calls == 0 and empty.memo == {} and empty.largest is None
    assert before.count == 2 and len(before.whys) == 2  # untouched by the restart
    session.ask("q3", stream=False)
    assert [*log.update(session).whys] == [e.summary for e in explain_all(session)]
    session.calls[:] = [r.model_copy() for r in session.calls]  # same figures, new records
    view = log.update(session)
    assert view.count == 1 and view.records[0] is session.calls[0]


def test_a_session_without_a_book_gets_a_fresh_log() -> None:
    class Bare:
        def __init__(self) -> None:
            self.calls: list[object] = []

    assert isinstance(call_log(Bare()), CallLog) and call_log(Bare()) is not call_log(Bare())
    assert CallLog().update(Bare()).count == 0
