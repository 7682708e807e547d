"""A URL-mode session's clock (`session/server_clock.py`): the server's time without a request per
read, learned from every answer, our own advance, or an ask once `resync_s` has passed; a server
that does not answer costs a bounded wait now and then."""

from __future__ import annotations

import asyncio

import httpx2
import pytest

from pcache_magic.emulator import Emulator
from pcache_magic.emulator.server import EmulatorHTTPServer
from pcache_magic.session import server_clock, transport
from pcache_magic.session.emulator_http import NOW_HEADER
from pcache_magic.session.server_clock import ServerClock
from pcache_magic.session.session import Session
from pcache_magic.session.transport import EMULATOR_URL_ENV, connect

MESSAGES = [{"role": "user", "content": "Hi"}]


@pytest.fixture
def server_url(threaded: tuple[Emulator, EmulatorHTTPServer]) -> tuple[Emulator, str]:
    emu, server = threaded
    return emu, server.url


def test_server_mode_clock_reads_do_not_each_send_a_request(
    server_url: tuple[Emulator, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's clock stands still until advanced: it is asked once, then kept, updated by our
    own `advance`, and asked again only after `resync_s` (another client may have moved it)."""
    emu, url = server_url
    conn = connect(env={EMULATOR_URL_ENV: url}, max_retries=0)
    assert isinstance(conn.clock, ServerClock)
    asked: list[str] = []
    real = server_clock._emulator_now
    monkeypatch.setattr(server_clock, "_emulator_now", lambda u, p=None: asked.append(u) or real(u, p))
    assert [conn.clock() for _ in range(50)] == [emu.now()] * 50
    assert asked == [f"{url}/_emulator/state"]
    assert conn.advance(600) == emu.now() == conn.clock()  # the advance's answer is the new time
    assert asked == [f"{url}/_emulator/state", f"{url}/_emulator/advance"]
    emu.advance(60)  # another client moves the server's clock
    assert conn.clock() == emu.now() - 60  # still the time it last told...
    conn.clock.resync_s = 0.0
    assert conn.clock() == emu.now()  # ...until it is asked again
    assert asked[-1] == f"{url}/_emulator/state"


def test_server_mode_learns_the_time_each_answer_tells(
    server_url: tuple[Emulator, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Calls in a row never ask the server's clock: each answer tells it (`NOW_HEADER`), so a move
    by another client shows after the next answer, sync or async; a caller's own HTTP client is
    left alone (no hook), and its clock asks as before."""
    emu, url = server_url
    conn = connect(env={EMULATOR_URL_ENV: url}, max_retries=0)
    assert isinstance(conn.clock, ServerClock)
    conn.clock.resync_s = 3_600.0
    asked: list[str] = []
    real = server_clock._emulator_now
    monkeypatch.setattr(server_clock, "_emulator_now", lambda u, p=None: asked.append(u) or real(u, p))
    session = Session(model="claude-sonnet-4-5", connection=conn)
    session.ask("Hi", stream=False)
    emu.advance(600)  # another client moves the server's clock
    session.ask("Again", stream=True)
    assert session.calls[-1].started_at == emu.now() - 600  # sent before this answer told the time...
    assert conn.clock() == emu.now()  # ...which it has learned
    emu.advance(60)
    asyncio.run(conn.async_client.messages.count_tokens(model="claude-sonnet-4-5", messages=MESSAGES))
    assert conn.clock() == emu.now()
    assert asked == [f"{url}/_emulator/state"]  # once, before the first call: nothing told it yet
    mine = httpx2.Client()
    own = connect(env={EMULATOR_URL_ENV: url}, http_client=mine, max_retries=0)
    assert own.client._client is mine and mine.event_hooks["response"] == []
    assert own.async_client._client.event_hooks["response"] == [own.clock.aheard]  # type: ignore[attr-defined]
    assert own.async_client.timeout == transport.SERVER_TIMEOUT_S  # the side we made: a minute, not 600 s


def test_an_answers_time_leaves_the_wait_after_a_failed_clock_ask(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server whose calls answer but whose clock does not is asked again after the wait, not
    on every call: an answer's `NOW_HEADER` tells the time, and says nothing of the clock's health."""
    real = [0.0]
    clock = ServerClock("http://127.0.0.1:9", resync_s=1.0, monotonic=lambda: real[0])
    monkeypatch.setattr(
        server_clock, "_emulator_now", lambda url, payload=None: (_ for _ in ()).throw(OSError())
    )
    clock()  # fails: asked again after RETRY_S
    answer = _answer(clock, "5000.0")
    real[0] = 2.0
    clock.heard(answer)
    assert clock._retry_at == server_clock.RETRY_S  # the wait stands
    assert clock() == 5000.0


def test_server_clock_keeps_the_last_time_while_unreachable_and_asks_again_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server that never answers costs one deadline now and then (1 s, 2 s, 4 s ... up to a
    minute apart), not one on every read; an answer ends the wait."""
    asked: list[float] = []
    real = [0.0]

    def unreachable(url: str, payload: object = None) -> None:
        asked.append(real[0])
        raise OSError("timed out")

    monkeypatch.setattr(server_clock, "_emulator_now", unreachable)
    clock = ServerClock("http://127.0.0.1:9", resync_s=3600, monotonic=lambda: real[0])
    before = clock()
    assert [clock() for _ in range(20)] == [before] * 20 and asked == [0.0]  # the last time known
    for step in (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0):
        n = len(asked)
        real[0] += step - 0.01
        clock()
        assert len(asked) == n  # not yet
        real[0] += 0.01
        clock()
        assert len(asked) == n + 1 and asked[-1] == real[0]  # asked again once the wait is over
    assert asked[-1] - asked[-2] == pytest.approx(server_clock.MAX_RETRY_S)
    clock.learn(1_000.0)
    assert clock() == 1_000.0 and asked[-1] == real[0]  # an answer is kept for `resync_s`
    monkeypatch.setattr(server_clock, "_emulator_now", lambda url, payload=None: 2_000.0)
    real[0] += 3600
    assert clock() == 2_000.0  # and the first failure after an answer waits 1 s again


def test_a_slow_answer_is_kept_but_waited_for_like_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that tells its time just under the deadline (9.5 s) is asked 1 s, 2 s, 4 s ... up to
    a minute apart, not on every read a second after the last; a quick answer ends the wait."""
    asked: list[float] = []
    real = [0.0]

    def slow(url: str, payload: object = None) -> float:
        asked.append(real[0])
        real[0] += 9.5
        return 1_000.0 + len(asked)

    monkeypatch.setattr(server_clock, "_emulator_now", slow)
    clock = ServerClock("http://127.0.0.1:9", monotonic=lambda: real[0])  # asked again after 1 s
    assert clock() == 1_001.0  # the time it told, kept
    for step in (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0):
        n = len(asked)
        real[0] += step - 0.01
        assert clock() == 1_000.0 + n and len(asked) == n  # not yet
        real[0] += 0.01
        assert clock() == 1_001.0 + n and len(asked) == n + 1
    monkeypatch.setattr(server_clock, "_emulator_now", lambda url, payload=None: 2_000.0)
    real[0] += 60
    assert clock() == 2_000.0
    monkeypatch.setattr(server_clock, "_emulator_now", lambda url, payload=None: 3_000.0)
    real[0] += clock.resync_s
    assert clock() == 3_000.0  # answered quickly: asked again after `resync_s`, no longer wait


def _answer(clock: ServerClock, told: str) -> httpx2.Response:
    """An answer telling `told`, to a request sent now (stamped as the client's hook stamps it)."""
    request = httpx2.Request("POST", "http://127.0.0.1:9/v1/messages")
    clock.stamp(request)
    return httpx2.Response(200, headers={NOW_HEADER: told}, request=request)


def test_an_answer_to_a_request_sent_before_our_advance_is_passed_by(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another thread's call in flight across our own advance answers with the time before it: the
    clock went back 600 s (R17CODE); such an answer is passed by, a later one is learned."""
    clock = ServerClock("http://127.0.0.1:9", resync_s=3_600.0)
    monkeypatch.setattr(server_clock, "_emulator_now", lambda url, payload=None: 1_000.0)
    assert clock() == 1_000.0
    in_flight = _answer(clock, "1000.0")  # sent before the advance, answered after it
    monkeypatch.setattr(server_clock, "_emulator_now", lambda url, payload=None: 1_600.0)
    assert clock.advance(600) == 1_600.0
    clock.heard(in_flight)
    assert clock() == 1_600.0
    clock.heard(_answer(clock, "1700.0"))  # sent after it: another client moved the clock since
    assert clock() == 1_700.0


def test_our_advance_between_an_answers_check_and_its_write_still_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another thread's `advance` landing inside `heard` (R17A2: between the stamp's check and the
    write) let the answer from before it put the clock back; the check and the write are one step."""
    real = [0.0]
    clock = ServerClock("http://127.0.0.1:9", resync_s=3_600.0, monotonic=lambda: real[0])
    monkeypatch.setattr(server_clock, "_emulator_now", lambda url, payload=None: 1_000.0)
    assert clock() == 1_000.0
    in_flight = _answer(clock, "1000.0")
    monkeypatch.setattr(server_clock, "_emulator_now", lambda url, payload=None: 1_600.0)
    advanced: list[float] = []

    def monotonic() -> float:  # the other thread runs its advance when `heard` reads the time
        if not advanced:
            advanced.append(0.0)  # once: the advance reads this clock too
            advanced[0] = clock.advance(600)
        return real[0]

    clock._monotonic = monotonic
    clock.heard(in_flight)
    assert advanced == [1_600.0] and clock() == 1_600.0
