"""settings.py: the traits refuse what cannot work (in one line), and the file limits reach the magics.

`%config` answers a refused value in one logged line (tests/test_bad_input.py runs those
through the shell); here the traits are set directly, which raises the same `TraitError`.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from traitlets import TraitError
from traitlets.config import Config

import pcache_magic
from pcache_magic.analysis.call_log import call_log
from pcache_magic.emulator import Emulator
from pcache_magic.ipython.files import MIB, Limits
from pcache_magic.ipython.magics import ClaudeMagics
from pcache_magic.session.session import Session
from pcache_magic.session.transport import EMULATOR_URL_ENV, SERVER_TIMEOUT_S, connect

from _helpers import MODEL


@pytest.fixture
def magics(session: Session) -> ClaudeMagics:
    return ClaudeMagics(session=session)


def test_the_file_limits_default_to_the_documented_ones(magics: ClaudeMagics) -> None:
    assert (magics.max_files, magics.max_files_mb) == (1000, 32)
    assert magics.file_limits() == Limits() == Limits(total_bytes=32 * MIB, max_files=1000)
    magics.max_files, magics.max_files_mb = 5, 64
    assert magics.file_limits() == Limits(total_bytes=64 * MIB, max_files=5)


REFUSED = [
    ("max_tokens", 0, r"^ClaudeMagics\.max_tokens must be at least 1, not 0 \(%claude_prewarm fills"),
    ("max_tokens", -1, r"^ClaudeMagics\.max_tokens must be at least 1, not -1 "),
    (
        "timeout",
        math.nan,
        r"^ClaudeMagics\.timeout must be a number of seconds from 0\.001 to 86,400, or None",
    ),
    ("timeout", math.inf, r"should not be greater than 86400\.0, but a value of inf was specified"),
    ("timeout", -math.inf, r"should not be less than 0\.001, but a value of -inf was specified"),
    ("timeout", 1e300, r"should not be greater than 86400\.0"),
    ("timeout", 0.0, r"should not be less than 0\.001"),
    ("max_retries", -1, r"'max_retries' trait .* should not be less than 0"),
    ("max_tool_rounds", -1, r"'max_tool_rounds' trait .* should not be less than 0"),
    ("max_files", 0, r"'max_files' trait .* should not be less than 1"),
    ("max_files_mb", 0, r"'max_files_mb' trait .* should not be less than 1"),
    ("default_ttl", "2h", r"expected any of \['5m', '1h'\], not the str '2h'"),
    ("cache_mode", "sometimes", r"expected any of \['none', 'last', 'automatic', 'auto'\]"),
    ("model", "claude-sonet-4-5", r"^Unknown model 'claude-sonet-4-5'\. Did you mean 'claude-sonnet-4-5'\?"),
]


@pytest.mark.parametrize(("name", "value", "message"), REFUSED, ids=[f"{n}={v}" for n, v, _ in REFUSED])
def test_refused_values_say_why_and_change_nothing(
    magics: ClaudeMagics, session: Session, name: str, value: Any, message: str
) -> None:
    before = (
        getattr(magics, name),
        session.model,
        session.max_tokens,
        session.default_ttl,
        session.cache_mode,
    )
    with pytest.raises(TraitError, match=message) as info:
        setattr(magics, name, value)
    assert "\n" not in str(info.value)
    after = (
        getattr(magics, name),
        session.model,
        session.max_tokens,
        session.default_ttl,
        session.cache_mode,
    )
    assert after == before


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_tokens", 1),
        ("timeout", 0.001),
        ("timeout", 86_400.0),
        ("timeout", None),
        ("max_tool_rounds", 0),
        ("max_retries", 0),
        ("max_files", 1),
        ("max_files_mb", 10_000),
    ],
)
def test_the_edges_are_accepted(magics: ClaudeMagics, name: str, value: Any) -> None:
    setattr(magics, name, value)
    assert getattr(magics, name) == value


def test_max_tokens_and_timeout_reach_the_session(magics: ClaudeMagics, session: Session) -> None:
    magics.max_tokens = 1
    magics.timeout = 12.5
    assert session.max_tokens == 1
    assert session.client is not None and session.client.timeout == 12.5


def test_a_bad_config_value_is_refused_at_construction(session: Session) -> None:
    with pytest.raises(TraitError, match="max_tokens must be at least 1, not 0"):
        ClaudeMagics(session=session, config=Config({"ClaudeMagics": {"max_tokens": 0}}))
    with pytest.raises(TraitError, match="timeout must be a number of seconds"):
        ClaudeMagics(session=session, config=Config({"ClaudeMagics": {"timeout": math.nan}}))


def test_a_session_made_in_python_is_shown_as_it_is(magics: ClaudeMagics, emu: Emulator) -> None:
    """Session(max_tokens=0) is legal in Python; the trait mirrors it and a %config mends it."""
    odd = Session(model=MODEL, max_tokens=0, connection=connect(emulator=emu))
    magics.use(odd)
    assert magics.max_tokens == 0
    magics.max_tokens = 300
    assert odd.max_tokens == 300
    with pytest.raises(TraitError):
        magics.max_tokens = 0


def test_a_nan_timeout_in_the_config_does_not_load_the_extension(
    shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PCACHE_OFFLINE", "1")
    shell.config.ClaudeMagics.timeout = math.nan
    try:
        with capture_output():
            result = shell.run_cell("%load_ext pcache_magic")
        assert isinstance(result.error_in_exec, UsageError)
        assert str(result.error_in_exec).startswith(
            "pcache_magic was not loaded: ClaudeMagics.timeout must be"
        )
        assert "ClaudeMagics" not in shell.magics_manager.registry
    finally:
        shell.config.pop("ClaudeMagics", None)
        shell.extension_manager.loaded.discard("pcache_magic")


def test_the_cells_total_follows_the_setting(ip: InteractiveShell, tmp_path: Path) -> None:
    """Lowered, a cell's files are refused whole; raised again, the same cell is accepted."""
    (tmp_path / "notes.md").write_text("note " * 300_000)  # 1.5 MB
    session = pcache_magic.current_session()
    with capture_output():
        ip.run_cell("%config ClaudeMagics.max_files_mb = 1").raise_error()
        result = ip.run_cell("%claude_context --name notes --file notes.md")
    assert str(result.error_in_exec) == (
        "The 1 files come to 1.5 MB, over the 1 MB one cell may read; "
        "name fewer files or raise %config ClaudeMagics.max_files_mb."
    )
    assert session.conversation.names() == []
    with capture_output():
        ip.run_cell("%config ClaudeMagics.max_files_mb = 2").raise_error()
        ip.run_cell("%claude_context --name notes --file notes.md").raise_error()
    assert session.conversation.names() == ["notes"]


@pytest.mark.parametrize("made", [False, True], ids=["before the session", "with a session"])
def test_a_switch_that_fails_puts_the_setting_back(monkeypatch: pytest.MonkeyPatch, made: bool) -> None:
    # A typo in the environment refuses the switch: the setting shown stays the one calls go out with.
    for name in ("PCACHE_OFFLINE", "PCACHE_EMULATOR_URL", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    magics = ClaudeMagics()  # no key: the built-in emulator
    before = magics.session if made else None
    monkeypatch.setenv("PCACHE_EMULATOR_URL", "http://[::1")
    with pytest.raises(ValueError, match="PCACHE_EMULATOR_URL is not a valid URL"), capture_output():
        magics.offline = True
    assert magics.offline is False
    if made:
        assert magics.session is before
    else:  # and a retry policy set before the session, whose new connection fails, is put back too
        with pytest.raises(ValueError, match="PCACHE_EMULATOR_URL"), capture_output():
            magics.max_retries = 5
        assert magics.max_retries != 5
    monkeypatch.setenv("PCACHE_EMULATOR_URL", "http://127.0.0.1:9")
    with capture_output():
        magics.offline = True  # set again once the environment is fixed: it is applied
    assert magics.offline is True
    assert magics.session.connection is not None and magics.session.connection.mode == "server"


def test_threads_asking_for_the_session_at_once_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PCACHE_OFFLINE", "1")
    magics = ClaudeMagics()
    start = threading.Barrier(8)
    seen: list[Session] = []

    def ask() -> None:
        start.wait()
        seen.append(magics.session)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 8 and all(s is magics.session for s in seen)


def test_the_post_cell_hook_never_fails_a_cell(session: Session) -> None:
    magics = ClaudeMagics(session=session)
    session.ask("Hello?", stream=False)
    magics.explain_new_calls()
    assert not call_log(session).behind(session.calls)
    session._calls = 5  # type: ignore[assignment]  # junk where the calls were
    magics.explain_new_calls()  # says nothing, raises nothing


def test_a_refused_config_value_does_not_stop_the_next_load(
    shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PCACHE_OFFLINE", "1")
    try:
        with capture_output():
            shell.run_cell("%load_ext pcache_magic").raise_error()
            shell.run_cell("%config ClaudeMagics.max_tokens = 500").raise_error()
            shell.run_cell("%config ClaudeMagics.max_tokens = 0").raise_error()  # refused, one line
            shell.run_cell("%unload_ext pcache_magic").raise_error()
            shell.run_cell("%load_ext pcache_magic").raise_error()  # was: "not loaded: ... max_tokens"
        assert "must be at least 1" in caplog.text  # IPython logs a refused %config
        assert shell.magics_manager.registry["ClaudeMagics"].max_tokens == 500  # the value in force
    finally:
        with capture_output():
            shell.run_cell("%unload_ext pcache_magic")
        shell.config.pop("ClaudeMagics", None)
        shell.extension_manager.loaded.discard("pcache_magic")


def test_switching_offline_when_calls_already_go_to_the_emulator_keeps_the_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("PCACHE_OFFLINE", "PCACHE_EMULATOR_URL", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    magics = ClaudeMagics()  # no key: offline already
    session = magics.session
    session.ask("Hello?", stream=False)
    with capture_output() as out:
        magics.offline = True
    assert magics.session is session and len(session.calls) == 1  # a handle taken before stays good
    assert out.stdout.startswith("pcache_magic: offline: calls go to the built-in emulator")


def test_no_magic_error_repeats_a_key_typed_where_a_name_goes(
    ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model, a block name, a path: each quoted back by its error, the key blotted out."""
    key = "sk-ant-api03-" + "abcdefghij" * 4
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    named = "That block name holds the API key; give the block another name (--name)."
    expected = {
        f"%%claude --model {key}\nhi": "Unknown model '[API key]'.",
        f"%%claude --name {key}\nhi": named,
        f"%%claude_context --name {key}\nx": named,
        f"%claude_session drop {key}": "No block named '[API key]'; there are no blocks yet.",
        f"%claude_session load /tmp/{key}": "/tmp/[API key]: no such file.",
        f"%claude_session export json /nonexistent/{key}/x": "/nonexistent/[API key]/x: the folder "
        "/nonexistent/[API key] does not exist.",
    }
    for cell, message in expected.items():
        with capture_output() as out:
            result = ip.run_cell(cell)
        assert isinstance(result.error_in_exec, UsageError)
        assert str(result.error_in_exec).startswith(message)
        assert key not in out.stdout + out.stderr
    assert pcache_magic.current_session().conversation.blocks == []
    for cell in (f"%%claude --model {key[:20]} {key[20:]}\nhi", f"%claude_prewarm {key[:30]} {key[30:]}"):
        with capture_output() as out:  # a key pasted with a space in it: "unrecognized arguments"
            result = ip.run_cell(cell)
        said = str(result.error_in_exec)
        assert said.startswith("unrecognized arguments: ") and "[part of the API key]" in said, said
        assert not any(key[i : i + 8] in said + out.stdout + out.stderr for i in range(len(key) - 7))
    with capture_output():  # an error without the key is raised as it was
        result = ip.run_cell("%claude_session drop nothing")
    assert str(result.error_in_exec) == "No block named 'nothing'; there are no blocks yet."


#: A key with no repeats (each piece its own); `A B` is it split by a space, `R` its secret part.
KEY = "sk-ant-api03-u8jzPde0IgxLd6GncfBAepfJBd0Kh8oOOL8dKLzd"
A, B, R = KEY[:26], KEY[26:], KEY[13:]


def pieces(text: str) -> list[str]:
    return [KEY[i : i + 8] for i in range(13, len(KEY) - 7) if KEY[i : i + 8] in text]


def test_no_magic_error_repeats_a_piece_of_the_key_glued_to_what_was_typed(
    ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ "5<key>", "x<key>", a path around it, one character wrong: a word sharing eight characters
    in a row with the key goes whole; a block name holding a piece of it is refused."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    for cell in (
        f"%claude_explain 5{R}",
        f"%claude_clock advance 5m{R}",
        f"%%claude --model=x{R}\nhi",
        f"%%claude --max-tokens 5{R}\nhi",
        f"%%claude_context --image /tmp/a{R}.png\n",
        f"%claude_session drop {R[:39]}Z",
        f"%%claude --name '{A} {B}'\nhi",
        f"%%claude_system --name {A}.{B}\nBe brief.",
        f"%%claude_context --name {R}\nx",
    ):
        with capture_output() as out:
            result = ip.run_cell(cell)
        said = str(result.error_in_exec)
        assert isinstance(result.error_in_exec, UsageError), cell
        assert not pieces(said + out.stdout + out.stderr), (cell, said)
    assert pcache_magic.current_session().conversation.blocks == []


def test_a_refused_setting_never_repeats_a_piece_of_the_key(
    ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, session: Session
) -> None:
    """`%config` logs the TraitError, which quotes the value: "not the str '<key>'"."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    for value in (f"{A} {B}", f"x{R}"):
        for name in ("model", "cache_mode", "max_tokens"):
            caplog.clear()
            with capture_output() as out:
                ip.run_cell(f"%config ClaudeMagics.{name} = {value!r}")
            logged = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
            assert len(logged) == 1 and "[part of the API key]" in logged[0], (name, logged)
            assert not pieces(caplog.text + out.stdout + out.stderr), (name, caplog.text)
    magics = ClaudeMagics(session=session)
    with pytest.raises(TraitError) as refused:
        magics.model = f"{A} {B}"
    assert not pieces(str(refused.value))
    with pytest.raises(TraitError) as refused:  # from the config, as the extension loads
        ClaudeMagics(session=session, config=Config({"ClaudeMagics": {"cache_mode": f"x{R}"}}))
    assert not pieces(str(refused.value)) and "[part of the API key]" in str(refused.value)


def test_the_retry_policy_keeps_the_emulator_servers_shorter_timeout() -> None:
    """Against a PCACHE_EMULATOR_URL server `connect` waits 60 s per attempt, not the SDK's 600 s;
    changing the retries (or unsetting the timeout) keeps that default."""
    session = Session(model=MODEL, connection=connect(env={EMULATOR_URL_ENV: "http://127.0.0.1:9"}))
    magics = ClaudeMagics(session=session)
    magics.max_retries = 1
    assert session.client is not None and session.async_client is not None
    assert session.client.timeout == session.async_client.timeout == SERVER_TIMEOUT_S
    magics.timeout = 5.0
    assert session.client.timeout == 5.0
    magics.timeout = None
    assert session.client.timeout == SERVER_TIMEOUT_S and session.client.max_retries == 1
