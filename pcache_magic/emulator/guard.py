"""What `pcache-emulator` refuses before the wire layer sees a request; pure, no sockets.

- `Limits`: the server's bounds (deadline, connections, header and body sizes, allowed hosts).
- `RequestFraming`: finds each request head in a connection's bytes and refuses ambiguous
  framing (two Content-Length headers, Transfer-Encoding, an oversized head) before h11
  parses it, since h11 quietly merges identical Content-Length headers.
- `control_refusal`: the `/_emulator/*` controls answer only loopback `Host` names (so a DNS
  rebinding page cannot reach them) and only `application/json` POSTs (so a cross-origin
  form or `text/plain` POST, which a browser sends without asking, is refused).
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .errors import ApiError

__all__ = ["CONTROL_PREFIX", "Limits", "RequestFraming", "control_refusal", "host_name", "is_loopback"]

CONTROL_PREFIX = "/_emulator/"
_HEAD_END = re.compile(rb"\r?\n\r?\n")  # where h11 ends a head too (bare LF line ends included)
_LINE = re.compile(rb"\r?\n")
_DIGITS = re.compile(rb"[0-9]{1,18}")


@dataclass(frozen=True)
class Limits:
    """The server's bounds; every default holds under `ulimit -n 1024`."""

    request_timeout_s: float = 30.0
    """Deadline for a whole request, head and body, from its first byte (from the connection's
    opening for its first request); a client past it gets 408 and is disconnected."""
    keep_alive_s: int = 5
    """An idle keep-alive connection is closed after this many seconds (uvicorn's timeout_keep_alive)."""
    max_connections: int = 512
    """Open connections at once; one more is answered 529 and closed as it is accepted."""
    max_head_bytes: int = 16 * 1024
    """Request line plus headers; larger is 431."""
    max_inflight_body_bytes: int = 128 * 2**20
    """Bytes all requests in progress may declare in Content-Length together; past it, 529."""
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)
    """Host names the controls answer besides loopback ones; "*" allows any (no rebinding guard)."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.request_timeout_s) and self.request_timeout_s > 0):
            raise ValueError("request_timeout_s must be a positive number of seconds")
        for name in ("keep_alive_s", "max_connections", "max_head_bytes", "max_inflight_body_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        object.__setattr__(self, "allowed_hosts", frozenset(h.lower() for h in self.allowed_hosts))

    def allows_host(self, name: str | None) -> bool:
        """Whether a `Host` (or Origin) name, port stripped, may use the controls."""
        if name is None:
            return False
        return "*" in self.allowed_hosts or is_loopback(name) or name in self.allowed_hosts


def is_loopback(host: str) -> bool:
    """`localhost`, a `.localhost` name (RFC 6761) or a loopback address, as typed or in brackets."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(value: str) -> str:
    """The name in a `Host` header (`name[:port]`, `[v6][:port]`), lower-cased, without the port."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    name, colon, port = value.rpartition(":")
    return name if colon and port.isdigit() else value


def _quoted(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")


def control_refusal(
    method: str, path: str, headers: Mapping[str, str], limits: Limits, *, authority: str | None = None
) -> ApiError | None:
    """Why a `/_emulator/*` request is refused, or None; other paths are never refused here.

    `headers` are lower-case; `authority` is the host of an absolute-form target, which
    stands in for `Host` as RFC 9112 says.
    """
    if not path.startswith(CONTROL_PREFIX):
        return None
    host = authority if authority is not None else headers.get("host")
    if host is None:
        return ApiError("permission_error", "The emulator's controls need a Host header.")
    if not limits.allows_host(host_name(host)):
        return ApiError(
            "permission_error",
            f"Host {_quoted(host)} may not use the emulator's controls: loopback names only "
            "(pcache-emulator --allowed-host NAME adds one).",
        )
    origin = headers.get("origin")
    if origin is not None and not limits.allows_host(urlsplit(origin).hostname if "://" in origin else None):
        return ApiError("permission_error", f"Origin {_quoted(origin)} may not use the emulator's controls.")
    if method == "POST":
        kind = headers.get("content-type", "").partition(";")[0].strip().lower()
        if kind != "application/json":
            return ApiError(
                "invalid_request_error",
                f"The emulator's controls take Content-Type application/json, not {_quoted(kind)}.",
                status=415,
            )
    return None


class RequestFraming:
    """One connection's request boundaries, followed byte by byte ahead of the HTTP parser.

    Only heads whose body length h11 would read the same way pass (at most one all-digit
    Content-Length, no Transfer-Encoding), so this count of body bytes and h11's agree and
    the next head is found where h11 will find it.
    """

    def __init__(self, max_head_bytes: int) -> None:
        self._max = max_head_bytes
        self._head = bytearray()
        self._body_left = 0

    @property
    def in_request(self) -> bool:
        """A request has begun and not all of its bytes have arrived."""
        return bool(self._head) or self._body_left > 0

    def feed(self, data: bytes) -> None:
        """Follow `data`; ApiError for a head that must be refused (the connection is then done)."""
        at, size = 0, len(data)
        while at < size:
            if self._body_left:
                step = min(self._body_left, size - at)
                self._body_left -= step
                at += step
                continue
            start = max(0, len(self._head) - 3)  # the blank line may straddle two reads
            before = len(self._head)
            self._head += data[at:]
            end = _HEAD_END.search(self._head, start)
            if end is None or end.end() > self._max:
                if len(self._head) > self._max:
                    raise ApiError(
                        "invalid_request_error",
                        f"Request header fields too large (at most {self._max} bytes).",
                        status=431,
                    )
                return
            at += end.end() - before
            head = bytes(self._head[: end.end()])
            self._head.clear()
            self._body_left = _body_length(head)


def _body_length(head: bytes) -> int:
    lengths: list[bytes] = []
    for line in _LINE.split(head)[1:]:
        if not line or line[:1] in b" \t":  # the blank end, or a folded continuation
            continue
        name, _, value = line.partition(b":")
        name = name.lower()
        if name == b"content-length":
            lengths.append(value.strip(b" \t"))
        elif name == b"transfer-encoding":
            raise ApiError("invalid_request_error", "Send the body with Content-Length.", status=411)
    if len(lengths) > 1:
        raise ApiError.invalid("Duplicate Content-Length header.")
    if not lengths:
        return 0
    if not _DIGITS.fullmatch(lengths[0]):
        raise ApiError.invalid("Invalid Content-Length header.")
    return int(lengths[0])
