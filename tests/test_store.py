"""store.py: a saved session is the session (a property over generated sessions), and files are
read bounded, strictly and whole before anything changes, and written atomically.

The property: for a session made of random operations (blocks of every kind, tools, tool loops,
failed calls, several models and cache modes, pre-warms, drops, resets, clock advances) against
the in-process emulator, save then load gives a session whose records, costs, totals, panel,
explanations, money, predictions, next request (the planner's too) and exports are the
original's, and saving it again writes the same file.  Then the next call is made by both: the
original against its emulator, the loaded one against a second emulator brought to the same
state by replaying the recorded requests at their times, and the two calls read and write alike.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from pathlib import Path
from typing import Any

import anthropic
import pytest
from _hostile_http import message, serving
from _images import PNG_1X1_B64
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pcache_magic.analysis.diagnose import explain_all
from pcache_magic.analysis.savings import money
from pcache_magic.core.record import MAX_ERROR, CallRecord
from pcache_magic.core.turns import sdk_kwargs
from pcache_magic.emulator import Emulator
from pcache_magic.session import store
from pcache_magic.session.calls import PreflightError
from pcache_magic.session.session import Session
from pcache_magic.session.transport import connect
from pcache_magic.view.render import render_session

MODELS = ("claude-sonnet-4-5", "claude-haiku-4-5", "claude-sonnet-5")
LONG = "You review code carefully and answer briefly; cite line numbers. "
PNG = PNG_1X1_B64
KEY = "sk-ant-api03-secret-do-not-leak"

cache = st.sampled_from([None, "5m", "1h"])
OPS = st.one_of(
    st.tuples(st.just("system"), st.sampled_from([1, 120, 400]), cache),
    st.tuples(st.just("context"), st.sampled_from(["text", "image", "document"]), cache),
    st.tuples(st.just("tools"), st.integers(1, 3), cache),
    st.tuples(
        st.just("ask"),
        st.booleans(),
        st.sampled_from([None, "none", "last", "automatic", "auto"]),
        st.sampled_from([None, *MODELS]),
    ),
    st.tuples(st.just("tool_loop"), st.booleans()),
    st.tuples(st.just("advance"), st.sampled_from([1.0, 61.5, 299.0, 301.0, 3601.0])),
    st.tuples(st.just("fail"), st.sampled_from([400, 500, 529])),
    st.tuples(st.just("prewarm"), st.sampled_from([None, *MODELS])),
    st.tuples(st.just("drop"), st.integers(0, 9)),
    st.tuples(
        st.just("settings"),
        st.sampled_from([None, "5m", "1h"]),
        st.sampled_from(["none", "last", "automatic", "auto"]),
        st.sampled_from([64, 1024]),
    ),
    st.tuples(st.just("reset"), st.just(0)),
)


def lookup(name: str, arguments: dict[str, Any]) -> str:
    return f"{name}: nothing found"


def apply_op(s: Session, emu: Emulator, op: tuple[Any, ...], n: int) -> None:
    """One operation; one the API or the pre-flight refuses leaves the session as it was."""
    kind = op[0]
    try:
        if kind == "system":
            s.system(LONG * op[1], cache=op[2], name=f"system-{op[1]}")
        elif kind == "context":
            content: list[dict[str, Any]] = {
                "text": [{"type": "text", "text": f"Notes {n}: " + LONG * 100}],
                "image": [
                    {"type": "text", "text": "The figure:"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                ],
                "document": [
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": LONG * 20},
                        "title": "it's a \"doc\" '''",
                    }
                ],
            }[op[1]]
            s.context(content, cache=op[2], name=f"context-{n}", source=f"notes-{n}.md")
        elif kind == "tools":
            defs = [
                {"name": name, "description": f"Look up {name}.", "input_schema": {"type": "object"}}
                for name in ("lookup", "owners", "history")[: op[1]]
            ]
            s.tools(defs, cache=op[2], name="tools")
        elif kind == "ask":
            s.ask(f"Question {n}?", stream=op[1], cache=op[2], model=op[3])
        elif kind == "tool_loop":
            if s.conversation.get("tools") is None:
                s.tools([{"name": "lookup", "input_schema": {"type": "object"}}], name="tools")
            s.ask(f"Use lookup now ({n})", stream=op[1], run_tool=lookup)
        elif kind == "advance":
            s.advance(op[1])
        elif kind == "fail":
            emu.inject(op[1])
            try:
                s.ask(f"Refused {n}?", stream=False)
            finally:  # a call the pre-flight stopped never took the fault: it must not wait for the next
                emu.faults.clear()
        elif kind == "prewarm":
            s.prewarm(model=op[1])
        elif kind == "drop":
            names = [b.name for b in s.conversation.blocks]
            if names:
                s.drop(names[op[1] % len(names)])
        elif kind == "settings":
            s.default_ttl, s.cache_mode, s.max_tokens = op[1], op[2], op[3]
        elif kind == "reset":
            s.reset()
    except (PreflightError, ValueError, anthropic.APIError):
        pass


def make(emu: Emulator, model: str) -> Session:
    return Session(model=model, connection=connect(emulator=emu, max_retries=0))


def twin(sent: list[CallRecord]) -> Emulator:
    """A second emulator in the state of the first: every request answered (a reset forgets them
    in the session, not in the emulator) sent again at its time."""
    emu = Emulator()
    client = emu.client(max_retries=0)
    for record in sent:
        if record.ok:
            if record.started_at > emu.now():
                emu.advance(record.started_at - emu.now())
            client.messages.create(**sdk_kwargs(record.request))
    return emu


def record_view(s: Session) -> list[Any]:
    return [
        (
            c.index,
            c.kind,
            c.model,
            c.started_at,
            c.latency_s,
            c.error,
            c.estimated,
            c.prices,
            c.prediction,
            json.dumps(c.request, sort_keys=True),
            c.response.model_dump(mode="json") if c.response else None,
            c.tokens,
            c.cost,
            c.outcome,
        )
        for c in s.calls
    ]


def everything(s: Session) -> dict[str, Any]:
    """What a round trip must keep, as the views show it."""
    findings, predictions = s.check()
    return {
        "settings": (s.model, s.max_tokens, s.default_ttl, s.cache_mode, s.diagnostics),
        "blocks": [b.model_dump() for b in s.conversation.blocks],
        "records": record_view(s),
        "totals": s.totals,
        "ledger": s.ledger.dump(),
        "block_names": s.book.names,
        "findings": findings,
        "predictions": predictions,
        "next": json.dumps(s.params(), sort_keys=True),
        "planned": json.dumps(s.params(cache="auto"), sort_keys=True),
        "panel": render_session(s),
        "explain": [(e.call, e.outcome, e.summary, e.lines, e.codes) for e in explain_all(s)],
        "money": str(money(s)) if any(c.ok for c in s.calls) else None,
        "exports": (s.export("python"), s.export("json"), s.export("ipynb")),
    }


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(model=st.sampled_from(MODELS), base=cache, ops=st.lists(OPS, min_size=1, max_size=9))
def test_a_saved_session_is_the_session(
    tmp_path: Path, model: str, base: str | None, ops: list[tuple[Any, ...]]
) -> None:
    emu = Emulator()
    original = make(emu, model)
    original.system(LONG * 400, cache=base, name="base")  # long enough to cache on every model
    sent: list[CallRecord] = []
    original.subscribe(lambda event, record: sent.append(record) if event == "call" else None)
    for n, op in enumerate(ops):
        apply_op(original, emu, op, n)
    kinds = {c.kind if c.ok else "failed" for c in original.calls}
    for what in sorted(kinds | ({"cache entries"} if original.ledger.dump() else set())):
        event(what)  # --hypothesis-show-statistics: how often each kind of session was made
    path = original.save(tmp_path / "s.json")
    text = path.read_text()
    before = everything(original)

    other_emu = twin(sent)
    loaded = make(other_emu, MODELS[0])
    assert loaded.load(path).notes == []
    assert other_emu.now() == emu.now()  # the clock was moved on to the saved time
    assert everything(loaded) == before
    again = json.loads(store.dumps(loaded))
    assert {**again, "saved_at": ""} == {**json.loads(text), "saved_at": ""}

    # the next call: the same cache outcome, read and written, in both worlds (or the same refusal)
    assert next_call(loaded) == next_call(original)


def next_call(s: Session) -> tuple[Any, ...]:
    try:
        usage = s.ask("And next?", stream=False).usage
    except (PreflightError, anthropic.APIError) as error:
        return ("refused", str(error))
    figures = ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens", "cache_creation")
    return ("sent", [getattr(usage, u) for u in figures], s.calls[-1].prediction)


# -- the API ------------------------------------------------------------------------------------
@pytest.fixture
def session() -> Session:
    """An offline session with two calls (a write, then a read), and a key in the environment."""
    s = Session(connection=connect(env={"ANTHROPIC_API_KEY": KEY}, offline=True), default_ttl="1h")
    s.tools([{"name": "lookup", "input_schema": {"type": "object", "properties": {}}}])
    s.system(LONG * 60, cache=True, name="system")
    s.context("Some notes.", name="notes", source="notes.md")
    s.ask("First question?", stream=False)
    s.ask("Second question?", stream=True)
    return s


def test_the_file_holds_everything_and_no_secret(session: Session, tmp_path: Path) -> None:
    path = session.save(tmp_path / "s.json")
    raw = json.loads(path.read_text())
    assert (raw["format"], raw["version"], raw["saved_by"]) == (store.FORMAT, 2, "0.1.0")
    assert set(raw) == {
        "format",
        "version",
        "saved_by",
        "saved_at",
        "settings",
        "clock",
        "blocks",
        "ledger",
        "prices",
        "items",
        "messages",
        "calls",
        "block_names",
    }
    assert raw["settings"] == {
        "model": session.model,
        "max_tokens": 1024,
        "default_ttl": "1h",
        "cache_mode": "none",
        "diagnostics": True,
        "max_cost": None,
        "budget": None,
        "token_counts": "auto",
    }
    assert raw["clock"] == {"now": session.now(), "mode": "offline"}
    assert [e["ttl"] for e in raw["ledger"]] == ["1h"]
    assert raw["calls"][1]["response"]["usage"]["cache_read_input_tokens"] > 0
    assert (raw["calls"][1]["request"]["keep"], len(raw["calls"][1]["request"]["add"])) == (1, 2)
    assert KEY not in path.read_text() and "sk-ant" not in path.read_text()
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_load_replaces_the_state_and_tells_the_observers(session: Session, tmp_path: Path) -> None:
    session.max_tokens, session.cache_mode = 512, "last"
    path = session.save(tmp_path / "s.json")
    other = Session(connection=connect(offline=True))
    events: list[str] = []
    other.subscribe(lambda event, _: events.append(event))
    loaded = other.load(path)
    assert loaded.summary() == f"Loaded 7 blocks and 2 calls from {path}."
    assert events == ["reset"]
    assert (other.max_tokens, other.cache_mode, other.default_ttl) == (512, "last", "1h")
    assert other.totals == session.totals
    # a new kernel's emulator stands in for the API, which still holds the entries: it is given
    # them back, so the ledger, the predictions and the next call are the original's
    assert other.ledger.dump() == session.ledger.dump() != []
    assert other.check()[1] == session.check()[1]
    assert len(other.connection.emulator.state()["entries"]) == len(session.ledger.entries(session.now()))  # type: ignore[union-attr]
    other.ask("Third question?", stream=False)
    session.ask("Third question?", stream=False)
    assert other.calls[-1].index == 3 and other.calls[-1].outcome == session.calls[-1].outcome == "hit+write"
    assert other.calls[-1].tokens == session.calls[-1].tokens


def test_reset_keeps_what_the_api_still_holds(session: Session) -> None:
    held = session.ledger.dump()
    session.reset()
    assert session.calls == [] and session.conversation.blocks == []
    assert session.ledger.dump() == held
    session.tools([{"name": "lookup", "input_schema": {"type": "object", "properties": {}}}])
    session.system(LONG * 60, cache=True, name="system")
    assert [p.status for p in session.check()[1]] == ["hit"]
    session.ask("Again?", stream=False)
    assert session.calls[-1].outcome == "hit"


def test_save_is_atomic_and_leaves_no_temporary_files(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.json"
    path.write_text("previous contents")

    def fail(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        session.save(path)
    assert path.read_text() == "previous contents"
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


def test_save_refuses_a_directory_or_a_missing_folder(session: Session, tmp_path: Path) -> None:
    with pytest.raises(store.StoreError, match="is a directory"):
        session.save(tmp_path)
    with pytest.raises(store.StoreError, match="does not exist"):
        session.save(tmp_path / "nope" / "s.json")


def test_a_value_json_cannot_carry_is_refused_and_nothing_written(session: Session, tmp_path: Path) -> None:
    session.calls[0].latency_s = float("nan")
    with pytest.raises(store.StoreError, match=r"JSON cannot carry .*nothing was saved"):
        session.save(tmp_path / "s.json")
    assert list(tmp_path.iterdir()) == []


# -- reading: bounded ---------------------------------------------------------------------------
def fresh() -> Session:
    return Session(connection=connect(offline=True))


def refused(path: str | Path, words: str, **kwargs: Any) -> str:
    target = fresh()
    target.system("Keep me.", name="mine")
    before = (target.conversation.blocks[:], target.settings, target.calls[:])
    with pytest.raises(store.StoreError, match=words) as info:
        target.load(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message and len(message) < 400
    assert (target.conversation.blocks, target.settings, target.calls) == before
    return message


def test_missing_files_folders_fifos_and_devices_are_refused_at_once(tmp_path: Path) -> None:
    refused(tmp_path / "missing.json", "no such file")
    refused(tmp_path, "is a folder; give the path of a saved session file")
    refused("/dev/zero", "is a device")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    done: list[str] = []
    worker = threading.Thread(target=lambda: done.append(refused(fifo, r"is a pipe \(FIFO\)")), daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert done, "loading a FIFO hung"


def test_a_file_over_the_cap_is_refused_unless_the_cap_is_raised(session: Session, tmp_path: Path) -> None:
    path = session.save(tmp_path / "s.json")
    size = path.stat().st_size
    message = refused(path, "more than the 1,000 bytes", max_bytes=1000)
    assert "--max-mb" in message
    assert fresh().load(path, max_bytes=size).calls == 2
    assert store.DEFAULT_MAX_BYTES == 64 * 2**20
    big = tmp_path / "big.json"
    with big.open("wb") as handle:  # sparse: no disk used, and never read
        handle.truncate(store.DEFAULT_MAX_BYTES + 1)
    refused(big, "67,108,865 bytes, more than the 67,108,864")


# -- reading: strict and validated ----------------------------------------------------------------
def saved(session: Session, tmp_path: Path) -> dict[str, Any]:
    return json.loads(session.save(tmp_path / "good.json").read_text())


def write(tmp_path: Path, data: Any, name: str = "bad.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            lambda d: d["calls"][0].update(started_at="NaN"),
            r"calls\.0\.started_at: Input should be a valid number",
        ),
        (lambda d: d["calls"][0].update(latency_s=-1.0), r"calls\.0\.latency_s: Input should be greater"),
        (lambda d: d["calls"][0].update(started_at=1e300), r"calls\.0\.started_at: Input should be less"),
        (
            lambda d: d["calls"][1]["response"]["usage"].update(input_tokens=-5),
            r"calls\.1\.response: Value error, usage\.input_tokens is not a whole number of tokens from 0",
        ),
        (
            lambda d: d["calls"][1]["response"]["usage"].update(cache_read_input_tokens=10**15),
            r"usage\.cache_read_input_tokens is not a whole number of tokens",
        ),
        (lambda d: d["ledger"][0].update(tokens=-1), r"ledger\.0\.tokens: Input should be greater"),
        (lambda d: d["ledger"][0].update(key="not hex"), r"ledger\.0\.key: String should match"),
        (lambda d: d["settings"].update(max_tokens=-5), r"settings\.max_tokens: Input should be greater"),
        (lambda d: d["settings"].update(max_tokens="1"), r"settings\.max_tokens: Input should be a valid"),
        (lambda d: d["ledger"][0].update(tokens=1.5), r"ledger\.0\.tokens: Input should be a valid int"),
        (lambda d: d["blocks"][0].update(role="robot"), r"blocks\.0\.role: Input should be"),
        (lambda d: d.update(extra=1), r"extra: Extra inputs are not permitted"),
        (
            lambda d: d["calls"][0]["request"].update(add=[10**6]),
            r"calls\.0\.request: message 1000000 is not",
        ),
        (lambda d: d["calls"][1]["request"].update(keep=99), r"calls\.1\.request\.keep: 99 messages"),
        (lambda d: d["calls"][0].update(prices=7), r"calls\.0\.prices: no prices 7"),
        (lambda d: d["messages"][0].update(content=[10**6]), r"messages\.0\.content: item 1000000"),
        (lambda d: d["blocks"][2].update(name="system"), "blocks: the name 'system' is used twice"),
        (
            lambda d: d["block_names"][0].update(digest="xyz"),
            r"block_names\.0\.digest: String should match",
        ),
        # a place named by the file's own key: shown visible and cut, never the key whole
        (lambda d: d.update({"k\x1b[31m\u202e" + "x" * 10**6: 1}), r"k␛\[31m\\u202exxx+…: Extra inputs"),
    ],
)
def test_a_poisoned_field_is_named_and_changes_nothing(
    session: Session, tmp_path: Path, change: Any, words: str
) -> None:
    data = saved(session, tmp_path)
    change(data)
    refused(write(tmp_path, data), words)


def test_a_key_named_twice_is_refused_not_silently_overwritten(session: Session, tmp_path: Path) -> None:
    text = json.dumps(saved(session, tmp_path))
    twice = text.replace('"settings": {', '"settings": {"max_tokens": 1, ', 1)
    assert twice != text
    refused(write(tmp_path, twice), "is not strict JSON .the key 'max_tokens' appears twice in one object.")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"format": "pcache_magic.session.session", "version": 2, "x": NaN}', "NaN is not a valid JSON"),
        ('{"version": Infinity}', "Infinity is not a valid JSON value"),
        ('{"version": 1e400}', "1e400 is out of range"),
        ('{"version": ' + "7" * 5000 + "}", "an integer of 5000 digits is longer than 40"),
        ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "nesting deeper than 108 levels"),
        ('{"a": ' * 200 + "1" + "}" * 200, "nesting deeper than 108 levels"),
        ('{"a": "\\ud800"}', "lone surrogate"),
        (
            '{"format": "pcache_magic.session',
            r"not valid JSON \(Unterminated string .* line 1\); it may be truncated",
        ),
        ("\x00garbage", r"not a pcache_magic session file \(saved with %claude_session save FILE\)\.$"),
        ('{"cells": [], "nbformat": 4}', "not a pcache_magic session file"),
        ("[1, 2]", "not a pcache_magic session file"),
    ],
)
def test_hostile_json_is_refused_before_validation(tmp_path: Path, text: str, words: str) -> None:
    refused(write(tmp_path, text), words)


def test_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin.json"
    path.write_bytes(b'{"format": "caf\xe9"}')
    refused(path, r"latin.json is not a pcache_magic session file \(not UTF-8 text\)\.$")


def test_an_unknown_model_says_how_to_add_it(session: Session, tmp_path: Path) -> None:
    data = saved(session, tmp_path)
    data["calls"][0]["model"] = "claude-sonnet-9"
    message = refused(write(tmp_path, data), r"calls\.0\.model: unknown model 'claude-sonnet-9'")
    assert "add it to the catalogue with $PCACHE_MODELS" in message
    data = saved(session, tmp_path)
    data["settings"]["model"] = "my-own-model"
    refused(write(tmp_path, data), r"settings\.model: unknown model 'my-own-model'; add it")


def test_a_bad_image_source_is_refused_with_the_apis_reason(session: Session, tmp_path: Path) -> None:
    session.context([{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}])
    data = saved(session, tmp_path)
    image = data["blocks"][-1]["content"][0]
    image["source"]["media_type"] = "image/tiff"
    refused(write(tmp_path, data), r"blocks\.7 \('context'\): the API would refuse it \(.*media_type")
    image["source"] = {"type": "file", "path": "/etc/passwd"}
    refused(write(tmp_path, data), r"blocks\.7 \('context'\): the API would refuse it")


def test_a_newer_format_names_the_version_to_upgrade_to(tmp_path: Path) -> None:
    newer = {"format": store.FORMAT, "version": 7, "saved_by": "0.9.1", "blocks": "anything"}
    message = refused(write(tmp_path, newer, "newer.json"), "saved by pcache_magic 0.9.1")
    assert message == (
        f"{tmp_path / 'newer.json'} was saved by pcache_magic 0.9.1 (session format 7); this "
        "pcache_magic 0.1.0 reads format 2 and older: upgrade pcache_magic to load it."
    )
    refused(write(tmp_path, {"format": store.FORMAT, "version": "2"}), r"version: not a format version")


def test_a_format_1_file_loads_its_blocks_and_settings_with_a_note(tmp_path: Path) -> None:
    old = {
        "format": store.FORMAT,
        "version": 1,
        "saved_at": "2026-01-01T09:00:00+00:00",
        "config": {
            "model": "claude-sonnet-4-5",
            "max_tokens": 300,
            "default_ttl": "1h",
            "cache_mode": "last",
        },
        "blocks": [
            {
                "name": "system",
                "role": "system",
                "kind": "system",
                "content": [{"type": "text", "text": "Hi"}],
            }
        ],
        "calls": [{"index": 1, "kind": "ask", "model": "claude-sonnet-4-5", "started_at": 1.0}] * 3,
    }
    target = fresh()
    loaded = target.load(write(tmp_path, old, "v1.json"))
    assert (loaded.blocks, loaded.calls) == (1, 0)
    assert loaded.notes == [
        f"{tmp_path / 'v1.json'} is a format 1 file: it kept the blocks and settings but not the requests, "
        "so its 3 call record(s) and the cache entries are not loaded; save again to write format 2."
    ]
    assert (target.model, target.max_tokens, target.default_ttl, target.cache_mode) == (
        "claude-sonnet-4-5",
        300,
        "1h",
        "last",
    )
    target.ask("Works?", stream=False)
    assert target.calls[-1].ok


def test_entries_written_offline_are_not_predicted_live(session: Session, tmp_path: Path) -> None:
    path = session.save(tmp_path / "s.json")
    live = Session(connection=connect(env={"ANTHROPIC_API_KEY": KEY}))
    assert live.connection is not None and live.connection.mode == "live"
    live.load(path)  # nothing is sent: the live client is never called
    assert live.ledger.dump() == [] and len(live.calls) == 2
    custom = Session(client=Emulator().client())
    custom.load(path)  # a client of its own: nothing says where it goes, so the entries are kept
    assert custom.ledger.dump() == session.ledger.dump()


# -- every notebook in notebooks/ ----------------------------------------------------------------
NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebooks_session_survives_a_round_trip(
    offline_shell: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, path: Path
) -> None:
    """Run the notebook's cells in a shell, save the magics' session, load it into a fresh one:
    the views, predictions, exports and the next call are the same."""
    import nbformat
    from IPython.utils.capture import capture_output

    import pcache_magic

    monkeypatch.chdir(path.parent)  # the notebooks read data/ beside them
    sent: list[CallRecord] = []
    with capture_output():
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            result = offline_shell.run_cell(cell.source)
            if "raises-exception" not in cell.metadata.get("tags", []):
                result.raise_error()
            if cell.source.strip() == "%load_ext pcache_magic":
                pcache_magic.current_session().subscribe(
                    lambda event, record: sent.append(record) if event == "call" else None
                )
    original = pcache_magic.current_session()
    try:
        assert sent and original.calls, "the notebook made no calls"
        before = everything(original)
        saved = original.save(tmp_path / "notebook.json")
        emu = twin(sent)
        emu.advance(max(original.now() - emu.now(), 0.0))
        loaded = make(emu, original.model)
        assert loaded.load(saved).notes == []
        assert everything(loaded) == before
        assert next_call(loaded) == next_call(original)
    finally:
        offline_shell.run_line_magic("unload_ext", "pcache_magic")


def test_save_never_replaces_a_link_a_device_or_a_pipe(session: Session, tmp_path: Path) -> None:
    (tmp_path / "real.json").write_text("{}")
    (tmp_path / "link.json").symlink_to(tmp_path / "real.json")
    os.mkfifo(tmp_path / "pipe")
    for target in (tmp_path / "link.json", tmp_path / "pipe", Path("/dev/null")):
        with pytest.raises(store.StoreError, match="is not a regular file"):
            session.save(target)
    assert (tmp_path / "link.json").is_symlink() and (tmp_path / "real.json").read_text() == "{}"
    assert Path("/dev/null").is_char_device()


def test_a_saved_time_too_far_ahead_is_refused_before_the_clock_moves(
    session: Session, tmp_path: Path
) -> None:
    data = saved(session, tmp_path)
    data["clock"]["now"] = 5e9  # a century past what the emulator's clock moves
    path = write(tmp_path, data)
    fresh_session = fresh()
    before = fresh_session.now()
    refused(path, "clock.now")
    with pytest.raises(store.StoreError):
        fresh_session.load(path)
    assert fresh_session.now() == before


def test_the_key_in_a_prompt_never_reaches_a_file_or_an_export(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    s = make(emu, MODELS[0])
    s.ask("Hello", stream=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)  # set after the call: as if an old prompt quoted it
    s.calls[-1].request["messages"][0]["content"][0]["text"] = f"my key {KEY}"
    text = s.save(tmp_path / "s.json").read_text()
    assert KEY not in text and "[API key]" in text
    for kind in ("python", "ipynb", "json"):
        assert KEY not in s.export(kind)  # type: ignore[arg-type]


def test_a_file_of_millions_of_tiny_values_is_refused_before_parsing(tmp_path: Path) -> None:
    body = "[" + "[]," * store.MAX_VALUES + "[]]"  # 6 MB of text, hundreds of MB once parsed
    path = write(tmp_path, '{"format": "pcache_magic.session", "version": 2, "items": ' + body + "}")
    assert "more than 2,000,000 values" in refused(path, "values")


def test_a_price_no_model_has_is_refused(session: Session, tmp_path: Path) -> None:
    data = saved(session, tmp_path)
    data["prices"][0]["input"] = 1e300  # would break every cost table later
    assert "prices.0.input" in refused(write(tmp_path, data), "prices")


@pytest.mark.parametrize(
    "changes",
    [
        {"content": [{"type": "a_block_newer_than_the_sdk", "x": 1}, {"type": "text", "text": "hi"}]},
        {"content": [{"type": "tool_use", "id": "toolu_1", "name": "ping", "input": {}}], "model": 5},
        {"usage": {"input_tokens": 5, "output_tokens": 1, "server_tool_use": {"web_search_requests": -1}}},
        {"content": [{"type": "text", "text": "hi", "citations": [{"x": 10**39}]}], "stop_sequence": 3},
        {"content": [{"type": "a_block_newer_than_the_sdk", "deep": [[[[1]]]], "n": -(10**39)}]},
    ],
    ids=["newer-block", "model-int", "usage-part", "citations", "newer-block-data"],
)
def test_a_reply_the_sdk_types_do_not_describe_saves_and_loads_back(
    changes: dict[str, Any], tmp_path: Path
) -> None:
    """The session records what the SDK read from a server; its file must load back the same, with
    no serializer warnings on the way (a file that did not load lost the session's calls)."""
    with serving() as server:
        server.answer = message(**changes)
        env = {"PCACHE_EMULATOR_URL": server.url}
        s = Session(model=MODELS[0], connection=connect(env=env, max_retries=0))
        s.system("Be brief.")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            s.ask("Hello?", stream=False)
            text = s.save(tmp_path / "s.json").read_text()
            loaded = Session(model=MODELS[0], connection=connect(env=env, max_retries=0))
            loaded.load(tmp_path / "s.json")
            assert (
                loaded.save(tmp_path / "again.json").read_text().split('"saved_at"')[0]
                == text.split('"saved_at"')[0]
            )
            (mine,), (theirs,) = s.calls, loaded.calls
            assert theirs.response is not None and mine.response is not None
            assert theirs.response.model_dump(warnings=False) == mine.response.model_dump(warnings=False)
            assert loaded.totals == s.totals
            assert [e.summary for e in explain_all(loaded)] == [e.summary for e in explain_all(s)]


@pytest.mark.parametrize("bad", [[0], [1, 1], [2, 1], [3], [9]])
def test_calls_in_flight_are_earlier_calls_each_once(
    session: Session, tmp_path: Path, bad: list[int]
) -> None:
    """`in_flight` naming the call itself, a later or missing call, or one twice (a review): refused."""
    session.ask("one", stream=False)
    session.ask("two", stream=False)
    session.ask("three", stream=False)
    data = json.loads(store.dumps(session))
    data["calls"][2]["in_flight"] = bad
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data))
    with pytest.raises(store.StoreError, match=r"calls\.2\.in_flight: not calls before it"):
        store.load(path, Session(model=session.model))


def test_a_huge_error_in_a_file_is_cut_on_load(session: Session, tmp_path: Path) -> None:
    """A file written before errors were cut (or by hand): its 5 MB error is not kept whole."""
    data = json.loads(store.dumps(session))
    data["calls"][1]["response"] = None
    data["calls"][1]["error"] = "500 InternalServerError: Boom" + "E" * 5_000_000
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data))
    loaded = fresh()
    loaded.load(path)
    error = loaded.calls[-1].error
    assert error is not None and len(error) <= MAX_ERROR and error.startswith("500 InternalServerError: Boom")
    assert error.endswith("… (cut from 5,000,029 characters)")
    again = fresh()
    again.load(loaded.save(tmp_path / "again.json"))
    assert again.calls[-1].error == error  # cut once: a record loaded back is the record saved
