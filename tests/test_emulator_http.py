"""The emulator's clock read from a `PCACHE_EMULATOR_URL` that misbehaves: bounded in bytes and in
time, never redirected elsewhere, one line on failure; the clock keeps its last time meanwhile.

The misbehaving servers are raw sockets on loopback, each answering with a scripted `answer`.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from pcache_magic.emulator import Emulator
from pcache_magic.emulator.server import serve
from pcache_magic.session import emulator_http
from pcache_magic.session.emulator_http import MAX_BYTES, EmulatorCallError, emulator_now
from pcache_magic.session.server_clock import ServerClock
from pcache_magic.session.transport import EMULATOR_URL_ENV, connect

Answer = Callable[[socket.socket], None]


class Scripted:
    """A loopback server answering every connection with `answer`; counts the bytes it sent."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.sent = 0
        self.requests: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self._stop = threading.Event()
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def send(self, conn: socket.socket, data: bytes) -> None:
        conn.sendall(data)
        self.sent += len(data)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(10)
                try:
                    self.requests.append(conn.recv(65_536))
                    self.answer(conn)
                except OSError:  # the client hung up: what a bounded reader does
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.listener.close()


@pytest.fixture
def scripted() -> Iterator[Callable[[Answer], Scripted]]:
    made: list[Scripted] = []

    def make(answer: Answer) -> Scripted:
        made.append(Scripted(answer))
        return made[-1]

    yield make
    for server in made:
        server.close()


HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"


def test_an_answer_that_never_ends_gives_its_leading_time_after_a_bounded_read(
    scripted: Callable[[Answer], Scripted],
) -> None:
    def endless(conn: socket.socket) -> None:
        server.send(conn, HEAD + b'\r\n{"now": 3.5, "x": "')
        while server.sent < 64 * 2**20:  # stops one day, so the old reader ends (wrongly)
            server.send(conn, b"a" * 65_536)

    server = scripted(endless)
    conn = connect(env={EMULATOR_URL_ENV: server.url})
    assert conn.clock() == 3.5
    assert server.sent < 16 * 2**20  # the reader hung up long before the end


def test_a_trickle_ends_at_the_deadline_and_the_clock_keeps_its_time(
    scripted: Callable[[Answer], Scripted], monkeypatch: pytest.MonkeyPatch
) -> None:
    def trickle(conn: socket.socket) -> None:
        server.send(conn, HEAD + b'\r\n{"now": 4')
        for _ in range(60):  # 3 s of one byte each 50 ms, then the end (not JSON)
            time.sleep(0.05)
            server.send(conn, b"0")

    server = scripted(trickle)
    monkeypatch.setattr(emulator_http, "DEADLINE_S", 0.4)
    clock = ServerClock(server.url)
    before = clock._now
    started = time.monotonic()
    assert clock() == before  # no answer in time: the last time known
    assert time.monotonic() - started < 1.5
    with pytest.raises(EmulatorCallError, match="did not answer in time"):
        emulator_now(server.url + "/_emulator/state", deadline_s=0.3)


def test_a_redirect_is_not_followed_and_advance_says_so_in_one_line(
    scripted: Callable[[Answer], Scripted],
) -> None:
    elsewhere = scripted(lambda c: elsewhere.send(c, HEAD + b'content-length: 13\r\n\r\n{"now": 42.0}'))

    def redirect(conn: socket.socket) -> None:
        where = f"{elsewhere.url}/_emulator/state".encode()
        server.send(
            conn, b"HTTP/1.1 307 Temporary Redirect\r\nlocation: " + where + b"\r\ncontent-length: 0\r\n\r\n"
        )

    server = scripted(redirect)
    conn = connect(env={EMULATOR_URL_ENV: server.url})
    assert conn.clock() != 42.0
    with pytest.raises(EmulatorCallError) as caught:
        conn.advance(60)
    assert str(caught.value) == (
        f"{server.url}/_emulator/advance answered a redirect (HTTP 307), which is not followed; "
        "set PCACHE_EMULATOR_URL to the emulator itself."
    )
    assert elsewhere.requests == []


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (HEAD + b"content-length: 2\r\n\r\n{}", "did not answer like a pcache-emulator"),
        (HEAD + b'content-length: 14\r\n\r\n{"now": true}', "did not answer like a pcache-emulator"),
        (HEAD + b'content-length: 13\r\n\r\n{"now": 1e20}', "did not answer like a pcache-emulator"),
        # past what a session file holds and `datetime` shows (3e11 broke the panel and the clock)
        (HEAD + b'content-length: 13\r\n\r\n{"now": 3e11}', "did not answer like a pcache-emulator"),
        (HEAD + b'content-length: 11\r\n\r\n{"now": -5}', "did not answer like a pcache-emulator"),
        (HEAD + b"content-length: 9\r\n\r\nnot json!", "did not answer like a pcache-emulator"),
        (HEAD + b"content-length: 8000\r\n\r\n" + b"[" * 8000, "did not answer like a pcache-emulator"),
        (
            b"HTTP/1.1 500 Oops\r\ncontent-length: 0\r\n\r\n",
            r"answered HTTP 500; check PCACHE_EMULATOR_URL\.$",
        ),
        (
            b"HTTP/1.1 400 Bad\r\ncontent-length: 61\r\n\r\n"
            b'{"type": "error", "error": {"message": "seconds:\\n too far"}}',
            r"answered HTTP 400 \(seconds: too far\); check",
        ),
        (b"\x00\xffgarbage", "did not answer in HTTP"),
        (b"", "did not answer in HTTP"),
    ],
)
def test_anything_but_the_time_is_one_line(
    scripted: Callable[[Answer], Scripted], answer: bytes, message: str
) -> None:
    server = scripted(lambda c: server.send(c, answer))
    with pytest.raises(EmulatorCallError, match=message) as caught:
        emulator_now(server.url + "/_emulator/state")
    assert "\n" not in str(caught.value)


def test_a_whole_answer_is_parsed_without_waiting_for_the_close(
    scripted: Callable[[Answer], Scripted],
) -> None:
    """A declared length ends the read: a server keeping the connection open costs nothing."""

    def keep_open(conn: socket.socket) -> None:
        server.send(conn, HEAD + b'content-length: 27\r\n\r\n{"entries": [], "now": 7.0}')
        server._stop.wait(3)

    server = scripted(keep_open)
    started = time.monotonic()
    assert emulator_now(server.url + "/_emulator/advance", {"seconds": 1}) == 7.0
    assert time.monotonic() - started < 1.5
    request = server.requests[0]
    assert request.startswith(b"POST /_emulator/advance HTTP/1.0\r\n") and request.endswith(b'{"seconds": 1}')


def test_a_real_emulator_holding_more_than_the_cap_still_tells_its_time() -> None:
    """Thousands of cache entries make `/_emulator/state` longer than `MAX_BYTES`; `now` leads it."""
    emu = Emulator()
    emu.advance(1234.5)
    server = serve(emu, "127.0.0.1", 0, timeout=5.0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert emulator_now(server.url + "/_emulator/state") == emu.now()
        assert emulator_now(server.url + "/_emulator/advance", {"seconds": 60}) == emu.now()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    # what a longer answer's leading time relies on: the emulator sends `now` first
    state = emu.respond("GET", "/_emulator/state", {"host": "127.0.0.1"}, b"").body or b""
    assert state.startswith(b'{"now":') and MAX_BYTES == 64 * 1024


def test_a_server_that_is_not_there_is_one_line() -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(EmulatorCallError) as caught:
        emulator_now(f"http://127.0.0.1:{port}/_emulator/state")
    assert str(caught.value) == (
        f"http://127.0.0.1:{port}/_emulator/state cannot be reached (Connection refused); "
        "check PCACHE_EMULATOR_URL."
    )


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.0 200 OK\r\ncontent-length: " + b"9" * 5000 + b'\r\n\r\n{"now": 1}',
        b"HTTP/1.0 " + b"2" * 5000 + b' OK\r\n\r\n{"now": 1}',  # a status code past Python's int digits
        b'HTTP/1.0 2000 OK\r\n\r\n{"now": 1}',
    ],
)
def test_numbers_no_http_answer_holds_are_one_line_and_the_clock_keeps_its_time(
    scripted: Callable[[Answer], Scripted], answer: bytes
) -> None:
    """Python refuses an int of thousands of digits (ValueError): never raised from here as is."""
    server = scripted(lambda c: server.send(c, answer))
    with pytest.raises(EmulatorCallError, match="did not answer in HTTP") as caught:
        emulator_now(server.url + "/_emulator/state")
    assert "\n" not in str(caught.value)
    clock = ServerClock(server.url)
    before = clock()  # the clock's own time, not an error
    assert clock() == before and len(server.requests) == 2  # and it waits before asking again


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:99999/_emulator/state",  # a port out of range
        "http://" + "a" * 64 + "/_emulator/state",  # a host name no DNS label can be
        "http://[::1/_emulator/state",  # an IPv6 host never closed
    ],
)
def test_an_address_that_cannot_be_used_is_one_line(url: str) -> None:
    with pytest.raises(EmulatorCallError) as caught:
        emulator_now(url)
    assert "\n" not in str(caught.value) and "PCACHE_EMULATOR_URL" in str(caught.value)


def test_the_servers_words_in_an_error_hold_no_control_and_no_key(
    scripted: Callable[[Answer], Scripted], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error quotes what the server said: ESC as a picture, the environment's key blotted."""
    key = "sk-ant-api03-" + "k" * 40
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    said = json.dumps({"type": "error", "error": {"message": f"\x1b[31mno {key}"}}).encode()
    answer = b"HTTP/1.1 400 Bad\r\ncontent-length: %d\r\n\r\n%s" % (len(said), said)
    server = scripted(lambda c: server.send(c, answer))
    with pytest.raises(EmulatorCallError) as caught:
        emulator_now(server.url + "/_emulator/state")
    assert key not in str(caught.value) and "\x1b" not in str(caught.value)
    assert "(␛[31mno [API key])" in str(caught.value)


@pytest.mark.parametrize(
    ("value", "now"),
    [
        ("1767258000.25", 1767258000.25),
        ("0", 0.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("nan", None),
        ("inf", None),
        ("-1", None),
        ("1e11", None),
        ("1" * 40, None),
        (" 5 ", None),
        ("1_700_000_000", None),
        ("\uff11\uff12", None),
        ("-0.0", None),
        ("0x10", None),
    ],
)
def test_a_told_time_is_a_time_an_emulator_could_keep(value: str | None, now: float | None) -> None:
    assert emulator_http.told_now(value) == now
