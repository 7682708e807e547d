"""`_output`: the reply display, summaries, the clock report, and errors turned into one-line UsageErrors."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import anthropic
import httpx2
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import CapturedIO, RichOutput, capture_output

from pcache_magic.core.preflight import Finding
from pcache_magic.core.record import CallRecord
from pcache_magic.emulator import Emulator
from pcache_magic.ipython import output as _output
from pcache_magic.ipython.output import (
    Reply,
    SessionTables,
    Summary,
    api_error_text,
    clock_report,
    one_line,
    thinking_note,
    tool_runner,
    usage_errors,
)
from pcache_magic.session.bounded_http import AnswerTooLarge
from pcache_magic.session.session import PreflightError, Session
from pcache_magic.view.render import render_summary, summary_text

from _helpers import MODEL, reply_record

LONG = "Review the code carefully and explain each finding in plain words. " * 120  # > 1,024 tokens
KEY = "sk-ant-api03-secret-never-shown"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """The reply's throttle clock, moved by hand: `now[0] = ...`."""
    now = [1_000.0]
    monkeypatch.setattr(_output.time, "monotonic", lambda: now[0])
    yield now


def record(*content: dict[str, Any], index: int = 1) -> CallRecord:
    return cast(CallRecord, reply_record(*content, index=index))


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool_use(name: str) -> dict[str, Any]:
    return {"type": "tool_use", "id": f"toolu_{name}", "name": name, "input": {}}


def markdown(out: CapturedIO) -> list[tuple[str, bool]]:
    """Each Markdown display or update, with whether it updated the streaming display."""
    return [(o.data["text/markdown"], o.update) for o in out.outputs if "text/markdown" in o.data]


def summaries(out: CapturedIO) -> list[RichOutput]:
    return [o for o in out.outputs if "pcache-summary" in o.data.get("text/html", "")]


# -- the streamed reply ---------------------------------------------------------------------------
def test_rich_reply_is_one_display_updated_at_most_every_interval(
    shell: InteractiveShell, clock: list[float]
) -> None:
    with capture_output() as out:
        reply = Reply(rich=True)
        reply.write("Hello")  # the first text shows at once
        clock[0] += _output.UPDATE_EVERY_S / 2
        reply.write(", wor")  # too soon: kept for later
        clock[0] += _output.UPDATE_EVERY_S
        reply.write("ld")
        reply.write("!")
        reply.flush()
    assert out.outputs[0].data == {"text/plain": ""} and not out.outputs[0].update  # as it will end
    assert markdown(out) == [
        ("…", True),
        ("Hello", True),
        ("Hello, world", True),
        ("Hello, world!", True),
    ]
    ids = {o.transient["display_id"] for o in out.outputs}
    assert len(ids) == 1  # every update goes to the display the reply opened
    assert reply.text == "Hello, world!"


def test_a_failure_before_any_text_clears_the_placeholder(
    shell: InteractiveShell, clock: list[float]
) -> None:
    with capture_output() as out:
        Reply(rich=True).flush()
    assert markdown(out) == [("…", True)]
    assert out.outputs[-1].data == {"text/plain": ""} and out.outputs[-1].update


def test_the_finished_turn_replaces_the_stream(shell: InteractiveShell, clock: list[float]) -> None:
    records = [record(text("Calling `f`."), tool_use("f")), record(text("Done."), index=2)]
    with capture_output() as out:
        reply = Reply(rich=True)
        reply.write("Calling `f`.")
        reply.tool("f", {}, "42")
        reply.write("Done.")
        reply.flush()
        reply.finish(records, "end_turn")
    cleared, turn = out.outputs[-4:-2]
    assert cleared.data == {"text/plain": ""} and cleared.update  # the streaming display ends empty,
    assert cleared.data == out.outputs[0].data  # as it opened (nbval compares what opened)...
    whole = "Calling `f`.\n\n> tool `f({})` → 42\n\nDone."
    assert turn.data["text/markdown"] == whole and not turn.update  # ...the turn is its own
    assert [o.data["text/html"] for o in summaries(out)] == [render_summary(r) for r in records]
    assert [o.data for o in out.outputs[-2:]] == [o.data for o in summaries(out)]  # after the turn


class FrontEnd:
    """A display's outputs as JupyterLab 4 and Notebook 7 show them, as far as updates go
    (`OutputArea._setOutput`, `renderMarkdown`): an update of the same preferred type re-renders
    in the same renderer, which clears at once and, for non-empty Markdown, fills in later (the
    parser is asynchronous; renders then finish in any order); an update of another type replaces
    the renderer, so a render still pending lands in a discarded node."""

    TYPES = ("text/html", "text/markdown", "text/plain")

    def __init__(self) -> None:
        self.shown: list[dict[str, Any]] = []  # per output: its type and the text on screen
        self.ids: dict[str, int] = {}
        self.pending: list[tuple[dict[str, Any], str]] = []

    def receive(self, output: RichOutput) -> None:
        kind = next(t for t in self.TYPES if t in output.data)
        display_id = (output.transient or {}).get("display_id")
        if output.update:
            index = self.ids[display_id]
            renderer = self.shown[index]
            if renderer["type"] != kind:
                renderer = self.shown[index] = {"type": kind, "text": ""}
        else:
            renderer = {"type": kind, "text": ""}
            self.shown.append(renderer)
            if display_id:
                self.ids[display_id] = len(self.shown) - 1
        renderer["text"] = ""
        source = output.data[kind]
        if kind == "text/markdown" and source:
            self.pending.append((renderer, source))
        else:
            renderer["text"] = source

    def settle(self, order: str) -> list[str]:
        """The text on screen once every pending render has finished, in `order`."""
        for renderer, source in self.pending if order == "sent" else reversed(self.pending):
            renderer["text"] = source
        return [r["text"] for r in self.shown]


@pytest.mark.parametrize("order", ["sent", "reversed"])
@pytest.mark.parametrize("failed", [False, True])
def test_no_partial_reply_stays_on_screen(
    shell: InteractiveShell, clock: list[float], order: str, failed: bool
) -> None:
    """Whatever order the front end finishes its renders in, the stream's last update wins: the
    finished turn alone (the streaming display empty), or after a failure the whole partial."""
    with capture_output() as out:
        reply = Reply(rich=True)
        reply.write("Hel")
        clock[0] += _output.UPDATE_EVERY_S
        reply.write("lo")
        if failed:
            reply.flush()
        else:
            reply.finish([record(text("Hello"))], "end_turn")
            reply.write(" late")  # nothing reaches the display after the turn is shown
            reply.flush()
    front = FrontEnd()
    for output in out.outputs:
        front.receive(output)
    shown = front.settle(order)
    assert shown[:2] == (["Hello"] if failed else ["", "Hello"])
    assert len(shown) == (1 if failed else 3)  # ...and the usage line


def test_a_turn_without_text_says_why(shell: InteractiveShell, clock: list[float]) -> None:
    with capture_output() as out:
        reply = Reply(rich=True, live=False)
        reply.finish([record()], "max_tokens")
    assert markdown(out) == [("*(no text; stop reason: max_tokens)*", False)]


def test_a_tool_call_without_a_runner_is_noted_in_the_transcript(shell: InteractiveShell) -> None:
    with capture_output() as out:
        Reply(rich=True, live=False).finish([record(text("Let me look."), tool_use("lookup"))], "tool_use")
    assert markdown(out) == [("Let me look.\n\n> tool `lookup` requested (not run: no `--run` tools)", False)]


def test_a_terminal_gets_the_text_as_it_streams_and_not_again(shell: InteractiveShell) -> None:
    with capture_output() as out:
        reply = Reply(rich=False)
        reply.write("Hel")
        reply.write("lo")
        reply.flush()
        reply.finish([record(text("Hello"))], "end_turn")
    assert out.stdout == "Hello\n"
    assert markdown(out) == []
    assert "cache read" in summaries(out)[0].data["text/plain"]


def test_a_terminal_without_streaming_gets_the_turn_at_the_end(shell: InteractiveShell) -> None:
    with capture_output() as out:
        reply = Reply(rich=False, live=False)
        reply.write("Hello")
        assert out.stdout == ""
        reply.finish([record(text("Hello"))], "end_turn")
    assert out.stdout == "Hello\n"


def test_tool_lines_are_one_line_and_show_any_arguments(shell: InteractiveShell) -> None:
    reply = Reply(rich=False, live=False)
    when = dt.date(2026, 1, 2)
    reply.tool("book", {"day": when, "n": 2}, "Booked\n  for " + "x" * 300)
    (line,) = reply.tool_lines
    assert line.startswith('> tool `book({"day": "2026-01-02", "n": 2})` → Booked for xxx')
    assert line.endswith("…") and len(line.split("→ ", 1)[1]) == 200
    assert reply.text == f"\n\n{line}\n\n"


# -- tool_runner ----------------------------------------------------------------------------------
def test_the_runner_calls_the_function_and_notes_the_result() -> None:
    def add(a: int, b: int) -> int:
        return a + b

    reply = Reply(rich=False, live=False)
    run = tool_runner({"add": add}, {}, reply)
    assert run("add", {"a": 2, "b": 3}) == 5
    assert reply.tool_lines == ['> tool `add({"a": 2, "b": 3})` → 5']


def test_the_runner_prefers_the_notebooks_latest_definition() -> None:
    def weather(city: str) -> str:
        return "old"

    def redefined(city: str) -> str:
        return f"new for {city}"

    reply = Reply(rich=False, live=False)
    table = {"get_weather": weather}
    assert (
        tool_runner(table, {"weather": redefined}, reply)("get_weather", {"city": "Oslo"}) == "new for Oslo"
    )
    assert tool_runner(table, {"weather": "a string now"}, reply)("get_weather", {"city": "Oslo"}) == "old"


def test_the_runner_notes_and_reraises_failures() -> None:
    def broken() -> None:
        raise ValueError("no such city")

    reply = Reply(rich=False, live=False)
    run = tool_runner({"broken": broken}, {}, reply)
    with pytest.raises(ValueError, match="no such city"):
        run("broken", {})
    with pytest.raises(LookupError, match="register it with %%claude_tools --run"):
        run("unknown", {"q": 1})
    assert reply.tool_lines == [
        "> tool `broken({})` → ValueError: no such city",
        '> tool `unknown({"q": 1})` → not run: no --run function of that name',
    ]


# -- summaries and tables -------------------------------------------------------------------------
def test_summary_is_the_renderers_line_in_html_and_text(session: Session) -> None:
    session.system(LONG, cache=True)
    session.ask("Hello", stream=False)
    session.ask("Again", stream=False)
    hit = session.calls[-1]
    summary = Summary(hit)
    assert summary._repr_html_() == render_summary(hit) and 'data-call="2"' in summary._repr_html_()
    assert repr(summary) == summary_text(hit) and repr(summary).endswith("HIT · ~ estimated offline")


def test_session_tables_list_blocks_in_request_order_and_the_totals(session: Session) -> None:
    session.context("Notes.", name="notes", source="notes.md")
    session.system(LONG, cache="1h", name="rules")
    session.tools([{"name": "lookup", "input_schema": {"type": "object"}}], name="tools:lookup")
    lines = repr(SessionTables(session)).splitlines()
    assert lines[0] == repr(session)
    assert lines[1:4] == ["  tools:lookup: tools", "  rules: system, cache 1h", "  notes: context (notes.md)"]
    assert lines[4] == (
        "  0 calls: cache read 0 · cache write 0 · uncached input 0 · output 0; $0.0000 (saved $0.0000)"
    )
    assert "pcache-panel" in SessionTables(session)._repr_html_()


def test_session_tables_say_when_caching_cost_more(session: Session) -> None:
    session.system(LONG, cache=True)
    session.ask("Hello", stream=False)  # a write only: 1.25x the uncached price
    written = session.totals.tokens.written
    first = repr(SessionTables(session)).splitlines()[-1]
    assert first.startswith(f"  1 call: cache read 0 · cache write 5m ~{written:,} · uncached input ~")
    assert first.endswith(" more than uncached)")
    session.ask("Again", stream=False)  # the read pays it back
    second = repr(SessionTables(session)).splitlines()[-1]
    assert second.startswith(
        f"  2 calls: cache read ~{session.totals.tokens.read:,} · cache write 5m ~{written:,} ·"
    )
    assert "(saved $" in second
    with pytest.raises(anthropic.BadRequestError):
        session.ask("q", stream=True, max_tokens=0)  # pre-warming cannot stream: a 400
    assert repr(SessionTables(session)).splitlines()[-1].startswith("  3 calls (1 failed): ")


# -- the clock ------------------------------------------------------------------------------------
def test_clock_report_lists_entries_and_the_emulators_count(session: Session) -> None:
    session.system(LONG, cache="1h", name="rules")
    session.ask("Hello", stream=False)
    session.advance(125)
    lines = clock_report(session).splitlines()
    assert lines[0] == "Emulator time: 2026-01-01 09:02:05 UTC"
    tokens = session.calls[0].tokens.written
    assert lines[1:] == [
        f"  rules: ~{tokens:,} tokens (estimated), 1h, expires in 57m 55s",
        "The emulator holds 1 live entry.",
        "Offline, time stands still until you move it: %claude_clock advance 5m (or 90s, 1h30m, 2h).",
    ]


def test_clock_report_says_whose_entries_when_two_models_hold_them(session: Session) -> None:
    # Caches are per model: the same block cached for two models is two entries.
    session.system(LONG, cache="5m", name="rules")
    session.ask("Hello", stream=False)
    session.ask("Hello again", stream=False, model="claude-sonnet-4-6")
    listed = [line for line in clock_report(session).splitlines() if line.startswith("  rules")]
    assert [line.split(":")[0] for line in listed] == [
        f"  rules ({session.models.get(session.model).id})",
        "  rules (claude-sonnet-4-6)",
    ]


def test_clock_report_online_names_the_path_when_no_block_is_known() -> None:
    entry = {"block": None, "path": "messages.3.content.0", "tokens": 4_096, "ttl": "5m", "expires_in": 61.4}
    online = SimpleNamespace(
        now=lambda: 0.0,
        offline=False,
        connection=None,
        ledger=SimpleNamespace(entries=lambda now: [entry]),
        keepwarm=SimpleNamespace(advice=lambda now: [], on=False, stopped=None),
    )
    assert clock_report(online) == (  # type: ignore[arg-type]
        "Real time: 1970-01-01 00:00:00 UTC\n"
        "  messages.3.content.0: ~4,096 tokens (estimated), 5m, expires in 1m 02s"  # as the panel: rounded up
    )
    online.ledger = SimpleNamespace(entries=lambda now: [])
    assert clock_report(online).endswith("No live cache entries (as far as this session knows).")  # type: ignore[arg-type]


def test_one_line_folds_white_space_and_cuts_at_the_limit() -> None:
    assert one_line("a\n  b\tc ") == "a b c"
    assert one_line("x" * 10, 10) == "x" * 10
    assert one_line("x" * 11, 10) == "x" * 9 + "…"  # one ellipsis, as `fmt.cut`
    assert one_line(KeyError("k")) == "'k'"


# -- API errors -----------------------------------------------------------------------------------
SDK_ERRORS: list[tuple[int, type[anthropic.APIStatusError], str]] = [
    (
        400,
        anthropic.BadRequestError,
        "The API rejected the request (400): Injected HTTP 400 (invalid_request_error)",
    ),
    (401, anthropic.AuthenticationError, "The API key was rejected (401); check ANTHROPIC_API_KEY."),
    (
        403,
        anthropic.PermissionDeniedError,
        "The key may not do this (403): Injected HTTP 403 (permission_error)",
    ),
    (
        404,
        anthropic.NotFoundError,
        "Not found (404): Injected HTTP 404 (not_found_error); check the model (%config ClaudeMagics.model).",
    ),
    (409, anthropic.ConflictError, "The API answered 409: Injected HTTP 409 (invalid_request_error)"),
    (
        413,
        anthropic.APIStatusError,
        "The request is too large (413); drop or shrink a context block (%claude_session drop NAME).",
    ),
    (
        422,
        anthropic.UnprocessableEntityError,
        "The API answered 422: Injected HTTP 422 (invalid_request_error)",
    ),
    (429, anthropic.RateLimitError, "Rate limited (429) after 2 retries; wait a minute and try again."),
    (
        500,
        anthropic.InternalServerError,
        "The API failed (500) after 2 retries: Internal server error (injected by the emulator); try again "
        "shortly.",
    ),
    (
        503,
        anthropic.InternalServerError,
        "The API failed (503) after 2 retries: Internal server error (injected by the emulator); try again "
        "shortly.",
    ),
    (
        529,
        anthropic.InternalServerError,
        "The API is overloaded (529) after 2 retries; try again in a minute.",
    ),
]


def sdk_error(fault: int | str) -> anthropic.APIError:
    """The error the SDK raises for an injected fault, with the body the API would send."""
    emu = Emulator()
    emu.inject(fault)  # type: ignore[arg-type]
    try:
        emu.client(api_key=KEY, max_retries=0).messages.create(
            model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
    except anthropic.APIError as error:
        return error
    raise AssertionError(f"the injected {fault} did not fail the call")


@pytest.mark.parametrize(("status", "kind", "expected"), SDK_ERRORS)
def test_each_status_error_has_its_advice(
    status: int, kind: type[anthropic.APIStatusError], expected: str
) -> None:
    error = sdk_error(status)
    assert isinstance(error, kind) and error.status_code == status
    assert api_error_text(error, 2) == expected


def test_retries_are_counted_in_words() -> None:
    error = sdk_error(529)
    assert api_error_text(error, 0) == "The API is overloaded (529); try again in a minute."
    assert api_error_text(error, 1) == "The API is overloaded (529) after 1 retry; try again in a minute."


def test_transport_errors_have_their_own_advice() -> None:
    timeout = sdk_error("timeout")
    assert isinstance(timeout, anthropic.APITimeoutError)
    assert api_error_text(timeout, 3) == (
        "The API did not answer in time after 3 retries; try again, or raise ClaudeMagics.timeout."
    )
    request = httpx2.Request("POST", "https://api.anthropic.com/v1/messages")
    assert api_error_text(anthropic.APIConnectionError(request=request), 0) == (
        "Could not reach the API; check the network, or work offline (ClaudeMagics.offline)."
    )
    refused = anthropic.APIConnectionError(request=request)  # a bound on what a server may send
    too_much = "its answer passed 32 MiB, more than a real one holds"
    refused.__cause__ = AnswerTooLarge(too_much, request=request)
    assert api_error_text(refused, 0) == (
        "The server's answer was refused: its answer passed 32 MiB, more than a real one holds; "
        "check where the calls go (its base URL)."
    )
    response = httpx2.Response(200, request=request)
    invalid = anthropic.APIResponseValidationError(response, None, message="Data\n  is not a Message")
    assert api_error_text(invalid, 2) == "The API call failed: Data is not a Message"


def test_the_detail_comes_from_the_body_on_one_line_else_the_message() -> None:
    request = httpx2.Request("POST", "https://api.anthropic.com/v1/messages")
    response = httpx2.Response(400, request=request)
    body = {"type": "error", "error": {"type": "invalid_request_error", "message": "first\n   second"}}
    assert api_error_text(anthropic.BadRequestError("Error code: 400", response=response, body=body), 0) == (
        "The API rejected the request (400): first second"
    )
    from_proxy = anthropic.BadRequestError("Bad gateway page", response=response, body="<html>")
    assert api_error_text(from_proxy, 0) == "The API rejected the request (400): Bad gateway page"


# -- usage_errors ---------------------------------------------------------------------------------
def caught(error: BaseException, retries: int = 2) -> UsageError:
    """What `usage_errors` makes of `error`: a UsageError with no chained traceback."""
    stub: Any = SimpleNamespace(client=SimpleNamespace(max_retries=retries))
    with pytest.raises(UsageError) as raised, usage_errors(stub):
        raise error
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    return raised.value


def finding(block: str | None, message: str) -> Finding:
    return Finding(level="error", code="x", block=block, message=message, fix="Fix it.")


def test_one_preflight_finding_is_one_line() -> None:
    assert str(caught(PreflightError([finding("rules", "Too many markers.")]))) == (
        "Not sent: [rules] Too many markers. Fix it."
    )
    assert str(caught(PreflightError([finding(None, "Empty.")]))) == "Not sent: Empty. Fix it."


def test_several_preflight_findings_are_a_list() -> None:
    error = PreflightError([finding("a", "One."), finding(None, "Two.")])
    assert str(caught(error)) == "Not sent:\n  - [a] One. Fix it.\n  - Two. Fix it."


def test_interrupts_and_api_errors_become_usage_errors() -> None:
    assert str(caught(KeyboardInterrupt())) == "Interrupted; the conversation is unchanged."
    assert (
        str(caught(sdk_error(429), retries=5))
        == "Rate limited (429) after 5 retries; wait a minute and try again."
    )


@pytest.mark.parametrize("status", [400, 401, 403, 404, 500])
def test_api_errors_never_show_the_key(status: int) -> None:
    error = sdk_error(status)
    assert KEY not in str(caught(error))


def test_value_and_key_errors_are_one_line_without_the_keys_quotes() -> None:
    assert str(caught(ValueError("bad value\n  on two lines"))) == "bad value on two lines"
    assert str(caught(KeyError("No block named 'x'"))) == "No block named 'x'"  # not "\"No block named 'x'\""
    assert str(caught(KeyError())) == ""


def test_a_broken_stream_is_one_line() -> None:
    message = str(caught(httpx2.RemoteProtocolError("peer closed connection")))
    assert message == (
        "The connection broke during the reply (RemoteProtocolError); "
        "the conversation is unchanged, run the cell again."
    )


def test_other_errors_pass_through_and_success_is_silent() -> None:
    stub: Any = SimpleNamespace(client=None)
    with pytest.raises(RuntimeError, match="a bug"), usage_errors(stub):
        raise RuntimeError("a bug")
    with usage_errors(stub):
        pass


# -- thinking --------------------------------------------------------------------------------------
def thought(value: str) -> dict[str, Any]:
    return {"type": "thinking", "thinking": value, "signature": "c2ln"}


def test_the_usage_line_says_how_much_output_was_thinking_as_an_estimate() -> None:
    with_thought = record(thought("A fair amount of careful reasoning about the question."), text("Yes."))
    note = thinking_note(with_thought)
    assert re.fullmatch(r" · output of which ~\d+ thinking \(estimate\)", note)
    summary = Summary(with_thought)
    assert repr(summary) == summary_text(with_thought) + note
    html = summary._repr_html_()
    assert html.endswith(f"{note}</div>") and html.startswith(render_summary(with_thought)[:-6])
    plain = record(text("Yes."))
    assert thinking_note(plain) == "" and repr(Summary(plain)) == summary_text(plain)
    assert thinking_note(record(thought(""), text("Yes."))) == ""  # omitted thinking: nothing to count


def test_a_malformed_reply_is_one_line_saying_the_conversation_is_unchanged() -> None:
    from pcache_magic.session.replies import MalformedReply

    line = str(caught(MalformedReply("its body is not valid JSON", "http://127.0.0.1:9")))
    assert line == (
        "The server at http://127.0.0.1:9 did not answer like the Messages API (its body is not valid JSON); "
        "the conversation is unchanged. Check PCACHE_EMULATOR_URL or ANTHROPIC_BASE_URL, "
        "or try again if it was a passing fault."
    )


# -- a hostile server's text ----------------------------------------------------------------------
ECHOED = "sk-ant-api03-" + "Zq7" * 15  # a key a server that knows it echoes back


@pytest.mark.parametrize(
    "pieces",
    [["Your key is sk-ant-api03-" + "Zq7" * 15 + ". \x1b[2J\u202eOK"]]
    + [[f"Your key is {ECHOED[:n]}", f"{ECHOED[n:]}. \x1b[2J\u202eOK"] for n in (1, 5, 12, 20, 40)],
)
def test_a_terminal_never_gets_the_key_or_raw_controls_however_the_reply_is_split(
    shell: InteractiveShell, pieces: list[str]
) -> None:
    """`--format text` printed ESC and RLO as they came, and a key echoed in a reply whole."""
    with capture_output() as out:
        reply = Reply(rich=False)
        for piece in pieces:
            reply.write(piece)
        reply.finish([record(text("".join(pieces)))], "end_turn")
    assert out.stdout == "Your key is [API key]. ␛[2J\\u202eOK\n"
    with capture_output() as out:
        Reply(rich=False, live=False).finish([record(text("".join(pieces)))], "end_turn")
    assert out.stdout == "Your key is [API key]. ␛[2J\\u202eOK\n"


def test_a_stream_cut_mid_key_prints_no_piece_of_it(
    shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    with capture_output() as out:
        reply = Reply(rich=False)
        reply.write("Your key is ")
        reply.write(KEY[:-2])  # the stream breaks here
        reply.flush()
    assert out.stdout.startswith("Your key is ") and KEY[13:21] not in out.stdout


def test_a_reply_or_tool_name_echoing_the_key_is_shown_blotted(
    shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    turn = [record(text(f"Your key is {KEY}\x1b[31m"), tool_use(KEY))]
    with capture_output() as out:
        Reply(rich=True, live=False).finish(turn, "tool_use")
    (shown,) = out.outputs[:1]
    for data in (shown.data["text/markdown"], shown.data["text/plain"]):
        assert KEY not in data and "\x1b" not in data, data
        assert data.count("[API key]") == 2 and "> tool `[API key]` requested" in data


def test_a_failed_calls_usage_line_shows_controls_as_pictures() -> None:
    failed = record()
    failed.response, failed.error = None, "500 InternalServerError: \x1b[2J\u202eBoom"
    assert repr(Summary(failed)) == "call 1 failed · 500 InternalServerError: ␛[2J\\u202eBoom"
