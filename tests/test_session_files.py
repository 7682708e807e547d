"""`ipython/session_files.py`: save, load and export for `%claude_session`, errors in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from IPython.core.error import UsageError

from pcache_magic.emulator import Emulator
from pcache_magic.ipython.session_files import EXPORTS, session_file
from pcache_magic.session.session import Session
from pcache_magic.session.transport import connect

from _helpers import MODEL

LONG = "Review the change with care and cite the guide. " * 200


def test_save_then_load_says_what_it_did(session: Session, tmp_path: Path) -> None:
    session.system(LONG, cache=True, name="rules")
    session.ask("Hello?", stream=False)
    said = session_file(session, "save", str(tmp_path / "s.json"), None, None)
    assert said == f"Saved 1 call and the blocks to {tmp_path / 's.json'}."
    fresh = Session(model=MODEL, connection=connect(emulator=Emulator()))
    said = session_file(fresh, "load", str(tmp_path / "s.json"), None, None)
    assert said.splitlines()[0].startswith("Loaded")
    assert [b.name for b in fresh.conversation.blocks] == [b.name for b in session.conversation.blocks]


@pytest.mark.parametrize("kind", EXPORTS)
def test_export_prints_or_writes(session: Session, tmp_path: Path, kind: str) -> None:
    session.ask("Hello?", stream=False)
    assert session_file(session, "export", kind, None, None) == session.export(kind)  # type: ignore[arg-type]
    target = tmp_path / f"out.{kind}"
    assert session_file(session, "export", kind, str(target), None) == f"Wrote {target}."
    assert target.read_text() == session.export(kind)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", EXPORTS)
def test_a_long_export_is_not_printed_into_the_cell(
    session: Session, kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A few calls over a large file made a page nobody reads (over 100k characters): it names a file."""
    monkeypatch.chdir(tmp_path)
    session.context("x " * 60_000, name="data", cache=True)
    session.ask("Hello?", stream=False)
    with pytest.raises(UsageError) as raised:
        session_file(session, "export", kind, None, None)
    said = str(raised.value)
    assert "\n" not in said and "too long to print here" in said
    file = {"python": "replay.py", "ipynb": "replay.ipynb", "json": "session_export.json"}[kind]
    assert said.endswith(f"%claude_session export {kind} {file}")
    Path(file).write_text("# the user's own")  # the advice never names a file that is there
    with pytest.raises(UsageError) as raised:
        session_file(session, "export", kind, None, None)
    stem, _, ext = file.partition(".")
    assert str(raised.value).endswith(f"%claude_session export {kind} {stem}-2.{ext}")


@pytest.mark.parametrize(
    ("command", "target", "max_mb", "words"),
    [
        ("export", "yaml", None, "export takes python, ipynb or json"),
        ("load", "missing.json", None, "no such file"),
        ("save", "/no/such/folder/s.json", None, "folder"),
        ("load", "big.json", 1e-6, "MB"),
    ],
)
def test_a_refused_file_is_one_line_and_changes_nothing(
    session: Session,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    target: str,
    max_mb: float | None,
    words: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    session.system(LONG, name="rules")
    session.save(tmp_path / "big.json")
    before = [b.model_dump() for b in session.conversation.blocks]
    with pytest.raises(UsageError) as raised:
        session_file(session, command, target, None, max_mb)
    assert "\n" not in str(raised.value)
    assert words.lower() in str(raised.value).lower(), raised.value
    assert [b.model_dump() for b in session.conversation.blocks] == before
