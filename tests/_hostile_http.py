"""A hostile "emulator" for the reply-check tests: a real loopback HTTP server (stdlib, in a thread)
that answers every call to `/v1/messages` with the body it is given, as a server at a wrong
`PCACHE_EMULATOR_URL` or a broken gateway would, and `/_emulator/state` like the real one.

tests/ is on `sys.path`, so the tests import it as `from _hostile_http import ...`.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["GOOD", "Answer", "message", "serving", "sse", "stream_of", "usage"]

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
