"""The URL-mode clients refuse exactly what the SDK refuses at its default timeout, and wait 60 s.

Each client here talks to an in-process emulator through the SDK's mock transport (no socket);
`connect` with `PCACHE_EMULATOR_URL`, over real HTTP, is in test_transport.py.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from functools import partial
from typing import Any

import anthropic
import httpx2
import pytest

from pcache_magic.emulator import BASE_URL, Emulator
from pcache_magic.session.server_client import SERVER_TIMEOUT_S, AsyncServerAnthropic, ServerAnthropic

MODEL = "claude-sonnet-4-5"
HI: Any = [{"role": "user", "content": "Hi"}]
#: Over 10 minutes at the SDK's estimate (an hour per 128k tokens), within the model's output limit.
LONG: dict[str, Any] = {"model": MODEL, "max_tokens": 64_000, "messages": HI}
#: How the SDK's refusal begins (`_calculate_nonstreaming_timeout`).
REFUSAL = r"^Streaming is required for operations that may take longer than 10 minutes\. "


class Wire:
    """An emulator behind the mock transport, and the timeouts of the requests that reached it."""

    def __init__(self) -> None:
        self.emulator = Emulator()
        self.timeouts: list[dict[str, Any]] = []

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.timeouts.append(request.extensions["timeout"])
        return self.emulator.handle(request)

    async def ahandle(self, request: httpx2.Request) -> httpx2.Response:
        return self.handle(request)

    def _options(self, asynchronous: bool = False) -> dict[str, Any]:
        http = (
            httpx2.AsyncClient(transport=httpx2.MockTransport(self.ahandle))
            if asynchronous
            else httpx2.Client(transport=httpx2.MockTransport(self.handle))
        )
        return {"api_key": "sk-ant-test", "base_url": BASE_URL, "http_client": http, "max_retries": 0}

    def server(self) -> ServerAnthropic:
        """As `connect` builds it for a `PCACHE_EMULATOR_URL`."""
        return ServerAnthropic(**self._options(), timeout=SERVER_TIMEOUT_S)

    def async_server(self) -> AsyncServerAnthropic:
        return AsyncServerAnthropic(**self._options(asynchronous=True), timeout=SERVER_TIMEOUT_S)

    def sdk(self) -> anthropic.Anthropic:
        """The SDK's own client at its own default timeout: what the refusals must match."""
        return anthropic.Anthropic(**self._options())


def outcome(call: Callable[[], Any]) -> str:
    """'refused' with the SDK's error, or 'sent'."""
    try:
        call()
    except ValueError as error:
        assert re.match(REFUSAL, str(error)), error
        return "refused"
    return "sent"


def _stream(client: anthropic.Anthropic) -> None:
    with client.messages.stream(**LONG) as events:
        events.get_final_message()


# Each call as made on the SDK's client at its default (600 s) and on ours at SERVER_TIMEOUT_S.
Call = Callable[[anthropic.Anthropic, float | anthropic.Timeout], Any]
REFUSED: dict[str, Call] = {
    "long create": lambda c, d: c.messages.create(**LONG),
    "long create, stream=False": lambda c, d: c.messages.create(**LONG, stream=False),
    "long parse": lambda c, d: c.messages.parse(**LONG),
    "long beta create": lambda c, d: c.beta.messages.create(**LONG),
    "over the model's table": lambda c, d: c.messages.create(
        **{**LONG, "model": "claude-opus-4-0", "max_tokens": 10_000}
    ),
    "a copy of the client": lambda c, d: c.with_options(max_retries=0).messages.create(**LONG),
    "default timeout set again": lambda c, d: c.with_options(timeout=d).messages.create(**LONG),
}
SENT: dict[str, Call] = {
    "long create, streamed": lambda c, d: c.messages.create(**LONG, stream=True).close(),
    "long stream": lambda c, d: _stream(c),
    "a timeout for the call": lambda c, d: c.messages.create(**LONG, timeout=30.0),
    "another client timeout": lambda c, d: c.with_options(timeout=30.0).messages.create(**LONG),
    "short create": lambda c, d: c.messages.create(model=MODEL, max_tokens=8, messages=HI),
    "short for the model's table": lambda c, d: c.messages.create(
        model="claude-opus-4-0", max_tokens=8_192, messages=HI
    ),
}


def test_refused_exactly_where_the_sdk_refuses_at_its_default() -> None:
    """Every call, on the SDK's client at its default and on ours at `SERVER_TIMEOUT_S`."""
    calls = {**REFUSED, **SENT}
    sdk = {
        name: outcome(partial(call, Wire().sdk(), anthropic.DEFAULT_TIMEOUT)) for name, call in calls.items()
    }
    ours = {name: outcome(partial(call, Wire().server(), SERVER_TIMEOUT_S)) for name, call in calls.items()}
    assert sdk == {name: "refused" if name in REFUSED else "sent" for name in calls}
    assert ours == sdk


def test_a_refused_call_sends_nothing_and_the_others_still_wait_the_short_timeout() -> None:
    wire = Wire()
    client = wire.server()
    with pytest.raises(ValueError, match=REFUSAL):
        client.messages.create(**LONG)
    assert wire.timeouts == []
    client.messages.create(model=MODEL, max_tokens=8, messages=HI)
    _stream(client)
    assert [t["read"] for t in wire.timeouts] == [SERVER_TIMEOUT_S] * 2  # not the SDK's 600 s


def test_the_async_client_refuses_the_same() -> None:
    wire = Wire()
    client = wire.async_server()

    async def calls() -> None:
        with pytest.raises(ValueError, match=REFUSAL):
            await client.messages.create(**LONG)
        with pytest.raises(ValueError, match=REFUSAL):
            await client.with_options(max_retries=0).beta.messages.create(**LONG)
        assert wire.timeouts == []
        await client.messages.create(**LONG, timeout=30.0)
        await client.with_options(timeout=30.0).messages.create(**LONG)
        await client.messages.create(model=MODEL, max_tokens=8, messages=HI)

    asyncio.run(calls())
    assert [t["read"] for t in wire.timeouts] == [30.0, 30.0, SERVER_TIMEOUT_S]
