"""`pcache-emulator` over real loopback sockets: the console script, `serve()` in a thread, and
the server as a whole under hard limits (`ulimit -n 1024`, a 2 GiB address space).

The attacks on single connections are in test_protocol.py (deadline, cap, framing) and
test_asgi.py (sizes, strict JSON, the clock, the controls). Bounds are checked by what the
server does (it answers, refuses, hangs up) with generous "at all" deadlines, and memory by
resource limits and RSS in a child process; speed is `benchmarks/server.py`'s business.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx2
import pytest

from pcache_magic.emulator import Emulator
from pcache_magic.emulator.engine import START_TIME
from pcache_magic.emulator.server import EmulatorHTTPServer, Limits, is_loopback, main, serve, settle_limits

from _helpers import EMULATOR_LINE, EmulatorProcess, emulator_command, spawn_emulator
from _raw_http import (
    DEADLINE_S,
    MODEL,
    PARAMS,
    SENTINEL,
    connect,
    exchange,
    one_line_error,
    parse,
    read_all,
    readable,
    request,
    running,
    sdk,
    still_serving,
)

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
    """A server in a thread with a 1 s request deadline, over a fresh emulator."""
    emu = Emulator()
    for server in running(serve(emu, "127.0.0.1", 0, timeout=DEADLINE_S)):
        yield emu, server


# --- the console script -----------------------------------------------------------------------------
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
        assert len(state["entries"]) == 1 and state["now"] == START_TIME
        advanced = http.post("/_emulator/advance", json={"seconds": 600}).json()
        assert advanced["now"] == pytest.approx(state["now"] + 600)
        assert advanced["entries"] == []  # five minutes have passed
        assert client.messages.create(**PARAMS).usage.cache_read_input_tokens == 0
        assert len(http.get("/_emulator/state").json()["entries"]) == 1
        reset = http.post("/_emulator/reset", json={}).json()
        assert reset == {"now": START_TIME, "entries": []}  # reset undoes the advance too
        everything = [http.get("/_emulator/state").text, json.dumps(state), json.dumps(advanced)]
    assert not [text for text in everything if SENTINEL in text]

    code, _, err = spawned.stop(signal.SIGINT)
    assert code == 0
    assert SENTINEL not in err and err.strip() == ""  # no per-request log lines


def test_sigterm_exits_cleanly(spawned: EmulatorProcess) -> None:
    still_serving(spawned.url)
    code, _, err = spawned.stop(signal.SIGTERM)
    assert code == 0 and err == ""


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


@pytest.mark.parametrize(
    "bad",
    [
        ["--port", "70000"],
        ["--max-entries", "0"],
        ["--port", "x"],
        ["--request-timeout", "0"],
        ["--request-timeout", "nan"],
        ["--max-connections", "0"],
        ["--max-body-bytes", "-1"],
    ],
)
def test_bad_arguments_are_a_usage_error(bad: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(bad)
    assert caught.value.code == 2
    assert "pcache-emulator: error: argument" in capsys.readouterr().err


# --- serve() in a thread ------------------------------------------------------------------------------
def test_threaded_server_json_sse_and_keep_alive(threaded: tuple[Emulator, EmulatorHTTPServer]) -> None:
    emu, server = threaded
    with httpx2.Client(base_url=server.url, timeout=10) as http:
        models = http.get("/v1/models?limit=5", headers={"x-api-key": SENTINEL})
        assert models.status_code == 200 and models.headers["content-length"]
        assert models.headers["request-id"].startswith("req_emu_")
        assert "server" not in models.headers and "date" not in models.headers
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


def test_threaded_server_faults_reach_the_sdk(threaded: tuple[Emulator, EmulatorHTTPServer]) -> None:
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


def test_absolute_form_target(threaded: tuple[Emulator, EmulatorHTTPServer]) -> None:
    _, server = threaded
    status, _, body = exchange(server.server_address, request("GET", f"{server.url}/v1/models/{MODEL}"))
    assert status == 200 and body["id"] == MODEL


def test_shutdown_before_serving_returns_at_once() -> None:
    server = serve(Emulator(), "127.0.0.1", 0)
    server.shutdown()
    server.serve_forever()  # returns: the server was shut down before it began
    server.server_close()


def test_allowed_hosts_and_the_bound_name_widen_the_controls() -> None:
    emu = Emulator()
    limits = Limits(allowed_hosts=frozenset({"emulator.internal"}))
    for server in running(serve(emu, "127.0.0.1", 0, limits=limits)):
        data = request("GET", "/_emulator/state").replace(b"Host: 127.0.0.1", b"Host: emulator.internal")
        assert exchange(server.server_address, data)[0] == 200
    assert settle_limits("10.1.2.3", None, None).allowed_hosts == {"10.1.2.3"}  # --allow-remote's own name
    assert settle_limits("0.0.0.0", None, None).allowed_hosts == frozenset()
    assert settle_limits("127.0.0.1", limits, 2.0) == Limits(
        request_timeout_s=2.0, allowed_hosts=limits.allowed_hosts
    )


# --- a child process under hard limits -------------------------------------------------------------------
LIMITED = """
import resource, sys
nofile, address_space = int(sys.argv[1]), int(sys.argv[2])
if nofile:
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
if address_space:
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
from pcache_magic.emulator.server import main
sys.exit(main(sys.argv[3:]))
"""


def spawn_limited(nofile: int, address_space: int, *args: str) -> EmulatorProcess:
    proc = subprocess.Popen(
        [sys.executable, "-c", LIMITED, str(nofile), str(address_space), "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().rstrip("\n")  # the banner; a crash closes stdout (empty line)
    match = EMULATOR_LINE.match(line)
    if not match:
        proc.kill()
        raise AssertionError(f"no banner: {line!r} {proc.communicate(timeout=20)[1][-2000:]}")
    return EmulatorProcess(proc, line, match.group(1), int(match.group(2)))


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc")
def test_stalled_uploads_keep_memory_flat_under_an_address_space_limit() -> None:
    """3 GB promised and stalled, twenty times over, in a server that may map at most 2 GiB."""
    server = spawn_limited(0, 2 * 2**30, "--request-timeout", "3")
    try:
        address = ("127.0.0.1", server.port)
        still_serving(server.url)
        before = rss_bytes(server.proc.pid)
        head = request("POST", "/v1/messages", length=False).replace(
            b"\r\n\r\n", b"\r\nContent-Length: 3000000000\r\n\r\n"
        )
        huge = [connect(address) for _ in range(20)]
        near_cap = [connect(address) for _ in range(3)]  # under the 32 MiB cap: accepted, then stalled
        try:
            for sock in huge:
                sock.sendall(head + b"{" * 65536)
            for sock in near_cap:
                sock.sendall(head.replace(b"3000000000", b"33554432") + b" " * 2**20)
            for sock in huge:
                status, _, body = parse(read_all(sock))
                assert status == 413 and body["error"]["type"] == "request_too_large"
            still_serving(server.url)  # answered while three uploads hang
            grown = rss_bytes(server.proc.pid) - before
            assert grown < 48 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB"
            for sock in near_cap:  # dropped at the deadline, with a 408
                assert parse(read_all(sock))[0] == 408
        finally:
            for sock in huge + near_cap:
                sock.close()
        still_serving(server.url)
        assert server.proc.poll() is None
    finally:
        code, _, err = server.stop(signal.SIGINT)
    assert code == 0 and err == ""


def test_idle_sockets_cannot_exhaust_descriptors_under_ulimit_1024() -> None:
    """`ulimit -n 1024`, 700 idle clients: 512 are held (the default cap fits the limit), the rest
    refused as they open, the held ones dropped at the deadline; never EMFILE, never a log line."""
    server = spawn_limited(1024, 0, "--request-timeout", "10")
    try:
        address = ("127.0.0.1", server.port)
        idle: list[socket.socket] = []
        try:
            idle.extend(connect(address) for _ in range(700))
            time.sleep(0.5)  # the server has accepted (or refused) them all
            refused = [sock for sock in idle if readable(sock)]
            assert len(refused) == 700 - 512
            for sock in refused:
                body = parse(read_all(sock))[2]
                assert one_line_error(body) == "Too many open connections (at most 512); try again shortly."
            for sock in idle:  # the held ones are dropped by the deadline, not left to pile up
                if sock not in refused:
                    assert read_all(sock).startswith(b"HTTP/1.1 408 ")
        finally:
            for sock in idle:
                sock.close()
        still_serving(server.url)
        assert server.proc.poll() is None
    finally:
        code, _, err = server.stop(signal.SIGINT)
    assert code == 0 and err == ""


def test_accepted_connections_get_tcp_nodelay(threaded: tuple[Emulator, EmulatorHTTPServer]) -> None:
    """asyncio sets TCP_NODELAY only on sockets whose proto is TCP, and accepted sockets inherit the
    listener's: without it, a response written in two parts waits for a delayed ACK (~40 ms)."""
    _, server = threaded
    assert server.socket.proto == socket.IPPROTO_TCP
    with socket.socket(server.socket.family, socket.SOCK_STREAM, socket.IPPROTO_TCP) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        with socket.create_connection(listener.getsockname()[:2], timeout=5):
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.proto == socket.IPPROTO_TCP
