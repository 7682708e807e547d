"""`pcache-emulator` over HTTP: requests per second for one client, and URL mode against the raw SDK.

The server runs in a child process (as a user runs it), on loopback.

- Requests/s: one client on one keep-alive connection (`http.client`), sending a small Messages
  request and reading the reply, back to back; the median of several one-second-ish runs.  A
  server or client that waits for delayed ACKs (Nagle) shows here as ~40 ms per request.
- URL mode: `Session.ask` with `PCACHE_EMULATOR_URL` set against `client.messages.create` with
  the params the session sent, to the same server through the same kind of SDK client; the
  two sides are interleaved.  A clock read that costs a request shows here.
"""

from __future__ import annotations

import copy
import http.client
import json
import statistics
import time
import warnings
from typing import Any

import anthropic

from pcache_magic.session.session import Session
from pcache_magic.session.transport import EMULATOR_URL_ENV, connect

from ._harness import Figure, Goal, compare
from .server import emulator_process

__all__ = ["run"]

MODEL = "claude-sonnet-4-5"
GOAL_RPS = Goal.at_least(300.0)
GOAL_URL = Goal.at_most(1.15)
SYSTEM = " ".join(f"Rule {i}: every public function needs a test and a short docstring." for i in range(180))
_SMALL = json.dumps(
    {"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "Hi"}]}
).encode()
_HEADERS = {
    "content-type": "application/json",
    "x-api-key": "sk-ant-bench",
    "anthropic-version": "2023-06-01",
}


def _burst(conn: http.client.HTTPConnection, count: int) -> float:
    """Requests per second over `count` back-to-back requests on one connection."""
    start = time.perf_counter_ns()
    for _ in range(count):
        conn.request("POST", "/v1/messages", body=_SMALL, headers=_HEADERS)
        reply = conn.getresponse()
        body = reply.read()
        if reply.status != 200:
            raise RuntimeError(f"a small request failed: {reply.status} {body[:200]!r}")
    return count / ((time.perf_counter_ns() - start) / 1e9)


def requests_per_second(port: int, quick: bool) -> Figure:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        _burst(conn, 20)  # warm: every module of the request path loaded
        rates = [_burst(conn, 50 if quick else 200) for _ in range(3 if quick else 9)]
    finally:
        conn.close()
    rate = statistics.median(rates)
    details = {
        "median_rps": round(rate, 1),
        "min_rps": round(min(rates), 1),
        "max_rps": round(max(rates), 1),
        "runs": len(rates),
        "requests_per_run": 50 if quick else 200,
        "request_bytes": len(_SMALL),
        "ms_per_request": round(1e3 / rate, 3),
    }
    return Figure("urlmode.server_requests_per_second", rate, "/s", GOAL_RPS, details)


def url_mode(port: int, quick: bool) -> Figure:
    url = f"http://127.0.0.1:{port}"
    session = Session(model=MODEL, connection=connect(env={EMULATOR_URL_ENV: url}, max_retries=0))
    session.system(SYSTEM, cache="5m", name="system")
    blocks = session.conversation.blocks
    before = list(blocks)

    def ask() -> object:
        message = session.ask("Which functions above have no tests?", name="q", stream=False, cache="last")
        blocks[:] = before
        return message

    ask()  # writes the cache; later calls read it
    ask()
    params: dict[str, Any] = copy.deepcopy(session.calls[-1].request)
    client = anthropic.Anthropic(api_key=session.client.api_key, base_url=url, max_retries=0)  # type: ignore[union-attr]

    def raw() -> object:
        return client.messages.create(**params)

    result = compare(
        raw,
        ask,
        labels=("client.messages.create to the server", f"Session.ask with {EMULATOR_URL_ENV}"),
        repeats=20 if quick else 151,
        warmup=2 if quick else 5,
        min_sample_ns=0,
    )
    details = {**result.details(), "prompt_tokens": session.calls[-1].tokens.prompt}
    return Figure("urlmode.session_vs_raw_sdk", result.slowdown, "x", GOAL_URL, details)


def run(quick: bool = False) -> list[Figure]:
    with warnings.catch_warnings():  # the SDK's model-deprecation notice, alike on both sides
        warnings.simplefilter("ignore", DeprecationWarning)
        with emulator_process() as (_, port):
            return [requests_per_second(port, quick), url_mode(port, quick)]


if __name__ == "__main__":
    from ._harness import render_table

    figures = run(quick=False)
    print(render_table(figures))
    for f in figures:
        print(f.name, f.details)
