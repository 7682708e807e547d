"""`pcache-emulator` over real loopback sockets: the console script, and `serve()` in a thread."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import threading
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import pytest

from pcache_magic.emulator import Emulator
from pcache_magic.emulator.server import EmulatorHTTPServer, is_loopback, main, serve
from pcache_magic.emulator.wire import FaultPlan

from _helpers import EmulatorProcess, emulator_command, spawn_emulator

MODEL = "claude-sonnet-4-6"
SENTINEL = "sk-ant-sentinel-server-4b8e2f"
LONG_SYSTEM = " ".join(f"rule{i} keep answers short and cite line numbers." for i in range(800))
PARAMS: dict[str, Any] = {
    "model": MODEL,
    "max_tokens": 64,
    "system": [{"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": "Which functions lack tests?"}],
}
#: The whole of the first line the console script prints.
BANNER = re.compile(
    r"^pcache-emulator listening on (http://127\.0\.0\.1:(\d+)) "
    r"\(offline Anthropic Messages API emulator\)$"
)


@pytest.fixture
def spawned() -> Iterator[EmulatorProcess]:
    with spawn_emulator() as spawned:
        assert BANNER.match(spawned.line), spawned.line
        assert spawned.port > 0
        yield spawned


@pytest.fixture
def threaded() -> Iterator[tuple[Emulator, EmulatorHTTPServer]]:
    emu = Emulator()
    server = serve(emu, "127.0.0.1", 0, timeout=1.0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield emu, server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def sdk(url: str, key: str = SENTINEL) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key=key, max_retries=0, timeout=20)


# --- the console script -------------------------------------------------------------------


def test_console_script_serves_the_sdk(spawned: EmulatorProcess) -> None:
    client = sdk(spawned.url)
    first = client.messages.create(**PARAMS)
    assert first.usage.cache_creation_input_tokens
    with client.messages.stream(**PARAMS) as stream:
        types = [event.type for event in stream]
        final = stream.get_final_message()
    assert types[0] == "message_start" and types[-1] == "message_stop"
    assert final.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    counted = client.messages.count_tokens(model=MODEL, system=PARAMS["system"], messages=PARAMS["messages"])
    assert counted.input_tokens == (
        first.usage.input_tokens
        + (first.usage.cache_creation_input_tokens or 0)
        + (first.usage.cache_read_input_tokens or 0)
    )

    with httpx2.Client(base_url=spawned.url, timeout=20) as http:
        state = http.get("/_emulator/state").json()
        assert len(state["entries"]) == 1
        advanced = http.post("/_emulator/advance", json={"seconds": 600}).json()
        assert advanced["now"] == pytest.approx(state["now"] + 600)
        assert advanced["entries"] == []  # five minutes have passed
        assert client.messages.create(**PARAMS).usage.cache_read_input_tokens == 0
        assert len(http.get("/_emulator/state").json()["entries"]) == 1
        assert http.post("/_emulator/reset").json()["entries"] == []
        everything = [http.get("/_emulator/state").text, json.dumps(state), json.dumps(advanced)]
    assert not [text for text in everything if SENTINEL in text]

    code, _, err = spawned.stop(signal.SIGINT)
    assert code == 0
    assert SENTINEL not in err and err.strip() == ""  # no per-request log lines


def test_sigterm_exits_cleanly(spawned: EmulatorProcess) -> None:
    assert sdk(spawned.url).models.retrieve(MODEL).id == MODEL
    code, _, _ = spawned.stop(signal.SIGTERM)
    assert code == 0


def test_refuses_a_non_loopback_host_without_allow_remote() -> None:
    done = subprocess.run(
        emulator_command("--host", "0.0.0.0", "--port", "0"), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--allow-remote" in lines[0]
    assert main(["--host", "192.0.2.1", "--port", "0"]) == 2


def test_is_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1")
    assert not is_loopback("example.com")


# --- serve() in a thread ---------------------------------------------------------------------


def test_threaded_server_json_sse_and_keep_alive(
    threaded: tuple[Emulator, EmulatorHTTPServer],
) -> None:
    emu, server = threaded
    with httpx2.Client(base_url=server.url, timeout=10) as http:
        models = http.get("/v1/models?limit=5", headers={"x-api-key": SENTINEL})
        assert models.status_code == 200 and models.headers["content-length"]
        assert models.headers["request-id"].startswith("req_emu_")
        with http.stream(
            "POST", "/v1/messages", headers={"x-api-key": SENTINEL}, json={**PARAMS, "stream": True}
        ) as response:
            assert response.headers["transfer-encoding"] == "chunked"
            assert response.headers["content-type"].startswith("text/event-stream")
            text = response.read().decode()
        assert text.startswith("event: message_start\ndata: {")
        assert text.endswith('event: message_stop\ndata: {"type":"message_stop"}\n\n')
        missing = http.get("/nope")
        assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
        assert http.post("/v1/messages", json=PARAMS).status_code == 401
    assert len(emu.state()["entries"]) == 1


def test_threaded_server_faults_reach_the_sdk(
    threaded: tuple[Emulator, EmulatorHTTPServer],
) -> None:
    emu, server = threaded
    client = sdk(server.url)
    emu.inject(429, retry_after=0.001)
    raw = anthropic.Anthropic(
        base_url=server.url, api_key=SENTINEL, max_retries=2, timeout=20
    ).messages.with_raw_response.create(**PARAMS)
    assert raw.retries_taken == 1
    emu.inject(529)
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(**PARAMS)
    assert caught.value.status_code == 529
    emu.inject("disconnect")
    seen: list[str] = []
    with (
        pytest.raises((anthropic.APIConnectionError, httpx2.TransportError)),
        client.messages.stream(**PARAMS) as stream,
    ):
        seen.extend(event.type for event in stream)
    assert seen[0] == "message_start" and "message_stop" not in seen
    assert client.messages.create(**PARAMS).type == "message"  # the server is still fine


def test_oversized_body_is_refused_before_it_is_read(
    threaded: tuple[Emulator, EmulatorHTTPServer],
) -> None:
    emu, server = threaded
    host, port = server.server_address[:2]
    with socket.create_connection((str(host), port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: k\r\n"
            + f"Content-Length: {emu.max_body_bytes + 1}\r\n\r\n".encode()
        )
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert json.loads(body)["error"]["type"] == "request_too_large"


def test_a_stalled_client_does_not_block_others(
    threaded: tuple[Emulator, EmulatorHTTPServer],
) -> None:
    _, server = threaded
    host, port = server.server_address[:2]
    with socket.create_connection((str(host), port), timeout=10) as stalled:
        stalled.sendall(
            b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: k\r\nContent-Length: 500\r\n\r\n{"
        )
        started = time.monotonic()
        assert sdk(server.url).models.retrieve(MODEL).id == MODEL
        assert time.monotonic() - started < 5
        assert stalled.recv(1024) == b""  # the worker timed out (1s) and hung up
        assert time.monotonic() - started < 9


def test_absolute_form_target_and_bad_arguments(
    threaded: tuple[Emulator, EmulatorHTTPServer],
) -> None:
    _, server = threaded
    host, port = server.server_address[:2]
    with socket.create_connection((str(host), port), timeout=10) as sock:
        sock.sendall(
            f"GET {server.url}/v1/models/{MODEL} HTTP/1.1\r\nHost: x\r\nx-api-key: k\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200 ")
    assert json.loads(reply.partition(b"\r\n\r\n")[2])["id"] == MODEL
    for bad in (["--port", "70000"], ["--max-entries", "0"], ["--port", "x"]):
        with pytest.raises(SystemExit) as caught:
            main(bad)
        assert caught.value.code == 2


# --- hardening: what a careless or hostile client can send ----------------------------------------


def exchange(server: EmulatorHTTPServer, data: bytes) -> tuple[bytes, dict[str, str], Any]:
    """One raw request on its own connection: the status line, the headers and the JSON body."""
    host, port = server.server_address[:2]
    with socket.create_connection((str(host), port), timeout=10) as sock:
        sock.sendall(data)
        reply = b""
        while chunk := sock.recv(65536):  # the server closes after answering (or on its timeout)
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.decode().partition(":") for ln in lines)}
    return status, headers, json.loads(body)


def post(path: str, body: bytes, *extra: str) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: x", "x-api-key: k", "Connection: close", *extra]
    if not any(h.lower().startswith("transfer-encoding") for h in extra):
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


NOT_JSON = [  # strict JSON (RFC 8259) only, as the API: Python's parser alone would take these
    pytest.param("/_emulator/advance", b'{"seconds": NaN}', "NaN", id="advance-nan"),
    pytest.param("/_emulator/advance", b'{"seconds": Infinity}', "Infinity", id="advance-infinity"),
    pytest.param("/_emulator/advance", b'{"seconds": -Infinity}', "-Infinity", id="advance-minus-infinity"),
    pytest.param(
        "/v1/messages",
        json.dumps({**PARAMS, "temperature": float("nan")}).encode(),
        "NaN",
        id="messages-temperature-nan",
    ),
]


@pytest.mark.parametrize(("path", "body", "word"), NOT_JSON)
def test_nan_and_infinity_are_not_json(
    threaded: tuple[Emulator, EmulatorHTTPServer], path: str, body: bytes, word: str
) -> None:
    emu, server = threaded
    now = emu.now()
    status, _, error = exchange(server, post(path, body))
    assert status.startswith(b"HTTP/1.1 400 ")
    assert error["error"] == {
        "type": "invalid_request_error",
        "message": "There was an issue with your request body: "
        f"invalid JSON ({word} is not a valid JSON value)",
    }
    assert emu.now() == now and emu.state()["entries"] == []  # the clock and the cache as they were
    assert sdk(server.url).messages.create(**PARAMS).usage.cache_creation_input_tokens


def test_a_huge_advance_is_refused_and_the_clock_keeps_working(
    threaded: tuple[Emulator, EmulatorHTTPServer],
) -> None:
    emu, server = threaded
    now = emu.now()
    status, _, error = exchange(server, post("/_emulator/advance", b'{"seconds": 1e400}'))
    assert status.startswith(b"HTTP/1.1 400 ")
    assert error["error"]["message"] == "seconds must be a finite number, not inf"
    with pytest.raises(ValueError, match="finite"):
        emu.advance(float("nan"))
    assert emu.now() == now
    assert emu.advance(60) == now + 60


@pytest.mark.parametrize(
    ("extra", "status", "message"),
    [
        pytest.param(("Content-Length: -5",), b"400", "Invalid Content-Length header.", id="negative-length"),
        pytest.param(
            ("Content-Length: lots",), b"400", "Invalid Content-Length header.", id="length-not-a-number"
        ),
        pytest.param(
            ("Transfer-Encoding: chunked",), b"411", "Send the body with Content-Length.", id="chunked-body"
        ),
    ],
)
def test_bad_framing_is_answered_and_the_connection_closed(
    threaded: tuple[Emulator, EmulatorHTTPServer], extra: tuple[str, ...], status: bytes, message: str
) -> None:
    _, server = threaded
    request = post("/v1/messages", b"", *extra).replace(b"Connection: close\r\n", b"")
    if extra[0].startswith("Transfer-Encoding"):
        request += b"5\r\nhello\r\n0\r\n\r\n"
    started = time.monotonic()
    line, headers, error = exchange(server, request)  # returns only because the server hangs up
    assert time.monotonic() - started < 5  # at once, not after the idle timeout
    assert line.startswith(b"HTTP/1.1 " + status + b" ") and headers["connection"] == "close"
    assert error["error"]["message"] == message
    assert sdk(server.url).models.retrieve(MODEL).id == MODEL


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
    status, _, _ = exchange(server, post("/_emulator/inject", b'{"fault": 500, "times": 1000000}'))
    assert status.startswith(b"HTTP/1.1 200 ") and len(emu.faults) == 10**6
    with pytest.raises(anthropic.InternalServerError):
        sdk(server.url).messages.create(**PARAMS)
    assert len(emu.faults) == 10**6 - 1
    status, _, _ = exchange(server, post("/_emulator/reset", b"{}"))
    assert status.startswith(b"HTTP/1.1 200 ") and len(emu.faults) == 0
    for bad in (b'{"fault": 500, "retry_after": "soon"}', b'{"fault": 500, "times": 0}', b'{"fault": "500"}'):
        status, _, error = exchange(server, post("/_emulator/inject", bad))
        assert status.startswith(b"HTTP/1.1 400 ") and error["error"]["type"] == "invalid_request_error"
    assert len(emu.faults) == 0
