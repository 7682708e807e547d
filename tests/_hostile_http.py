"""A hostile "emulator" for the reply-check tests: a real loopback HTTP server (stdlib, in a thread)
that answers every call to `/v1/messages` with the body it is given, as a server at a wrong
`PCACHE_EMULATOR_URL` or a broken gateway would, and `/_emulator/state` like the real one.

tests/ is on `sys.path`, so the tests import it as `from _hostile_http import ...`.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = [
    "GOOD",
    "GZIP_HEAD",
    "HUGE_LENGTH",
    "SSE_HEAD",
    "Answer",
    "Script",
    "endless",
    "endless_sse",
    "gzip_bomb",
    "message",
    "once",
    "raw_serving",
    "redirect",
    "serving",
    "sse",
    "stream_of",
    "usage",
]

MODEL = "claude-sonnet-4-5"
GOOD: dict[str, Any] = {
    "id": "msg_hostile",
    "type": "message",
    "role": "assistant",
    "model": MODEL,
    "content": [{"type": "text", "text": "SECRET-REPLY-TEXT"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 5, "output_tokens": 1},
}


class Answer:
    """What the server sends back: a content type and a body (a stream is closed after it)."""

    def __init__(self, body: bytes, content_type: str = "application/json") -> None:
        self.body, self.content_type = body, content_type


def message(**changes: Any) -> Answer:
    """A non-stream answer: `GOOD` with `changes`."""
    return Answer(json.dumps({**GOOD, **changes}).encode())


def usage(**counts: Any) -> Answer:
    return message(usage={**GOOD["usage"], **counts})


def sse(*events: dict[str, Any], tail: bytes = b"") -> Answer:
    """An event stream of `events`, then `tail` (half an event, say) before the server hangs up."""
    body = b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)
    return Answer(body + tail, "text/event-stream")


def stream_of(start_usage: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The events of a whole streamed answer, as the API sends them."""
    opening = {**GOOD, "content": [], "stop_reason": None, "usage": start_usage or GOOD["usage"]}
    return [
        {"type": "message_start", "message": opening},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "SECRET"}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 1},
        },
        {"type": "message_stop"},
    ]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path.startswith("/_emulator/state"):
            answer = Answer(json.dumps({"now": 0.0, "entries": []}).encode())
        else:
            answer = self.server.answer
        self.send_response(200)
        self.send_header("content-type", answer.content_type)
        self.send_header("content-length", str(len(answer.body)))
        self.send_header("connection", "close")
        self.end_headers()
        self.wfile.write(answer.body)
        self.close_connection = True


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    answer = message()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextmanager
def serving() -> Iterator[_Server]:
    """The server on a free loopback port, in a thread; `.answer` is what it sends next."""
    server = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


#: What a raw server does with one connection, after reading the request: (socket, request path).
Script = Callable[[socket.socket, str], None]


def _read_request(conn: socket.socket) -> str:
    """Read one request (head, and a body of its content-length); its path."""
    data = b""
    while b"\r\n\r\n" not in data and (chunk := conn.recv(65536)):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        (int(v) for k, _, v in (x.partition(":") for x in lines[1:]) if k.lower() == "content-length"), 0
    )
    while len(body) < length and (chunk := conn.recv(65536)):
        body += chunk
    return lines[0].split(" ")[1] if " " in lines[0] else ""


@contextmanager
def raw_serving(script: Script) -> Iterator[str]:
    """A raw-socket server on a free loopback port that runs `script` on each request (and may
    send anything: an endless body, a bomb); yields its URL.  `script` may write until the client
    hangs up: the broken pipe ends it quietly."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()

    def one(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            script(conn, _read_request(conn))

    def accept() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                conn, _ = listener.accept()
                threading.Thread(target=one, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=10)
        listener.close()


def once(data: bytes) -> Script:
    """A script: `data`, then hang up."""

    def script(conn: socket.socket, path: str) -> None:
        conn.sendall(data)

    return script


def endless(head: bytes, piece: bytes) -> Script:
    """A script: `head`, then `piece` again and again until the client hangs up."""

    def script(conn: socket.socket, path: str) -> None:
        conn.sendall(head)
        while True:
            conn.sendall(piece)

    return script


HUGE_LENGTH = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 10000000000\r\n\r\n"
SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n"
GZIP_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n\r\n"


def gzip_bomb(inflated: int = 1 << 30) -> bytes:
    """A gzip body of a JSON message that inflates to about `inflated` bytes (1 MiB of it is ~1 KB)."""
    co = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [co.compress(b'{"id":"m","type":"message","x":"')]
    parts += [co.compress(b"A" * (1 << 20)) for _ in range(inflated >> 20)]
    return b"".join([*parts, co.compress(b'"}'), co.flush()])


def endless_sse() -> Script:
    """A stream that starts like the API's and then sends text deltas for ever."""
    start = b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in stream_of()[:3])
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x" * 4000}}
    return endless(SSE_HEAD + start, f"event: content_block_delta\ndata: {json.dumps(delta)}\n\n".encode())


def redirect(location: str) -> Script:
    """A script: a 307 to `location` (which the SDK would follow, re-sending the body)."""

    def script(conn: socket.socket, path: str) -> None:
        conn.sendall(f"HTTP/1.1 307 X\r\nlocation: {location}\r\ncontent-length: 0\r\n\r\n".encode())

    return script
