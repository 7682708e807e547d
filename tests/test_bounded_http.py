"""The bounded HTTP clients of URL and live mode, against hostile loopback servers.

Caps are patched small where a test would otherwise read tens of MB; deadlines run on an injected
clock that jumps, so no test waits for a real timeout.
"""

from __future__ import annotations

import gzip
import json
import socket
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import anthropic
import httpx2
import pytest
from _hostile_http import (
    GOOD,
    GZIP_HEAD,
    HUGE_LENGTH,
    SSE_HEAD,
    Script,
    endless,
    gzip_bomb,
    once,
    raw_serving,
    redirect,
)

from pcache_magic.session import bounded_http
from pcache_magic.session.bounded_http import (
    AnswerTooLarge,
    AsyncBoundedTransport,
    BoundedTransport,
    RedirectRefused,
    bounded_async_client,
    bounded_client,
    with_bounded_clients,
)

MIB = 1024 * 1024
TIMEOUT = httpx2.Timeout(30.0, connect=5.0)
ASK = b'{"model":"m","max_tokens":5,"messages":[]}'
STREAMED = b'{"model":"m","max_tokens":5,"messages":[],"stream":true}'
#: The end of a head that tells the client not to reuse the connection (the raw server closes it).
CLOSED = b"content-length: 0\r\nconnection: close\r\n\r\n"


def jumping(step: float) -> Callable[[], float]:
    """A clock that moves `step` seconds each time it is read."""
    now = [0.0]

    def clock() -> float:
        now[0] += step
        return now[0]

    return clock


@contextmanager
def bounded(script: Script, clock: Callable[[], float] | None = None) -> Iterator[tuple[str, httpx2.Client]]:
    """A raw server running `script`, and a bounded client (on `clock`, if given)."""
    client = (
        bounded_client()
        if clock is None
        else httpx2.Client(transport=BoundedTransport(httpx2.HTTPTransport(), clock=clock))
    )
    with raw_serving(script) as url, client:
        yield url, client


def post(client: httpx2.Client, url: str, body: bytes = ASK) -> httpx2.Response:
    return client.post(f"{url}/v1/messages", content=body, timeout=TIMEOUT)


@pytest.fixture
def small_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bounded_http, "MAX_BODY", 1 * MIB)
    monkeypatch.setattr(bounded_http, "MAX_STREAM", 2 * MIB)
    monkeypatch.setattr(bounded_http, "MAX_RUN", 1 * MIB)


def test_the_sdk_default_client_is_kept_with_each_transport_wrapped() -> None:
    client = bounded_client()
    assert isinstance(client, anthropic.DefaultHttpxClient)  # its limits and socket options kept
    assert isinstance(client._transport, BoundedTransport)
    assert isinstance(bounded_async_client()._transport, AsyncBoundedTransport)
    own, own_async = httpx2.Client(), httpx2.AsyncClient()
    sync, async_ = with_bounded_clients({"http_client": own, "max_retries": 0})
    assert sync == {"http_client": own, "max_retries": 0} and async_["max_retries"] == 0
    assert isinstance(async_["http_client"]._transport, AsyncBoundedTransport)  # the other side's
    sync, async_ = with_bounded_clients({"http_client": own_async})
    assert async_ == {"http_client": own_async} and isinstance(
        sync["http_client"]._transport, BoundedTransport
    )


def test_a_body_past_the_cap_ends_in_one_error_not_in_memory(small_caps: None) -> None:
    with (
        bounded(endless(HUGE_LENGTH, b" " * 65536)) as (url, client),
        pytest.raises(AnswerTooLarge, match=r"^its answer passed 1 MiB, more than a real one holds"),
    ):
        post(client, url)


def test_a_gzip_bomb_counts_as_what_it_inflates_to(small_caps: None) -> None:
    bomb = gzip_bomb(64 * MIB)
    assert len(bomb) < MIB // 4  # well under the cap as sent
    with (
        bounded(once(GZIP_HEAD + bomb)) as (url, client),
        pytest.raises(AnswerTooLarge, match="passed 1 MiB"),
    ):
        post(client, url)


def test_an_answer_compressed_more_than_once_is_not_read(small_caps: None) -> None:
    """Each layer inflated the next before any cap saw it: 512 bytes of four gzip layers cost
    minutes of CPU. No API stacks encodings: refused before a byte is decoded."""
    layered = GZIP_HEAD.replace(b"content-encoding: gzip", b"content-encoding: gzip, gzip")
    body = gzip.compress(gzip.compress(json.dumps(GOOD).encode()))
    with (
        bounded(once(layered + body)) as (url, client),
        pytest.raises(AnswerTooLarge, match="compressed more than once"),
    ):
        post(client, url)


def test_a_real_gzip_answer_still_decodes() -> None:
    body = gzip.compress(json.dumps(GOOD).encode())
    head = GZIP_HEAD[:-2] + f"content-length: {len(body)}\r\n\r\n".encode()
    with raw_serving(once(head + body)) as url, bounded_client() as client:
        assert post(client, url).json() == GOOD


def test_a_stream_gets_the_larger_cap_and_each_event_its_own(small_caps: None) -> None:
    event = b"event: ping\ndata: {}\n\n" * 20_000  # ~0.45 MiB a piece, events small
    with (
        bounded(endless(SSE_HEAD, event)) as (url, client),
        client.stream("POST", f"{url}/v1/messages", content=STREAMED, timeout=TIMEOUT) as response,
        pytest.raises(AnswerTooLarge, match="passed 2 MiB") as raised,
    ):
        for _ in response.iter_bytes():
            pass
    assert raised.value.request is not None
    with (
        bounded(endless(SSE_HEAD, b"data: " + b"x" * 65536)) as (url, client),
        pytest.raises(AnswerTooLarge, match="1 MiB in one event or line"),
    ):
        post(client, url, STREAMED)


def test_batch_results_are_counted_line_by_line_up_to_their_own_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bounded_http, "MAX_LARGE", 3 * MIB)
    monkeypatch.setattr(bounded_http, "MAX_RUN", 1 * MIB)
    lines = b'{"custom_id":"a"}\n' * 30_000  # past MAX_BODY's patched size, lines short
    monkeypatch.setattr(bounded_http, "MAX_BODY", 256 * 1024)
    with (
        bounded(endless(HUGE_LENGTH, lines)) as (url, client),
        pytest.raises(AnswerTooLarge, match="passed 3 MiB"),
    ):
        client.get(f"{url}/v1/messages/batches/b1/results", timeout=TIMEOUT)


def trickle(head: bytes) -> Callable[[socket.socket, str], None]:
    """A script: `head`, then silence until the client hangs up."""

    def script(conn: socket.socket, path: str) -> None:
        conn.sendall(head)
        conn.recv(1)  # returns when the client closes

    return script


@pytest.mark.parametrize(
    "head",
    [
        HUGE_LENGTH,  # the head in time, the body never: the body's reads wait on the deadline
        b"HTTP/1.1 200 OK\r\nx-a: b\r\n",  # half a head: its reads do too
    ],
)
def test_a_not_streamed_attempt_ends_at_its_deadline_not_per_read(head: bytes) -> None:
    # each clock read moves 20 s: the 30 s budget is spent on the second socket read
    started = time.monotonic()
    with bounded(trickle(head), jumping(20.0)) as (url, client), pytest.raises(httpx2.ReadTimeout):
        post(client, url)
    assert time.monotonic() - started < 10  # not the 30 s per read


def test_a_streamed_body_has_no_deadline_only_its_head() -> None:
    # as above, the deadline passes on the second read: the head came in the first
    events = b"event: ping\ndata: {}\n\n" * 3
    with (
        bounded(once(SSE_HEAD + events), jumping(20.0)) as (url, client),
        client.stream("POST", f"{url}/v1/messages", content=STREAMED, timeout=TIMEOUT) as response,
    ):
        assert response.status_code == 200
        seen = b"".join(response.iter_bytes())  # read to the end, past the deadline
    assert seen == events


def test_a_redirect_to_another_host_is_refused_before_anything_is_sent_there() -> None:
    hits: list[str] = []

    def other(conn: socket.socket, path: str) -> None:
        hits.append(path)

    with raw_serving(other) as elsewhere:
        target = elsewhere.replace("127.0.0.1", "localhost") + "/steal"
        with (
            raw_serving(redirect(target)) as url,
            bounded_client() as client,
            pytest.raises(RedirectRefused, match=r"a redirect to localhost \(another host\) is not followed"),
        ):
            post(client, url)
    assert hits == []


def test_a_redirect_on_the_same_origin_is_still_followed() -> None:
    body = json.dumps(GOOD).encode()
    answered = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"

    def script(conn: socket.socket, path: str) -> None:
        if path.endswith("/again"):
            conn.sendall(answered.encode() + body)
        else:
            conn.sendall(b"HTTP/1.1 307 X\r\nlocation: /v1/again\r\n" + CLOSED)

    with raw_serving(script) as url, bounded_client() as client:
        assert post(client, url).json() == GOOD


def test_the_async_client_is_bounded_the_same_way(small_caps: None) -> None:
    import asyncio

    async def run(url: str) -> None:
        async with bounded_async_client() as client:
            await client.post(f"{url}/v1/messages", content=ASK, timeout=TIMEOUT)

    with raw_serving(endless(HUGE_LENGTH, b" " * 65536)) as url, pytest.raises(AnswerTooLarge):
        asyncio.run(run(url))
    with raw_serving(redirect("http://localhost:9/steal")) as url, pytest.raises(RedirectRefused):
        asyncio.run(run(url))


def sized(body: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        + f"content-length: {len(body)}\r\n\r\n".encode()
        + body
    )


def redirected(to: str, answer: bytes) -> Script:
    """A script: a same-origin 307 to `to`, where `answer` is sent."""

    def script(conn: socket.socket, path: str) -> None:
        conn.sendall(answer if path == to else f"HTTP/1.1 307 X\r\nlocation: {to}\r\n".encode() + CLOSED)

    return script


def padded(size: int) -> bytes:
    """A message of about `size` bytes, most of them blank lines (short events, short lines)."""
    return json.dumps(GOOD).encode()[:-1] + b"\n" * size + b"}"


@pytest.mark.parametrize("to", ["/x/v1/files/f/content", "/x/v1/messages/batches/b/results"])
def test_a_same_origin_redirect_keeps_the_cap_of_what_was_asked(small_caps: None, to: str) -> None:
    # before, the cap came from the hop's path: a message redirected to `.../content` got MAX_LARGE
    body = padded(2 * MIB)
    with (
        bounded(redirected(to, sized(body))) as (url, client),
        pytest.raises(AnswerTooLarge, match=r"^its answer passed 1 MiB,"),
    ):
        post(client, url)


def test_the_bytes_of_a_redirect_count_toward_the_attempts_cap(small_caps: None) -> None:
    # 20 redirects of 1 MiB each, kept in the response's history, were 20 MiB under a 1 MiB cap
    half = b" " * (3 * MIB // 4)
    hop = b"HTTP/1.1 307 X\r\nlocation: /v1/again\r\nconnection: close\r\n"

    def script(conn: socket.socket, path: str) -> None:
        conn.sendall(
            sized(half).replace(b"HTTP/1.1 200 OK\r\n", hop) if path == "/v1/messages" else sized(half)
        )

    with bounded(script) as (url, client), pytest.raises(AnswerTooLarge, match="passed 1 MiB"):
        post(client, url)


@pytest.mark.parametrize("body", [ASK, STREAMED], ids=["not streamed", "streamed"])
def test_a_redirect_does_not_renew_the_attempts_deadline(body: bytes) -> None:
    # each hop takes 20 s of a 30 s budget, so the third hop starts after the deadline
    now = [0.0]
    chain = {"/v1/messages": "/v1/a", "/v1/a": "/v1/b"}

    def script(conn: socket.socket, path: str) -> None:
        if path in chain:
            conn.sendall(f"HTTP/1.1 307 X\r\nlocation: {chain[path]}\r\n".encode() + CLOSED)
        else:
            conn.sendall(sized(json.dumps(GOOD).encode()))

    def took(response: httpx2.Response) -> None:
        now[0] += 20.0

    transport = BoundedTransport(httpx2.HTTPTransport(), clock=lambda: now[0])
    with (
        raw_serving(script) as url,
        httpx2.Client(transport=transport, follow_redirects=True, event_hooks={"response": [took]}) as client,
        pytest.raises(httpx2.ReadTimeout, match="no whole answer within 30 s"),
    ):
        post(client, url, body)


def test_only_the_top_level_stream_key_makes_a_request_streamed(small_caps: None) -> None:
    # a tool's input {"stream": true} in the history made a not-streamed call a stream (no deadline)
    history = [{"role": "assistant", "content": [{"type": "tool_use", "input": {"stream": True}}]}]
    asked = json.dumps({"model": "m", "messages": history, "stream": False}).encode()
    body = padded(3 * MIB // 2)  # under a stream's cap
    with bounded(once(sized(body))) as (url, client), pytest.raises(AnswerTooLarge, match="passed 1 MiB,"):
        post(client, url, asked)
    streamed = json.dumps({"model": "m", "messages": history, "stream": True}).encode()
    with bounded(once(sized(body))) as (url, client):
        assert post(client, url, streamed).content == body


def empty_deflate_blocks(count: int) -> bytes:
    """A gzip body that never ends nor decodes to anything: empty stored blocks, 5 bytes each."""
    co = zlib.compressobj(9, zlib.DEFLATED, 31)
    return co.compress(b"") + co.flush(zlib.Z_SYNC_FLUSH) + b"\x00\x00\x00\xff\xff" * count


GETS = [
    ("/v1/messages", "MAX_BODY"),
    ("/v1/files/f/content", "MAX_LARGE"),
    ("/v1/messages/batches/b/results", "MAX_LARGE"),
]


@pytest.mark.parametrize(("path", "cap"), GETS, ids=["message", "content", "results"])
def test_bytes_after_a_gzip_body_has_ended_are_refused(
    monkeypatch: pytest.MonkeyPatch, path: str, cap: str
) -> None:
    # zlib kept them as unused_data, copying them all on each read and decoding nothing: no cap tripped
    monkeypatch.setattr(bounded_http, cap, 8 * MIB)
    junk = GZIP_HEAD + gzip.compress(json.dumps(GOOD).encode()) + b"x" * (3 * MIB)
    with (
        bounded(once(junk)) as (url, client),
        pytest.raises(AnswerTooLarge, match=r"^its answer went on after its compressed body had ended"),
    ):
        client.get(f"{url}{path}", timeout=TIMEOUT)


@pytest.mark.parametrize(("path", "cap"), GETS, ids=["message", "content", "results"])
def test_the_bytes_as_sent_count_too_when_they_decode_to_nothing(
    monkeypatch: pytest.MonkeyPatch, path: str, cap: str
) -> None:
    monkeypatch.setattr(bounded_http, cap, 1 * MIB)
    with (
        bounded(once(GZIP_HEAD + empty_deflate_blocks(600_000))) as (url, client),  # 3 MB, 0 decoded
        pytest.raises(AnswerTooLarge, match=r"^its answer passed 1 MiB as sent"),
    ):
        client.get(f"{url}{path}", timeout=TIMEOUT)


def test_the_async_client_refuses_bytes_after_a_gzip_body_and_keeps_a_redirects_cap(small_caps: None) -> None:
    import asyncio

    async def run(url: str, path: str) -> None:
        transport = AsyncBoundedTransport(httpx2.AsyncHTTPTransport())
        async with httpx2.AsyncClient(transport=transport, follow_redirects=True) as client:
            await client.post(f"{url}{path}", content=ASK, timeout=TIMEOUT)

    junk = GZIP_HEAD + gzip.compress(json.dumps(GOOD).encode()) + b"x" * (3 * MIB)
    with raw_serving(once(junk)) as url, pytest.raises(AnswerTooLarge, match="compressed body had ended"):
        asyncio.run(run(url, "/v1/messages"))
    body = json.dumps({**GOOD, "pad": "A" * 2 * MIB}).encode()
    with raw_serving(redirected("/v1/files/f/content", sized(body))) as url, pytest.raises(AnswerTooLarge):
        asyncio.run(run(url, "/v1/messages"))


def test_an_events_run_ends_at_any_blank_line_sse_allows_even_split_between_chunks() -> None:
    """The run was counted to LF blank lines only, and within one chunk: a stream through a proxy
    with CRLF line breaks, or a blank line split between two reads, ran on to a false refusal."""
    from pcache_magic.session.bounded_http import _EVENT_ENDS, MAX_RUN, _Meter

    request = httpx2.Request("POST", "http://127.0.0.1/v1/messages")
    for event in (b"data: x\r\n\r\n", b"data: x\r\r"):
        meter = _Meter(request, 10 * MAX_RUN, _EVENT_ENDS)
        piece = event * (1024 * 1024 // len(event))
        for _ in range(3 * MAX_RUN // len(piece)):
            meter.count(piece)  # never one event past MAX_RUN
    meter = _Meter(request, 10 * MAX_RUN, _EVENT_ENDS)
    half = b"x" * (MAX_RUN // 2)
    for _ in range(4):
        meter.count(half + b"\n")
        meter.count(b"\n")  # the blank line, its two halves in two reads
    with pytest.raises(AnswerTooLarge, match="in one event"):
        meter.count(b"y" * (MAX_RUN + 1))
