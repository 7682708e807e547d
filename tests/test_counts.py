"""The pre-flight's prefixes counted by the API's `count_tokens` (session/counts.py).

Offline, `token_counts="api"` asks the emulator's count_tokens, which is the end-to-end test:
the SDK sends real requests, and a transport around the emulator's own counts them.
"""

from __future__ import annotations

import os

import anthropic
import httpx2
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from pcache_magic.core.cache_settings import default_settings
from pcache_magic.emulator import BASE_URL, Emulator
from pcache_magic.session.budget import BudgetError
from pcache_magic.session.counts import Counted, TokenCounter, wants_counts
from pcache_magic.session.session import PreflightError, Session
from pcache_magic.session.transport import connect

from _helpers import MODEL

COUNT_PATH = "/v1/messages/count_tokens"
LONG = "The ledger records every cache write with its lifetime and its prefix. " * 150
SHORT = "You are terse and exact."


class Counting:
    """A client on `emu` whose transport notes each request's path before the emulator answers."""

    def __init__(self, emu: Emulator) -> None:
        self.paths: list[str] = []

        def handle(request: httpx2.Request) -> httpx2.Response:
            self.paths.append(request.url.path)
            return emu.handle(request)

        self.client = anthropic.Anthropic(
            api_key="sk-ant-emulator",
            base_url=BASE_URL,
            http_client=httpx2.Client(transport=httpx2.MockTransport(handle)),
            max_retries=0,
        )

    @property
    def counts(self) -> int:
        return self.paths.count(COUNT_PATH)


def counting_session(emu: Emulator, setting: str = "api") -> tuple[Session, Counting]:
    counting = Counting(emu)
    session = Session(model=MODEL, client=counting.client, clock=emu.now, diagnostics=False)
    session.token_counts = setting  # type: ignore[assignment]
    return session, counting


def test_a_count_per_changed_prefix_never_per_call(emu: Emulator) -> None:
    session, counting = counting_session(emu)
    session.system(LONG, cache=True, name="guide")
    session.ask("first", stream=False)
    assert counting.counts == 2  # the prefix with the probe message, and the probe alone
    session.ask("second", stream=False)
    session.ask("third", stream=True)
    assert counting.counts == 2  # the system block is unchanged: its count is kept
    session.system(LONG + " One more rule.", cache=True, name="guide")
    session.ask("fourth", stream=False)
    assert counting.counts == 3  # the new block version only; the probe is kept too
    assert counting.paths.count("/v1/messages") == 4


def test_a_tools_or_system_prefix_is_counted_without_the_probe(emu: Emulator) -> None:
    session, _ = counting_session(emu)
    session.tools([{"name": "lookup", "description": "Find a row.", "input_schema": {"type": "object"}}])
    session.system(LONG, cache=True, name="guide")
    params, _ = session.next_request()
    params["messages"] = [{"role": "user", "content": "hi"}]
    lay = session.layout(params)
    points = session.book.breakpoints(params, lay)
    assert points
    counted = TokenCounter().count(session.client, params, lay, points)  # type: ignore[arg-type]
    system = points[-1].position
    # The emulator counts with the same estimator: the difference of the two counts is the prefix.
    assert counted.tokens == {system: lay.positions[system].cumulative}
    assert counted.note is None


def test_a_messages_prefix_is_the_request_cut_after_its_block(emu: Emulator) -> None:
    session, counting = counting_session(emu)
    session.system(SHORT)
    session.context(LONG, cache=True, name="doc")
    params, _ = session.next_request()
    params["messages"] = [*params["messages"], {"role": "user", "content": "Later question."}]
    lay = session.layout(params)
    points = session.book.breakpoints(params, lay)
    assert points is not None and len(points) == 1
    counted = TokenCounter().count(session.client, params, lay, points)  # type: ignore[arg-type]
    doc = lay.positions[points[0].position]
    assert doc.level == "messages"
    # One request, no probe; it holds the uncached tail every request has.
    assert counted.tokens == {doc.index: doc.cumulative + default_settings().tail_tokens}
    assert counting.counts == 1


def test_findings_say_counted_or_estimated(emu: Emulator) -> None:
    session, counting = counting_session(emu)
    session.system(SHORT, cache=True, name="short")
    findings, _ = session.check()
    below = [f for f in findings if f.code == "below-minimum"]
    assert len(below) == 1
    assert "counted " in below[0].message and "estimated" not in below[0].message
    assert counting.counts == 2
    session.token_counts = "estimate"
    findings, _ = session.check()
    (below_estimated,) = [f for f in findings if f.code == "below-minimum"]
    assert "is an estimated " in below_estimated.message and "counted" not in below_estimated.message
    assert counting.counts == 2  # `estimate` never asks


def test_the_magics_echo_says_counted(ip: InteractiveShell) -> None:
    ip.run_line_magic("config", "ClaudeMagics.token_counts = 'api'")
    with capture_output() as out:
        ip.run_cell_magic("claude_system", "--cache", SHORT)
    said = " ".join(out.stdout.split())  # the echo wraps at 80 columns
    assert "warning: The prefix up to 'you-are-terse-and-exact' (system.0) counted " in said
    ip.run_line_magic("config", "ClaudeMagics.token_counts = 'estimate'")
    with capture_output() as out:
        ip.run_cell_magic("claude_system", "--cache", SHORT + " Still short.")
    said = " ".join(out.stdout.split())
    assert "is an estimated " in said and "counted" not in said


@pytest.mark.parametrize("fault", [429, 500, "timeout"])
def test_a_failed_count_falls_back_with_one_note_and_the_call_goes(emu: Emulator, fault: object) -> None:
    session, counting = counting_session(emu)
    session.system(SHORT, cache=True, name="short")
    emu.faults.inject(fault)  # type: ignore[arg-type]
    findings, _ = session.check()
    notes = [f for f in findings if f.code == "count-failed"]
    assert len(notes) == 1 and notes[0].level == "warning"
    assert notes[0].message.startswith("count_tokens failed (")
    (below,) = [f for f in findings if f.code == "below-minimum"]
    assert "is an estimated " in below.message
    reply = session.ask("go", stream=False)  # the next count succeeds; the call is never blocked
    assert reply.content and len(session.calls) == 1 and session.calls[0].ok
    assert counting.counts >= 2


def test_auto_counts_only_on_a_live_client() -> None:
    offline = connect(env={}, offline=True)
    live = connect(env={"ANTHROPIC_API_KEY": "sk-ant-test-not-a-key"})
    assert not wants_counts("auto", offline.client, estimated=True)
    assert not wants_counts("auto", Emulator().client(), estimated=False)  # a custom emulator client
    assert wants_counts("auto", live.client, estimated=False)
    assert wants_counts("api", offline.client, estimated=True)
    assert not wants_counts("estimate", live.client, estimated=False)
    assert not wants_counts("api", None, estimated=False)


def test_an_offline_session_in_auto_never_counts(emu: Emulator) -> None:
    counting = Counting(emu)
    session = Session(model=MODEL, connection=connect(emulator=emu), diagnostics=False)
    session.client = counting.client
    session.system(LONG, cache=True)
    session.ask("hi", stream=False)
    assert session.token_counts == "auto"
    assert counting.counts == 0 and counting.paths == ["/v1/messages"]


def test_the_forecast_moves_by_the_counted_gap(emu: Emulator) -> None:
    session, _ = counting_session(emu)
    session.system(LONG, cache=True, name="guide")
    params, _ = session.next_request()
    params["messages"] = [{"role": "user", "content": "hi"}]
    lay = session.layout(params)
    (point,) = session.book.breakpoints(params, lay) or []
    at = lay.positions[point.position].cumulative
    counted = Counted({point.position: at + 100})
    assert counted.corrected(lay, at) == at + 100
    assert counted.corrected(lay, lay.total_tokens) == lay.total_tokens + 100
    assert counted.corrected(lay, at - 1) == at - 1  # before the counted prefix: the estimate
    assert Counted().corrected(lay, lay.total_tokens) == lay.total_tokens


@pytest.mark.live
@pytest.mark.skipif(not os.environ.get("ANTHROPIC_API_KEY"), reason="needs ANTHROPIC_API_KEY")
def test_live_counts_a_system_prefix_once() -> None:
    session = Session(model="claude-haiku-4-5", connection=connect(offline=False), diagnostics=False)
    assert session.token_counts == "auto"
    session.system(LONG, cache=True, name="guide")
    findings, _ = session.check()
    assert not [f for f in findings if f.code == "count-failed"]
    counter = session._pipeline.counter
    assert counter.requests == 2
    params, _ = session.next_request()
    lay = session.layout(params)
    counted = counter.count(session.client, params, lay, session.book.breakpoints(params, lay) or [])  # type: ignore[arg-type]
    (tokens,) = counted.tokens.values()
    assert counter.requests == 2  # kept by prefix: not asked again
    estimate = lay.positions[next(iter(counted.tokens))].cumulative
    assert 0.85 <= estimate / tokens <= 1.15


def test_the_cost_limit_is_checked_on_counted_figures(emu: Emulator) -> None:
    session, counting = counting_session(emu)
    session.cache_mode = "last"
    session.system(LONG, cache=True, name="guide")
    session.max_cost = 1.0
    session.ask("first", stream=False)
    assert counting.counts == 3  # the system prefix, the probe, the request up to the last turn
    session.max_cost = 1e-6
    with pytest.raises(BudgetError):
        session.ask("second", stream=False)
    assert counting.paths.count("/v1/messages") == 1  # refused before sending; counting is free
    assert len(session.calls) == 1


def test_a_prefix_holding_the_key_is_never_sent_to_be_counted(emu: Emulator) -> None:
    session, counting = counting_session(emu)
    session.system(LONG + " sk-ant-emulator", cache=True, name="guide")  # the client's own key
    session.check()
    assert counting.paths == []
    with pytest.raises(PreflightError, match="API key"):
        session.ask("first", stream=False)
    assert counting.paths == []


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b'{"input_tokens":"abc"}', "no whole-number count, a str"),
        (b'{"input_tokens":null}', "no whole-number count, a NoneType"),
        (b"{}", "no whole-number count"),
        (b"[]", "no whole-number count"),
        (b'{"input_tokens":1e400}', "no whole-number count, a float"),
        (b'{"input_tokens":12.5}', "no whole-number count, a float"),
        (b'{"input_tokens":true}', "no whole-number count, a bool"),
        (b'{"input_tokens":-5000000}', "a count out of range"),
        (b'{"input_tokens":99999999999999999999999}', "a count out of range"),
        (b"not json", "JSONDecodeError"),
    ],
)
def test_an_odd_count_reply_falls_back_with_one_note(emu: Emulator, body: bytes, why: str) -> None:
    """A 200 whose count is not a count (from a proxy or gateway): the estimate, a note, the call goes."""
    counting = Counting(emu)

    def odd(request: httpx2.Request) -> httpx2.Response:
        counting.paths.append(request.url.path)
        if request.url.path == COUNT_PATH:
            return httpx2.Response(200, headers={"content-type": "application/json"}, content=body)
        return emu.handle(request)

    client = counting.client.with_options(http_client=httpx2.Client(transport=httpx2.MockTransport(odd)))
    session = Session(model=MODEL, client=client, clock=emu.now, diagnostics=False)
    session.token_counts = "api"
    session.system(LONG, cache=True, name="long")
    findings, _ = session.check()
    (note,) = [f for f in findings if f.code == "count-failed"]
    assert note.level == "warning" and note.message.startswith(f"count_tokens failed ({why}")
    assert all("counted" not in f.message for f in findings if f.code != "count-failed")
    reply = session.ask("go", stream=False)
    assert reply.content and len(session.calls) == 1 and session.calls[0].ok
    assert counting.counts >= 2 and session.conversation.blocks[0].name == "long"
