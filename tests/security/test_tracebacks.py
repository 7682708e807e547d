"""No secret in any traceback, in every `%xmode`: the configuration and call failures a user meets.

IPython's Verbose mode prints every frame's local variables, and the SDK's frames hold the key, so
a failure must reach the user as one line raised from frames that hold none.  A sentinel key is set,
then for each xmode x {malformed base URL, unreachable host, 401, timeout} the extension is loaded
and a call made; everything printed or displayed, and a notebook saved from a real kernel, is
searched for the key.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nbformat
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from nbclient import NotebookClient

SENTINEL = "sk-ant-SENTINEL-0b7e42d1-never-in-a-traceback"
FRAGMENTS = (SENTINEL, "SENTINEL-0b7e42d1", "0b7e42d1-never", "never-in-a-traceback")
XMODES = ("Plain", "Context", "Verbose", "Minimal")


class _Unauthorised(BaseHTTPRequestHandler):
    """The API's answer to a wrong key (a stand-in for the real API, which is not reachable here);
    under /echo/, a careless endpoint's 400 that quotes the key it was sent."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path.startswith("/echo/"):
            status, kind, message = (
                400,
                "invalid_request_error",
                f"bad key: {self.headers.get('x-api-key') or self.headers.get('authorization')}",
            )
        else:
            status, kind, message = 401, "authentication_error", "invalid x-api-key"
        body = json.dumps({"type": "error", "error": {"type": kind, "message": message}})
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def urls() -> Iterator[dict[str, str]]:
    """A base URL per failure: malformed, nobody listening, 401, an echo of the key, never answering."""
    api = ThreadingHTTPServer(("127.0.0.1", 0), _Unauthorised)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # accepts connections (the kernel queues them) and never answers
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    try:
        yield {
            "malformed": "http://[::1",
            "not http": "ht!tp://x",
            "unreachable": f"http://127.0.0.1:{closed.getsockname()[1]}",
            "401": f"http://127.0.0.1:{api.server_address[1]}",
            "echoes the key": f"http://127.0.0.1:{api.server_address[1]}/echo",
            "timeout": f"http://127.0.0.1:{silent.getsockname()[1]}",
        }
    finally:
        api.shutdown()
        silent.close()
        closed.close()


def _leaks(text: str) -> list[str]:
    return [f for f in FRAGMENTS if f in text]


@pytest.fixture
def live_shell(
    shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[InteractiveShell]:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SENTINEL)
    for name in ("PCACHE_OFFLINE", "PCACHE_EMULATOR_URL", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    yield shell
    shell.run_line_magic("unload_ext", "pcache_magic")
    shell.run_line_magic("xmode", "Context")


@pytest.mark.parametrize("xmode", XMODES)
@pytest.mark.parametrize("case", ["malformed", "not http", "unreachable", "401", "timeout", "echoes the key"])
def test_every_failure_is_one_line_without_the_key(
    live_shell: InteractiveShell, urls: dict[str, str], monkeypatch: pytest.MonkeyPatch, case: str, xmode: str
) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", urls[case])
    live_shell.run_line_magic("xmode", xmode)
    with capture_output() as out:
        loaded = live_shell.run_cell("%load_ext pcache_magic")
        live_shell.run_cell("%config ClaudeMagics.max_retries = 0\n%config ClaudeMagics.timeout = 0.5")
        called = live_shell.run_cell("%%claude\nAre you there?")
    shown = out.stdout + out.stderr + "".join(json.dumps(o.data) for o in out.outputs)
    if case == "echoes the key":
        assert "bad key: Bearer [API key]" in shown  # the endpoint did quote it, blotted out
        live_shell.run_cell("%claude_session save echo.json")
        shown += Path("echo.json").read_text()
    assert _leaks(shown) == [], shown
    failed = loaded if case in ("malformed", "not http") else called
    assert failed.error_in_exec is not None
    assert "Traceback" not in shown and "ANTHROPIC_API_KEY=" not in shown
    if case in ("malformed", "not http"):
        assert "ANTHROPIC_BASE_URL" in shown and "fix or unset it" in shown


def test_a_key_a_header_cannot_carry_is_refused_without_showing_it(
    live_shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SENTINEL + "\n")
    live_shell.run_line_magic("xmode", "Verbose")
    with capture_output() as out:
        result = live_shell.run_cell("%load_ext pcache_magic")
    assert result.error_in_exec is not None
    assert "characters an HTTP header cannot carry" in out.stdout + out.stderr
    assert _leaks(out.stdout + out.stderr) == []


def test_a_saved_notebook_holds_no_key_after_verbose_failures(
    tmp_path: Path, urls: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a real kernel: Verbose tracebacks, a bad base URL at load, then a 401 on a call; saved, searched."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", SENTINEL)
    for name in ("PCACHE_OFFLINE", "PCACHE_EMULATOR_URL"):
        monkeypatch.delenv(name, raising=False)
    cells = [
        "%xmode Verbose",
        f"import os\nos.environ['ANTHROPIC_BASE_URL'] = {urls['malformed']!r}",
        "%load_ext pcache_magic",
        f"os.environ['ANTHROPIC_BASE_URL'] = {urls['401']!r}",
        "%load_ext pcache_magic",
        "%config ClaudeMagics.max_retries = 0",
        "%%claude\nAre you there?",
        "from pcache_magic import Session\nSession(model='claude-sonnet-5').ask('hi', stream=False)",
        # the control: Verbose does print a frame's variables, so the scan would see a key there
        "def call(key):\n    return len(key) / 0\ncall(os.environ['ANTHROPIC_API_KEY'])",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    for i in (2, 6, 7, 8):
        nb.cells[i].metadata["tags"] = ["raises-exception"]
    NotebookClient(
        nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    nbformat.write(nb, tmp_path / "saved.ipynb")
    saved = (tmp_path / "saved.ipynb").read_text()
    assert "fix or unset it" in saved and "authentication" in saved.lower()
    assert _leaks(json.dumps(nb.cells[-1].outputs)), "the control cell should show the key"
    assert _leaks(json.dumps([c.outputs for c in nb.cells[:-1]])) == []
