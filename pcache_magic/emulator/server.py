"""`pcache-emulator`: the offline Messages API over HTTP, for any client that takes a base URL.

stdlib only (`http.server`), loopback by default. Every request goes through the same
`wire.handle` as the in-process transport. Nothing is logged per request, so no header
(and no API key) ever reaches stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import select
import signal
import socket
import socketserver
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from . import Emulator, wire
from .errors import ApiError

__all__ = ["DEFAULT_PORT", "EmulatorHTTPServer", "main", "serve"]

DEFAULT_PORT = 8765
#: Seconds a connection may sit idle mid-request before its worker gives up on it.
DEFAULT_TIMEOUT = 30.0
#: Longest an injected timeout holds a request (the worker returns as soon as the client hangs up).
TIMEOUT_HOLD_S = 2.0


class _Handler(BaseHTTPRequestHandler):
    """One connection; HTTP/1.1 keep-alive, JSON with Content-Length, SSE chunked."""

    protocol_version = "HTTP/1.1"
    server_version = "pcache-emulator"
    server: EmulatorHTTPServer

    def version_string(self) -> str:
        return self.server_version

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.connection_timeout)  # a stalled client times out

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the default access log would be the only place a request leaks."""

    def _any(self) -> None:
        emulator = self.server.emulator
        length_header = self.headers.get("content-length")
        if self.headers.get("transfer-encoding"):
            error = ApiError("invalid_request_error", "Send the body with Content-Length.", status=411)
            return self._send(wire.error_response(error, emulator.next_request_id()), close=True)
        try:
            length = int(length_header or 0)
            if length < 0:
                raise ValueError
        except ValueError:
            error = ApiError.invalid("Invalid Content-Length header.")
            return self._send(wire.error_response(error, emulator.next_request_id()), close=True)
        if length > emulator.max_body_bytes:  # answer without reading what we would refuse
            error = ApiError(
                "request_too_large",
                f"Request exceeds the maximum allowed number of bytes ({emulator.max_body_bytes}).",
            )
            return self._send(wire.error_response(error, emulator.next_request_id()), close=True)
        body = self.rfile.read(length) if length else b""
        if len(body) < length:  # the client went away or stalled past the timeout
            self.close_connection = True
            return None
        headers = {k.lower(): v for k, v in self.headers.items()}
        path = self.path
        if "://" in path.partition("?")[0]:  # absolute-form target, as sent through a proxy
            path = urlsplit(path)._replace(scheme="", netloc="").geturl() or "/"
        return self._send(emulator.respond(self.command, path, headers, body))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _any

    def _send(self, answer: wire.WireResponse, *, close: bool = False) -> None:
        if answer.timed_out:  # an injected timeout: no answer; wait for the client to give up
            self.close_connection = True
            with contextlib.suppress(OSError, ValueError):
                select.select([self.connection], [], [], min(TIMEOUT_HOLD_S, self.server.connection_timeout))
            return
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        if close:
            self.send_header("connection", "close")
            self.close_connection = True
        if answer.events is None:
            body = answer.body or b""
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        try:
            for chunk in answer.events:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
        except wire.ConnectionCut:
            # No terminating chunk: the client sees the connection drop mid-stream.
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class EmulatorHTTPServer(ThreadingHTTPServer):
    """A threaded HTTP server bound to one `Emulator`."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128  # socketserver's 5 drops connections when many clients start at once

    def __init__(self, emulator: Emulator, address: tuple[str, int], timeout: float) -> None:
        self.emulator = emulator
        self.connection_timeout = timeout
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """As HTTPServer's, minus `getfqdn()`: a reverse DNS lookup can stall an offline start."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One line, no traceback: a traceback could quote request data."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            return  # a client hung up or stalled; not worth a line
        print(f"pcache-emulator: error while serving a request: {type(exc).__name__}", file=sys.stderr)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = str(host)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(
    emulator: Emulator,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> EmulatorHTTPServer:
    """A bound but not yet started server; call `serve_forever()` (e.g. in a thread)."""
    return EmulatorHTTPServer(emulator, (host, port), timeout)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Stop(Exception):
    """Raised from the SIGTERM handler to leave `serve_forever()` in the main thread."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value

    return parse


def main(argv: list[str] | None = None) -> int:
    """Run the server until Ctrl-C or SIGTERM (exit 0); 2 for a refused host or bad arguments."""
    parser = argparse.ArgumentParser(
        prog="pcache-emulator",
        description="An offline emulator of the Anthropic Messages API, prompt cache included.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=_int_in(0, 65535), default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument(
        "--allow-remote", action="store_true", help="allow a non-loopback --host (no real auth!)"
    )
    parser.add_argument("--max-entries", type=_int_in(1, 10**9), default=10_000, help="cache entries kept")
    args = parser.parse_args(argv)
    if not is_loopback(args.host) and not args.allow_remote:
        print(
            f"pcache-emulator: refusing to listen on non-loopback host {args.host!r}; "
            "pass --allow-remote to do it anyway (the emulator accepts any API key)",
            file=sys.stderr,
        )
        return 2
    try:
        server = serve(Emulator(max_entries=args.max_entries), args.host, args.port)
    except OSError as exc:
        print(f"pcache-emulator: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main else None
    try:  # print inside the try: a Ctrl-C right after the line must still exit cleanly
        print(
            f"pcache-emulator listening on {server.url} (offline Anthropic Messages API emulator)",
            flush=True,
        )
        server.serve_forever()
    except (KeyboardInterrupt, _Stop):
        pass
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
