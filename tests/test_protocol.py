"""`emulator.protocol` over loopback sockets: the request deadline, keep-alive, the connection
cap, framing ahead of h11 and malformed HTTP, each answered in one JSON line and survived."""

from __future__ import annotations

import json
import time

import anthropic
import pytest

from pcache_magic.emulator import Emulator
from pcache_magic.emulator.server import EmulatorHTTPServer, Limits, serve

from _raw_http import (
    AT_ALL_S,
    PARAMS,
    connect,
    exchange,
    one_line_error,
    parse,
    read_all,
    readable,
    request,
    running,
    still_serving,
)


# --- slow and idle clients --------------------------------------------------------------------------
def test_a_client_sending_a_byte_at_a_time_is_dropped_at_the_deadline(
    threaded: tuple[Emulator, EmulatorHTTPServer],
) -> None:
    _, server = threaded
    data = request("POST", "/v1/messages", json.dumps(PARAMS).encode())
    started = time.monotonic()
    with connect(server.server_address) as slow:
        sent = 0
        while not readable(slow):  # a byte every 50 ms, which would reset any per-read timeout
            assert sent < len(data) and time.monotonic() - started < AT_ALL_S
            slow.sendall(data[sent : sent + 1])
            sent += 1
            time.sleep(0.05)
        status, headers, body = parse(read_all(slow))
    assert status == 408 and headers["connection"] == "close"
    assert one_line_error(body) == "Request not received in full within 1 s."
    still_serving(server)


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(b"", id="silent"),
        pytest.param(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\n", id="half-a-head"),
        pytest.param(
            b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{", id="half-a-body"
        ),
    ],
)
def test_a_stalled_client_gets_408_and_does_not_block_others(
    threaded: tuple[Emulator, EmulatorHTTPServer], sent: bytes
) -> None:
    _, server = threaded
    with connect(server.server_address) as stalled:
        stalled.sendall(sent)
        still_serving(server)  # answered while the stalled one waits
        status, headers, body = parse(read_all(stalled))
    assert status == 408 and headers["connection"] == "close"
    assert one_line_error(body) == "Request not received in full within 1 s."


def test_an_idle_keep_alive_connection_is_closed() -> None:
    emu = Emulator()
    for server in running(serve(emu, "127.0.0.1", 0, limits=Limits(keep_alive_s=1))):
        with connect(server.server_address) as sock:
            sock.sendall(request("GET", "/v1/models").replace(b"Connection: close\r\n", b""))
            reply = read_all(sock)  # returns only because the server closes the idle connection
        assert reply.startswith(b"HTTP/1.1 200 ") and reply.count(b"HTTP/1.1") == 1


def test_connections_past_the_cap_are_refused_as_they_open() -> None:
    emu = Emulator()
    limits = Limits(max_connections=4, request_timeout_s=30)
    for server in running(serve(emu, "127.0.0.1", 0, limits=limits)):
        idle = [connect(server.server_address) for _ in range(4)]
        try:
            deadline = time.monotonic() + AT_ALL_S
            while True:  # the four are accepted asynchronously; the next one is refused at once
                with connect(server.server_address) as extra:
                    reply = read_all(extra)
                if reply.startswith(b"HTTP/1.1 529 ") or time.monotonic() > deadline:
                    break
            status, headers, body = parse(reply)
            assert status == 529 and headers["retry-after"] == "1" and headers["connection"] == "close"
            assert body["error"]["type"] == "overloaded_error"
            assert one_line_error(body) == "Too many open connections (at most 4); try again shortly."
        finally:
            for sock in idle:
                sock.close()
        deadline = time.monotonic() + AT_ALL_S
        while True:  # once the idle ones are gone, everyone is served again
            try:
                still_serving(server)
                break
            except anthropic.APIStatusError:
                assert time.monotonic() < deadline
                time.sleep(0.05)


def test_an_oversized_head_is_431(threaded: tuple[Emulator, EmulatorHTTPServer]) -> None:
    _, server = threaded
    status, _, body = exchange(
        server.server_address, request("GET", "/v1/models", b"", "x-filler: " + "a" * 20_000)
    )
    assert status == 431
    assert one_line_error(body) == "Request header fields too large (at most 16384 bytes)."
    still_serving(server)


# --- framing --------------------------------------------------------------------------------------
FRAMING = [
    pytest.param(
        ("Content-Length: 2", "Content-Length: 2"), 400, "Duplicate Content-Length header.", id="dup"
    ),
    pytest.param(
        ("Content-Length: 2", "Content-Length: 7"), 400, "Duplicate Content-Length header.", id="conflict"
    ),
    pytest.param(("Content-Length: 2, 2",), 400, "Invalid Content-Length header.", id="list"),
    pytest.param(("Content-Length: -5",), 400, "Invalid Content-Length header.", id="negative-length"),
    pytest.param(("Content-Length: lots",), 400, "Invalid Content-Length header.", id="length-not-a-number"),
    pytest.param(("Transfer-Encoding: chunked",), 411, "Send the body with Content-Length.", id="chunked"),
]


@pytest.mark.parametrize(("extra", "status", "message"), FRAMING)
def test_bad_framing_is_answered_and_the_connection_closed(
    threaded: tuple[Emulator, EmulatorHTTPServer], extra: tuple[str, ...], status: int, message: str
) -> None:
    emu, server = threaded
    data = request("POST", "/v1/messages", b"{}", *extra, length=False).replace(b"Connection: close\r\n", b"")
    with connect(server.server_address) as sock:  # keep-alive asked for: the server must hang up itself
        sock.sendall(data)
        got, headers, body = parse(read_all(sock))
    assert got == status and headers["connection"] == "close"
    assert one_line_error(body) == message
    assert emu.state()["entries"] == []
    still_serving(server)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"GARBAGE\r\n\r\n", id="no-request-line"),
        pytest.param(b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", id="bad-header-name"),
        pytest.param(b"GET / HTTP/1.1\r\nx: \x00\r\n\r\n", id="nul-in-a-header"),
    ],
)
def test_malformed_http_is_a_json_400(threaded: tuple[Emulator, EmulatorHTTPServer], data: bytes) -> None:
    _, server = threaded
    status, headers, body = exchange(server.server_address, data)
    assert status == 400 and headers["content-type"] == "application/json"
    assert one_line_error(body) == "Malformed HTTP request."
    still_serving(server)
