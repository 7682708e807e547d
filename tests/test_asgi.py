"""`emulator.asgi` over loopback sockets: sizes judged before reading, strict JSON bodies, the
clock's bounds and the controls' guard (loopback Host, JSON only), each a one-line refusal."""

from __future__ import annotations

import json
import time
import tracemalloc

import anthropic
import pytest

from pcache_magic.emulator import Emulator
from pcache_magic.emulator.asgi import NOW_HEADER
from pcache_magic.emulator.engine import START_TIME
from pcache_magic.emulator.server import EmulatorHTTPServer, Limits, serve
from pcache_magic.emulator.wire import FaultPlan
from pcache_magic.session import emulator_http

from _raw_http import (
    PARAMS,
    connect,
    exchange,
    one_line_error,
    parse,
    read_all,
    request,
    running,
    sdk,
    still_serving,
)


# --- sizes ------------------------------------------------------------------------------------------
def test_a_body_over_the_cap_is_refused_from_its_content_length(
    threaded: tuple[Emulator, EmulatorHTTPServer],
) -> None:
    emu, server = threaded
    data = request("POST", "/v1/messages", length=False).replace(
        b"\r\n\r\n", b"\r\nContent-Length: 3000000000\r\n\r\n{"
    )
    status, headers, body = exchange(server.server_address, data)
    assert status == 413 and headers["connection"] == "close"
    assert body["error"]["type"] == "request_too_large"
    assert (
        one_line_error(body) == f"Request exceeds the maximum allowed number of bytes ({emu.max_body_bytes})."
    )
    still_serving(server)


def test_declared_bodies_in_progress_share_a_budget() -> None:
    emu = Emulator(max_body_bytes=1_000)
    limits = Limits(max_inflight_body_bytes=2_500, request_timeout_s=30)
    for server in running(serve(emu, "127.0.0.1", 0, limits=limits)):
        uploads = [connect(server.server_address) for _ in range(2)]
        try:
            for sock in uploads:  # two 1,000-byte uploads, stalled after their first byte
                sock.sendall(request("POST", "/v1/messages", b"{" + b" " * 999)[:-999])
            time.sleep(0.2)  # let both reach the app (their heads are complete)
            status, _, body = exchange(
                server.server_address, request("POST", "/v1/messages", b"{" + b" " * 999)
            )
            assert status == 529 and body["error"]["type"] == "overloaded_error"
            assert one_line_error(body) == "Too many large request bodies in progress; try again shortly."
            small = request("POST", "/v1/messages", json.dumps({"model": "m"}).encode())
            assert exchange(server.server_address, small)[0] == 400  # small bodies still fit
            uploads[0].sendall(b" " * 999)  # one finishes: its share is released
            assert parse(read_all(uploads[0]))[0] == 400
            assert (
                exchange(server.server_address, request("POST", "/v1/messages", b"{}" + b" " * 998))[0] == 400
            )
        finally:
            for sock in uploads:
                sock.close()


# --- bodies -----------------------------------------------------------------------------------------
NOT_JSON = [  # strict JSON (RFC 8259) only, as the API: Python's parser alone would take these
    pytest.param(
        "/_emulator/advance", b'{"seconds": NaN}', "NaN is not a valid JSON value", id="advance-nan"
    ),
    pytest.param(
        "/_emulator/advance", b'{"seconds": Infinity}', "Infinity is not a valid JSON value", id="advance-inf"
    ),
    pytest.param(
        "/_emulator/advance", b'{"seconds": 1e400}', "1e400 is out of range for a number", id="1e400"
    ),
    pytest.param(
        "/v1/messages",
        json.dumps({**PARAMS, "temperature": float("nan")}).encode(),
        "NaN is not a valid JSON value",
        id="messages-temperature-nan",
    ),
    pytest.param("/v1/messages", b"[" * 50_000 + b"]" * 50_000, "nesting deeper than 100 levels", id="deep"),
    pytest.param(
        "/v1/messages",
        json.dumps({**PARAMS, "messages": [{"role": "user", "content": "\ud800"}]}).encode(),
        "lone surrogate \\ud800 is not valid Unicode",
        id="lone-surrogate",
    ),
]


@pytest.mark.parametrize(("path", "body", "reason"), NOT_JSON)
def test_hostile_json_is_a_400_and_changes_nothing(
    threaded: tuple[Emulator, EmulatorHTTPServer], path: str, body: bytes, reason: str
) -> None:
    emu, server = threaded
    now = emu.now()
    status, _, error = exchange(server.server_address, request("POST", path, body))
    assert status == 400 and error["error"]["type"] == "invalid_request_error"
    assert one_line_error(error) == f"There was an issue with your request body: invalid JSON ({reason})"
    assert emu.now() == now and emu.state()["entries"] == []  # the clock and the cache as they were
    assert sdk(server.url).messages.create(**PARAMS).usage.cache_creation_input_tokens


# --- the clock ----------------------------------------------------------------------------------------
def test_a_huge_advance_is_refused_and_caching_keeps_working(
    threaded: tuple[Emulator, EmulatorHTTPServer],
) -> None:
    emu, server = threaded
    now = emu.now()
    for seconds in (b"1e20", b"100000000000000000000000", b"-1"):
        status, _, error = exchange(
            server.server_address, request("POST", "/_emulator/advance", b'{"seconds": %s}' % seconds)
        )
        assert status == 400, seconds
        assert one_line_error(error).startswith(("seconds must be at most", "time only moves forward"))
    assert emu.now() == now
    status, _, state = exchange(
        server.server_address, request("POST", "/_emulator/advance", b'{"seconds": 315360000}')
    )
    assert status == 200 and state["now"] == now + 315_360_000
    client = sdk(server.url)
    assert client.messages.create(**PARAMS).usage.cache_creation_input_tokens
    assert client.messages.create(**PARAMS).usage.cache_read_input_tokens  # five minutes still mean something
    status, _, state = exchange(server.server_address, request("POST", "/_emulator/reset", b"{}"))
    assert status == 200 and state == {"now": now, "entries": []}


# --- the controls: loopback Host, JSON only -----------------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "status", "message"),
    [
        pytest.param(
            ("Content-Type: text/plain",),
            415,
            "The emulator's controls take Content-Type application/json, not 'text/plain'.",
            id="cross-origin-text-plain",
        ),
        pytest.param(
            ("Content-Type: application/x-www-form-urlencoded",),
            415,
            "The emulator's controls take Content-Type application/json, "
            "not 'application/x-www-form-urlencoded'.",
            id="form",
        ),
        pytest.param(
            ("Origin: http://attacker.example",),
            403,
            "Origin 'http://attacker.example' may not use the emulator's controls.",
            id="foreign-origin",
        ),
    ],
)
def test_a_browser_cannot_move_the_clock(
    threaded: tuple[Emulator, EmulatorHTTPServer], extra: tuple[str, ...], status: int, message: str
) -> None:
    emu, server = threaded
    now = emu.now()
    got, _, body = exchange(
        server.server_address, request("POST", "/_emulator/advance", b'{"seconds": 600}', *extra)
    )
    assert got == status and one_line_error(body) == message
    assert emu.now() == now
    got, _, body = exchange(server.server_address, request("POST", "/_emulator/advance", b'{"seconds": 600}'))
    assert got == 200 and body["now"] == now + 600


@pytest.mark.parametrize("path", ["/_emulator/state", "/_emulator/reset"])
def test_a_rebound_host_is_refused(threaded: tuple[Emulator, EmulatorHTTPServer], path: str) -> None:
    emu, server = threaded
    emu.advance(60)
    method = "GET" if path.endswith("state") else "POST"
    data = request(method, path, b"{}").replace(b"Host: 127.0.0.1", b"Host: attacker.example:8765")
    status, _, body = exchange(server.server_address, data)
    assert status == 403 and body["error"]["type"] == "permission_error"
    assert one_line_error(body).startswith("Host 'attacker.example:8765' may not use the emulator's controls")
    assert emu.now() == START_TIME + 60
    data = request("GET", "/v1/models").replace(b"Host: 127.0.0.1", b"Host: attacker.example:8765")
    assert exchange(server.server_address, data)[0] == 200  # the API itself answers any Host


def test_no_error_the_server_sends_repeats_the_requests_key(
    threaded: tuple[Emulator, EmulatorHTTPServer],
) -> None:
    """Over HTTP too, the 404 for a key put in the path, and a control's refusal quoting a header."""
    _, server = threaded
    key = "sk-ant-api03-" + "abcdefghij" * 4
    for data in (
        request("GET", f"/v1/{key}").replace(b"x-api-key: k", f"x-api-key: {key}".encode()),
        request("POST", "/_emulator/advance", b"{}", f"Origin: http://{key}.example").replace(
            b"x-api-key: k", f"authorization: Bearer {key}".encode()
        ),
    ):
        status, _, body = exchange(server.server_address, data)
        assert status in (403, 404) and "[API key]" in one_line_error(body)
        assert key not in json.dumps(body)


# --- faults ---------------------------------------------------------------------------------------
def test_injecting_many_faults_costs_nothing(threaded: tuple[Emulator, EmulatorHTTPServer]) -> None:
    """`times` is a count, not a list: a million pending faults take no memory and go with a reset."""
    emu, server = threaded
    tracemalloc.start()
    try:
        FaultPlan().inject(500, times=10**6)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100_000  # a list of a million faults would take tens of megabytes
    status, _, _ = exchange(
        server.server_address, request("POST", "/_emulator/inject", b'{"fault": 500, "times": 1000000}')
    )
    assert status == 200 and len(emu.faults) == 10**6
    with pytest.raises(anthropic.InternalServerError):
        sdk(server.url).messages.create(**PARAMS)
    assert len(emu.faults) == 10**6 - 1
    status, _, _ = exchange(server.server_address, request("POST", "/_emulator/reset", b"{}"))
    assert status == 200 and len(emu.faults) == 0
    for bad in (b'{"fault": 500, "retry_after": "soon"}', b'{"fault": 500, "times": 0}', b'{"fault": "500"}'):
        status, _, error = exchange(server.server_address, request("POST", "/_emulator/inject", bad))
        assert status == 400 and error["error"]["type"] == "invalid_request_error"
    assert len(emu.faults) == 0


# --- the clock ---------------------------------------------------------------------------------------
def test_every_answer_tells_the_emulators_time(threaded: tuple[Emulator, EmulatorHTTPServer]) -> None:
    """A URL-mode session learns the server's time from its answers (`NOW_HEADER`), errors
    included, instead of asking `/_emulator/state` before its calls."""
    emu, server = threaded
    body = json.dumps(
        {"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "Hi"}]}
    )
    status, headers, _ = exchange(server.server_address, request("POST", "/v1/messages", body.encode()))
    assert status == 200 and float(headers[NOW_HEADER]) == emu.now()
    emu.advance(3_600)
    status, headers, _ = exchange(server.server_address, request("POST", "/v1/messages", b"{"))
    assert status == 400 and float(headers[NOW_HEADER]) == emu.now() == START_TIME + 3_600
    assert NOW_HEADER == emulator_http.NOW_HEADER  # the name the session's clock listens for
