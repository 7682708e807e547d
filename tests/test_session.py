"""The Session against the in-process emulator: building, asking, caching, failing, observing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pcache_magic.core.models import UnknownModelError
from pcache_magic.emulator import Emulator
from pcache_magic.session.guide_messages import UserMessage
from pcache_magic.session.session import PreflightError, Session
from pcache_magic.session.session_settings import Settings
from pcache_magic.session.transport import connect

from _helpers import Counter, deep_dict, deep_list

MODEL = "claude-sonnet-4-5"
EPH: dict[str, Any] = {"type": "ephemeral"}
EPH_1H: dict[str, Any] = {"type": "ephemeral", "ttl": "1h"}
#: About 1,500 tokens: above Sonnet 4.5's 1,024-token minimum.
LONG = " ".join(f"line{i % 40}" for i in range(1_500))


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


@pytest.fixture
def emu() -> Emulator:
    return Emulator()


def make(emu: Emulator, **kwargs: Any) -> Session:
    retries = kwargs.pop("max_retries", 2)
    return Session(model=MODEL, connection=connect(emulator=emu, max_retries=retries), **kwargs)


@pytest.fixture
def session(emu: Emulator) -> Session:
    return make(emu)


def test_unknown_model_fails_early(emu: Emulator) -> None:
    with pytest.raises(UnknownModelError, match="claude-sonnet-4-5"):
        Session(model="claude-sonet-4-5", connection=connect(emulator=emu))


def test_drop_and_reset(session: Session, emu: Emulator) -> None:
    session.system(LONG, cache=True, name="sys")
    session.context("Doc", name="doc")
    session.ask("Q", stream=False)
    assert session.drop("doc").name == "doc"
    with pytest.raises(KeyError, match="sys, prompt, reply"):
        session.drop("nope")
    held = session.ledger.entries(session.now())
    session.reset()
    assert session.conversation.blocks == [] and session.calls == []
    assert len(emu.state()["entries"]) == 1  # the API's entries live on, and the ledger says so
    assert session.ledger.entries(session.now()) == held and len(held) == 1


# -- asking --------------------------------------------------------------------------------------


def test_ask_sends_the_conversation_and_keeps_the_reply(session: Session) -> None:
    session.system(LONG, cache=True, name="sys")
    expected = session.params()
    seen: list[str] = []
    message = session.ask("What is this?", on_text=seen.append)
    assert message.stop_reason == "end_turn" and "".join(seen) == message.content[0].text  # type: ignore[union-attr]
    assert session.conversation.names() == ["sys", "prompt", "reply"]
    reply = session.conversation.get("reply")
    assert reply is not None and reply.role == "assistant"
    assert reply.content == [{"type": "text", "text": message.content[0].text}]  # type: ignore[union-attr]
    record = session.calls[-1]
    assert record.request == {
        **expected,
        "messages": [{"role": "user", "content": [text("What is this?")]}],
        "diagnostics": {"previous_message_id": None},
    }
    assert record.response is message and record.kind == "ask" and record.index == 1
    assert record.ok and record.estimated and record.model == MODEL
    assert record.prices == session.info.prices


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        pytest.param({"metadata": deep_dict(5_000)}, "nesting deeper than 100 levels", id="deep-dict"),
        pytest.param({"stop_sequences": deep_list(5_000)}, "nesting deeper than 100 levels", id="deep-list"),
        pytest.param({"metadata": {"tags": {"a"}}}, "it holds a value of type set", id="set"),
        pytest.param({"temperature": float("nan")}, "it holds a number that is not finite", id="nan"),
        pytest.param({"metadata": {("k",): "v"}}, "it holds a key of type tuple", id="tuple-key"),
    ],
)
def test_extra_fields_that_are_not_plain_json_are_refused_and_nothing_is_kept(
    session: Session, emu: Emulator, extra: dict[str, Any], reason: str
) -> None:
    session.system(LONG, cache=True, name="sys")
    session.ask("One", stream=False)
    before, calls, entries = session.conversation.model_dump(), list(session.calls), emu.state()["entries"]
    (field,) = extra
    for send in (
        lambda: session.ask("Two", stream=False, **extra),
        lambda: session.ask("Two", **extra),
        lambda: session.params(**extra),
        lambda: session.create([UserMessage(content="Two", source="user")], **extra),
    ):
        with pytest.raises(ValueError) as raised:
            send()
        told = str(raised.value)
        assert told.startswith(f"The request field {field!r} is not JSON data ({reason}")
        assert told.endswith("100 levels deep.")
    assert session.conversation.model_dump() == before and session.calls == calls
    assert emu.state()["entries"] == entries  # nothing reached the API either


def test_plain_extra_fields_are_sent_as_before(session: Session) -> None:
    session.system(LONG, cache=True, name="sys")
    extra: dict[str, Any] = {"metadata": {"user_id": "u1"}, "temperature": 0.2}
    expected = session.params(**extra)
    message = session.ask("Q", stream=False, **extra)
    assert message.stop_reason == "end_turn" and session.calls[-1].ok
    assert session.calls[-1].request == {
        **expected,
        "messages": [{"role": "user", "content": [text("Q")]}],
        "diagnostics": {"previous_message_id": None},
    }
    assert session.create([UserMessage(content="Q", source="user")], **extra).finish_reason == "stop"
    assert session.calls[-1].request["metadata"] == {"user_id": "u1"} and session.calls[-1].ok


def test_params_is_a_copy_to_edit_and_calls_resend_the_same_dicts(session: Session) -> None:
    session.system(LONG, cache=True, name="sys")
    session.ask("First?", stream=False)
    edited = session.params()
    edited["system"][0]["text"] = "changed"
    edited["messages"].clear()
    session.ask("Second?", stream=False)
    first, second = (c.request for c in session.calls)
    assert second["system"][0]["text"] == LONG  # the edit reached nothing
    assert second["system"][0] is first["system"][0]  # unchanged blocks are re-sent, not rebuilt
    assert second["messages"][0] is first["messages"][0]
    assert session.calls[-1].tokens.read > 0


def test_second_ask_reads_from_the_cache(session: Session) -> None:
    session.system(LONG, cache=True, name="sys")
    first = session.ask("One", stream=False)
    second = session.ask("Two", stream=False)
    written = first.usage.cache_creation_input_tokens
    assert written and written > 1_024 and first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == written and second.usage.cache_creation_input_tokens == 0
    assert [c.outcome for c in session.calls] == ["write", "hit"]
    assert [p["status"] for c in session.calls for p in c.prediction or []] == ["write", "hit"]
    assert session.totals.calls == 2 and session.totals.tokens.read == written


def test_a_call_naming_the_model_by_its_dated_id_is_predicted_to_read(emu: Emulator) -> None:
    session = Session(model="claude-haiku-4-5", connection=connect(emulator=emu))
    session.system(LONG * 3, cache=True, name="sys")  # above Haiku 4.5's 4,096-token minimum
    session.ask("One", stream=False)
    session.ask("Two", stream=False, model="claude-haiku-4-5-20251001")
    assert [c.outcome for c in session.calls] == ["write", "hit"]
    assert [p["status"] for c in session.calls for p in c.prediction or []] == ["write", "hit"]


def test_the_clock_expires_entries(session: Session) -> None:
    session.system(LONG, cache=True)
    session.ask("One", stream=False)
    session.advance(299)
    assert session.ask("Two", stream=False).usage.cache_read_input_tokens  # refreshed at 299 s
    session.advance(300)
    assert session.check()[1][0].status == "write"
    assert session.ask("Three", stream=False).usage.cache_read_input_tokens == 0


def test_streaming_keeps_the_cache_usage_from_message_start(session: Session) -> None:
    session.system(LONG, cache="1h", name="sys")
    session.context(LONG.replace("line", "doc"), cache=True, name="doc")
    streamed = [session.ask("One", stream=True).usage, session.ask("Two", stream=True).usage]
    # the same two requests, not streamed, on a fresh emulator
    fresh = Emulator().client()
    plain = [fresh.messages.create(**call.request).usage for call in session.calls]
    assert [u.model_dump() for u in streamed] == [u.model_dump() for u in plain]
    first = streamed[0]
    assert first.cache_creation is not None  # the split arrives only on message_start
    assert first.cache_creation.ephemeral_1h_input_tokens > 1_000
    assert first.cache_creation.ephemeral_5m_input_tokens > 1_000
    assert streamed[1].cache_read_input_tokens == first.cache_creation_input_tokens


def test_cache_last_marks_the_new_prompt(session: Session) -> None:
    session.system(LONG, name="sys")
    session.ask("One", cache="last", stream=False)
    request = session.calls[-1].request
    assert "cache_control" not in request
    assert "cache_control" not in request["system"][0]
    assert request["messages"] == [{"role": "user", "content": [{**text("One"), "cache_control": EPH}]}]
    session.ask("Two", cache="last", stream=False)
    request = session.calls[-1].request
    assert [m["content"][-1].get("cache_control") for m in request["messages"]] == [None, None, EPH]
    assert session.calls[-1].tokens.read > 1_500
    prompt = session.conversation.get("prompt")
    assert prompt is not None and prompt.cache is None  # the marker is on the request, not the block


def test_cache_automatic_uses_top_level_cache_control(emu: Emulator) -> None:
    session = make(emu, default_ttl="1h")
    session.cache_mode = "automatic"
    session.system(LONG, name="sys")
    session.ask("One", stream=False)
    request = session.calls[-1].request
    assert request["cache_control"] == EPH_1H
    assert all("cache_control" not in b for m in request["messages"] for b in m["content"])
    assert session.calls[-1].tokens.write_1h > 1_500
    session.ask("Two", stream=False, cache="none")
    assert "cache_control" not in session.calls[-1].request


def _markers(request: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = [*request.get("tools", []), *request.get("system", [])]
    blocks += [b for m in request["messages"] for b in m["content"]]
    return [b["cache_control"] for b in blocks if "cache_control" in b]


def test_auto_cache_lets_the_planner_place_the_breakpoints(emu: Emulator) -> None:
    session = make(emu, auto_cache=True)
    session.system(LONG, name="sys")  # no marker of its own: the planner decides
    session.ask("One", stream=False)
    session.ask("Two", stream=False)
    first, second = session.calls
    assert "cache_control" not in first.request and 1 <= len(_markers(first.request)) <= 4
    assert first.tokens.written > 1_500 and second.tokens.read >= first.tokens.written
    assert second.outcome in ("hit", "hit+write") and second.prediction is not None
    assert [p["status"] for p in second.prediction if p["read"]]  # predicted from the planned markers
    sys_block = session.conversation.get("sys")
    assert sys_block is not None and sys_block.cache is None  # the markers are on the request only
    session.ask("Three", stream=False, cache="none")
    assert _markers(session.calls[-1].request) == []


def test_prewarm_fills_the_cache_without_a_turn(session: Session) -> None:
    session.system(LONG, cache=True, name="sys")
    before = session.conversation.model_dump()
    message = session.prewarm()
    assert message.content == [] and message.stop_reason == "max_tokens" and message.usage.output_tokens == 0
    record = session.calls[-1]
    assert record.kind == "prewarm" and record.request["max_tokens"] == 0 and record.outcome == "write"
    assert session.conversation.model_dump() == before
    assert session.ask("Now", stream=False).usage.cache_read_input_tokens == record.tokens.written


def test_prewarm_after_a_reply_sends_a_user_turn_last(emu: Emulator) -> None:
    # Claude 4.6 and later refuse to continue an assistant turn (400), max_tokens 0 or not.
    session = Session(model="claude-sonnet-5", connection=connect(emulator=emu))
    session.system(LONG, cache=True, name="sys")
    session.ask("One", stream=False)
    before = session.conversation.model_dump()
    assert session.prewarm().stop_reason == "max_tokens"
    sent = session.calls[-1].request["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[-1]["content"] == [text("(pre-warming the cache)")]
    assert session.conversation.model_dump() == before


def test_prewarm_after_an_unanswered_tool_call_answers_it_in_the_request_only(session: Session) -> None:
    session.system(LONG, cache=True, name="sys")
    session.tools([{"name": "lookup", "input_schema": {"type": "object"}}], name="tools")
    session.ask("Use the lookup tool", stream=False)  # no run_tool: the tool call stays unanswered
    assert session.calls[-1].response.stop_reason == "tool_use"  # type: ignore[union-attr]
    before = session.conversation.model_dump()
    assert session.prewarm().stop_reason == "max_tokens"
    last = session.calls[-1].request["messages"][-1]["content"]
    assert [item["type"] for item in last] == ["tool_result"]  # a user turn already: no placeholder
    assert session.conversation.model_dump() == before


def test_check_before_sending(session: Session) -> None:
    session.system("short", cache=True, name="sys")
    findings, predictions = session.check()
    assert [f.code for f in findings] == ["below-minimum"] and findings[0].block == "sys"
    assert [(p.block, p.status) for p in predictions] == [("sys", "below-minimum")]


# -- refusals and failures ---------------------------------------------------------------------


def five_markers(session: Session) -> None:
    session.tools([{"name": "t", "input_schema": {"type": "object"}}], cache="1h")
    session.system(LONG, cache="1h", name="sys")
    for name in ("a", "b", "c"):
        session.context(f"doc {name}", cache=True, name=name)


def test_five_markers_is_refused_before_sending(session: Session, emu: Emulator) -> None:
    five_markers(session)
    sent = Counter(emu)
    before, count = session.conversation.model_dump(), sent()
    with pytest.raises(PreflightError) as info:
        session.ask("Q", stream=False)
    assert [f.code for f in info.value.findings] == ["too-many-breakpoints"]
    message = str(info.value)
    assert "at most 4: tools, sys, a, b, c." in message  # the blocks by their names
    assert sent() == count  # nothing reached the emulator
    assert emu.state()["entries"] == []
    assert session.calls == []
    assert session.conversation.model_dump() == before
    with pytest.raises(PreflightError):
        session.prewarm()
    session.drop("c")
    session.ask("Q", stream=False)
    assert sent() == count + 1 and session.calls[-1].ok


def test_a_tool_name_in_two_blocks_is_refused_before_sending(session: Session, emu: Emulator) -> None:
    search = {"name": "search", "input_schema": {"type": "object"}}
    session.tools([search, {"name": "fetch", "input_schema": {"type": "object"}}], name="web")
    session.tools([search], name="docs")
    findings, _ = session.check()  # what %claude_session and the panel show
    assert [(f.level, f.code, f.block) for f in findings] == [("error", "duplicate-tool", "docs")]
    assert "'search' is defined in blocks web, docs." in findings[0].message
    sent = Counter(emu)
    before, count = session.conversation.model_dump(), sent()
    with pytest.raises(PreflightError, match="Tool names must be unique") as info:
        session.ask("Q", stream=False)
    assert [f.code for f in info.value.findings] == ["duplicate-tool"]
    assert sent() == count and session.calls == []  # nothing reached the emulator
    assert session.conversation.model_dump() == before
    session.drop("docs")
    session.ask("Q", stream=False)
    assert sent() == count + 1 and session.calls[-1].ok


def failed_call_leaves_no_trace(session: Session, emu: Emulator, fail: Callable[[], object]) -> str:
    session.system(LONG, cache=True, name="sys")
    session.ask("One", stream=False)
    before = session.conversation.model_dump()
    with pytest.raises(BaseException) as info:
        fail()
    assert session.conversation.model_dump() == before
    assert len(session.calls) == 2
    record = session.calls[-1]
    assert record.error and record.outcome == "failed" and not record.ok and record.index == 2
    assert session.totals.calls == 1 and session.totals.failed == 1
    after = session.ask("Three", stream=False)
    assert after.stop_reason == "end_turn" and session.calls[-1].ok
    assert session.conversation.names() == ["sys", "prompt", "reply", "prompt-2", "reply-2"]
    assert session.calls[-1].request["messages"][-1] == {"role": "user", "content": [text("Three")]}
    # what the session expected is what happened: a failure does not confuse the ledger
    predicted = {p["status"] for p in session.calls[-1].prediction or []}
    assert predicted == ({"hit"} if after.usage.cache_read_input_tokens else {"write"})
    return record.error or str(info.value)


def test_a_failed_call_leaves_the_conversation_as_it_was(emu: Emulator) -> None:
    session = make(emu, max_retries=0)

    def fail() -> None:
        emu.inject(500, times=3)
        try:
            session.ask("Two", stream=False)
        finally:
            emu.faults.clear()

    error = failed_call_leaves_no_trace(session, emu, fail)
    assert error.startswith("500 InternalServerError")


def test_a_dropped_stream_leaves_the_conversation_as_it_was(session: Session, emu: Emulator) -> None:
    def fail() -> None:
        emu.inject("disconnect")
        session.ask("Two " + LONG, stream=True, cache="last")

    error = failed_call_leaves_no_trace(session, emu, fail)
    assert "RemoteProtocolError" in error and len(emu.faults) == 0


def test_ctrl_c_mid_stream_leaves_the_conversation_as_it_was(session: Session) -> None:
    chunks: list[str] = []

    def on_text(chunk: str) -> None:
        chunks.append(chunk)
        raise KeyboardInterrupt

    def fail() -> None:
        session.ask("Two " + LONG, stream=True, on_text=on_text, cache="last")

    assert session.connection is not None and session.connection.emulator is not None
    error = failed_call_leaves_no_trace(session, session.connection.emulator, fail)
    assert error == "interrupted" and len(chunks) == 1


# -- the parts ---------------------------------------------------------------------------------


def test_the_parts_keep_sharing_the_calls_the_settings_and_the_client(session: Session) -> None:
    with pytest.raises(AttributeError):
        session.calls = []  # type: ignore[misc]  # the pipeline appends to the list it was given
    with pytest.raises(AttributeError):
        session.settings = Settings()  # type: ignore[misc]  # every part reads this one object
    elsewhere = Emulator()
    session.client = elsewhere.client()  # as a new retry policy does: the next call goes there
    session.max_tokens = 99
    session.system(LONG, cache=True, name="sys")
    session.ask("Hi", stream=False)
    assert len(elsewhere.state()["entries"]) == 1 and session.calls[-1].request["max_tokens"] == 99
    session.reset()
    assert session.calls == [] and session.conversation.blocks == [] and session.settings.max_tokens == 99


# -- observers ---------------------------------------------------------------------------------


def test_observers_see_blocks_calls_and_resets(session: Session) -> None:
    events: list[tuple[str, Any]] = []
    unsubscribe = session.subscribe(lambda event, payload: events.append((event, payload)))
    block = session.system(LONG, cache=True, name="sys")
    assert events == [("blocks", block)]
    session.ask("Hi", stream=False)
    assert [e for e, _ in events[1:]] == ["call", "blocks"]
    assert events[1][1] is session.calls[0]
    session.advance(10)
    dropped = session.drop("sys")
    session.reset()
    assert [e for e, _ in events[3:]] == ["blocks", "blocks", "reset"]
    assert events[4][1] is dropped
    unsubscribe()
    session.system("x")
    assert len(events) == 6


# -- tools ---------------------------------------------------------------------------------------


def test_the_tool_loop_runs_until_the_turn_ends(session: Session) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    def run_tool(name: str, arguments: dict[str, Any]) -> str:
        calls.append((name, arguments))
        return "Sunny, 21 C"

    weather = {
        "name": "get_weather",
        "description": "Weather for a city.",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
    session.tools([weather])
    message = session.ask("Use get_weather for Paris", run_tool=run_tool, stream=True)
    assert message.stop_reason == "end_turn"
    assert calls == [("get_weather", {"city": "example"})]
    kinds = [(b.role, b.kind) for b in session.conversation.blocks]
    assert kinds == [
        ("tools", "tools"),
        ("user", "prompt"),
        ("assistant", "reply"),
        ("user", "tool_result"),
        ("assistant", "reply"),
    ]
    first_reply = session.conversation.blocks[2].content
    tool_use = next(b for b in first_reply if b["type"] == "tool_use")
    assert tool_use["name"] == "get_weather" and tool_use["input"] == {"city": "example"}
    assert session.conversation.blocks[3].content == [
        {"type": "tool_result", "tool_use_id": tool_use["id"], "content": "Sunny, 21 C"}
    ]
    assert [c.kind for c in session.calls] == ["ask", "tool_loop"]
    assert session.calls[0].response.stop_reason == "tool_use"  # type: ignore[union-attr]


def test_a_failing_tool_is_reported_to_the_model(session: Session) -> None:
    def run_tool(name: str, arguments: dict[str, Any]) -> str:
        raise LookupError("no such city")

    session.tools([{"name": "get_weather", "input_schema": {"type": "object"}}])
    session.ask("Use get_weather for Paris", run_tool=run_tool, stream=False)
    result = session.conversation.blocks[3].content[0]
    assert result["is_error"] is True and result["content"] == "LookupError: no such city"


def test_without_run_tool_the_tool_use_reply_is_returned(session: Session) -> None:
    session.tools([{"name": "get_weather", "input_schema": {"type": "object"}}])
    message = session.ask("Use get_weather for Paris", stream=False)
    assert message.stop_reason == "tool_use" and len(session.calls) == 1


def test_a_tool_call_nobody_ran_is_answered_before_the_next_turn() -> None:
    """Without a runner the reply ends on tool_use; the next ask must not be a 400."""
    emu = Emulator()
    session = Session(model="claude-sonnet-4-5", connection=connect(emulator=emu))
    session.tools([{"name": "get_weather", "input_schema": {"type": "object"}}])
    first = session.ask("Use get_weather for Paris", stream=False)
    assert first.stop_reason == "tool_use"
    second = session.ask("Never mind.", stream=False)
    assert second.stop_reason == "end_turn"
    sent = session.calls[-1].request["messages"]
    results = [b for b in sent[-1]["content"] if b["type"] == "tool_result"]
    assert results and results[0]["is_error"] is True
    assert results[0]["tool_use_id"] == first.content[-1].id


def test_context_added_after_an_unanswered_tool_call_is_not_a_400() -> None:
    session = Session(model="claude-sonnet-4-5", connection=connect(emulator=Emulator()))
    session.tools([{"name": "get_weather", "input_schema": {"type": "object"}}])
    assert session.ask("Use get_weather for Paris", stream=False).stop_reason == "tool_use"
    session.context("A note added after the reply.", name="note")
    assert session.ask("Go on.", stream=False).stop_reason == "end_turn"
    opening = session.calls[-1].request["messages"][2]["content"]
    assert opening[0]["type"] == "tool_result" and opening[0]["is_error"] is True  # results open the turn
    assert opening[1]["text"] == "A note added after the reply."


def test_dropping_a_reply_drops_the_tool_results_that_answer_it(session: Session) -> None:
    session.tools([{"name": "get_weather", "input_schema": {"type": "object"}}])
    session.ask(
        "Use get_weather for Paris", stream=False, run_tool=lambda name, args: "sunny", max_tool_rounds=1
    )
    results = [b.name for b in session.conversation.blocks if b.kind == "tool_result"]
    assert results and session.conversation.names()[-1] == "reply-2"
    session.drop("reply")
    assert not set(results) & set(session.conversation.names())
    session.drop("reply-2")
    session.ask("Something else.", stream=False)  # an orphan tool_result would be a 400
    assert session.calls[-1].ok


def test_check_agrees_with_checks_worked_out_from_scratch(session: Session) -> None:
    """The session keeps layouts, breakpoints and scans between calls; none of it may change an answer."""
    from pcache_magic.analysis.volatile import volatile_findings
    from pcache_magic.core.prefix import layout
    from pcache_magic.core.preflight import preflight
    from pcache_magic.core.rules import CacheRuleError, resolve_breakpoints
    from pcache_magic.core.tokens import TokenEstimator

    def agree(**render: Any) -> None:
        params, names = session._requests.render(session.conversation, cache=render.get("cache"))
        got = session.check(params, names)
        assert session.check(params, names) == got  # asked again: the kept layout and breakpoints
        lay = layout(params, TokenEstimator())
        info = session.models.get(str(params["model"]))
        findings = preflight(params, lay, info, names) + volatile_findings(params, lay, names)
        try:
            points = resolve_breakpoints(lay, params.get("cache_control"))
        except CacheRuleError:
            assert got == (findings, [])
            return
        predictions, extra = session.ledger.predict(lay, points, info, session.now(), names)
        assert got == (findings + extra, predictions)

    session.system(LONG + " Built 2026-01-05 09:12:33.", cache="1h", name="sys")
    agree()
    session.ask("First?", stream=False, cache="last")
    agree(cache="last")
    session.context("ctx " + LONG, cache="5m", name="ctx")
    agree(cache="last")
    agree(cache="automatic")
    session.ask("Second?", stream=False, cache="last")
    agree(cache="last")
    session.system(LONG + " Built on a stable day.", cache="1h", name="sys")  # the volatile value goes
    agree(cache="last")
    session.system(LONG, cache="5m", name="sys")  # a 5m marker before a 1h one: an error
    session.context("ctx " + LONG, cache="1h", name="ctx")
    agree(cache="last")
    session.advance(3_600)
    session.system(LONG, cache="1h", name="sys")
    agree(cache="last")


def test_the_session_and_everything_below_it_import_no_ipython() -> None:
    """The layers: only the magics and the panel know about IPython and widgets."""
    import subprocess
    import sys

    layers = "core, analysis, emulator, session"
    modules = "import pcache_magic.session.store, pcache_magic.analysis.diagnose"
    code = (
        f"import sys; from pcache_magic import {layers}; {modules}; "
        "print(sorted(m for m in ('IPython', 'ipywidgets', 'ipykernel') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_guide_helpers_are_the_sessions_own_and_read_its_default_ttl(session: Session) -> None:
    assert session.cached_system_message("Rules.").cache_control.ttl is None
    session.default_ttl = "1h"  # read at each call, not when the session was made
    assert session.cached_system_message("Rules.").cache_control.ttl == "1h"
    assert session.cached_user_message("Question.", ttl="5m").cache_control.ttl == "5m"
    with pytest.raises(ValueError, match="Say which tool results to cache"):
        session.cached_tool_results([])
