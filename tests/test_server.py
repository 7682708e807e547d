"""`pcache-emulator` over real loopback sockets: the console script, and `serve()` in a thread."""

from __future__ import annotations

import json
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest

from pcache_magic.emulator import Emulator
from pcache_magic.emulator.server import EmulatorHTTPServer, is_loopback, main, serve

MODEL = "claude-sonnet-4-6"
SENTINEL = "sk-ant-sentinel-server-4b8e2f"
LONG_SYSTEM = " ".join(f"rule{i} keep answers short and cite line numbers." for i in range(800))
PARAMS: dict[str, Any] = {
    "model": MODEL,
    "max_tokens": 64,
    "system": [{"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": "Which functions lack tests?"}],
}
LINE = re.compile(
    r"^pcache-emulator listening on (http://127\.0\.0\.1:(\d+)) "
    r"\(offline Anthropic Messages API emulator\)$"
)


def command(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("pcache-emulator")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "pcache_magic.emulator.server", *args]


def read_line(proc: subprocess.Popen[str], timeout: float = 30.0) -> str:
    """The first stdout line, or fail after `timeout` seconds rather than hang."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError(f"pcache-emulator printed nothing in {timeout}s")
    return proc.stdout.readline().rstrip("\n")


class Spawned:
    def __init__(self, proc: subprocess.Popen[str], url: str) -> None:
        self.proc, self.url = proc, url

    def stop(self, sig: int) -> tuple[int, str]:
        self.proc.send_signal(sig)
        _, err = self.proc.communicate(timeout=20)
        return self.proc.returncode, err


@pytest.fixture
def spawned() -> Iterator[Spawned]:
    proc = subprocess.Popen(command("--port", "0"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = read_line(proc)
        match = LINE.match(line)
        assert match, line
        assert int(match.group(2)) > 0
        yield Spawned(proc, match.group(1))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=20)


@pytest.fixture
def threaded() -> Iterator[tuple[Emulator, EmulatorHTTPServer]]:
    emu = Emulator()
    server = serve(emu, "127.0.0.1", 0, timeout=1.0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
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


def test_console_script_serves_the_sdk(spawned: Spawned) -> None:
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

    code, err = spawned.stop(signal.SIGINT)
    assert code == 0
    assert SENTINEL not in err and err.strip() == ""  # no per-request log lines


def test_sigterm_exits_cleanly(spawned: Spawned) -> None:
    assert sdk(spawned.url).models.retrieve(MODEL).id == MODEL
    code, _ = spawned.stop(signal.SIGTERM)
    assert code == 0


def test_refuses_a_non_loopback_host_without_allow_remote() -> None:
    done = subprocess.run(
        command("--host", "0.0.0.0", "--port", "0"), capture_output=True, text=True, timeout=60
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
