"""Saved sessions and exports, end to end.

`%claude_session export python` writes a script for the raw SDK. Here a session made through
the magics against one `pcache-emulator` is exported, the script is run as a subprocess
against a fresh `pcache-emulator` with the key taken from the environment, and the cache
figures it prints are compared with the session's, call by call. `%claude_session save/load`
is checked as a round trip: the loaded session sends the same next request, keeps the same
call records and totals, and saving it again writes the same file.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import anthropic
import pytest
from _hostile_http import GOOD
from _images import PNG_1X1
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import pcache_magic
from pcache_magic.emulator import Emulator
from pcache_magic.emulator.engine import START_TIME
from pcache_magic.session import store
from pcache_magic.session.session import Session
from pcache_magic.session.transport import connect

from _helpers import loaded_magics, spawn_emulator

KEY = "sk-ant-SENTINEL-export-3a9d"
LONG = " ".join(f"Rule {i}: review the code carefully and explain each finding." for i in range(160))
REPLAY_LINE = re.compile(r"^call (\d+): read (\d+), written (\d+), uncached (\d+), output (\d+)$")


def post(url: str, payload: Any) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def entries(url: str) -> list[tuple[Any, ...]]:
    with urllib.request.urlopen(f"{url}/_emulator/state", timeout=10) as response:
        state = json.loads(response.read())
    return sorted((e["model"], e["tokens"], e["ttl"], e["expires_in"]) for e in state["entries"])


@pytest.fixture
def ip(offline_shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> InteractiveShell:
    """The offline shell (conftest.py) with the key set and files to attach; tests load pcache_magic."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    (tmp_path / "notes.md").write_text("# Notes\n\n" + "Money moves in integer cents. " * 40 + "\n")
    (tmp_path / "paper.pdf").write_bytes(b"%PDF-1.4\n1 0 obj <<>> endobj\n%%EOF\n")
    (tmp_path / "pic.png").write_bytes(PNG_1X1)
    return offline_shell


def load(ip: InteractiveShell) -> None:
    with capture_output():
        ip.run_line_magic("load_ext", "pcache_magic")


def unload(ip: InteractiveShell) -> None:
    ip.run_line_magic("unload_ext", "pcache_magic")


def run(ip: InteractiveShell, *cells: str) -> str:
    with capture_output() as out:
        for cell in cells:
            ip.run_cell(cell).raise_error()
    return out.stdout


def figures(session: Session) -> list[tuple[int, int, int, int]]:
    """(read, written, uncached, output) of each successful call, in order."""
    return [
        (c.tokens.read, c.tokens.written, c.tokens.uncached, c.tokens.output) for c in session.calls if c.ok
    ]


def replay(script: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PCACHE_", "ANTHROPIC_"))}
    return subprocess.run(
        [sys.executable, str(script)], env={**clean, **env}, capture_output=True, text=True, timeout=120
    )


#: A session that exercises every request shape: tools, 1h and 5m markers, a document, an image,
#: streaming and not, a tool loop, a pre-warm, `--cache last` and a call that fails.
SESSION = [
    "def ping() -> str:\n    'Ping.'\n    return 'pong'\n",
    "%%claude_tools --cache 1h --run\nping",
    f"%%claude_system --cache 1h\n{LONG}",
    "%%claude_context --cache --name notes --file notes.md paper.pdf --image pic.png\nThe material:",
    "%claude_prewarm",
    "%%claude\nWhich functions have no tests?",
    "%%claude --no-stream\nAnd which are the longest?",
    "%%claude\nUse ping now",
    "%%claude --cache last --max-tokens 64\nSummarise in one line.",
]


def test_export_python_replays_the_same_usage_on_pcache_emulator(
    ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with spawn_emulator() as first:
        monkeypatch.setenv("PCACHE_EMULATOR_URL", first.url)
        load(ip)
        try:
            session = pcache_magic.current_session()
            assert session.connection is not None and session.connection.mode == "server"
            run(ip, *SESSION[:6])
            post(f"{first.url}/_emulator/inject", {"fault": 529, "times": 3, "retry_after": 0.001})
            with capture_output():
                failed = ip.run_cell("%%claude\nThis one is refused.")
            assert "overloaded (529)" in str(failed.error_in_exec)
            run(ip, *SESSION[6:], "%claude_session export python replay.py")
            expected = figures(session)
            kinds = [c.kind for c in session.calls]
            session_entries = entries(first.url)
        finally:
            unload(ip)
    assert kinds == ["prewarm", "ask", "ask", "ask", "ask", "tool_loop", "ask"]
    assert [c.ok for c in session.calls].count(False) == 1
    assert sum(read for read, *_ in expected) > 0 and sum(w for _, w, *_ in expected) > 0

    script = tmp_path / "replay.py"
    text = script.read_text()
    assert KEY not in text and "anthropic.Anthropic()" in text and "This one is refused" not in text
    with spawn_emulator() as second:
        done = replay(script, {"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": second.url})
        assert done.returncode == 0, done.stderr
        replay_entries = entries(second.url)
    lines = done.stdout.strip().splitlines()
    parsed = [REPLAY_LINE.match(line) for line in lines]
    assert all(parsed), lines
    replayed = [tuple(int(g) for g in m.groups()[1:]) for m in parsed if m]
    assert [int(m.group(1)) for m in parsed if m] == list(range(1, len(expected) + 1))
    assert replayed == expected  # the same reads, writes, uncached and output tokens, call by call
    assert replay_entries == session_entries  # and the same cache left behind
    assert KEY not in done.stdout + done.stderr

    # Without a key the script stops at once and says where the key comes from.
    keyless = replay(script, {"ANTHROPIC_BASE_URL": "http://127.0.0.1:9"})
    assert keyless.returncode != 0 and "ANTHROPIC_API_KEY" in keyless.stderr


def test_export_json_matches_the_session(ip: InteractiveShell) -> None:
    load(ip)
    try:
        run(ip, f"%%claude_system --cache\n{LONG}", "%%claude\nOne?", "%%claude --no-stream\nTwo?")
        session = pcache_magic.current_session()
        session.connection.emulator.inject(500, times=3, retry_after=0.001)  # type: ignore[union-attr]
        with capture_output():
            ip.run_cell("%%claude\nThree?")
        out = run(ip, "%claude_session export json")
    finally:
        unload(ip)
    exported = json.loads(out)
    assert exported["next_request"] == json.loads(json.dumps(session.params(), default=str))
    assert [c["outcome"] for c in exported["calls"]] == [c.outcome for c in session.calls]
    assert [c["outcome"] for c in exported["calls"]] == ["write", "hit", "failed"]
    for saved, record in zip(exported["calls"], session.calls, strict=True):
        assert saved["usage"] == (record.usage.model_dump(exclude_none=True) if record.usage else None)
        assert saved["cost_usd"] == round(record.cost.total, 6)
        assert saved["error"] == record.error
    assert KEY not in out


def comparable(session: Session) -> dict[str, Any]:
    """Everything a round trip must keep."""
    return {
        "settings": (
            session.model,
            session.max_tokens,
            session.default_ttl,
            session.cache_mode,
            session.diagnostics,
        ),
        "blocks": [b.model_dump() for b in session.conversation.blocks],
        "calls": [
            (c.index, c.kind, c.model, c.ok, c.outcome, c.error, c.estimated, c.tokens, c.cost, c.started_at)
            for c in session.calls
        ],
        "response ids": [c.response.id if c.response else None for c in session.calls],
        "totals": session.totals,
        "next request": json.dumps(session.params(), sort_keys=True),
    }


def test_save_load_round_trip(ip: InteractiveShell, tmp_path: Path) -> None:
    load(ip)
    try:
        run(
            ip,
            "%config ClaudeMagics.default_ttl = '1h'",
            "%config ClaudeMagics.max_tokens = 300",
            "def ping() -> str:\n    'Ping.'\n    return 'pong'\n",
            "%%claude_tools --cache --run\nping",
            f"%%claude_system --cache\n{LONG}",
            "%%claude_context --name notes --file notes.md paper.pdf --image pic.png\nThe material:",
            "%%claude\nUse ping now",
            "%claude_clock advance 2m",
            "%%claude --no-stream --name later\nAnd then?",
        )
        session = pcache_magic.current_session()
        session.connection.emulator.inject(529, times=3, retry_after=0.001)  # type: ignore[union-attr]
        with capture_output():
            ip.run_cell("%%claude\nRefused.")
        original = comparable(session)
        assert [c.ok for c in session.calls] == [True, True, True, False]
        run(ip, "%claude_session save saved.json")
    finally:
        unload(ip)
    # the file: versioned JSON, validated by its own schema, no key, no temporary file beside it
    text = (tmp_path / "saved.json").read_text()
    raw = json.loads(text)
    assert (raw["format"], raw["version"]) == (store.FORMAT, store.VERSION)
    assert store.SessionFile.model_validate_json(text).settings.max_tokens == 300
    assert KEY not in text and "sk-ant" not in text
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]

    ip.config.pop("ClaudeMagics", None)  # %config settings live in the shell: forget them too
    load(ip)  # a new kernel, as it were
    try:
        fresh = pcache_magic.current_session()
        assert fresh.calls == [] and fresh.max_tokens == 1024
        out = run(ip, "%claude_session load saved.json")
        assert out.strip() == "Loaded 9 blocks and 4 calls from saved.json."
        loaded = pcache_magic.current_session()
        assert loaded is fresh
        assert comparable(loaded) == original
        magics = loaded_magics(ip)
        assert (magics.model, magics.max_tokens, magics.default_ttl) == (loaded.model, 300, "1h")
        run(ip, "%claude_session save again.json")
        again = json.loads((tmp_path / "again.json").read_text())
        # saving a loaded session changes nothing: the new emulator was given back the live entries
        assert {**again, "saved_at": ""} == {**raw, "saved_at": ""}
        assert raw["ledger"]
        # the loaded conversation is sendable as it is; functions are not saved, so --run is re-registered
        run(ip, "%%claude_tools --cache --run\nping", "%%claude\nOne more?")
        assert loaded.calls[-1].ok and loaded.calls[-1].index == 5
    finally:
        unload(ip)


def test_an_interrupted_save_keeps_the_previous_file(
    ip: InteractiveShell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load(ip)
    try:
        run(ip, "%%claude_system\nFirst version.", "%claude_session save s.json")
        before = (tmp_path / "s.json").read_text()
        run(ip, "%%claude_system --name more\nSecond block.")

        def interrupted(fd: int) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(os, "fsync", interrupted)  # Ctrl-C while the new file is being written
        with capture_output():
            result = ip.run_cell("%claude_session save s.json")
        assert isinstance(result.error_in_exec, KeyboardInterrupt)
        monkeypatch.undo()
        assert (tmp_path / "s.json").read_text() == before
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".s.json")) == []
    finally:
        unload(ip)


# -- the exported script, in process and against pcache-emulator ----------------------------------
def offline_session(emu: Emulator) -> Session:
    return Session(model="claude-sonnet-4-5", connection=connect(emulator=emu, max_retries=0))


def script_data(script: str) -> Any:
    """The script's calls, each with the request it sends (`requests` rebuilds them from the shared
    items and messages)."""
    namespace: dict[str, Any] = {"__name__": "replay"}  # not __main__: defines, sends nothing
    exec(compile(script, "replay.py", "exec"), namespace)
    data, requests = namespace["SESSION"], namespace["REQUESTS"]
    return {**data, "calls": [{**c, "request": r} for c, r in zip(data["calls"], requests, strict=True)]}


def test_the_replay_moves_the_emulator_clock_as_the_session_waited(tmp_path: Path) -> None:
    emu = Emulator()
    session = offline_session(emu)
    session.system(LONG, cache="1h", name="rules")
    session.context("Some notes. " * 300, cache="5m", name="notes")
    session.ask("One?", stream=False)
    session.advance(200)
    session.ask("Two?", stream=False)  # both read
    session.advance(400)
    session.ask("Three?", stream=False)  # the 5m entry expired: written again; the 1h one read
    session.advance(3700)
    session.prewarm()  # everything expired: written again
    emu.inject(529)
    with pytest.raises(anthropic.APIStatusError):
        session.ask("Refused?", stream=False)
    session.ask("Four?", stream=True)
    outcomes = [c.outcome for c in session.calls]
    assert outcomes == ["write", "hit", "hit+write", "write", "failed", "hit"]
    script = tmp_path / "replay.py"
    script.write_text(session.export("python"))
    with spawn_emulator() as server:
        done = replay(script, {"PCACHE_EMULATOR_URL": server.url})
        with urllib.request.urlopen(f"{server.url}/_emulator/state", timeout=10) as answer:
            state = json.loads(answer.read())
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no call differs from the session's pattern
    lines = [REPLAY_LINE.match(line) for line in done.stdout.splitlines()]
    assert [tuple(int(g) for g in m.groups()[1:]) for m in lines if m] == figures(session)
    waited = session.calls[-1].started_at - session.calls[0].started_at
    assert state["now"] - START_TIME == waited


def test_the_script_holds_data_not_code(tmp_path: Path) -> None:
    class Hostile(str):
        def __repr__(self) -> str:
            return "__import__('os').system('echo pwned')"

    deep: dict[str, Any] = {"type": "object"}
    for _ in range(47):  # a tool schema about as deep as the API takes (100 levels in all)
        deep = {"type": "object", "properties": {"x": deep}}
    session = offline_session(Emulator())
    session.tools([{"name": "lookup", "input_schema": deep}], name="tools")
    session.system(Hostile("It's '''quoted''' and \\ escaped \"\"\" ") + LONG, cache=True)
    session.ask(Hostile("Say 'hi' \u2028 and \U0001f600"), stream=False)
    script = session.export("python")
    assert "pwned" not in script and "'''quoted" not in script
    data = script_data(script)
    (call,) = data["calls"]
    first = session.calls[0]
    assert call["request"] == {k: v for k, v in first.request.items() if k != "diagnostics"}
    t = first.tokens
    assert call["recorded"] == {
        "read": 0,
        "written": t.written,
        "uncached": t.uncached,
        "output": t.output,
        "pattern": "write",
    }
    path = tmp_path / "replay.py"
    path.write_text(script, encoding="utf-8")
    with spawn_emulator() as server:
        done = replay(path, {"PCACHE_EMULATOR_URL": server.url})
    assert done.returncode == 0, done.stderr


def test_before_any_call_the_script_sends_the_next_request_ending_with_a_user_turn() -> None:
    session = offline_session(Emulator())
    session.system(LONG, cache=True)
    (call,) = script_data(session.export("python"))["calls"]
    assert call["request"]["messages"] == [{"role": "user", "content": "Hello"}]
    assert call["request"]["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert call["recorded"] is None
    # a conversation that ends with a reply (a loaded format 1 file, say): a user turn follows
    session.ask("Hi?", stream=False)
    session.calls.clear()
    (call,) = script_data(session.export("python"))["calls"]
    assert [m["role"] for m in call["request"]["messages"]] == ["user", "assistant", "user"]


def test_the_notebook_export_is_the_same_replay_cell_by_cell() -> None:
    session = offline_session(Emulator())
    session.system(LONG, cache=True)
    session.ask("One?", stream=False)
    session.advance(90)
    session.ask("Two?", stream=False)
    notebook = json.loads(session.export("ipynb"))
    assert notebook["nbformat"] == 4
    sources = [c["source"] for c in notebook["cells"]]
    assert sources[0].startswith("# Replay of a pcache_magic session")
    assert "SESSION = json.loads(" in sources[1] and "client, emulator = connect()" in sources[1]
    assert "advance(emulator, 90.0)" in sources[3] and "advance" not in sources[2]
    for source in sources[1:]:
        compile(source, "cell", "exec")
    with pytest.raises(ValueError, match="export takes python, ipynb, json, not 'yaml'"):
        session.export("yaml")  # type: ignore[arg-type]


def test_load_takes_a_larger_cap_and_prints_what_an_old_file_lacks(
    ip: InteractiveShell, tmp_path: Path
) -> None:
    load(ip)
    try:
        run(ip, f"%%claude_system --cache\n{LONG}", "%%claude\nOne?", "%claude_session save s.json")
        with capture_output():
            refused = ip.run_cell("%claude_session load s.json --max-mb 0.001")
        assert "--max-mb N" in str(refused.error_in_exec) and "more than the 1,048 bytes" in str(
            refused.error_in_exec
        )
        with capture_output():
            misplaced = ip.run_cell("%claude_session save t.json --max-mb 5")
        assert "--max-mb goes with load" in str(misplaced.error_in_exec)
        for given, shown in (("1e9", "1e+09"), ("-1", "-1"), ("nan", "nan")):  # the bound said, not guessed
            with capture_output():
                refused = ip.run_cell(f"%claude_session load s.json --max-mb {given}")
            assert str(refused.error_in_exec) == (
                f"--max-mb is in MB, above 0 and below 1,000,000, not {shown}: "
                "%claude_session load PATH --max-mb 200"
            )
        assert run(ip, "%claude_session load s.json --max-mb 5").strip() == (
            "Loaded 3 blocks and 1 call from s.json."
        )
        old = {
            "format": store.FORMAT,
            "version": 1,
            "config": {"model": "claude-sonnet-4-5", "max_tokens": 100},
            "blocks": [],
            "calls": [],
        }
        (tmp_path / "old.json").write_text(json.dumps(old))
        out = run(ip, "%claude_session load old.json").strip().splitlines()
        assert out[0] == "Loaded 0 blocks and 0 calls from old.json."
        assert out[1].startswith("old.json is a format 1 file: it kept the blocks and settings")
    finally:
        unload(ip)


def test_a_prompt_every_call_sends_is_written_once_and_each_call_on_a_line() -> None:
    session = offline_session(Emulator())
    session.system(LONG, cache="1h", name="rules")
    for i in range(20):
        session.ask(f"Question {i}?", stream=False)
    script = session.export("python")
    assert script.count(LONG) == 1  # was 20 copies, one per call
    sent = [{k: v for k, v in c.request.items() if k != "diagnostics"} for c in session.calls]
    assert [c["request"] for c in script_data(script)["calls"]] == sent  # the requests as they were sent
    lines = script.splitlines()
    assert sum(line.startswith('  {"call": ') for line in lines) == 20  # a line per call, not per field
    assert sum(line.startswith('  {"role": ') for line in lines) == 39  # per message sent


def test_an_item_a_file_references_many_times_is_exported_once(tmp_path: Path) -> None:
    """A 100 KB item referenced 300 times by a file about as big: the export was 30 MB (1 GB for
    1,000 references of 1 MB), now about the file's size, and replays the same request."""
    session = offline_session(Emulator())
    raw = json.loads(session.save(tmp_path / "base.json").read_text())
    big = {"type": "text", "text": "word " * 20_000}
    model = session.model
    request = {"keys": ["model", "max_tokens", "messages"], "fields": {"model": model, "max_tokens": 1}}
    call = {"index": 1, "kind": "ask", "model": model, "started_at": raw["clock"]["now"], "latency_s": 0.0}
    raw |= {
        "items": [big],
        "messages": [{"role": "user", "content": [0] * 300}],
        "calls": [
            {**call, "estimated": True, "request": {**request, "keep": 0, "add": [0]}, "response": GOOD}
        ],
    }
    path = tmp_path / "shared.json"
    path.write_text(json.dumps(raw))
    session.load(path)
    for kind in ("python", "ipynb"):
        assert len(session.export(kind)) < 2 * path.stat().st_size
    (replayed,) = script_data(session.export("python"))["calls"]
    assert replayed["request"]["messages"] == [{"role": "user", "content": [big] * 300}]


def test_the_replay_sends_fields_named_like_sdk_options_in_the_body_and_never_streams() -> None:
    """A file's `extra_headers` went to the live API as headers (with the user's key), its `stream`
    made the replay crash: the script sends what the file says, in the body, not streamed."""
    session = offline_session(Emulator())
    session.system(LONG, cache=True)
    session.ask("Hi?", stream=False)
    namespace: dict[str, Any] = {"__name__": "replay"}
    exec(compile(session.export("python"), "replay.py", "exec"), namespace)  # our own script, as data
    client = Emulator().client(max_retries=0)
    params = {**namespace["REQUESTS"][0], "stream": True}
    assert namespace["send"](client, params).usage.input_tokens > 0  # not streamed: a Message
    hostile = {**params, "extra_headers": {"x-api-key": "elsewhere"}}
    with pytest.raises(anthropic.BadRequestError, match="extra_headers"):  # a body field, refused
        namespace["send"](client, hostile)
