"""Raw loopback HTTP for the server tests: what no client library would send, and a server in a thread.

tests/ is on `sys.path` (see `_helpers.py`), so the server tests import these as `from _raw_http import ...`.
"""

from __future__ import annotations

import json
import select
import socket
import threading
from collections.abc import Iterator
from typing import Any

import anthropic

from pcache_magic.emulator.server import EmulatorHTTPServer

__all__ = [
    "AT_ALL_S",
    "DEADLINE_S",
    "MODEL",
    "PARAMS",
    "SENTINEL",
    "connect",
    "exchange",
    "one_line_error",
    "parse",
    "read_all",
    "readable",
    "request",
    "running",
    "sdk",
    "still_serving",
]

MODEL = "claude-sonnet-4-6"
SENTINEL = "sk-ant-sentinel-server-4b8e2f"
LONG_SYSTEM = " ".join(f"rule{i} keep answers short and cite line numbers." for i in range(800))
PARAMS: dict[str, Any] = {
    "model": MODEL,
    "max_tokens": 64,
    "system": [{"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": "Which functions lack tests?"}],
}
DEADLINE_S = 1.0  # the threaded server's request deadline
AT_ALL_S = 15.0  # "did it answer at all": far above every deadline here


def running(server: EmulatorHTTPServer) -> Iterator[EmulatorHTTPServer]:
    """`server` serving in a thread for the loop's one pass; shut down, closed and joined after."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=AT_ALL_S)
        assert not thread.is_alive()


def sdk(url: str, key: str = SENTINEL) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key=key, max_retries=0, timeout=20)


def still_serving(server: EmulatorHTTPServer | str) -> None:
    """A real SDK call on a new connection: the server survived whatever came before."""
    url = server if isinstance(server, str) else server.url
    assert sdk(url).models.retrieve(MODEL).id == MODEL


# --- raw HTTP, to send what no client library would -------------------------------------------------
def connect(address: tuple[str, int]) -> socket.socket:
    return socket.create_connection(address, timeout=AT_ALL_S)


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server hangs up (a socket timeout fails the test)."""
    reply = b""
    while chunk := sock.recv(65536):
        reply += chunk
    return reply


def parse(reply: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = reply.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.decode().partition(":") for ln in lines)}
    return int(status.split()[1]), headers, json.loads(body)


def exchange(address: tuple[str, int], data: bytes) -> tuple[int, dict[str, str], Any]:
    """One raw request on its own connection: the status, the headers and the JSON body."""
    with connect(address) as sock:
        sock.sendall(data)
        return parse(read_all(sock))


def request(method: str, path: str, body: bytes = b"", *extra: str, length: bool = True) -> bytes:
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "x-api-key: k", "Connection: close", *extra]
    if not any(h.lower().startswith("content-type") for h in extra):
        head.append("Content-Type: application/json")
    if length:
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def one_line_error(body: Any) -> str:
    assert body["type"] == "error" and body["request_id"].startswith("req_emu_")
    message = str(body["error"]["message"])
    assert message and "\n" not in message
    return message


def readable(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0)[0])
