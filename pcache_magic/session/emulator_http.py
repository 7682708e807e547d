"""Ask a running `pcache-emulator` its clock (`/_emulator/state`, `/_emulator/advance`), safely.

`PCACHE_EMULATOR_URL` may point at anything, and the clock is read before most magics: an
answer that never ends, trickles a byte at a time or redirects elsewhere must cost a bounded
time and memory and end as one line.  So the request is plain HTTP/1.0 on a socket of our own,
every read waits only for what is left of one overall deadline, at most `MAX_BYTES` are read,
and anything but a 2xx (a redirect included) is an error, as is any answer that cannot be read
(every failure is one `EmulatorCallError` line).  Only the time is wanted, and the
emulator sends it first (`{"now": ..., "entries": [...]}`): an answer longer than `MAX_BYTES`
(a server holding thousands of cache entries) still gives its leading `now`.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

from ..core.env import without_api_key
from ..core.fmt import cut, visible

__all__ = [
    "DEADLINE_S",
    "LATEST",
    "MAX_BYTES",
    "NOW_HEADER",
    "EmulatorCallError",
    "emulator_answer",
    "emulator_now",
    "told_now",
]

#: The whole exchange, connecting included, ends within this many seconds.
DEADLINE_S = 10.0
#: At most this many bytes of the answer are read, head and body together.
MAX_BYTES = 64 * 1024
_ENV = "PCACHE_EMULATOR_URL"  # named here: transport, which defines it, imports this module
_TOLD = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?", re.ASCII)  # a plain number, as repr writes it
_NOW = re.compile(rb'\s*\{\s*"now"\s*:\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*[,}]')
#: More digits than any length `MAX_BYTES` allows: a `content-length` this long is no answer (and
#: Python refuses to read an int of thousands of digits).
_LENGTH_DIGITS = 18


class EmulatorCallError(OSError):
    """The emulator's controls did not answer as a pcache-emulator does; one line saying how."""


#: Past any clock an emulator keeps (it starts at the epoch or now, and at most a hundred years of
#: advances): a time beyond is refused.  Two days short of the session file's latest instant
#: (`schema.MAX_TIME`), so a session on a lying server still saves its entries, loads and shows its
#: clock (2**40 s broke `datetime`).
LATEST = 1e11 - 2 * 86_400
#: The header in which a pcache-emulator server tells its time with every answer
#: (`emulator.asgi.NOW_HEADER`), so a session in use never asks for it.
NOW_HEADER = "x-pcache-emulator-now"


def emulator_answer(
    url: str,
    payload: Mapping[str, Any] | None = None,
    *,
    deadline_s: float | None = None,
    max_bytes: int | None = None,
) -> tuple[bytes, bool]:
    """The body of the server's 2xx answer to GET `url` (or POST `payload` to it as JSON), and
    whether it came whole within `max_bytes`; `EmulatorCallError` for anything else.

    `deadline_s` and `max_bytes` default to the module's `DEADLINE_S` and `MAX_BYTES`."""
    deadline = time.monotonic() + (DEADLINE_S if deadline_s is None else deadline_s)
    status, body, complete = _exchange(url, payload, deadline, MAX_BYTES if max_bytes is None else max_bytes)
    if 300 <= status < 400:
        raise EmulatorCallError(
            f"{_shown(url)} answered a redirect (HTTP {status}), which is not followed; "
            f"set {_ENV} to the emulator itself."
        )
    if not 200 <= status < 300:
        data = _json(body) if complete else None
        error = data.get("error") if isinstance(data, dict) else None
        said = error.get("message") if isinstance(error, dict) else None
        if isinstance(said, str) and said.strip():  # the server's words: no key, no control
            said = f" ({without_api_key(visible(cut(' '.join(said.split()), 200)), pieces=True)})"
        else:
            said = ""
        raise EmulatorCallError(f"{_shown(url)} answered HTTP {status}{said}; check {_ENV}.")
    return body, complete


def emulator_now(
    url: str,
    payload: Mapping[str, Any] | None = None,
    *,
    deadline_s: float | None = None,
    max_bytes: int | None = None,
) -> float:
    """The server's clock from its answer to `url` (`emulator_answer`): the answer's `now`."""
    body, complete = emulator_answer(url, payload, deadline_s=deadline_s, max_bytes=max_bytes)
    data = _json(body) if complete else None
    now = data.get("now") if isinstance(data, dict) else None
    if not complete and (match := _NOW.match(body)):
        now = float(match.group(1))
    if isinstance(now, bool) or not isinstance(now, int | float) or not 0 <= now < LATEST:  # NaN too
        raise EmulatorCallError(
            f"{_shown(url)} did not answer like a pcache-emulator (no time in its answer); check {_ENV}."
        )
    return float(now)


def told_now(value: str | None) -> float | None:
    """The time a `NOW_HEADER` value tells, or None when it tells none an emulator could keep."""
    if value is None or len(value) > 32 or not _TOLD.fullmatch(value):  # a float's repr: <= 24
        return None
    now = float(value)
    return now if now < LATEST else None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested past Python's stack
        return None


def _shown(url: str) -> str:
    """`url` as an error names it: scheme, host and path (never a user name or password)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # an unclosed "[" of an IPv6 host
        return _ENV
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2], query=""))


def _exchange(
    url: str, payload: Mapping[str, Any] | None, deadline: float, max_bytes: int
) -> tuple[int, bytes, bool]:
    """(status, body, whether the body is whole) of one request, read until the server closes,
    the `content-length` is reached, or `max_bytes` have come."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # an unclosed "[" of an IPv6 host
        raise EmulatorCallError(f"{_shown(url)} is not an http(s) URL.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EmulatorCallError(f"{_shown(url)} is not an http(s) URL.")
    body = b"" if payload is None else json.dumps(dict(payload)).encode()
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    head = (
        f"{'GET' if payload is None else 'POST'} {target} HTTP/1.0\r\n"
        f"Host: {parts.netloc.rpartition('@')[2]}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    data, length, closed = bytearray(), None, False
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with socket.create_connection((parts.hostname, port), timeout=_left(deadline, url)) as raw:
            sock: socket.socket = raw
            if parts.scheme == "https":
                sock = ssl.create_default_context().wrap_socket(raw, server_hostname=parts.hostname)
            sock.settimeout(_left(deadline, url))
            sock.sendall(head.encode("latin-1") + body)
            while len(data) <= max_bytes and (length is None or len(data) < length):
                sock.settimeout(_left(deadline, url))  # each read waits only for what is left
                chunk = sock.recv(min(65_536, max_bytes + 1 - len(data)))
                closed = not chunk
                if closed:
                    break
                data += chunk
                length = length if length is not None else _length(data, url)
    except TimeoutError:
        raise EmulatorCallError(f"{_shown(url)} did not answer in time; check {_ENV}.") from None
    except EmulatorCallError:
        raise
    except OSError as error:  # refused, reset, no such host, a TLS failure
        why = error.strerror or type(error).__name__
        raise EmulatorCallError(f"{_shown(url)} cannot be reached ({why}); check {_ENV}.") from None
    except ValueError:  # a port out of range, a host name IDNA cannot encode, a NUL in it
        raise EmulatorCallError(
            f"{_shown(url)} cannot be reached (not a valid address); check {_ENV}."
        ) from None
    complete = len(data) >= length if length is not None else closed
    status, rest = _status(bytes(data[:length] if length is not None else data), url)
    return status, rest, complete


def _left(deadline: float, url: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise EmulatorCallError(f"{_shown(url)} did not answer in time; check {_ENV}.")
    return left


def _length(data: bytearray, url: str) -> int | None:
    """The whole response's size in bytes once its head has come and declares a length."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    for line in bytes(data[:end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            if len(value.strip()) > _LENGTH_DIGITS:
                raise EmulatorCallError(
                    f"{_shown(url)} did not answer in HTTP (a content-length of "
                    f"{len(value.strip()):,} digits); check {_ENV}."
                )
            return end + 4 + int(value.strip())
    return None


def _status(data: bytes, url: str) -> tuple[int, bytes]:
    """The status code and the body (all after the head); an error for anything not HTTP."""
    head, found, rest = data.partition(b"\r\n\r\n")
    fields = head.split(b"\r\n", 1)[0].split(b" ", 2)
    code = fields[1] if len(fields) > 1 else b""
    if not found or not fields[0].startswith(b"HTTP/") or len(code) != 3 or not code.isdigit():
        raise EmulatorCallError(f"{_shown(url)} did not answer in HTTP; check {_ENV}.")
    return int(code), rest
