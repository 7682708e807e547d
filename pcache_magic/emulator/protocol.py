"""One HTTP/1.1 connection: uvicorn's h11 protocol, plus the bounds uvicorn leaves to the app.

uvicorn keeps idle sockets cheap (one event loop, no thread each), closes idle keep-alive
connections and caps header size through h11; what it does not do is added here, on the
protocol class uvicorn lets a server choose (`Config(http=...)`):

- a deadline for a whole request, head and body: a client sending a byte a second is answered
  408 and dropped, where uvicorn would wait for it forever;
- a connection cap applied as a socket is accepted (uvicorn's `limit_concurrency` answers 503
  only once a request arrives, so idle sockets beyond it would still hold descriptors);
- `guard.RequestFraming` ahead of h11, and every refusal, h11's own included, as the API's
  one-line JSON error rather than uvicorn's text/plain;
- silence: no access log, no warning, no traceback, so no request data reaches stderr.
"""

from __future__ import annotations

import asyncio
import http
import logging
from typing import TYPE_CHECKING, Any, ClassVar

from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from . import guard, wire
from .errors import ApiError

if TYPE_CHECKING:
    from . import Emulator

__all__ = ["GuardedH11Protocol", "error_bytes", "protocol_for"]


def error_bytes(error: ApiError, request_id: str) -> bytes:
    """A whole HTTP/1.1 error response that closes the connection, written past h11."""
    answer = wire.error_response(error, request_id)
    body = answer.body or b""
    try:
        reason = http.HTTPStatus(answer.status).phrase
    except ValueError:  # 529 has no standard phrase
        reason = "Overloaded" if answer.status == 529 else "Error"
    lines = [f"HTTP/1.1 {answer.status} {reason}"]
    lines += [f"{k}: {v}" for k, v in answer.headers.items() if k.lower() != "content-length"]
    lines += [f"content-length: {len(body)}", "connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1") + body


class GuardedH11Protocol(H11Protocol):
    """uvicorn's `H11Protocol` with a request deadline, a connection cap and JSON refusals.

    Built per server by `protocol_for`, which binds the emulator (for request ids) and limits.
    """

    emulator: ClassVar[Emulator]
    limits: ClassVar[guard.Limits]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        quiet = logging.Logger("pcache-emulator", logging.CRITICAL)  # unregistered: no handler reaches it
        quiet.disabled = True
        self.logger = quiet
        self.access_log = False
        self._framing = guard.RequestFraming(self.limits.max_head_bytes)
        self._deadline: asyncio.TimerHandle | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self._refused = True  # never joins the server's connections
            error = ApiError(
                "overloaded_error",
                f"Too many open connections (at most {self.limits.max_connections}); try again shortly.",
                headers={"retry-after": "1"},
            )
            transport.write(error_bytes(error, self.emulator.next_request_id()))
            transport.close()
            return
        super().connection_made(transport)
        self._arm()  # the first request's deadline runs from the opening

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if not self._refused:
            super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused or self.transport.is_closing():
            return
        try:
            self._framing.feed(data)
        except ApiError as error:
            return self._refuse(error)
        if not self._framing.in_request:
            self._disarm()  # all of it is in; the response and keep-alive are uvicorn's
        elif self._deadline is None:
            self._arm()
        super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        """h11 refused the request: the API's JSON error, not uvicorn's text/plain."""
        self._refuse(ApiError.invalid("Malformed HTTP request."))

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.limits.request_timeout_s, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        seconds = f"{self.limits.request_timeout_s:g}"
        error = ApiError(
            "invalid_request_error", f"Request not received in full within {seconds} s.", status=408
        )
        self._refuse(error)

    def _refuse(self, error: ApiError) -> None:
        """Answer `error` and hang up; just hang up if a response is already half written."""
        self._disarm()
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or not cycle.response_started or cycle.response_complete:
            self.transport.write(error_bytes(error, self.emulator.next_request_id()))
        self.transport.close()


def protocol_for(emulator: Emulator, limits: guard.Limits) -> type[GuardedH11Protocol]:
    """The protocol class for one server: uvicorn builds it with its own arguments only."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"emulator": emulator, "limits": limits})
