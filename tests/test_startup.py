"""What `%load_ext pcache_magic` imports: only what registering the magics needs.

Loading should cost little more than `import anthropic` (benchmarks/startup.py), so the session,
the view, the analysis, the emulator's engine and the widgets are imported by the first magic
that uses them.  Each check runs in a fresh interpreter (nothing imported yet) and fails if an
eager import comes back; the same process then runs a `%%claude` turn offline, which imports
them, so the list is known to name modules the extension really uses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

#: Imported by the first magic that needs them, never by loading.
DEFERRED = (
    "ipywidgets",
    "pcache_magic.core.models",
    "pcache_magic.emulator.engine",
    "pcache_magic.session.fanout",
    "pcache_magic.session.session",
    "pcache_magic.session.store",
    "pcache_magic.view.panel",
    "pcache_magic.view.render",
)

_CHILD = """
import contextlib, io, json, sys
from IPython.core.interactiveshell import InteractiveShell

DEFERRED = {deferred!r}

def imported():
    mods = [m for m in DEFERRED if m in sys.modules]
    return mods + sorted(m for m in sys.modules if m.startswith("pcache_magic.analysis"))

shell = InteractiveShell.instance()
out = io.StringIO()
with contextlib.redirect_stdout(out):
    shell.run_line_magic("load_ext", "pcache_magic")
magics = shell.magics_manager.registry["ClaudeMagics"]
report = {{
    "notice": out.getvalue(),
    "at_load": imported(),
    "line": sorted(n for n in shell.magics_manager.magics["line"] if n.startswith("claude")),
    "cell": sorted(n for n in shell.magics_manager.magics["cell"] if n.startswith("claude")),
    "traits": sorted(magics.class_trait_names(config=True)),
}}
with contextlib.redirect_stdout(io.StringIO()) as said:
    shell.run_line_magic("config", "ClaudeMagics.max_tokens = 77")
    shell.run_cell("%%claude_system\\nBe terse.").raise_error()
    shell.run_cell("%%claude --no-stream\\nHello?").raise_error()
session = magics.session
report["after_claude"] = imported()
report["calls"] = [(c.kind, c.ok) for c in session.calls]
report["max_tokens"] = session.max_tokens
print(json.dumps(report))
"""


def _child(code: str) -> Any:
    env = {**os.environ, "PCACHE_OFFLINE": "1"}
    env.pop("PCACHE_EMULATOR_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=Path(__file__).parent,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_loading_imports_none_of_what_the_first_call_needs() -> None:
    report = _child(_CHILD.format(deferred=DEFERRED))
    assert report["notice"].startswith("pcache_magic: offline: calls go to the built-in emulator")
    assert report["at_load"] == []
    # The magics and their settings are all there, as before.
    assert {"claude", "claude_context", "claude_system", "claude_tools", "claude_map"} <= set(report["cell"])
    assert {"claude_session", "claude_panel", "claude_explain", "claude_cost", "claude_clock"} <= set(
        report["line"]
    )
    assert {"model", "max_tokens", "offline", "timeout", "cache_mode", "show_panel"} <= set(report["traits"])
    # The first turn works offline, with the setting made before the session existed.
    assert report["calls"] == [["ask", True]]
    assert report["max_tokens"] == 77
    needed = {"pcache_magic.session.session", "pcache_magic.emulator.engine", "pcache_magic.core.models"}
    assert needed <= set(report["after_claude"])


def test_an_emulator_makes_its_engine_on_first_use() -> None:
    code = """
import json, sys
from pcache_magic.emulator import Emulator
emulator = Emulator(clock=lambda: 5.0)
made = "pcache_magic.emulator.engine" in sys.modules
now = emulator.now()
from pcache_magic.emulator import ManualClock
print(json.dumps([made, now, "pcache_magic.emulator.engine" in sys.modules, ManualClock.__name__]))
"""
    assert _child(code) == [False, 5.0, True, "ManualClock"]
