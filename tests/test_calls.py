"""The call pipeline (`calls.CallPipeline`): check before sending, record and learn after.

The pipeline is tested alone (given a book, a list of calls, planners, settings, a clock and
`emit`), then through `Session.ask` and through `begin_call` / `end_call`, as any other client
that records into a session (`pcache_magic.autogen`) uses it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest
from _hostile_http import GOOD, Answer, message, serving, sse, stream_of, usage
from anthropic.types import Message
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import pcache_magic
from pcache_magic.analysis.cachebook import CacheBook
from pcache_magic.analysis.diagnose import explain_all
from pcache_magic.core.models import ModelInfo, ModelTable, default_models
from pcache_magic.core.record import CallRecord
from pcache_magic.emulator import Emulator
from pcache_magic.session.calls import CallPipeline, MalformedReply
from pcache_magic.session.requests import Planners
from pcache_magic.session.session import PreflightError, Session
from pcache_magic.session.session_settings import Settings
from pcache_magic.session.transport import connect

from _helpers import Counter

MODEL = "claude-sonnet-4-5"
#: About 1,500 tokens: above Sonnet 4.5's 1,024-token minimum.
LONG = " ".join(f"line{i % 40}" for i in range(1_500))
EPH: dict[str, Any] = {"type": "ephemeral"}


def make(emu: Emulator, **kwargs: Any) -> Session:
    retries = kwargs.pop("max_retries", 2)
    return Session(model=MODEL, connection=connect(emulator=emu, max_retries=retries), **kwargs)


def request(*texts: str, marked: bool = True) -> dict[str, Any]:
    """A request built by hand, as another client would send it: one user message."""
    content: list[dict[str, Any]] = [{"type": "text", "text": t} for t in texts]
    if marked:
        content[-1]["cache_control"] = EPH
    return {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": content}]}


class Alone:
    """A pipeline built without a session, and what it was given, to look at."""

    def __init__(
        self,
        emu: Emulator,
        *,
        async_client: bool = True,
        clock: Callable[[], float] | None = None,
        models: Any = None,
    ) -> None:
        table = default_models()
        self.calls: list[CallRecord] = []
        self.events: list[tuple[str, Any]] = []
        self.book = CacheBook(table)
        self.settings = Settings(model=MODEL)
        self.pipeline = CallPipeline(
            client=emu.client(max_retries=0),
            async_client=emu.async_client(max_retries=0) if async_client else None,
            models=models or table,  # the pipeline's own lookups (a test may wrap them)
            book=self.book,
            calls=self.calls,
            planners=Planners(table, self.book, self.calls),
            settings=self.settings,
            clock=clock or emu.now,
            emit=lambda event, payload: self.events.append((event, payload)),
            estimated=True,
        )


# -- the pipeline alone ---------------------------------------------------------------------------


def test_a_pipeline_alone_checks_sends_records_and_learns(emu: Emulator) -> None:
    alone = Alone(emu)
    first = alone.pipeline.send(
        "create", request(LONG), {"messages.0.content.0": "doc"}, stream=False, on_text=None
    )
    streamed: list[str] = []
    second = alone.pipeline.send("create", request(LONG), {}, stream=True, on_text=streamed.append)
    assert [c.response for c in alone.calls] == [first, second] and "".join(streamed)
    assert [c.outcome for c in alone.calls] == ["write", "hit"]
    assert [[p["status"] for p in c.prediction or []] for c in alone.calls] == [["write"], ["hit"]]
    assert all(c.estimated for c in alone.calls)
    assert alone.events == [("call", alone.calls[0]), ("call", alone.calls[1])]
    assert [e["block"] for e in alone.book.ledger.entries(emu.now())] == ["doc"]


def test_the_settings_are_read_at_each_call(emu: Emulator) -> None:
    alone = Alone(emu)
    alone.pipeline.send("create", request("Hi"), {}, stream=False, on_text=None)
    alone.settings.diagnostics = False
    alone.pipeline.send("create", request("Hi"), {}, stream=False, on_text=None)
    assert ["diagnostics" in c.request for c in alone.calls] == [True, False]


def test_a_new_client_takes_the_next_call(emu: Emulator) -> None:
    alone, other = Alone(emu), Emulator()
    alone.pipeline.client = other.client()
    alone.pipeline.send("create", request(LONG), {}, stream=False, on_text=None)
    assert len(other.state()["entries"]) == 1 and emu.state()["entries"] == []


def test_the_async_path_records_like_the_sync_one(emu: Emulator) -> None:
    alone = Alone(emu)
    message = asyncio.run(alone.pipeline.asend("create", request(LONG), {}))
    (record,) = alone.calls
    assert record.response is message and record.outcome == "write"
    assert alone.events == [("call", record)]


def test_a_pipeline_without_an_async_client_says_so(emu: Emulator) -> None:
    alone = Alone(emu, async_client=False)
    with pytest.raises(RuntimeError, match="no async client: pass async_client="):
        asyncio.run(alone.pipeline.asend("create", request("Hi"), {}))
    assert alone.calls == [] and alone.events == []


# -- another client recording into the session ---------------------------------------------------


def test_begin_and_end_record_a_call_sent_by_another_client(session: Session, emu: Emulator) -> None:
    client = emu.client()
    events: list[str] = []
    session.subscribe(lambda event, payload: events.append(event))
    for turn in range(2):
        params = request(LONG)
        names = {"messages.0.content.0": "doc"}
        record = session.begin_call("create", params, names)
        assert [p["status"] for p in record.prediction or []] == (["write"] if turn == 0 else ["hit"])
        previous = session.calls[-1].response.id if turn else None  # type: ignore[union-attr]
        assert params["diagnostics"] == {"previous_message_id": previous}
        started = time.perf_counter()
        message = client.messages.create(**params)
        assert session.end_call(record, params, names, started, message=message) is message
    first, second = session.calls
    assert (first.index, first.kind, first.outcome) == (1, "create", "write")
    assert (second.index, second.outcome) == (2, "hit") and second.latency_s > 0
    assert second.tokens.read == first.tokens.written > 1_024
    assert events == ["call", "call"]
    assert [e["block"] for e in session.ledger.entries(session.now())] == ["doc"]
    assert session.conversation.blocks == []  # a call is recorded; the conversation is the client's own


def test_begin_refuses_a_request_that_breaks_a_rule_and_records_nothing(session: Session) -> None:
    params = request(*(f"{LONG} {n}" for n in range(5)), marked=False)
    for item in params["messages"][0]["content"]:
        item["cache_control"] = EPH
    with pytest.raises(PreflightError, match="5 cache markers, at most 4") as info:
        session.begin_call("create", params, {})
    assert [f.code for f in info.value.findings] == ["too-many-breakpoints"]
    assert session.calls == [] and "diagnostics" not in params


def test_end_with_an_error_records_a_failed_call_and_learns_nothing(session: Session) -> None:
    params = request(LONG)
    record = session.begin_call("create", params, {})
    session.end_call(record, params, {}, time.perf_counter(), error=KeyboardInterrupt())
    (failed,) = session.calls
    assert (failed.error, failed.outcome, failed.ok) == ("interrupted", "failed", False)
    assert failed.response is None
    assert session.ledger.entries(session.now()) == []
    assert [p.status for p in session.check(request(LONG))[1]] == ["write"]


# -- through Session.ask --------------------------------------------------------------------------


def test_an_interrupted_answer_still_wrote_the_cache_and_the_session_knows(session: Session) -> None:
    session.system(LONG, cache=True, name="sys")

    def stop(chunk: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        session.ask("One", on_text=stop)
    assert [p.status for p in session.check()[1]] == ["hit"]
    assert (session.ask("Two", stream=False).usage.cache_read_input_tokens or 0) > 1_024


def test_a_transient_429_is_retried(session: Session, emu: Emulator) -> None:
    sent = Counter(emu)
    start = sent()
    emu.inject(429, times=2, retry_after=0.001)
    message = session.ask("Hi", stream=False)
    assert message.stop_reason == "end_turn"
    assert sent() == start + 3  # two refusals, then the answer
    assert len(session.calls) == 1 and session.calls[0].ok and len(emu.faults) == 0


def test_a_persistent_429_fails_after_the_retries(emu: Emulator) -> None:
    session = make(emu, max_retries=1)
    emu.inject(429, times=5, retry_after=0.001)
    with pytest.raises(anthropic.RateLimitError):
        session.ask("Hi", stream=False)
    assert session.calls[-1].error.startswith("429 RateLimitError")  # type: ignore[union-attr]
    assert session.conversation.blocks == []


def test_observers_see_failed_calls_too(emu: Emulator) -> None:
    session = make(emu, max_retries=0)
    events: list[str] = []
    session.subscribe(lambda event, payload: events.append(event))
    emu.inject(500)
    with pytest.raises(anthropic.InternalServerError):
        session.ask("Hi", stream=False)
    assert events == ["call", "blocks"]


def test_an_observer_raising_on_a_call_undoes_nothing_and_the_others_are_told(emu: Emulator) -> None:
    """The call is paid for and recorded, and the ledger learned it: the turn keeps its reply, and
    the observers after the broken one hear of it (it used to undo the turn and stop there)."""
    session = make(emu, max_retries=0)
    session.system(LONG, cache=True, name="sys")

    def broken(event: str, payload: Any) -> None:
        if event == "call":
            raise RuntimeError("panel broke")

    events: list[str] = []
    session.subscribe(broken)
    session.subscribe(lambda event, payload: events.append(event))
    with pytest.warns(RuntimeWarning, match=r"raised RuntimeError: panel broke when told of 'call'"):
        reply = session.ask("One", stream=True, on_text=lambda text: None)
    assert events == ["call", "blocks"] and [c.ok for c in session.calls] == [True]
    assert [b.kind for b in session.conversation.blocks][-2:] == ["prompt", "reply"]
    assert session.conversation.blocks[-1].content[0]["text"] == reply.content[0].text  # type: ignore[union-attr]
    assert [p.status for p in session.check()[1]] == ["hit"]  # the ledger and the record agree


def test_diagnostics_are_requested_on_every_call(session: Session) -> None:
    session.system(LONG, cache=True)
    session.ask("One", stream=False)
    session.ask("Two", stream=True)
    session.prewarm()
    calls = session.calls
    assert calls[0].request["diagnostics"] == {"previous_message_id": None}
    assert calls[1].request["diagnostics"]["previous_message_id"] == calls[0].response.id  # type: ignore[union-attr]
    assert calls[2].request["diagnostics"]["previous_message_id"] == calls[1].response.id  # type: ignore[union-attr]


def test_diagnostics_can_be_turned_off(emu: Emulator) -> None:
    session = make(emu, diagnostics=False)
    session.ask("One", stream=False)
    assert "diagnostics" not in session.calls[0].request


# -- threads, Ctrl-C while recording, keys quoted back ---------------------------------------------


class CtrlCModels:
    """The model table, until armed: then its next lookup is a Ctrl-C (KeyboardInterrupt), as when
    one lands while the call is being recorded (the book looks the model up there)."""

    def __init__(self, table: ModelTable) -> None:
        self.table, self.armed = table, False

    def get(self, name: str) -> ModelInfo:
        if self.armed:
            self.armed = False
            raise KeyboardInterrupt
        return self.table.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self.table

    def arm(self, chunk: str) -> None:
        self.armed = True


def test_a_ctrl_c_while_a_call_is_recorded_keeps_its_record(emu: Emulator) -> None:
    models = CtrlCModels(default_models())
    alone = Alone(emu, models=models)  # armed from the stream, it goes off in `end_call`
    with pytest.raises(KeyboardInterrupt):
        alone.pipeline.send("create", request(LONG), {}, stream=True, on_text=models.arm)
    (record,) = alone.calls
    assert record.ok and record.index == 1 and alone.events == [("call", record)]
    alone.pipeline.send("create", request(LONG), {}, stream=False, on_text=None)
    assert [c.index for c in alone.calls] == [1, 2]  # the interrupted call's index was released


def test_indices_are_reserved_when_calls_begin(session: Session) -> None:
    first, second = request(LONG), request("Hi")
    one = session.begin_call("create", first, {})
    two = session.begin_call("create", second, {})
    refused = request(*(f"{LONG} {n}" for n in range(5)), marked=False)
    for item in refused["messages"][0]["content"]:
        item["cache_control"] = EPH
    with pytest.raises(PreflightError):
        session.begin_call("create", refused, {})  # refused: it reserves nothing
    session.end_call(two, second, {}, time.perf_counter(), error=RuntimeError("gave up"))
    three = session.begin_call("create", request("Again"), {})
    session.end_call(one, first, {}, time.perf_counter(), error=RuntimeError("gave up"))
    assert (one.index, two.index, three.index) == (1, 2, 3)
    assert [c.index for c in session.calls] == [2, 1]  # recorded as they end


QUOTED_KEY = "sk-ant-QUOTED-back-by-a-careless-endpoint"


def echo_the_key(request: httpx2.Request) -> httpx2.Response:
    """A careless endpoint: its 400 quotes the credentials it was sent."""
    sent = request.headers.get("x-api-key") or request.headers["authorization"]
    error = {"type": "invalid_request_error", "message": f"bad key: {sent}"}
    return httpx2.Response(400, json={"type": "error", "error": error})


@pytest.mark.parametrize("how", ["ask", "ask streamed", "acreate"])
def test_an_error_quoting_the_key_reaches_python_callers_without_it(how: str) -> None:
    careless: dict[str, Any] = {
        "api_key": QUOTED_KEY,
        "base_url": "http://careless.invalid",
        "max_retries": 0,
    }
    session = Session(
        model=MODEL,
        client=anthropic.Anthropic(
            **careless, http_client=httpx2.Client(transport=httpx2.MockTransport(echo_the_key))
        ),
        async_client=anthropic.AsyncAnthropic(
            **careless, http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(echo_the_key))
        ),
    )
    with pytest.raises(anthropic.BadRequestError) as caught:
        if how == "acreate":
            asyncio.run(session.acreate([session.cached_user_message("Hi")]))
        else:
            session.ask("Hi", stream=how == "ask streamed")
    error = caught.value
    assert "bad key: Bearer [API key]" in str(error)  # the endpoint did quote it; blotted out
    for shown in (str(error), repr(error), error.message, repr(error.body), session.calls[-1].error):
        assert QUOTED_KEY not in str(shown)
    assert session.conversation.blocks == []


def test_a_write_is_dated_when_its_call_was_sent_not_when_the_answer_ended(emu: Emulator) -> None:
    """The API writes the cache as it reads the prompt: a long answer lends the entry no life."""
    alone = Alone(emu)
    moved: list[float] = []

    def slow_answer(chunk: str) -> None:
        if not moved:
            moved.append(emu.advance(200))  # the answer takes 200 s to stream

    alone.pipeline.send("create", request(LONG), {}, stream=True, on_text=slow_answer)
    (record,) = alone.calls
    (entry,) = alone.book.ledger.entries(record.started_at)
    assert moved and entry["expires_at"] == record.started_at + 300


# -- a server that does not answer like the Messages API (a wrong PCACHE_EMULATOR_URL) -------------
#: (what the server sends, what the error says was wrong); the reply's own text never shows.
NOT_STREAMED = [
    pytest.param(sse(*stream_of()), "the reply is plain text", id="an-event-stream-to-create"),
    pytest.param(message(content="SECRET"), "its content is not a list", id="content-a-string"),
    pytest.param(usage(input_tokens="many"), "usage.input_tokens is not", id="usage-in-words"),
    pytest.param(usage(input_tokens=10**30), "usage.input_tokens is not", id="usage-10e30"),
    pytest.param(usage(output_tokens=-5), "usage.output_tokens is not", id="usage-negative"),
    pytest.param(usage(cache_read_input_tokens=1e308), "usage.cache_read_input", id="usage-1e308"),
    pytest.param(Answer(b"\x00\xffnot json at all"), "its body is not UTF-8 text", id="not-utf8"),
    pytest.param(Answer(b'{"id": "SECRET", "content": ['), "its body is not valid JSON", id="half-json"),
    pytest.param(message(stop_reason=None), "it has no stop_reason", id="no-stop-reason"),
    pytest.param(message(_fields_set=1), "its fields are not of the types", id="construct-argument"),
    pytest.param(
        Answer(
            b'{"id":"m","type":"message","role":"assistant","model":"m","stop_reason":"tool_use",'
            b'"content":[{"type":"tool_use","id":"t","name":"p","input":{"x":NaN}}],'
            b'"usage":{"input_tokens":5,"output_tokens":1}}'
        ),
        "not finite",
        id="nan-in-a-tool-input",
    ),
    pytest.param(
        message(content=[{"type": "thinking", "thinking": ["SECRET"], "signature": "s"}]),
        "a thinking block has no thinking",
        id="thinking-not-text",
    ),
]


def _with_a_big_int(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stream with an extra 51-digit field on its first content block (a file cannot hold it)."""
    start = next(e for e in events if e.get("type") == "content_block_start")
    start["content_block"] = {**start["content_block"], "x": 10**50}
    return events


CUT = b'event: content_block_delta\ndata: {"type": "content_block_delta", "SEC'
STREAMED = [
    pytest.param(
        sse(*stream_of()[:2], tail=CUT), "it has no stop_reason, the reply was cut", id="cut-mid-event"
    ),
    pytest.param(
        Answer(b"\x00\xffSECRET", "text/event-stream"), "its body is not UTF-8", id="garbage-stream"
    ),
    pytest.param(Answer(b"SECRET", "text/event-stream"), "no message came in its", id="no-events"),
    pytest.param(sse(*stream_of({"input_tokens": 10**30})), "usage.input_tokens", id="stream-usage-10e30"),
    pytest.param(sse(*stream_of()[2:]), "no message came in its", id="no-message-start"),
    pytest.param(
        sse(*_with_a_big_int(stream_of())), "it holds an integer of more than 40", id="stream-bigint"
    ),
]


@pytest.mark.parametrize("bad", ["lots", float("nan"), 1e308, -1e30, 10**30])
@pytest.mark.parametrize("cut", [True, False], ids=["cut", "whole"])
def test_a_hostile_opening_usage_is_never_learned_nor_printed(bad: Any, cut: bool) -> None:
    """A stream cut after its `message_start` used to teach the ledger its writes unchecked (the
    next call predicted a hit), and the SDK printed pydantic's warnings about "lots" to stderr."""
    opening = {"input_tokens": 5, "output_tokens": 1, "cache_creation_input_tokens": bad}
    events = stream_of({**opening, "cache_read_input_tokens": bad})
    with serving() as server, warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        server.answer = sse(*events[:3], tail=CUT) if cut else sse(*events)
        session = Session(
            model=MODEL, connection=connect(env={"PCACHE_EMULATOR_URL": server.url}, max_retries=0)
        )
        session.system(LONG, cache="5m", name="sys")
        with pytest.raises(MalformedReply):
            session.ask("Hello?", stream=True, on_text=lambda text: None)
    assert [str(w.message) for w in shown] == []
    assert session.ledger.entries(session.now()) == [] and session.calls[0].outcome == "failed"
    assert [p.status for p in session.check()[1]] == ["write"]


def free(lock: Any) -> bool:
    """Whether another thread can take `lock` now (the session is not left held)."""
    taken: list[bool] = []

    def take() -> None:
        taken.append(lock.acquire(blocking=False))
        if taken[0]:
            lock.release()

    thread = threading.Thread(target=take)
    thread.start()
    thread.join()
    return taken == [True]


@pytest.mark.parametrize(
    ("answer", "what", "how"),
    [
        *(pytest.param(*p.values, "ask", id=f"{p.id}-ask") for p in NOT_STREAMED),
        *(pytest.param(*p.values, "acreate", id=f"{p.id}-acreate") for p in NOT_STREAMED),
        *(pytest.param(*p.values, "ask streamed", id=f"{p.id}-streamed") for p in STREAMED),
    ],
)
def test_a_malformed_reply_is_a_failed_call_and_the_session_keeps_working(
    answer: Answer, what: str, how: str, tmp_path: Path
) -> None:
    stream = how == "ask streamed"
    with serving() as server:
        server.answer = answer
        session = Session(
            model=MODEL, connection=connect(env={"PCACHE_EMULATOR_URL": server.url}, max_retries=0)
        )
        session.system("Be brief.")
        before = [b.model_dump() for b in session.conversation.blocks]
        with pytest.raises(MalformedReply) as raised:
            if how == "acreate":
                asyncio.run(session.acreate([session.cached_user_message("Hello?")]))
            else:
                session.ask("Hello?", stream=stream, on_text=lambda text: None)
        shown = str(raised.value)
        assert what in shown and f"The server at {server.url} did not answer" in shown, shown
        assert "\n" not in shown and "SECRET" not in shown and "Traceback" not in shown
        assert raised.value.__cause__ is None
        assert [b.model_dump() for b in session.conversation.blocks] == before
        (failed,) = session.calls
        assert not failed.ok and failed.response is None and failed.outcome == "failed"
        assert failed.error == f"MalformedReply: {shown}"
        assert free(session.lock)
        # and nothing is poisoned: every view of the calls still works
        assert (session.totals.calls, session.totals.failed) == (0, 1)
        assert json.loads(session.export("json"))["calls"][0]["error"] == failed.error
        assert "Be brief." in session.export("python")
        session.save(tmp_path / "s.json")
        assert [(e.call, e.outcome) for e in explain_all(session)] == [(failed.index, "failed")]
        # the server mends its ways: the next call is answered and kept
        server.answer = sse(*stream_of()) if stream else message()
        if how == "acreate":
            asyncio.run(session.acreate([session.cached_user_message("Hello?")]))
        else:
            assert session.ask("Hello?", stream=stream).stop_reason == "end_turn"
            assert len(session.conversation.blocks) == len(before) + 2
        assert [c.outcome for c in session.calls] == ["failed", "uncached"]


def test_a_malformed_reply_in_the_magics_is_one_usage_error(
    offline_shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serving() as server:
        server.answer = sse(*stream_of()[:3])
        monkeypatch.setenv("PCACHE_EMULATOR_URL", server.url)
        with capture_output():
            offline_shell.run_line_magic("load_ext", "pcache_magic")
        try:
            with capture_output():
                offline_shell.run_cell("%%claude_system\nBe brief.").raise_error()
            session = pcache_magic.current_session()
            before = [b.model_dump() for b in session.conversation.blocks]
            with capture_output() as out:
                result = offline_shell.run_cell("%%claude\nHello?")
            assert isinstance(result.error_in_exec, UsageError)
            line = str(result.error_in_exec)
            assert line.startswith(f"The server at {server.url} did not answer like the Messages API (")
            assert "; the conversation is unchanged. Check PCACHE_EMULATOR_URL" in line
            assert out.stderr.strip() == f"UsageError: {line}" and "Traceback" not in out.stdout
            assert [b.model_dump() for b in session.conversation.blocks] == before
            assert [c.outcome for c in session.calls] == ["failed"]
            for line_magic in ("claude_cost", "claude_explain", "claude_panel", "claude_session show"):
                with capture_output():
                    offline_shell.run_line_magic(*line_magic.partition(" ")[::2])
        finally:
            offline_shell.run_line_magic("unload_ext", "pcache_magic")


def test_another_clients_malformed_reply_is_recorded_as_failed_and_raised(session: Session) -> None:
    params = request("Hi")
    record = session.begin_call("create", params, {})
    bogus: Any = Message.construct(**{**GOOD, "content": "SECRET"})
    with pytest.raises(MalformedReply, match="its content is not a list"):
        session.end_call(record, params, {}, time.perf_counter(), message=bogus)
    assert [c.outcome for c in session.calls] == ["failed"] and session.calls[0].response is None
    assert free(session.lock) and session.totals.failed == 1


#: A reply nested deeper than Python's `json` can read: its reader raises a bare `RecursionError`.
DEEP = b'{"id":"m","type":"message","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"


class TestHostileReplyText:
    """What a hostile server's reply or error becomes in the record: one line, never unbounded."""

    @pytest.mark.parametrize("how", ["ask", "acreate"])
    def test_a_reply_nested_too_deep_to_read_is_a_malformed_reply(self, how: str, tmp_path: Path) -> None:
        test_a_malformed_reply_is_a_failed_call_and_the_session_keeps_working(
            Answer(DEEP), "it nests too deep to be read", how, tmp_path
        )

    def test_a_huge_error_is_recorded_cut_with_its_start(self, session: Session, tmp_path: Path) -> None:
        from pcache_magic.core.record import MAX_ERROR

        http = httpx2.Request("POST", "http://x/v1/messages")
        huge = "Boom\x1b[2J" + "E" * 500_000  # a server's 20 MB error page, in short
        error = anthropic.InternalServerError(huge, response=httpx2.Response(500, request=http), body=None)
        params = request("Hi")
        record = session.begin_call("create", params, {})
        session.end_call(record, params, {}, time.perf_counter(), error=error)
        (failed,) = session.calls
        assert failed.error is not None and len(failed.error) <= MAX_ERROR
        assert failed.error.startswith("500 InternalServerError: Boom")  # the API's message comes first
        assert failed.error.endswith(f"… (cut from {len(huge) + 25:,} characters)")
        session.save(tmp_path / "s.json")
        assert (tmp_path / "s.json").stat().st_size < 100_000
