"""`pcache-emulator` under load and abuse: 20 clients x 100 requests, oversized, malformed and slow input.

The server runs as its own process on 127.0.0.1 (the console script, as a user starts it).
Every loop is bounded in count, and every wait in time: threads are joined with a deadline,
sockets carry timeouts, and pytest-timeout stops the file if all else fails.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import pytest

from _helpers import EmulatorProcess, emulator_command, spawn_emulator

CLIENTS = 20
REQUESTS = 100
DEADLINE_S = 240.0  # for the whole load run; it takes about 10 s
MODEL = "claude-sonnet-4-6"
SYSTEM = " ".join(f"rule{i} keep answers short and cite line numbers." for i in range(800))
KEYS = ("sk-ant-load-workspace-a", "sk-ant-load-workspace-b")


@pytest.fixture
def server() -> Iterator[EmulatorProcess]:
    """`pcache-emulator` as a user starts it, on a free port; it must still be running at the end."""
    with spawn_emulator() as server:
        yield server
        assert server.proc.poll() is None, "the server died"


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def params(client: int, number: int) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 16,
        "system": [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": f"client {client} question {number}: which rule is first?"}],
    }


@dataclass(frozen=True)
class Result:
    client: int
    number: int
    key: str
    request_id: str | None
    read: int
    written: int
    uncached: int
    total: int


def test_twenty_clients_times_a_hundred_requests(server: EmulatorProcess) -> None:
    results: list[Result] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS, timeout=60)

    def worker(n: int) -> None:
        key = KEYS[n % len(KEYS)]
        client = anthropic.Anthropic(base_url=server.url, api_key=key, max_retries=0, timeout=60)
        try:
            start.wait()
            for i in range(REQUESTS):
                request = params(n, i)
                if i % 10 == 9:  # one request in ten streams
                    with client.messages.stream(**request) as stream:
                        message = stream.get_final_message()
                        request_id = stream.response.headers.get("request-id")
                else:
                    message = client.messages.create(**request)
                    request_id = message._request_id
                if i % 25 == 0:  # and now and then it counts first
                    counted = client.messages.count_tokens(
                        model=MODEL, **{k: request[k] for k in ("system", "messages")}
                    )
                else:
                    counted = None
                u = message.usage
                read, written = u.cache_read_input_tokens or 0, u.cache_creation_input_tokens or 0
                total = u.input_tokens + read + written
                if counted is not None and counted.input_tokens != total:
                    raise AssertionError(f"count_tokens {counted.input_tokens} != billed {total}")
                with lock:
                    results.append(Result(n, i, key, request_id, read, written, u.input_tokens, total))
        except Exception as error:  # collected, reported below
            with lock:
                errors.append(f"client {n}: {type(error).__name__}: {error}")
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=DEADLINE_S)
    assert not [t for t in threads if t.is_alive()], "clients still running after the deadline"
    assert errors == []
    assert len(results) == CLIENTS * REQUESTS

    # every request answered once, under its own request id
    assert len({r.request_id for r in results}) == len(results) and None not in {
        r.request_id for r in results
    }
    # an entry is readable once the response that wrote it began: the clients' first requests, sent
    # together, may each write it; every later request of a client (sent after its own first answer)
    # reads it
    prefix = {r.written for r in results if r.written}
    assert len(prefix) == 1
    (cached,) = prefix
    for key in KEYS:
        mine = [r for r in results if r.key == key]
        assert 1 <= sum(1 for r in mine if r.written) <= len({r.client for r in mine})
        assert all((r.read, r.written) in ((0, cached), (cached, 0)) for r in mine)
        assert all(r.read == cached for r in mine if r.number > 0)
    # the uncached rest is the per-request question: the same for the same question
    by_question = Counter((r.client, r.number, r.uncached) for r in results)
    assert len(by_question) == len(results)
    # and the server's own view agrees: one live entry per workspace, of that size, clock unmoved
    state = get_json(f"{server.url}/_emulator/state")
    assert [(e["model"], e["tokens"], e["ttl"]) for e in state["entries"]] == [(MODEL, cached, "5m")] * len(
        KEYS
    )
    assert {e["written_at"] for e in state["entries"]} == {state["now"]}


# -- abuse --------------------------------------------------------------------------------------------
def raw_exchange(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send `data`, read until the server closes (bounded by `timeout` per read)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
            if len(reply) > 1_000_000:
                break
    return reply


def head_and_json(reply: bytes) -> tuple[bytes, Any]:
    head, _, body = reply.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0], json.loads(body)


def test_malformed_json_is_400_and_the_server_carries_on(server: EmulatorProcess) -> None:
    for body in (b"{not json", b"\xff\xfe\x00garbage", b"[1, 2, 3]", b""):
        request = (
            b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: k\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        status, error = head_and_json(raw_exchange(server.port, request))
        assert status.startswith(b"HTTP/1.1 400 "), status
        assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    client = anthropic.Anthropic(base_url=server.url, api_key="k", max_retries=0, timeout=20)
    assert client.messages.create(**params(0, 0)).type == "message"


def test_an_oversized_body_is_413(server: EmulatorProcess) -> None:
    cap = 32 * 2**20  # the default cap, the API's own limit
    request = (
        b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: k\r\n"
        + f"Content-Length: {cap + 1}\r\n\r\n".encode()
    )  # the answer comes before the body is sent: the server never reads what it refuses
    status, error = head_and_json(raw_exchange(server.port, request))
    assert status.startswith(b"HTTP/1.1 413 ")
    assert error["error"]["type"] == "request_too_large"
    assert server.proc.poll() is None
    client = anthropic.Anthropic(base_url=server.url, api_key="k", max_retries=0, timeout=20)
    assert client.messages.create(**params(0, 0)).type == "message"


def test_slow_and_silent_clients_do_not_hang_the_server(server: EmulatorProcess) -> None:
    """Half-sent requests hold only their own connection; everyone else is served meanwhile."""
    stalled: list[socket.socket] = []
    try:
        for n in range(10):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            if n % 2:  # headers, then half the promised body, then nothing
                sock.sendall(
                    b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: k\r\nContent-Length: 900\r\n\r\n{"
                )
            else:  # a request line trickling in, one byte
                sock.sendall(b"P")
            stalled.append(sock)
        client = anthropic.Anthropic(base_url=server.url, api_key="k", max_retries=0, timeout=20)
        for i in range(20):
            assert client.messages.create(**params(1, i)).type == "message"
        assert get_json(f"{server.url}/_emulator/state")["entries"]
    finally:
        for sock in stalled:
            sock.close()
    assert server.proc.poll() is None


def listening_addresses(port: int) -> list[str]:
    """Local addresses of the sockets listening on `port`, from Linux's /proc/net/tcp (no DNS)."""
    found = []
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        if not table.exists():
            continue
        for row in table.read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.append(address)
    return found


def test_it_listens_on_loopback_only(server: EmulatorProcess) -> None:
    if Path("/proc/net/tcp").exists():
        assert listening_addresses(server.port) == ["0100007F"]  # 127.0.0.1, and nothing else
    done = subprocess.run(
        emulator_command("--host", "0.0.0.0", "--port", "0"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "--allow-remote" in done.stderr
