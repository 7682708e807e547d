"""The README's examples run as written, offline, from a fresh clone's root.

Every fenced block is tagged. `python` blocks run with `exec` in a fresh namespace.
`ipython` blocks are notebook cells separated by blank lines; all of them run, in README order,
in one real IPython shell (as one notebook would), and `%load_ext pcache_magic` in the first
loads the extension. They run in a scratch folder holding a copy of what the repository ships
under `notebooks/data/`, so an example that reads a file the project does not ship fails here.
`sh` and `text` blocks are not run (they start servers, install or show a layout).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import pcache_magic

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FENCE = re.compile(r"^```(?P<lang>[\w-]*)\n(?P<body>.*?)^```$", re.M | re.S)
RUN = {"python", "ipython"}
SHOWN = {"sh", "text"}


def blocks(lang: str) -> list[str]:
    return [m["body"] for m in FENCE.finditer(README.read_text()) if m["lang"] == lang]


def cells(block: str) -> list[str]:
    return [cell.strip("\n") for cell in re.split(r"\n\s*\n", block) if cell.strip()]


@pytest.fixture
def clone(offline_shell: InteractiveShell, tmp_path: Path) -> Iterator[InteractiveShell]:
    """The offline shell in a scratch root holding what the repository ships in notebooks/data."""
    shutil.copytree(ROOT / "notebooks" / "data", tmp_path / "notebooks" / "data")
    yield offline_shell
    if "ClaudeMagics" in offline_shell.magics_manager.registry:
        offline_shell.run_line_magic("unload_ext", "pcache_magic")


def test_every_block_is_tagged_with_a_known_language() -> None:
    langs = [m["lang"] for m in FENCE.finditer(README.read_text())]
    assert set(langs) <= RUN | SHOWN, set(langs) - RUN - SHOWN
    assert langs.count("python") >= 2 and langs.count("ipython") >= 2


@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_python_examples_run(clone: InteractiveShell, index: int) -> None:
    code = blocks("python")[index]
    exec(compile(code, f"README.md python block {index + 1}", "exec"), {"__name__": "__readme__"})


def test_ipython_examples_run_as_one_notebook(clone: InteractiveShell) -> None:
    ran: list[str] = []
    with capture_output() as out:
        for cell in (c for block in blocks("ipython") for c in cells(block)):
            result = clone.run_cell(cell, store_history=True)
            assert result.success, f"{cell!r} failed: {result.error_before_exec or result.error_in_exec}"
            ran.append(cell)
    assert ran[0] == "%load_ext pcache_magic"
    assert "Traceback" not in out.stdout and "Error" not in out.stdout
    session = pcache_magic.current_session()
    assert session.calls and all(call.ok for call in session.calls)
    # the opening's claims: readable names, and one 1h marker that caches the prefix
    assert session.conversation.names()[:2] == ["you-are-a-careful-reviewer", "review_guide.md"]
    first = session.calls[0].tokens
    assert first.write_1h > 1_024 and session.calls[1].tokens.read == first.write_1h
    # the jupyter-ai conventions: {question} expanded, {{braces}} kept, -o answer stored
    asked = next(b for b in session.conversation.blocks if b.kind == "prompt" and "money" in str(b.content))
    assert asked.content[0]["text"].startswith("Which rules of the guide concern money? Answer in one")
    assert "{braces} stay as written" in asked.content[0]["text"]
    assert isinstance(clone.user_ns["answer"], str) and clone.user_ns["answer"][:40] in out.stdout
