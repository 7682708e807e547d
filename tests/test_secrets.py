"""The secret scan: a sentinel API key, every magic, every export, every failure, then a search.

The key is put where a real one would be: in `ANTHROPIC_API_KEY`, and in the SDK client
that sends the calls (against the emulator, in process or over HTTP). Then everything the
project produces is collected — cell outputs in every MIME type, stderr, error messages,
`repr`s, the panel's HTML and widget state, log records at DEBUG, saved sessions, exports,
the emulator's state endpoint and its own output, and a notebook (quickstart.ipynb, then
every magic) executed by nbclient in a real kernel with the key set and PCACHE_OFFLINE=1 — and
searched for the key. The key must appear nowhere.
"""

from __future__ import annotations

import json
import logging
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from nbclient import NotebookClient

import pcache_magic
from pcache_magic.emulator import Emulator
from pcache_magic.session import store
from pcache_magic.session.session import Session
from pcache_magic.session.transport import Connection
from pcache_magic.view.render import render_session, session_html

from _helpers import EmulatorProcess, loaded_magics, spawn_emulator

SENTINEL = "sk-ant-SENTINEL-5f1c9e77-never-shown-anywhere"
#: Parts of the key that would give it away even if it were cut, wrapped or re-encoded.
FRAGMENTS = (SENTINEL, "SENTINEL-5f1c9e77", "5f1c9e77-never", "never-shown-anywhere")
ROOT = Path(__file__).resolve().parents[1]
LONG = " ".join(f"Rule {i}: review the code carefully and explain each finding." for i in range(160))


def leaks(texts: dict[str, str]) -> list[str]:
    """The names of the artifacts that contain the key, or a telling part of it."""
    return sorted(name for name, text in texts.items() if any(f in text for f in FRAGMENTS))


def files_under(folder: Path) -> dict[str, str]:
    return {
        f"file {p.relative_to(folder)}": p.read_bytes().decode("utf-8", "replace")
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# -- a pcache-emulator process -------------------------------------------------------------------
def stop(server: EmulatorProcess) -> str:
    """Stop it (Ctrl-C) and return everything it printed."""
    _, out, err = server.stop()
    return f"{server.line}\n{out}{err}"


def http(
    url: str, payload: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None
) -> str:
    """One request to the emulator; the status, headers and body as text, errors included."""
    data = raw if raw is not None else (json.dumps(payload).encode() if payload is not None else None)
    request = urllib.request.Request(
        url, data=data, headers={"content-type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return f"{response.status} {dict(response.headers)} {response.read().decode()}"
    except urllib.error.HTTPError as error:
        return f"{error.code} {dict(error.headers)} {error.read().decode()}"


# -- the magics -------------------------------------------------------------------------------------
@pytest.fixture
def ip(
    offline_shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[InteractiveShell]:
    """The offline shell (conftest.py) with the key set and files to attach; each test loads pcache_magic."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", SENTINEL)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    (tmp_path / "notes.md").write_text("# Notes\n\nThe service moves money; review carefully.\n")
    (tmp_path / "bin.dat").write_bytes(b"\x00\x01binary")
    yield offline_shell
    offline_shell.run_line_magic("unload_ext", "pcache_magic")


#: Every magic, every export and a few mistakes. "INJECT x" injects a fault; "!" marks a cell that must fail.
CELLS = [
    f"%%claude_system --cache 1h\n{LONG}",
    "%%claude_context --cache 1h --name notes --file notes.md\nThe notes:",
    "def ping() -> str:\n    'Ping.'\n    return 'pong'\n",
    "%%claude_tools --run\nping",
    "%%claude\nWhich functions have no tests?",
    "%%claude --no-stream --name second\nUse ping now",
    "%claude_prewarm",
    "%claude_panel",
    "%claude_clock",
    "%claude_session show",
    "%claude_session save saved.json",
    "%claude_session export python",
    "%claude_session export python replay.py",
    "%claude_session export json",
    "%claude_session export json export.json",
    "%claude_session load saved.json",
    "%config ClaudeMagics",
    "print(repr(current_session()), repr(current_session().connection), current_session().calls[-1])",
    "current_session()",
    "current_session().calls[0]",
    # failures: every one must be told without the key
    "INJECT 401",
    "!%%claude\nAre you there?",
    "INJECT 429",
    "!%%claude\nAre you there?",
    "INJECT 500",
    "!%%claude --no-stream\nAre you there?",
    "INJECT disconnect",
    "!%%claude\nAre you there?",
    "!%claude_context --file bin.dat",
    "!%%claude --model claude-sonet-4-5\nHi",
    "!%claude_session load notes.md",
    "import os",
    "!%%claude\nMy settings: {os.environ}",  # a variable that holds the key is not expanded
    f"!%%claude --no-expand\nMy key is {SENTINEL}",  # nor is a pasted key ever sent
    "!%%claude_tools\nnot valid at all(",
    "%claude_session show",
]


def run_everything(ip: InteractiveShell, inject: Any) -> dict[str, str]:
    """Run CELLS; every output in every MIME type, every error, by cell."""
    found: dict[str, str] = {}
    ip.user_ns["current_session"] = pcache_magic.current_session
    for number, cell in enumerate(CELLS):
        if cell.startswith("INJECT "):
            word = cell.split()[1]
            inject(int(word) if word.isdigit() else word)
            continue
        must_fail = cell.startswith("!")
        with capture_output() as out:
            result = ip.run_cell(cell.removeprefix("!"))
        error = result.error_in_exec or result.error_before_exec
        assert (error is not None) == must_fail, (cell, error, out.stdout[-500:])
        rich = [json.dumps(o.data, default=str) + json.dumps(o.metadata, default=str) for o in out.outputs]
        found[f"cell {number} {cell[:30]!r}"] = "\n".join(
            [out.stdout, out.stderr, repr(error), str(error), *rich]
        )
    return found


def widget_states(widget: Any) -> str:
    """The state every widget of the panel would send to the browser."""
    states = [json.dumps(widget.get_state(), default=str)]
    for child in getattr(widget, "children", ()):
        states.append(widget_states(child))
    return "\n".join(states)


def everything_else(ip: InteractiveShell, emu: Emulator | None) -> dict[str, str]:
    session = pcache_magic.current_session()
    magics = loaded_magics(ip)
    panel = magics._panel
    assert panel is not None
    found = {
        "repr(session)": repr(session),
        "repr(connection)": repr(session.connection),
        "repr(magics)": repr(magics) + json.dumps(magics.trait_values(), default=str),
        "repr(clients)": repr(session.client) + repr(session.async_client),
        "session html": session_html(session),
        "render_session": render_session(session),
        "panel html and repr": panel._repr_html_() + repr(panel),
        "panel widget state": widget_states(panel),
        "call records": "\n".join(c.model_dump_json() + repr(c) + str(c) for c in session.calls),
        "store.dumps": store.dumps(session),
        "export json": store.export_json(session),
        "export python": store.export_python(session),
    }
    if emu is not None:
        found["emulator state"] = json.dumps(emu.state()) + repr(emu)
    return found


def test_the_scan_sees_a_key_when_there_is_one(
    ip: InteractiveShell, caplog: pytest.LogCaptureFixture
) -> None:
    """A positive control: the same capture finds the key in stdout, in a log, in a display."""
    with capture_output():
        ip.run_line_magic("load_ext", "pcache_magic")
    ip.user_ns["key"] = SENTINEL
    for code in (
        "print(key[:30])",
        "import logging; logging.getLogger('x').warning('key %s', key)",
        "from IPython.display import HTML; HTML('<b>' + key + '</b>')",
    ):
        with capture_output() as out:
            ip.run_cell(code).raise_error()
        captured = out.stdout + "".join(json.dumps(o.data) for o in out.outputs) + caplog.text
        assert leaks({"control": captured}) == ["control"]


@pytest.mark.parametrize("mode", ["offline", "live"])
def test_a_key_in_the_client_and_the_environment_shows_nowhere(
    ip: InteractiveShell, caplog: pytest.LogCaptureFixture, tmp_path: Path, mode: Any
) -> None:
    """The SDK client carries the key (as live), and talks to an in-process emulator."""
    caplog.set_level(logging.DEBUG)
    emu = Emulator()
    with capture_output() as loading:
        ip.run_line_magic("load_ext", "pcache_magic")
    client = emu.client(api_key=SENTINEL, max_retries=1)
    assert client.api_key == SENTINEL  # the key really is in play
    connection = Connection(client, emu.async_client(api_key=SENTINEL), mode, emu.now, emulator=emu)
    magics = loaded_magics(ip)
    magics.use(Session(connection=connection))

    def inject(fault: Any) -> None:
        emu.inject(fault, times=3, retry_after=0.001)

    found = {"load_ext": loading.stdout + loading.stderr}
    found.update(run_everything(ip, inject))
    emu.faults.clear()
    found.update(everything_else(ip, emu))
    found["log records"] = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    found.update(files_under(tmp_path))
    # what was run really ran: calls made (and failed), files written, logs captured
    session = pcache_magic.current_session()
    assert sum(c.ok for c in session.calls) >= 4 and sum(not c.ok for c in session.calls) >= 4
    assert {"file saved.json", "file replay.py", "file export.json"} <= set(found)
    assert "The API key was rejected (401); check ANTHROPIC_API_KEY." in "".join(found.values())
    assert "HTTP Request: POST" in found["log records"]
    assert leaks(found) == []


def test_server_mode_never_sends_the_key(
    ip: InteractiveShell, caplog: pytest.LogCaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`PCACHE_EMULATOR_URL` + `ANTHROPIC_API_KEY`: the key stays home, the server never sees it."""
    caplog.set_level(logging.DEBUG)
    with spawn_emulator("--host", "127.0.0.1") as server:
        monkeypatch.setenv("PCACHE_EMULATOR_URL", server.url)
        with capture_output() as loading:
            ip.run_line_magic("load_ext", "pcache_magic")
        session = pcache_magic.current_session()
        assert session.connection is not None and session.connection.mode == "server"
        assert session.client is not None and SENTINEL not in (session.client.api_key or "")

        def inject(fault: Any) -> None:
            http(f"{server.url}/_emulator/inject", {"fault": fault, "times": 3, "retry_after": 0.001})

        found = {"load_ext": loading.stdout + loading.stderr}
        found.update(run_everything(ip, inject))
        http(f"{server.url}/_emulator/reset", {})
        found.update(everything_else(ip, None))
        found["emulator state"] = http(f"{server.url}/_emulator/state")
        found["log records"] = caplog.text
        found.update(files_under(tmp_path))
        found["emulator output"] = stop(server)
    assert sum(c.ok for c in session.calls) >= 4
    assert leaks(found) == []


def test_the_emulator_never_echoes_a_key_it_receives() -> None:
    """Any client may send the key to `pcache-emulator`: no answer, state or log line holds it."""
    import anthropic

    found: dict[str, str] = {}
    with spawn_emulator("--host", "127.0.0.1") as server:
        client = anthropic.Anthropic(base_url=server.url, api_key=SENTINEL, max_retries=0, timeout=20)
        params: dict[str, Any] = {
            "model": "claude-sonnet-4-6",
            "max_tokens": 32,
            "system": [{"type": "text", "text": LONG * 2, "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": "Hello"}],
        }
        found["create"] = client.messages.create(**params).model_dump_json()
        with client.messages.stream(**params) as stream:
            found["stream"] = "".join(e.model_dump_json() for e in stream)
        found["count"] = client.messages.count_tokens(
            model=params["model"], messages=params["messages"]
        ).model_dump_json()
        for fault in (429, 500, 529, 401):
            http(f"{server.url}/_emulator/inject", {"fault": fault, "retry_after": 0.001})
            try:
                client.messages.create(**params)
            except anthropic.APIStatusError as error:
                found[f"fault {fault}"] = f"{error} {error.body} {dict(error.response.headers)}"
        http(f"{server.url}/_emulator/inject", {"fault": "disconnect"})
        try:
            with client.messages.stream(**params) as stream:
                found["disconnect"] = "".join(e.model_dump_json() for e in stream)
        except Exception as error:
            found["disconnect"] = f"{type(error).__name__}: {error!r}"
        for auth in ({"x-api-key": SENTINEL}, {"authorization": f"Bearer {SENTINEL}"}):
            found[f"bad json {auth}"] = http(f"{server.url}/v1/messages", headers=auth, raw=b"{not json")
            found[f"bad body {auth}"] = http(f"{server.url}/v1/messages", {"model": 7}, headers=auth)
            found[f"unknown model {auth}"] = http(f"{server.url}/v1/models/claude-x", headers=auth)
            found[f"not found {auth}"] = http(f"{server.url}/v2/{SENTINEL}", headers=auth)
        found["state"] = http(f"{server.url}/_emulator/state")
        found["advance"] = http(f"{server.url}/_emulator/advance", {"seconds": 60})
        found["inject"] = http(f"{server.url}/_emulator/inject", {"fault": 500, "times": 1})
        found["reset"] = http(f"{server.url}/_emulator/reset", {})
        found["server output"] = stop(server)
    assert set(found) >= {"fault 429", "fault 500", "fault 529", "fault 401"}
    # the 404 for a path that holds the key is the only place it could be quoted: check that one is honest
    leaked = leaks(found)
    assert [name for name in leaked if not name.startswith("not found")] == []
    for name in leaked:  # the path the caller typed, echoed back as the API does, is not a key leak
        assert found[name].count(SENTINEL) == 1 and f"/v2/{SENTINEL}" in found[name]


# -- the notebooks ---------------------------------------------------------------------------------
#: Cells run after the quickstart notebook's own, in the same kernel: every magic, every export, a failure.
SCAN_CELLS = [
    f"import os\nprint('key in the kernel:', len(os.environ['ANTHROPIC_API_KEY']) == {len(SENTINEL)})",
    "%claude_session reset",
    f"%%claude_system --cache 1h\n{LONG}",
    "%%claude_context --cache 1h --name notes --file notes.md\nThe notes:",
    "%%claude\nWhich functions have no tests?",
    "%%claude --no-stream\nAnd the longest?",
    "%claude_prewarm",
    "%claude_panel",
    "%claude_clock advance 1m",
    "%claude_clock",
    "%claude_session show",
    "%claude_session save saved.json",
    "%claude_session export python replay.py",
    "%claude_session export json export.json",
    "%claude_session export python",
    "%config ClaudeMagics",
    "from pcache_magic import current_session\ncurrent_session()",
    "print(repr(current_session()), current_session().connection, current_session().calls[-1])",
    "current_session().connection.emulator.inject(529, times=3, retry_after=0.001)",
    "%%claude\nThis one fails.",
    "%claude_session load notes.md",
    "import json\nprint(json.dumps(current_session().connection.emulator.state()))",
]
MUST_FAIL = ("%%claude\nThis one fails.", "%claude_session load notes.md")


def test_a_notebook_run_with_the_key_shows_it_nowhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """quickstart.ipynb, then the scan cells, in a real kernel with the key set and PCACHE_OFFLINE=1.

    Searched: the executed notebook (every output, and the widget state nbclient stores), every
    file the run wrote beside it, and the emulator's state as the last cell prints it.
    """
    folder = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    (folder / "notes.md").write_text("# Notes\n\nThe service moves money; review carefully.\n")
    nb = nbformat.read(folder / "quickstart.ipynb", as_version=4)
    own = len(nb.cells)
    for source in SCAN_CELLS:
        cell = nbformat.v4.new_code_cell(source)
        if source in MUST_FAIL:
            cell.metadata["tags"] = ["raises-exception"]
        nb.cells.append(cell)
    monkeypatch.setenv("ANTHROPIC_API_KEY", SENTINEL)
    monkeypatch.setenv("PCACHE_OFFLINE", "1")
    monkeypatch.delenv("PCACHE_EMULATOR_URL", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    ).execute()
    executed = nbformat.writes(nb)
    found = {"executed notebook": executed, **files_under(folder)}
    # what was run really ran: the quickstart's own outputs, the files, the failure, the widgets
    assert all(c.get("outputs") for c in nb.cells[:own] if c.cell_type == "code" and c.source.strip())
    assert {"saved.json", "replay.py", "export.json"} <= {p.name for p in folder.iterdir()}
    assert "key in the kernel: True" in executed  # the key was there to leak
    assert "offline: calls go to the built-in emulator" in executed
    assert "The API is overloaded (529)" in executed
    assert "application/vnd.jupyter.widget-state+json" in executed
    state = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert json.loads(state)["entries"]  # the emulator's state, printed by the last cell
    found["emulator state"] = state
    assert leaks(found) == []
