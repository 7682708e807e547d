"""echo.py: what a block cell prints, and the warnings it newly causes on other blocks."""

from __future__ import annotations

from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import pcache_magic
from pcache_magic.ipython import echo

LONG = " ".join(f"Rule {i}: review the code carefully and explain each finding." for i in range(160))


def said(ip: InteractiveShell, cell: str) -> str:
    with capture_output() as out:
        ip.run_cell(cell).raise_error()
    return " ".join(out.stdout.split())  # the echo wraps at 80 columns


def test_a_marker_that_newly_covers_an_earlier_timestamp_is_said_by_the_cell_that_placed_it(
    ip: InteractiveShell,
) -> None:
    # An uncached system block with a timestamp is cached by nothing until a later block's marker
    # covers it; that cell said nothing of it, and the next call missed every time.
    first = said(ip, "%%claude_system --name stamp\nNow: 2026-12-05 09:00:00. Be brief.")
    assert "warning" not in first  # nothing is cached yet
    second = said(ip, f"%%claude_context --cache --name notes\n{LONG}")
    assert "warning: 'stamp' (system.0) holds a timestamp" in second
    assert "(the marker on 'notes' (messages.0.content.0) covers it)" in second
    again = said(ip, f"%%claude_context --cache --name notes\n{LONG}")  # said once: not new now
    assert "'stamp' (system.0) holds" not in again


def test_the_warnings_are_those_of_the_next_request(ip: InteractiveShell) -> None:
    session = pcache_magic.current_session()
    assert echo.warnings(session) == set()
    session.system("Now: 2026-12-05 09:00:00. " + LONG, cache="5m", name="rules")
    assert echo.warnings(session) == {("rules", "volatile")}  # by block and kind


def test_a_warning_is_new_by_its_block_and_kind_not_its_words(ip: InteractiveShell) -> None:
    # A below-minimum marker's warning says its prefix's tokens, which every block added before it
    # changes: a system cell re-said another block's warning each time.
    said(ip, "%%claude_context --cache --name small\nA short note to cache.")
    assert "'small'" not in said(ip, "%%claude_system --name sys\nBe brief and exact.")


def test_warnings_caused_elsewhere_are_said_up_to_a_few(ip: InteractiveShell) -> None:
    session = pcache_magic.current_session()
    for i in range(echo.SAID + 4):
        session.context(f"Stamp {i}: 2026-12-05 09:00:{i:02d}.", name=f"stamp{i}")
    out = said(ip, f"%%claude_context --cache --name last\n{LONG}")
    assert out.count("holds a time") == echo.SAID
    assert "and 4 more warnings on other blocks (%claude_panel lists them)." in out
