"""`_extension`: load and unload in a real IPython shell, the empty-cell rewrite, the Session's HTML
view, current_session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from pcache_magic.analysis.call_log import call_log
from pcache_magic.analysis.diagnose import explain, explain_all
from pcache_magic.analysis.savings import money, what_if
from pcache_magic.core.fmt import fit
from pcache_magic.ipython import extension as _extension
from pcache_magic.ipython.extension import (
    current_session,
    empty_cell_magic_as_line,
    load_ipython_extension,
    unload_ipython_extension,
)
from pcache_magic.ipython.magics import ClaudeMagics
from pcache_magic.session.session import Session
from pcache_magic.view.cost import render_cost
from pcache_magic.view.render import session_html

from _helpers import loaded_magics, parse, text, unguarded_dollars


@pytest.fixture
def ip(offline_shell: InteractiveShell) -> Iterator[InteractiveShell]:
    """The shell with the extension loaded directly (not through %load_ext), and unloaded after."""
    with capture_output():
        load_ipython_extension(offline_shell)
    yield offline_shell
    unload_ipython_extension(offline_shell)


def claude_magics(ip: InteractiveShell) -> dict[str, list[str]]:
    table = ip.magics_manager.magics
    return {kind: sorted(n for n in table[kind] if n.startswith("claude")) for kind in ("line", "cell")}


# -- the empty-cell rewrite -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["%%claude_context --file a.py\n"], ["%claude_context --file a.py\n"]),
        (["%%claude_context --file a.py"], ["%claude_context --file a.py"]),
        (["%%claude_context\n"], ["%claude_context\n"]),
        (["  %%claude_context --cache 1h\n", "\n", "   \n"], ["%claude_context --cache 1h\n", "\n", "   \n"]),
        (["%%claude_system --file guide.md\n"], ["%claude_system --file guide.md\n"]),
    ],
)
def test_an_empty_context_or_system_cell_becomes_the_line_magic(
    lines: list[str], expected: list[str]
) -> None:
    assert empty_cell_magic_as_line(lines) == expected


@pytest.mark.parametrize(
    "lines",
    [
        [],
        ["%%claude_context --file a.py\n", "Some text.\n"],
        ["%%claude_contextual\n"],  # another magic whose name only starts the same
        ["%%claude\n", "\n"],
        ["x = 1\n"],
    ],
)
def test_every_other_cell_is_left_alone(lines: list[str]) -> None:
    assert empty_cell_magic_as_line(list(lines)) == lines


def test_the_shell_applies_the_rewrite_only_while_loaded(ip: InteractiveShell) -> None:
    cell = "%%claude_context --file notes.md\n\n"
    assert ip.transform_cell(cell).startswith(
        "get_ipython().run_line_magic('claude_context', '--file notes.md')"
    )
    assert "run_cell_magic" in ip.transform_cell("%%claude_context\nSome text.\n")
    unload_ipython_extension(ip)
    assert "run_cell_magic('claude_context'" in ip.transform_cell(cell)


# -- loading and unloading ------------------------------------------------------------------------
def test_loading_registers_the_magics_and_the_rewrite_once(ip: InteractiveShell) -> None:
    magics = loaded_magics(ip)
    assert claude_magics(ip) == {
        "line": sorted(magics.magics["line"]),
        "cell": sorted(magics.magics["cell"]),
    }
    assert {"claude_context", "claude_clock"} <= set(magics.magics["line"])
    assert {"claude", "claude_context", "claude_system", "claude_tools"} <= set(magics.magics["cell"])
    assert ip.input_transformers_cleanup.count(empty_cell_magic_as_line) == 1
    assert [c for c in ip.configurables if isinstance(c, ClaudeMagics)] == [magics]


def test_loading_again_keeps_the_loaded_magics(ip: InteractiveShell) -> None:
    magics = loaded_magics(ip)
    with capture_output() as out:
        load_ipython_extension(ip)
    assert out.stdout == fit(f"pcache_magic is already loaded; {magics.notice()}") + "\n"
    assert loaded_magics(ip) is magics
    assert ip.input_transformers_cleanup.count(empty_cell_magic_as_line) == 1
    assert sum(isinstance(c, ClaudeMagics) for c in ip.configurables) == 1


def test_unloading_removes_everything_it_added(ip: InteractiveShell) -> None:
    others_before = [t for t in ip.input_transformers_cleanup if t is not empty_cell_magic_as_line]
    unload_ipython_extension(ip)
    assert "ClaudeMagics" not in ip.magics_manager.registry
    assert claude_magics(ip) == {"line": [], "cell": []}
    assert ip.input_transformers_cleanup == others_before
    assert not any(isinstance(c, ClaudeMagics) for c in ip.configurables)
    unload_ipython_extension(ip)  # a second unload has nothing to do, and says nothing
    assert claude_magics(ip) == {"line": [], "cell": []}


def test_each_cells_calls_are_explained_when_it_ends_and_unloading_stops_that(ip: InteractiveShell) -> None:
    # So a panel opened later opens on calls already explained (no replay of every call).
    with capture_output():
        ip.run_cell("%%claude_system --cache\n" + "Answer in one line. " * 400).raise_error()
        ip.run_cell("%%claude --no-stream\nHello?").raise_error()
        ip.run_cell("%%claude --no-stream\nAnd again?").raise_error()
    session = loaded_magics(ip).session
    log = call_log(session)
    assert len(session.calls) == 2 and not log.behind(session.calls)
    view = log.update(session)  # nothing left to explain: the whys are those of a full replay
    assert list(view.whys) == [e.summary for e in explain_all(session)]
    assert view.whys[1] is not None and view.whys[1].startswith("hit ")
    unload_ipython_extension(ip)
    session.ask("One more, from Python.", stream=False)
    with capture_output():
        ip.run_cell("1 + 1").raise_error()
    assert log.behind(session.calls)  # unloaded: no hook explains it


def test_unloading_spares_a_magic_someone_else_registered_since(ip: InteractiveShell) -> None:
    def mine(line: str) -> str:
        return f"mine: {line}"

    ip.register_magic_function(mine, "line", "claude_clock")  # type: ignore[arg-type]  # IPython's stub
    try:
        unload_ipython_extension(ip)
        assert claude_magics(ip) == {"line": ["claude_clock"], "cell": []}
        assert ip.run_line_magic("claude_clock", "now") == "mine: now"
    finally:
        ip.magics_manager.magics["line"].pop("claude_clock", None)


def test_unloading_closes_the_panel(ip: InteractiveShell) -> None:
    magics = loaded_magics(ip)
    with capture_output():
        ip.run_line_magic("claude_panel", "")
    panel = magics._panel
    assert panel is not None and not panel._closed
    unload_ipython_extension(ip)
    assert panel._closed


def test_unloading_says_what_the_session_held_and_how_to_keep_it_next_time(ip: InteractiveShell) -> None:
    with capture_output() as out:
        unload_ipython_extension(ip)  # never made (lazy): nothing held, nothing said, nothing made
    assert out.stdout == ""
    with capture_output():
        load_ipython_extension(ip)
    magics = loaded_magics(ip)
    magics.session.system("Be terse.", name="style")  # made, but empty until now
    with capture_output() as out:
        unload_ipython_extension(ip)
    assert (
        out.stdout
        == fit(
            "pcache_magic unloaded: the magics and the panel let go of this session (1 block); "
            "%load_ext starts a new one. A variable holding it can still save it: s.save('FILE')."
        )
        + "\n"
    )
    with capture_output():
        ip.run_line_magic("load_ext", "pcache_magic")  # as a notebook does: %unload_ext needs it
    session = current_session()
    session.context("Notes.", name="notes")
    for prompt in ("Hi", "Again", "More"):
        session.ask(prompt, stream=False)
    with capture_output() as out:
        ip.run_line_magic("unload_ext", "pcache_magic")
    assert (
        out.stdout
        == fit(
            "pcache_magic unloaded: the magics and the panel let go of this session (3 calls, 7 blocks); "
            "%load_ext starts a new one. A variable holding it can still save it: s.save('FILE')."
        )
        + "\n"
    )
    with capture_output():
        load_ipython_extension(ip)
    current_session().reset()
    with capture_output() as out:
        unload_ipython_extension(ip)  # made, then emptied: nothing is lost
    assert out.stdout == ""
    with capture_output():
        load_ipython_extension(ip)  # for the fixture's own unload


def test_load_unload_load_gives_a_fresh_working_extension(ip: InteractiveShell) -> None:
    first = loaded_magics(ip)
    unload_ipython_extension(ip)
    with capture_output() as out:
        load_ipython_extension(ip)
    assert out.stdout.startswith("pcache_magic: offline")
    second = loaded_magics(ip)
    assert second is not first and current_session() is second.session
    assert ip.input_transformers_cleanup.count(empty_cell_magic_as_line) == 1


# -- the Session's HTML view -----------------------------------------------------------------------
def shown(ip: InteractiveShell, value: object) -> dict[str, Any]:
    """What a notebook cell ending in `value` would show, by MIME type."""
    assert ip.display_formatter is not None
    data: dict[str, Any] = ip.display_formatter.format(value)[0]
    return data


def test_a_session_shows_as_the_panels_html_only_while_loaded(ip: InteractiveShell) -> None:
    session = current_session()
    session.system("Be terse.", name="style")
    session.ask("Hi", stream=False)
    data = shown(ip, session)
    assert data["text/html"] == session_html(session) and 'data-call="1"' in data["text/html"]
    unload_ipython_extension(ip)
    assert shown(ip, session) == {"text/plain": repr(session)}


def test_unloading_spares_an_html_view_someone_else_registered_since(ip: InteractiveShell) -> None:
    def mine(session: Session) -> str:
        return "<b>mine</b>"

    session = current_session()
    assert ip.display_formatter is not None
    html = ip.display_formatter.formatters["text/html"]
    html.for_type(Session, mine)
    try:
        unload_ipython_extension(ip)
        assert shown(ip, session)["text/html"] == "<b>mine</b>"
    finally:
        html.pop(Session, None)


def test_unloading_before_any_session_is_shown_takes_the_view_away(ip: InteractiveShell) -> None:
    """The view is registered by the class's name, so loading imports neither Session nor the view."""
    assert ip.display_formatter is not None
    html = ip.display_formatter.formatters["text/html"]
    assert html.lookup_by_type("pcache_magic.session.session.Session") is _extension._session_view
    unload_ipython_extension(ip)
    with pytest.raises(KeyError):
        html.lookup_by_type("pcache_magic.session.session.Session")


def test_money_and_what_if_from_python_show_as_claude_costs_tables_only_while_loaded(
    ip: InteractiveShell,
) -> None:
    session = current_session()
    session.system("Be terse.", name="style")
    session.ask("Hi", stream=False)
    tables = (money(session), what_if(session))
    for table in tables:
        data = shown(ip, table)
        assert data["text/html"] == render_cost(table) and "<style>" in data["text/html"]  # styled
        assert max(len(line) for line in data["text/plain"].splitlines()) <= 80
    unload_ipython_extension(ip)
    for table in tables:  # the analysis's own HTML: the same classes, no stylesheet
        plain = shown(ip, table)["text/html"]
        assert plain == table._repr_html_() and "<style>" not in plain


def test_an_explanation_shows_in_the_panels_style_only_while_loaded(ip: InteractiveShell) -> None:
    """`%claude_explain` and `explain(s)` showed the explanation bare: a notebook's own table style
    right-aligned its text columns, and a "$" quoted from a changed block was not guarded."""
    session = current_session()
    session.system("Prices: $5 and $6 a seat. " * 60, cache="5m", name="prices")
    session.ask("Hi", stream=False)
    session.system("Prices: $7 and $8 a seat. " * 60, cache="5m", name="prices")
    session.ask("Hi", stream=False)
    why = explain(session)
    html = shown(ip, why)["text/html"]
    assert html.startswith('<div class="pcache-panel"><style>') and why.to_html() in html
    assert not unguarded_dollars(html) and "$7" in text(parse(html))
    heads = [th for th in parse(html).iter("th")]
    assert [th.get("class") for th in heads] == [None, None, None, "pcache-num", None]
    unload_ipython_extension(ip)
    assert shown(ip, why)["text/html"] == why._repr_html_()


# -- the session, made on first use ----------------------------------------------------------------
def test_settings_made_before_the_first_magic_reach_the_session(ip: InteractiveShell) -> None:
    magics = loaded_magics(ip)
    with capture_output() as out:
        ip.run_line_magic("config", "ClaudeMagics.max_tokens = 77")
        ip.run_line_magic("config", "ClaudeMagics.timeout = 12.5")
        ip.run_line_magic("config", "ClaudeMagics.offline = True")
    assert magics._session is None  # loading and %config make no session
    assert out.stdout == fit(f"pcache_magic: {magics.notice()}") + "\n"
    assert out.stdout.startswith("pcache_magic: offline: calls go to the built-in emulator (")
    session = current_session()
    assert (session.max_tokens, session.offline) == (77, True)
    assert session.client is not None and session.client.timeout == 12.5
    assert magics.notice() == f"{session.connection.notice}; model {session.model}"  # type: ignore[union-attr]


# -- current_session ------------------------------------------------------------------------------
def test_current_session_is_the_magics_session(ip: InteractiveShell) -> None:
    magics = loaded_magics(ip)
    assert current_session() is magics.session
    with capture_output():
        ip.run_cell("%%claude_system --name persona\nYou are terse.").raise_error()
    assert current_session().conversation.names() == ["persona"]


def test_current_session_without_the_extension_says_how_to_load_it(shell: InteractiveShell) -> None:
    assert _extension._magics(shell) is None
    with pytest.raises(RuntimeError, match=r"not loaded: run %load_ext pcache_magic first"):
        current_session()


def test_a_shell_without_magics_has_nothing_to_unload() -> None:
    class Bare:
        pass

    assert _extension._magics(Bare()) is None
    unload_ipython_extension(Bare())  # type: ignore[arg-type]


def test_an_unload_whose_farewell_cannot_be_printed_is_still_done(
    ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The line is the unload's last step: a stdout that fails must not leave the magics gone while
    IPython still counts the extension as loaded (`%load_ext` would then do nothing)."""

    class Broken:
        def write(self, text: str) -> int:
            raise OSError("stdout is gone")

        def flush(self) -> None:
            raise OSError("stdout is gone")

    with capture_output():
        ip.run_line_magic("load_ext", "pcache_magic")
    current_session().system("Be terse.", name="style")
    with monkeypatch.context() as patched:
        patched.setattr("sys.stdout", Broken())
        ip.run_line_magic("unload_ext", "pcache_magic")
    assert "pcache_magic" not in ip.extension_manager.loaded
    with capture_output():
        ip.run_line_magic("load_ext", "pcache_magic")
    assert "claude" in ip.magics_manager.magics["cell"]
    with capture_output():  # leave the shell as the fixture expects it: loaded directly, not by name
        ip.run_line_magic("unload_ext", "pcache_magic")
        load_ipython_extension(ip)
