"""`pcache-emulator` under idle, slow and stalled clients: two child processes over loopback.

The old hand-written server gave each socket a thread and waited on each read, so idle and
slow clients piled up. Three figures, each beside a baseline taken in the same run:

- a normal request with 200 idle connections open, against the same request to a server with
  none (the 95th percentile of the rounds, in ms, on a new connection each; the goal is the
  issue's 50 ms, the ratio of medians is in the details);
- how long a client that sends a byte every 50 ms keeps its connection, over the deadline;
- resident memory while twenty 3 GB uploads are promised and stalled (and three just under the
  body cap are stalled mid-body), over the memory before; never sending the 3 GB.
"""

from __future__ import annotations

import json
import select
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ._harness import Comparison, Figure, Goal, Side, compare

__all__ = ["IDLE", "emulator_process", "run"]

IDLE = 200
GOAL_IDLE_MS = Goal.at_most(50.0)
GOAL_DROP = Goal.at_most(1.25)
GOAL_RSS = Goal.at_most(1.10)
_REQUEST = json.dumps(
    {"model": "claude-sonnet-4-6", "max_tokens": 8, "messages": [{"role": "user", "content": "Hi"}]}
).encode()


@contextmanager
def emulator_process(*args: str) -> Iterator[tuple[int, int]]:
    """A `pcache-emulator` child process on a free loopback port: (pid, port)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pcache_magic.emulator.server", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "listening on http://127.0.0.1:" not in line:
            raise RuntimeError(f"pcache-emulator did not start: {line!r}")
        yield proc.pid, int(line.split("127.0.0.1:")[1].split()[0])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


def _head(path: str, length: int, *, close: bool = True) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "x-api-key: bench", "Content-Type: application/json"]
    lines += [f"Content-Length: {length}"] + (["Connection: close"] if close else [])
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_all(sock: socket.socket) -> bytes:
    reply = b""
    while chunk := sock.recv(65536):
        reply += chunk
    return reply


def _ask(port: int) -> None:
    """One Messages request on a new connection, read to the end; it must succeed."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(_head("/v1/messages", len(_REQUEST)) + _REQUEST)
        reply = _read_all(sock)
    if not reply.startswith(b"HTTP/1.1 200 "):
        raise RuntimeError(f"a normal request failed: {reply[:200]!r}")


def _timed_asks(port: int, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter_ns()
        _ask(port)
        samples.append(float(time.perf_counter_ns() - start))
    return samples


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc")


def _idle_figure(idle_port: int, other_port: int, quick: bool) -> Figure:
    idle = [socket.create_connection(("127.0.0.1", idle_port), timeout=30) for _ in range(IDLE)]
    try:
        time.sleep(0.3)  # every idle socket accepted
        result = compare(
            lambda: _ask(other_port),
            lambda: _ask(idle_port),
            labels=("request, server with no idle connection", f"request, server with {IDLE} idle"),
            repeats=7 if quick else 41,
            warmup=2,
            min_sample_ns=0,  # one request per sample: their 95th percentile is the figure
        )
        dropped = sum(1 for sock in idle if select.select([sock], [], [], 0)[0])
    finally:
        for sock in idle:
            sock.close()
    if dropped:
        raise RuntimeError(f"{dropped} idle connections were closed during the measurement")
    p95_ms = statistics.quantiles(result.subject.samples_ns, n=20)[18] / 1e6
    slowest_ms = max(result.subject.samples_ns) / 1e6
    details = {**result.details(), "idle_connections": IDLE, "slowest_ms": round(slowest_ms, 3)}
    return Figure("server.request_with_200_idle_p95", p95_ms, "ms", GOAL_IDLE_MS, details)


def _slow_client(port: int, out: list[float]) -> None:
    data = _head("/v1/messages", len(_REQUEST)) + _REQUEST
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        start = time.perf_counter_ns()
        for byte in data:  # one byte every 50 ms: never finishes
            if select.select([sock], [], [], 0)[0]:
                break
            sock.sendall(bytes([byte]))
            time.sleep(0.05)
        reply = _read_all(sock)
        out.append(float(time.perf_counter_ns() - start))
    if not reply.startswith(b"HTTP/1.1 408 "):
        raise RuntimeError(f"a slow client was not answered 408: {reply[:200]!r}")


def _drop_figure(port: int, deadline_s: float, quick: bool) -> Figure:
    drops: list[float] = []
    slow = [threading.Thread(target=_slow_client, args=(port, drops)) for _ in range(3 if quick else 10)]
    for thread in slow:
        thread.start()
    during = _timed_asks(port, 3 if quick else 10)  # served while the slow ones dribble
    for thread in slow:
        thread.join(timeout=60)
    if len(drops) != len(slow):
        raise RuntimeError("a slow client was not dropped")
    result = Comparison(
        Side("request deadline (--request-timeout)", 1, (deadline_s * 1e9,) * len(drops)),
        Side("slow client: first byte to 408 and hang-up", 1, tuple(drops)),
    )
    details = {
        **result.details(),
        "normal_request_meanwhile_median_ms": round(statistics.median(during) / 1e6, 3),
    }
    return Figure("server.slow_client_dropped_vs_deadline", result.slowdown, "x", GOAL_DROP, details)


def _rss_figure(pid: int, port: int, quick: bool) -> Figure:
    rounds = 5 if quick else 21
    _timed_asks(port, 3)  # warm: every module the request path needs is loaded
    before_rss = _rss(pid)
    before = _timed_asks(port, rounds)
    huge = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(20)]
    near_cap = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(3)]
    try:
        for sock in huge:  # 3 GB promised, 64 KiB sent, then nothing
            sock.sendall(_head("/v1/messages", 3_000_000_000, close=False) + b" " * 65536)
        for sock in near_cap:  # 32 MiB promised (the cap), 1 MiB sent, then nothing
            sock.sendall(_head("/v1/messages", 32 * 2**20, close=False) + b" " * 2**20)
        refused = sum(1 for sock in huge if _read_all(sock).startswith(b"HTTP/1.1 413 "))
        during = _timed_asks(port, rounds)
        after_rss = _rss(pid)
    finally:
        for sock in huge + near_cap:
            sock.close()
    result = Comparison(
        Side("request before the stalled uploads", 1, tuple(before)),
        Side("request while they stall", 1, tuple(during)),
    )
    details = {
        **result.details(),
        "rss_mb": {"before": round(before_rss / 2**20, 2), "during": round(after_rss / 2**20, 2)},
        "stalled_3gb_uploads": len(huge),
        "answered_413_unread": refused,
        "stalled_32mb_uploads": len(near_cap),
    }
    return Figure("server.rss_stalled_3gb_uploads", after_rss / before_rss, "x", GOAL_RSS, details)


def run(quick: bool = False) -> list[Figure]:
    deadline_s = 1.0 if quick else 2.0
    with (
        emulator_process() as (_, idle_port),
        emulator_process("--request-timeout", f"{deadline_s:g}") as (pid, port),
    ):
        return [
            _idle_figure(idle_port, port, quick),
            _drop_figure(port, deadline_s, quick),
            _rss_figure(pid, port, quick),
        ]
