"""`pcache-emulator`: the offline Messages API over HTTP, for any client that takes a base URL.

Served by uvicorn (one event loop, no thread per connection) with the emulator's ASGI app
(`asgi.py`) over the same `wire.handle` as the in-process transport, and uvicorn's h11
protocol extended with a request deadline and a connection cap (`protocol.py`). Loopback by
default; nothing is logged per request, so no header (and no API key) ever reaches stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import signal
import socket
import sys
import threading
from collections.abc import Callable
from types import FrameType

import uvicorn

from . import Emulator, wire
from .asgi import TIMEOUT_HOLD_S, EmulatorApp
from .guard import Limits, is_loopback
from .protocol import protocol_for

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_TIMEOUT",
    "TIMEOUT_HOLD_S",
    "EmulatorHTTPServer",
    "Limits",
    "is_loopback",
    "main",
    "serve",
    "settle_limits",
]

DEFAULT_PORT = 8765
#: Seconds a client has to send a whole request (`Limits.request_timeout_s`).
DEFAULT_TIMEOUT = Limits.request_timeout_s
#: Connections accepted per event-loop pass (uvicorn's `backlog`, also the listen queue): each takes
#: a descriptor before the cap can refuse it, and a refused one is closed a pass or two later.
_ACCEPT_BURST = 128
#: Descriptors kept free of connections: two bursts in flight, plus the process's own files.
_SPARE_FDS = 2 * _ACCEPT_BURST + 64
#: How long a shutdown waits for responses in progress before cancelling them.
_SHUTDOWN_GRACE_S = 3


class EmulatorHTTPServer:
    """A bound socket and the uvicorn server that will serve one `Emulator` on it.

    The interface of `socketserver` (`serve_forever`, `shutdown`, `server_close`,
    `server_address`), so a test or a notebook runs it in a thread the same way.
    """

    def __init__(self, emulator: Emulator, address: tuple[str, int], limits: Limits) -> None:
        self.emulator = emulator
        self.limits = limits
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        # IPPROTO_TCP named, not 0: accepted sockets inherit it, and asyncio sets TCP_NODELAY only on
        # sockets whose proto says TCP; without it Nagle meets delayed ACK, ~40 ms a request.
        self.socket = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind(address)
            self.socket.listen(_ACCEPT_BURST)
            self.socket.setblocking(False)
        except OSError:
            self.socket.close()
            raise
        self.server_address: tuple[str, int] = self.socket.getsockname()[:2]
        config = uvicorn.Config(
            EmulatorApp(emulator, limits),
            http=protocol_for(emulator, limits),
            loop="asyncio",
            backlog=_ACCEPT_BURST,
            ws="none",
            lifespan="off",
            log_config=None,
            access_log=False,
            proxy_headers=False,  # X-Forwarded-* would let any client claim to be loopback
            server_header=False,
            date_header=False,
            timeout_keep_alive=limits.keep_alive_s,
            timeout_graceful_shutdown=_SHUTDOWN_GRACE_S,
            # h11's own head limit, above the one guard.RequestFraming answers (431) first.
            h11_max_incomplete_event_size=2 * limits.max_head_bytes,
        )
        self._server = uvicorn.Server(config)
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._closed = False

    @property
    def url(self) -> str:
        host, port = self.server_address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def serve_forever(self, poll_interval: float = 0.1) -> None:
        """Serve until `shutdown()` (uvicorn checks every 0.1 s; `poll_interval` is accepted, unused)."""
        with self._lock:
            if self._closed:
                return
            self._idle.clear()
        try:
            self._server.run(sockets=[self.socket])
        finally:
            self._idle.set()

    def shutdown(self) -> None:
        """Stop serving and wait until `serve_forever` has returned (at once if it never ran)."""
        with self._lock:
            self._closed = True
            self._server.should_exit = True
        self._idle.wait()

    def server_close(self) -> None:
        self.socket.close()


def _fd_headroom() -> int:
    """Connections the open-file limit leaves room for: `ulimit -n` minus spare descriptors (a
    quarter of it under a tiny limit, where asyncio's own pause on EMFILE is the last resort)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 2**20
    return max(soft - _SPARE_FDS, soft // 4, 1)


def settle_limits(host: str, limits: Limits | None, timeout: float | None) -> Limits:
    """`limits` as `serve()` applies them: `timeout` overrides the request deadline, the cap
    is lowered to what the open-file limit allows (so the cap, not the operating system,
    refuses the extra client), and a non-loopback `host` may use the controls by its own name."""
    limits = limits or Limits()
    if timeout is not None:
        limits = dataclasses.replace(limits, request_timeout_s=timeout)
    if limits.max_connections > (room := _fd_headroom()):
        limits = dataclasses.replace(limits, max_connections=room)
    if not is_loopback(host) and host not in ("0.0.0.0", "::", ""):
        limits = dataclasses.replace(limits, allowed_hosts=limits.allowed_hosts | {host.strip("[]")})
    return limits


def serve(
    emulator: Emulator,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    *,
    timeout: float | None = None,
    limits: Limits | None = None,
) -> EmulatorHTTPServer:
    """A bound but not yet started server; call `serve_forever()` (e.g. in a thread).

    `timeout`, if given, is the request deadline (`Limits.request_timeout_s`); see `settle_limits`.
    """
    return EmulatorHTTPServer(emulator, (host, port), settle_limits(host, limits, timeout))


class _Stop(Exception):
    """Raised from the SIGTERM handler (uvicorn re-raises the signal after its graceful stop)."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def _number_in(kind: Callable[[str], float], low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = kind(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pcache-emulator",
        description="An offline emulator of the Anthropic Messages API, prompt cache included.",
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    add("--port", type=_number_in(int, 0, 65535), default=DEFAULT_PORT, help="0 picks a free port")
    add("--allow-remote", action="store_true", help="allow a non-loopback --host (no real auth!)")
    add(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a Host name the /_emulator/ controls answer besides loopback ones (repeatable; * for any)",
    )
    add("--max-entries", type=_number_in(int, 1, 10**9), default=10_000, help="cache entries kept")
    add(
        "--request-timeout",
        type=_number_in(float, 0.1, 3600),
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds a client has to send a whole request (default {DEFAULT_TIMEOUT:g})",
    )
    add(
        "--max-connections",
        type=_number_in(int, 1, 10**6),
        default=Limits.max_connections,
        metavar="N",
        help=f"open connections at once (default {Limits.max_connections}; at most ulimit -n minus 64)",
    )
    add(
        "--max-body-bytes",
        type=_number_in(int, 1, 2**40),
        default=wire.DEFAULT_MAX_BODY_BYTES,
        metavar="N",
        help=f"largest request body (default {wire.DEFAULT_MAX_BODY_BYTES})",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the server until Ctrl-C or SIGTERM (exit 0); 2 for a refused host or bad arguments."""
    args = _parser().parse_args(argv)
    if not is_loopback(args.host) and not args.allow_remote:
        print(
            f"pcache-emulator: refusing to listen on non-loopback host {args.host!r}; "
            "pass --allow-remote to do it anyway (the emulator accepts any API key)",
            file=sys.stderr,
        )
        return 2
    limits = Limits(
        request_timeout_s=args.request_timeout,
        max_connections=int(args.max_connections),
        max_inflight_body_bytes=max(Limits.max_inflight_body_bytes, 2 * int(args.max_body_bytes)),
        allowed_hosts=frozenset(args.allowed_host),
    )
    emulator = Emulator(max_entries=int(args.max_entries), max_body_bytes=int(args.max_body_bytes))
    try:
        server = serve(emulator, args.host, int(args.port), limits=limits)
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
