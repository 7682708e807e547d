"""The fault matrix: every failure a notebook meets, through the real magics, in process and over HTTP.

Each case runs `%%claude` on IPython's `InteractiveShell` against the emulator with a fault
injected: 429 (with `retry-after`), 529, 500, a timeout, a connection dropped mid-stream and
Ctrl-C (a real SIGINT) mid-stream. Transient faults are retried by the SDK and the call
succeeds; persistent ones end with one line that says what happened and what to do. Either
way the conversation is exactly what it was before the failed call, the failed call is on
record (and in the panel) as failed, and running the cell again works.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import ExecutionResult, InteractiveShell
from IPython.utils.capture import capture_output

import pcache_magic
from pcache_magic.emulator import Emulator, wire
from pcache_magic.emulator.server import EmulatorHTTPServer, serve
from pcache_magic.ipython.magics import ClaudeMagics
from pcache_magic.session.session import Session
from pcache_magic.session.transport import connect

from _helpers import loaded_magics

LONG = " ".join(f"Rule {i}: review the code carefully and explain each finding." for i in range(160))
RETRY_AFTER = 0.001  # what the emulator sends in `retry-after`: the SDK waits exactly this long
HOLD_AFTER_CTRL_C = 1.0  # seconds the server holds the rest of an interrupted reply
CLIENT_TIMEOUT = 0.5  # seconds per attempt; an injected timeout over HTTP is held past it (at most 2 s)


class CtrlCEmulator(Emulator):
    """An emulator whose armed stream delivers a real SIGINT right after the first text delta.

    In process the signal is raised on the thread reading the stream; over HTTP it is raised
    on the server's thread while the reply is still being sent, and Python delivers the
    KeyboardInterrupt to the notebook's main thread, exactly as a Ctrl-C would arrive.
    """

    armed = False

    def respond(
        self, method: str, path: str, headers: Any, body: bytes, arrived: int | None = None
    ) -> wire.WireResponse:
        answer = super().respond(method, path, headers, body, arrived)
        if answer.events is None or not self.armed:
            return answer
        self.armed = False
        return dataclasses.replace(answer, events=self._interrupting(answer.events))

    @staticmethod
    def _interrupting(events: Iterator[bytes]) -> Iterator[bytes]:
        interrupted = False
        for chunk in events:
            yield chunk
            if not interrupted and chunk.startswith(b"event: content_block_delta"):
                interrupted = True  # one Ctrl-C: the deltas a held server sends later raise none
                signal.raise_signal(signal.SIGINT)
                if threading.current_thread() is not threading.main_thread():
                    # Over HTTP the server goes on sending while Python hands the signal to the
                    # main thread; hold the rest of the reply, as a slow network would, so the
                    # Ctrl-C lands mid-stream and not after the reply was read.
                    threading.Event().wait(HOLD_AFTER_CTRL_C)


@dataclasses.dataclass
class Rig:
    """A loaded extension whose session talks to `emu`, in process or over HTTP."""

    ip: InteractiveShell
    emu: CtrlCEmulator
    transport: str
    url: str | None = None

    @property
    def session(self) -> Session:
        return pcache_magic.current_session()

    @property
    def magics(self) -> ClaudeMagics:
        return loaded_magics(self.ip)

    def inject(self, fault: Any, times: int = 1, retry_after: float | None = RETRY_AFTER) -> None:
        """Over HTTP through the server's own `/_emulator/inject`, in process on the object."""
        if fault == "interrupt":
            self.emu.armed = True
        elif self.url is None:
            self.emu.inject(fault, times=times, retry_after=retry_after)
        else:
            payload = {"fault": fault, "times": times, "retry_after": retry_after}
            request = urllib.request.Request(
                f"{self.url}/_emulator/inject",
                data=json.dumps(payload).encode(),
                headers={"content-type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200

    def run(self, code: str) -> ExecutionResult:
        result = self.ip.run_cell(code)
        result.raise_error()
        return result


@pytest.fixture
def sigint() -> Iterator[None]:
    """Python's own Ctrl-C handler (KeyboardInterrupt), whatever the runner installed."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture(params=["in-process", "http"])
def rig(
    request: pytest.FixtureRequest,
    offline_shell: InteractiveShell,
    monkeypatch: pytest.MonkeyPatch,
    sigint: None,
) -> Iterator[Rig]:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setattr(anthropic._base_client, "time", SleepRecorder())  # back off without waiting
    emu = CtrlCEmulator()
    server: EmulatorHTTPServer | None = None
    thread: threading.Thread | None = None
    if request.param == "http":
        server = serve(emu, "127.0.0.1", 0, timeout=5.0)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        monkeypatch.setenv("PCACHE_EMULATOR_URL", server.url)
    with capture_output():
        offline_shell.run_line_magic("load_ext", "pcache_magic")
    rig = Rig(offline_shell, emu, request.param, server.url if server is not None else None)
    try:
        if server is None:
            rig.magics.use(Session(connection=connect(emulator=emu)))
        assert rig.session.connection is not None
        assert rig.session.connection.mode == ("server" if server else "offline")
        # The retry policy is set the way a user sets it, and reaches the live session's clients.
        rig.run("%config ClaudeMagics.max_retries = 2")
        rig.run(f"%config ClaudeMagics.timeout = {CLIENT_TIMEOUT}")
        client = rig.session.client
        assert client is not None and (client.max_retries, client.timeout) == (2, CLIENT_TIMEOUT)
        yield rig
    finally:
        offline_shell.run_line_magic("unload_ext", "pcache_magic")
        if server is not None and thread is not None:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)


def blocks(session: Session) -> list[dict[str, Any]]:
    return [b.model_dump() for b in session.conversation.blocks]


def prepare(rig: Rig) -> None:
    """A cached system prompt, one answered turn and an open panel: what a real notebook has."""
    with capture_output():
        rig.run(f"%%claude_system --cache\n{LONG}")
        rig.run("%%claude\nFirst question?")
        rig.run("%claude_panel")
    assert [c.ok for c in rig.session.calls] == [True]


def panel_html(rig: Rig) -> str:
    panel = rig.magics._panel
    assert panel is not None
    return "".join(chunk.value for chunk in panel._chunks) + panel.header.value


# fault, times, what the failed call's record says (None: retried, then it succeeds)
TRANSIENT = [
    pytest.param(429, 2, id="429-retry-after-twice"),
    pytest.param(529, 1, id="529-once"),
    pytest.param(500, 2, id="500-twice"),
    pytest.param("timeout", 1, id="timeout-once"),
]
PERSISTENT = [
    pytest.param(
        429,
        3,
        "Rate limited (429) after 2 retries; wait a minute and try again.",
        "429 RateLimitError",
        id="429-persistent",
    ),
    pytest.param(
        529,
        3,
        "The API is overloaded (529) after 2 retries; try again in a minute.",
        "529 OverloadedError",
        id="529-persistent",
    ),
    pytest.param(
        500,
        3,
        "The API failed (500) after 2 retries: Internal server error (injected by the emulator); "
        "try again shortly.",
        "500 InternalServerError",
        id="500-persistent",
    ),
    pytest.param(
        "timeout",
        3,
        "The API did not answer in time after 2 retries; try again, or raise ClaudeMagics.timeout.",
        "APITimeoutError",
        id="timeout-persistent",
    ),
]
STREAM_ONLY = [
    pytest.param(
        "disconnect",
        1,
        "The connection broke during the reply (RemoteProtocolError); the conversation is unchanged, "
        "run the cell again.",
        "RemoteProtocolError",
        id="disconnect-mid-stream",
    ),
    pytest.param(
        "interrupt", 1, "Interrupted; the conversation is unchanged.", "interrupted", id="ctrl-c-mid-stream"
    ),
]


@pytest.mark.parametrize("flags", ["", "--no-stream"], ids=["stream", "no-stream"])
@pytest.mark.parametrize(("fault", "times"), TRANSIENT)
def test_transient_faults_are_retried_and_the_call_succeeds(
    rig: Rig, fault: Any, times: int, flags: str
) -> None:
    prepare(rig)
    session = rig.session
    before = blocks(session)
    rig.inject(fault, times)
    with capture_output() as out:
        rig.run(f"%%claude {flags}\nSecond question?")
    assert len(rig.emu.faults) == 0  # every injected failure was met, and retried past
    assert [c.ok for c in session.calls] == [True, True]  # retries are one call, not several
    assert session.calls[-1].response is not None
    assert session.calls[-1].response.stop_reason == "end_turn"
    assert session.calls[-1].tokens.read > 0  # the retried call still reads the cache
    after = blocks(session)
    assert after[: len(before)] == before
    assert [(b["kind"], b["role"]) for b in after[len(before) :]] == [
        ("prompt", "user"),
        ("reply", "assistant"),
    ]
    assert after[len(before)]["content"] == [{"type": "text", "text": "Second question?"}]
    assert "UsageError" not in out.stderr and "Traceback" not in out.stdout
    panel = rig.magics._panel
    assert panel is not None and panel._totals.failed == 0


def assert_failed_cleanly(
    rig: Rig, result: ExecutionResult, out: Any, message: str, recorded: str, before: list[Any]
) -> None:
    session = rig.session
    error = result.error_in_exec
    assert isinstance(error, UsageError), error
    assert str(error) == message
    assert out.stderr.strip() == f"UsageError: {message}"  # one line, no traceback
    assert "Traceback" not in out.stdout
    # the conversation is exactly as it was: no orphan prompt, no half reply
    assert blocks(session) == before
    assert [c.outcome for c in session.calls] == ["write", "failed"]
    failed = session.calls[-1]
    assert failed.error is not None and failed.error.startswith(recorded), failed.error
    assert "\n" not in failed.error
    assert failed.kind == "ask" and failed.request["messages"][-1]["content"][0]["text"] == "Second question?"
    # the panel shows it as failed
    panel = rig.magics._panel
    assert panel is not None and panel._totals.failed == 1
    assert "pcache-outcome-failed" in panel_html(rig)
    rig.emu.faults.clear()
    # running the cell again sends the conversation once, with one copy of the new prompt
    with capture_output():
        rig.run("%%claude\nSecond question?")
    retried = session.calls[-1]
    assert retried.ok and [c.outcome for c in session.calls][:2] == ["write", "failed"]
    messages = retried.request["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[-1]["content"] == [{"type": "text", "text": "Second question?"}]
    assert len(session.conversation.blocks) == len(before) + 2


@pytest.mark.parametrize("flags", ["", "--no-stream"], ids=["stream", "no-stream"])
@pytest.mark.parametrize(("fault", "times", "message", "recorded"), PERSISTENT)
def test_persistent_faults_end_in_one_line_and_change_nothing(
    rig: Rig, fault: Any, times: int, message: str, recorded: str, flags: str
) -> None:
    prepare(rig)
    before = blocks(rig.session)
    rig.inject(fault, times)
    with capture_output() as out:
        result = rig.ip.run_cell(f"%%claude {flags}\nSecond question?")
    assert len(rig.emu.faults) == 0  # 1 try + 2 retries
    assert_failed_cleanly(rig, result, out, message, recorded, before)


@pytest.mark.parametrize(("fault", "times", "message", "recorded"), STREAM_ONLY)
def test_a_stream_broken_mid_reply_changes_nothing(
    rig: Rig, fault: Any, times: int, message: str, recorded: str
) -> None:
    prepare(rig)
    before = blocks(rig.session)
    rig.inject(fault, times)
    with capture_output() as out:
        result = rig.ip.run_cell("%%claude\nSecond question?")
    assert_failed_cleanly(rig, result, out, message, recorded, before)
    assert not rig.emu.armed and len(rig.emu.faults) == 0


def test_a_failure_inside_a_tool_loop_rolls_back_the_whole_turn(rig: Rig) -> None:
    """The tool runs between two calls and breaks the second: the turn leaves no trace."""
    prepare(rig)
    rig.ip.user_ns["rig"] = rig
    rig.run("def ping() -> str:\n    'Ping.'\n    rig.inject(529, 3)\n    return 'pong'\n")
    with capture_output():
        rig.run("%%claude_tools --run\nping")
    before = blocks(rig.session)
    with capture_output() as out:
        result = rig.ip.run_cell("%%claude\nUse ping now")
    assert isinstance(result.error_in_exec, UsageError)
    assert str(result.error_in_exec) == "The API is overloaded (529) after 2 retries; try again in a minute."
    assert "Traceback" not in out.stdout
    assert blocks(rig.session) == before  # no prompt, no tool_use reply, no tool result
    assert [(c.kind, c.ok) for c in rig.session.calls][1:] == [("ask", True), ("tool_loop", False)]


def test_a_failed_prewarm_is_one_line_and_on_record(rig: Rig) -> None:
    prepare(rig)
    before = blocks(rig.session)
    rig.inject(529, 3)
    with capture_output() as out:
        result = rig.ip.run_cell("%claude_prewarm")
    assert str(result.error_in_exec) == "The API is overloaded (529) after 2 retries; try again in a minute."
    assert out.stderr.strip().count("\n") == 0
    assert blocks(rig.session) == before
    assert [(c.kind, c.outcome) for c in rig.session.calls] == [("ask", "write"), ("prewarm", "failed")]


# -- the retry policy -------------------------------------------------------------------------------
class SleepRecorder:
    """Stands in for the `time` module inside the SDK's retry loop: records each wait, sleeps none.

    The SDK decides how long to wait (retry-after, or exponential backoff with jitter); this
    shows what it decided without the test waiting for it.
    """

    def __init__(self) -> None:
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> SleepRecorder:
    recorder = SleepRecorder()
    monkeypatch.setattr(anthropic._base_client, "time", recorder)
    return recorder


def test_retry_after_is_honoured_else_exponential_backoff(rig: Rig, waits: SleepRecorder) -> None:
    prepare(rig)
    rig.inject(429, 2, retry_after=0.25)
    with capture_output():
        rig.run("%%claude\nTwo")
    assert waits.waits == [0.25, 0.25]  # exactly what retry-after said
    waits.waits.clear()
    rig.inject(529, 2, retry_after=None)  # no retry-after: 0.5 s then 1 s, minus up to 25% jitter
    with capture_output():
        rig.run("%%claude\nThree")
    first, second = waits.waits
    assert 0.375 <= first <= 0.5 and 0.75 <= second <= 1.0
    assert all(c.ok for c in rig.session.calls)


class InterruptedSleep(SleepRecorder):
    """Ctrl-C while the SDK waits before its next attempt."""

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        raise KeyboardInterrupt


@pytest.mark.parametrize("flags", ["", "--no-stream"], ids=["stream", "no-stream"])
def test_ctrl_c_while_waiting_to_retry_changes_nothing(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, flags: str
) -> None:
    prepare(rig)
    before = blocks(rig.session)
    interrupted = InterruptedSleep()
    monkeypatch.setattr(anthropic._base_client, "time", interrupted)
    rig.inject(529, 1)
    with capture_output() as out:
        result = rig.ip.run_cell(f"%%claude {flags}\nSecond question?")
    assert interrupted.waits == [RETRY_AFTER]  # the first attempt failed, the wait was cut short
    assert len(rig.emu.faults) == 0
    assert_failed_cleanly(
        rig, result, out, "Interrupted; the conversation is unchanged.", "interrupted", before
    )


@pytest.mark.parametrize("rig", ["in-process"], indirect=True)
def test_max_retries_is_configurable(rig: Rig, waits: SleepRecorder) -> None:
    prepare(rig)
    rig.run("%config ClaudeMagics.max_retries = 0")
    rig.inject(429, 1)
    with capture_output():
        result = rig.ip.run_cell("%%claude\nTwo")
    assert str(result.error_in_exec) == "Rate limited (429); wait a minute and try again."
    assert waits.waits == []
    rig.run("%config ClaudeMagics.max_retries = 5")
    rig.inject(429, 5)
    with capture_output():
        rig.run("%%claude\nTwo")
    assert waits.waits == [RETRY_AFTER] * 5 and rig.session.calls[-1].ok
    rig.run("%config ClaudeMagics.max_retries = 1")
    rig.inject(500, 2)
    with capture_output():
        result = rig.ip.run_cell("%%claude\nThree")
    assert str(result.error_in_exec) == (
        "The API failed (500) after 1 retry: Internal server error (injected by the emulator); "
        "try again shortly."
    )
    # a new session (e.g. %config ClaudeMagics.offline) is built with the same policy
    rig.run("%config ClaudeMagics.offline = True")
    client = rig.session.client
    assert client is not None and (client.max_retries, client.timeout) == (1, CLIENT_TIMEOUT)


def test_an_unreachable_api_is_one_line(
    shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch, waits: SleepRecorder
) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("PCACHE_EMULATOR_URL", f"http://127.0.0.1:{port}")
    shell.config.pop("ClaudeMagics", None)
    shell.config.ClaudeMagics.max_retries = 1
    with capture_output():
        shell.run_line_magic("load_ext", "pcache_magic")
    try:
        session = pcache_magic.current_session()
        with capture_output():
            shell.run_cell("%%claude_system\nBe brief.").raise_error()
        before = blocks(session)
        with capture_output() as out:
            result = shell.run_cell("%%claude\nHello?")
        assert str(result.error_in_exec) == (
            "Could not reach the API after 1 retry; check the network, "
            "or work offline (ClaudeMagics.offline)."
        )
        assert out.stderr.count("\n") == 1
        assert blocks(session) == before
        assert [c.outcome for c in session.calls] == ["failed"]
        assert session.calls[0].error is not None and session.calls[0].error.startswith("APIConnectionError")
        assert len(waits.waits) == 1  # backed off once, then gave up
        with capture_output():
            result = shell.run_cell("%claude_clock advance 6m")
        assert str(result.error_in_exec) == (
            f"http://127.0.0.1:{port}/_emulator/advance cannot be reached (Connection refused); "
            "check PCACHE_EMULATOR_URL. The clock may not have moved."
        )
        assert "\n" not in str(result.error_in_exec)
    finally:
        shell.run_line_magic("unload_ext", "pcache_magic")
        shell.config.pop("ClaudeMagics", None)


# -- the fault plan itself ---------------------------------------------------------------------------
def test_an_injected_timeout_never_reaches_the_engine() -> None:
    emu = Emulator()
    client = emu.client(max_retries=0)
    params: dict[str, Any] = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 16,
        "system": [{"type": "text", "text": LONG * 2, "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "Hi"}],
    }
    emu.inject("timeout", times=2)
    with pytest.raises(anthropic.APITimeoutError):
        client.messages.create(**params)
    with pytest.raises(anthropic.APITimeoutError):
        client.messages.count_tokens(model=params["model"], messages=params["messages"])
    assert emu.state()["entries"] == [] and len(emu.faults) == 0
    first = client.messages.create(**params)
    assert first.usage.cache_creation_input_tokens  # the first request the engine saw wrote
    with pytest.raises(ValueError, match="'disconnect' or 'timeout'"):
        emu.inject("hang")  # type: ignore[arg-type]


def test_a_timeout_over_http_is_held_until_the_client_gives_up() -> None:
    emu = Emulator()
    server = serve(emu, "127.0.0.1", 0, timeout=5.0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        client = anthropic.Anthropic(base_url=server.url, api_key="k", max_retries=0, timeout=0.2)
        emu.inject("timeout")
        assert client.models.retrieve("claude-sonnet-4-6").id  # faults wait for a Messages request
        with pytest.raises(anthropic.APITimeoutError):
            client.messages.create(
                model="claude-sonnet-4-6", max_tokens=8, messages=[{"role": "user", "content": "Hi"}]
            )
        assert len(emu.faults) == 0
        answered = client.messages.create(
            model="claude-sonnet-4-6", max_tokens=8, messages=[{"role": "user", "content": "Hi"}]
        )
        assert answered.type == "message"  # the held worker did not block the next request
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
