"""`emulator.guard`: request framing ahead of h11, who may use the controls, and the limits."""

from __future__ import annotations

import pytest

from pcache_magic.emulator.errors import ApiError
from pcache_magic.emulator.guard import Limits, RequestFraming, control_refusal, host_name, is_loopback

HEAD = b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"


def refusal(framing: RequestFraming, data: bytes) -> ApiError:
    with pytest.raises(ApiError) as raised:
        framing.feed(data)
    return raised.value


# -- framing -------------------------------------------------------------------------------------
def test_framing_follows_heads_and_bodies_across_reads() -> None:
    framing = RequestFraming(1024)
    assert not framing.in_request
    stream = HEAD + b"Content-Length: 5\r\n\r\nhello" + b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n"
    for i in range(len(stream)):  # one byte at a time: the blank line straddles reads
        framing.feed(stream[i : i + 1])
        assert framing.in_request == (i not in (len(HEAD) + 25, len(stream) - 1))
    framing.feed(HEAD + b"Content-Length: 2\r\n\r\nab" + HEAD + b"Content-Length: 1\r\n\r\n")  # pipelined
    assert framing.in_request
    framing.feed(b"z")
    assert not framing.in_request


def test_bare_line_feeds_end_a_head_as_h11_reads_it() -> None:
    framing = RequestFraming(1024)
    framing.feed(b"POST / HTTP/1.1\nHost: x\ncontent-length: 3\n\nabc")
    assert not framing.in_request


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        (b"Content-Length: 5\r\nContent-Length: 5\r\n", 400, "Duplicate Content-Length header."),
        (b"Content-Length: 5\r\ncontent-length: 6\r\n", 400, "Duplicate Content-Length header."),
        (b"Content-Length: 5, 5\r\n", 400, "Invalid Content-Length header."),
        (b"Content-Length: -5\r\n", 400, "Invalid Content-Length header."),
        (b"Content-Length: 0x10\r\n", 400, "Invalid Content-Length header."),
        (b"Content-Length: 9999999999999999999999\r\n", 400, "Invalid Content-Length header."),
        (b"Transfer-Encoding: chunked\r\n", 411, "Send the body with Content-Length."),
        (b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", 411, "Send the body with Content-Length."),
    ],
)
def test_ambiguous_framing_is_refused(headers: bytes, status: int, message: str) -> None:
    error = refusal(RequestFraming(1024), HEAD + headers + b"\r\n")
    assert (error.status, error.message) == (status, message)


def test_an_oversized_head_is_refused_before_it_ends() -> None:
    framing = RequestFraming(100)
    framing.feed(HEAD)
    error = refusal(framing, b"x-filler: " + b"a" * 60)  # past 100 bytes, no blank line yet
    assert (error.status, error.message) == (431, "Request header fields too large (at most 100 bytes).")
    assert refusal(RequestFraming(100), HEAD + b"x: " + b"a" * 60 + b"\r\n\r\n").status == 431


# -- who may use the controls -------------------------------------------------------------------
JSON = {"content-type": "application/json"}


def test_loopback_names() -> None:
    for name in ("localhost", "LOCALHOST", "a.localhost", "127.0.0.1", "127.8.9.1", "::1", "[::1]"):
        assert is_loopback(name), name
    for name in ("0.0.0.0", "10.0.0.1", "example.com", "localhost.example.com", "", "::"):
        assert not is_loopback(name), name
    assert host_name("LocalHost:8765") == "localhost" and host_name("[::1]:80") == "::1"
    assert host_name("127.0.0.1") == "127.0.0.1" and host_name("[::1]") == "::1"


@pytest.mark.parametrize("host", ["127.0.0.1:8765", "localhost:1", "[::1]:8765", "localhost"])
def test_loopback_hosts_may_use_the_controls(host: str) -> None:
    limits = Limits()
    assert control_refusal("POST", "/_emulator/reset", {"host": host, **JSON}, limits) is None
    assert control_refusal("GET", "/_emulator/state", {"host": host}, limits) is None


def test_a_rebound_host_or_a_foreign_origin_is_refused() -> None:
    limits = Limits()
    error = control_refusal("GET", "/_emulator/state", {"host": "attacker.example:8765"}, limits)
    assert error is not None and error.status == 403 and error.type == "permission_error"
    assert error.message == (
        "Host 'attacker.example:8765' may not use the emulator's controls: loopback names only "
        "(pcache-emulator --allowed-host NAME adds one)."
    )
    missing = control_refusal("GET", "/_emulator/state", {}, limits)
    assert missing is not None and missing.message == "The emulator's controls need a Host header."
    for origin in ("http://attacker.example", "null"):
        headers = {"host": "127.0.0.1:8765", "origin": origin, **JSON}
        error = control_refusal("POST", "/_emulator/advance", headers, limits)
        assert (
            error is not None and error.message == f"Origin {origin!r} may not use the emulator's controls."
        )
    headers = {"host": "127.0.0.1", "origin": "http://localhost:8888", **JSON}  # a local notebook page
    assert control_refusal("POST", "/_emulator/advance", headers, limits) is None
    # An absolute-form target names its own host, which is the one that counts.
    error = control_refusal("GET", "/_emulator/state", {"host": "127.0.0.1"}, limits, authority="evil:80")
    assert error is not None and error.status == 403


@pytest.mark.parametrize(
    "kind", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_control_posts_take_only_json(kind: str | None) -> None:
    headers = {"host": "127.0.0.1"} | ({"content-type": kind} if kind else {})
    error = control_refusal("POST", "/_emulator/advance", headers, Limits())
    assert error is not None and error.status == 415
    assert error.message == f"The emulator's controls take Content-Type application/json, not {kind or ''!r}."
    headers["content-type"] = "Application/JSON; charset=utf-8"
    assert control_refusal("POST", "/_emulator/advance", headers, Limits()) is None


def test_the_api_itself_is_not_guarded_and_allowed_hosts_widen_the_controls() -> None:
    assert control_refusal("POST", "/v1/messages", {"host": "anything"}, Limits()) is None
    limits = Limits(allowed_hosts=frozenset({"Emulator.Internal"}))
    assert control_refusal("GET", "/_emulator/state", {"host": "emulator.internal:80"}, limits) is None
    assert control_refusal("GET", "/_emulator/state", {"host": "other"}, limits) is not None
    anyone = Limits(allowed_hosts=frozenset({"*"}))
    assert control_refusal("GET", "/_emulator/state", {"host": "other"}, anyone) is None


def test_limits_are_checked() -> None:
    for bad in ({"request_timeout_s": 0}, {"request_timeout_s": float("inf")}, {"max_connections": 0}):
        with pytest.raises(ValueError):
            Limits(**bad)  # type: ignore[arg-type]
