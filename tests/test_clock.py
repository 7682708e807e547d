"""`ipython/clock.py` and `%claude_clock`: the durations people write, one clear line for whatever
goes wrong.

The duration grammar is `cells.parse_duration` (test_cells.py), the report `output.clock_report`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import pcache_magic
from pcache_magic.core.fmt import TEXT_WIDTH
from pcache_magic.emulator.engine import START_TIME

LONG = " ".join(f"Rule {i}: review every function for missing tests and unclear names." for i in range(120))


def clock(ip: InteractiveShell, line: str) -> str:
    with capture_output() as out:
        ip.run_cell(f"%claude_clock {line}").raise_error()
    return out.stdout


def refused(ip: InteractiveShell, line: str) -> str:
    """A UsageError (IPython shows it as one line, no traceback); the clock has not moved."""
    before = pcache_magic.current_session().now()
    with capture_output():
        result = ip.run_cell(f"%claude_clock {line}")
    error = result.error_in_exec
    assert isinstance(error, UsageError), result
    assert pcache_magic.current_session().now() == before
    assert "\n" not in str(error)
    return str(error)


@pytest.mark.parametrize(
    ("line", "seconds", "shown"),
    [
        ("advance 90", 90, "1m 30s"),
        ("advance 90s", 90, "1m 30s"),
        ("advance 90m", 5400, "1h 30m"),
        ("advance 90 minutes", 5400, "1h 30m"),
        ("advance 1h30m", 5400, "1h 30m"),
        ("advance 2h", 7200, "2h 00m"),
        ("advance 1d", 86400, "24h 00m"),
    ],
)
def test_advance_takes_the_durations_people_write(
    ip: InteractiveShell, line: str, seconds: int, shown: str
) -> None:
    out = clock(ip, line)
    assert f"Moved the emulator clock on by {shown}." in out
    assert pcache_magic.current_session().now() == START_TIME + seconds


def test_the_report_says_offline_time_stands_still_and_how_to_move_it(ip: InteractiveShell) -> None:
    ip.run_cell(f"%%claude_system --cache\n{LONG}").raise_error()
    with capture_output():
        ip.run_cell("%%claude\nHello").raise_error()
    out = clock(ip, "")
    assert "expires in 5m 00s" in out and "The emulator holds 1 live entry." in out
    assert "Offline, time stands still until you move it: %claude_clock advance 5m" in out
    out = clock(ip, "advance 2 minutes")
    assert "expires in 3m 00s" in out


def test_the_report_fits_a_notebook_s_text_width(ip: InteractiveShell) -> None:
    ip.run_cell(
        f"%%claude_system --cache --name the-rules-of-the-code-review-for-this-project\n{LONG}"
    ).raise_error()
    with capture_output():
        ip.run_cell("%%claude\nHello").raise_error()
    for out in (clock(ip, ""), clock(ip, "advance 90s")):
        assert all(len(line) <= TEXT_WIDTH for line in out.splitlines()), out
        flat = " ".join(out.split())  # wrapped between words: read as one, it is the report
        assert "the-rules-of-the-code-review-for-this-project: ~" in flat and ", 5m, expires in " in flat
        assert (
            "Offline, time stands still until you move it: %claude_clock advance 5m (or 90s, 1h30m, 2h)."
            in flat
        )


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("advance 6x", "Cannot read the duration '6x'; write e.g. 6m, 90s, 1h30m, 300."),
        ("advance 90 parsecs", "Cannot read the duration '90 parsecs'; write e.g. 6m, 90s, 1h30m, 300."),
        ("advance", "Cannot read the duration ''; write e.g. 6m, 90s, 1h30m, 300."),
        ("advance -5", "must be a finite number of seconds >= 0"),
        ("advance 11 years", "Cannot read the duration '11 years'"),
        ("advance 4000d", "The duration '4000d' is too long: at most 3,650 days at a time."),
        ("forward 90 minutes", "Did you mean %claude_clock advance 90 minutes?"),
        ("--advance 5m", "--advance is not a flag: write %claude_clock advance 5m"),
        ("--advance=90s", "--advance is not a flag: write %claude_clock advance 90s"),
    ],
)
def test_nonsense_gets_one_clear_line(ip: InteractiveShell, line: str, words: str) -> None:
    assert words in refused(ip, line)


class _Empty(BaseHTTPRequestHandler):
    """Answers `{}` to every request: a server at PCACHE_EMULATOR_URL that is not a pcache-emulator."""

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = b"{}"
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:  # quiet
        pass


@pytest.fixture
def empty_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Empty)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_a_server_that_answers_nothing_useful_gets_one_line(
    offline_shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch, empty_server: str
) -> None:
    monkeypatch.setenv("PCACHE_EMULATOR_URL", empty_server)
    with capture_output():
        offline_shell.run_line_magic("load_ext", "pcache_magic")
    try:
        assert pcache_magic.current_session().connection.mode == "server"  # type: ignore[union-attr]
        with capture_output():
            result = offline_shell.run_cell("%claude_clock advance 5m")
        error = result.error_in_exec
        assert isinstance(error, UsageError), result  # not a KeyError traceback
        assert str(error) == (
            f"{empty_server}/_emulator/advance did not answer like a pcache-emulator (no time in its "
            "answer); check PCACHE_EMULATOR_URL. The clock may not have moved."
        )
    finally:
        offline_shell.run_line_magic("unload_ext", "pcache_magic")
