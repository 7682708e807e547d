"""Fixtures shared by the test files: IPython's shell with the extension, and offline sessions;
and the property tests' settings.

A test file's own fixture of the same name overrides these (some files want a session with
other settings, or the extension loaded another way); plain helpers are in `_helpers.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from traitlets.config import Config

from pcache_magic.emulator import Emulator
from pcache_magic.emulator.server import EmulatorHTTPServer, serve
from pcache_magic.session.session import Session
from pcache_magic.session.transport import connect

from _helpers import MODEL
from _raw_http import DEADLINE_S, running

# Property tests draw the same examples on every run: a suite that passes passes again (a draw
# that finds a hole is kept as a case of its own, not left to chance).
settings.register_profile("pcache", derandomize=True)
settings.load_profile("pcache")


# -- IPython ---------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def shell() -> InteractiveShell:
    """IPython's shell (one per process, as in a kernel), without a history database.

    As a shell, `display()` publishes (and display handles exist) as in a notebook.
    """
    config = Config()
    config.HistoryManager.enabled = False
    return InteractiveShell.instance(config=config)


@pytest.fixture
def offline_shell(
    shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[InteractiveShell]:
    """The shell, offline (the in-process emulator), working in `tmp_path`; pcache_magic not loaded.

    `%config ClaudeMagics...` persists in the shell's config, so it is cleared before and after.
    """
    monkeypatch.setenv("PCACHE_OFFLINE", "1")
    monkeypatch.delenv("PCACHE_EMULATOR_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    shell.config.pop("ClaudeMagics", None)
    yield shell
    shell.config.pop("ClaudeMagics", None)


@pytest.fixture
def ip(offline_shell: InteractiveShell) -> Iterator[InteractiveShell]:
    """`offline_shell` after `%load_ext pcache_magic` (its notice not shown); unloaded after."""
    with capture_output():
        offline_shell.run_line_magic("load_ext", "pcache_magic")
    yield offline_shell
    offline_shell.run_line_magic("unload_ext", "pcache_magic")


# -- sessions --------------------------------------------------------------------------------------
@pytest.fixture
def emu() -> Emulator:
    """A fresh in-process emulator: no cache entries, its clock still until advanced."""
    return Emulator()


@pytest.fixture
def session(emu: Emulator) -> Session:
    """An empty session on `MODEL` (1,024-token cache minimum) that calls `emu` in process."""
    return Session(model=MODEL, connection=connect(emulator=emu))


# -- an emulator server in a thread, for the raw-socket tests -------------------------------------
@pytest.fixture
def threaded() -> Iterator[tuple[Emulator, EmulatorHTTPServer]]:
    """A server in a thread with a 1 s request deadline, over a fresh emulator."""
    emu = Emulator()
    for server in running(serve(emu, "127.0.0.1", 0, timeout=DEADLINE_S)):
        yield emu, server
