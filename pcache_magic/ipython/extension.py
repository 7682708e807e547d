"""`%load_ext pcache_magic` / `%unload_ext pcache_magic`, and `current_session()`.

Importing this module costs nothing: the SDK, the widgets and the session are
imported inside `load_ipython_extension`, so `import pcache_magic` stays cheap
for code that only wants, say, the emulator.

Loading also registers the panel's static HTML (`session_html`) as the notebook's view of a
`Session`: the view sits above the session, so the session cannot name it; the extension,
above both, joins them, and unloading takes the view away again.  `Money` and `WhatIf`
(`money(s)`, `what_if(s)` shown from Python) get `%claude_cost`'s styled tables the same way
(`view.cost.render_cost`).  The views are registered by the class's name (IPython's
`for_type_by_name`), so loading imports neither the session nor the view: loading costs little
more than `import anthropic` (benchmarks/startup.py), and the rest is imported by the first magic
that needs it.

After each cell (`post_run_cell`) the calls it made are explained once, while the kernel would
otherwise wait, so a panel opened later (or after `%claude_session load`) opens at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from IPython.core.formatters import BaseFormatter
    from IPython.core.interactiveshell import InteractiveShell

    from ..session.session import Session
    from .magics import ClaudeMagics

__all__ = [
    "current_session",
    "empty_cell_magic_as_line",
    "load_ipython_extension",
    "unload_ipython_extension",
]

_REGISTRY_KEY = "ClaudeMagics"
#: Where `Session` is defined: the HTML view is registered under this name, not the class.
_SESSION = "pcache_magic.session.session.Session"
#: `money(s)` and `what_if(s)` shown from Python get `%claude_cost`'s styled tables (`render_cost`).
_COST_TABLES = ("pcache_magic.analysis.savings.Money", "pcache_magic.analysis.whatif.WhatIf")
#: `explain(s)` and `%claude_explain` get the panel's stylesheet: a notebook's own table style would
#: right-align the explanation's text columns.
_EXPLANATION = "pcache_magic.analysis.diagnose.Explanation"
#: Magics that also work as line magics, so a cell with only the magic line is accepted.
_LINE_CELL = ("claude_context", "claude_system")


def empty_cell_magic_as_line(lines: list[str]) -> list[str]:
    """Rewrite `%%claude_context --file x` (or `%%claude_system`) with an empty body to the line magic.

    IPython refuses any cell magic whose body is empty, yet a context cell made of
    files alone (`%%claude_context --cache 1h --file src/*.py`) is natural to write.
    """
    if lines and all(not line.strip() for line in lines[1:]):
        head = lines[0].lstrip()
        for name in _LINE_CELL:
            if head.startswith(f"%%{name}") and head[len(name) + 2 : len(name) + 3] in ("", " ", "\n"):
                return [head[1:], *lines[1:]]
    return lines


def _html_formatter(ip: InteractiveShell) -> BaseFormatter:
    """The shell's `text/html` formatter: what a notebook shows for a value."""
    display = ip.display_formatter
    assert display is not None, "an initialised shell has its display formatter"
    formatter: BaseFormatter = display.formatters["text/html"]
    return formatter


def _session_view(session: Session) -> str:
    """The panel's static HTML for a Session shown as a cell's value (the view imported on first use)."""
    from ..view.render import session_html

    return session_html(session)


def _cost_view(table: Any) -> str:
    """A cost or what-if table as `%claude_cost` shows it (the view imported on first use)."""
    from ..view.cost import render_cost

    return render_cost(table)


def _explanation_view(explanation: Any) -> str:
    """An explanation in the panel's style (the view imported on first use)."""
    from ..view.render import in_panel

    return in_panel(explanation.to_html())


#: Each value a notebook shows through one of our views, by its class's full name.
_VIEWS: tuple[tuple[str, Callable[[Any], str]], ...] = (
    (_SESSION, _session_view),
    (_EXPLANATION, _explanation_view),
    *((table, _cost_view) for table in _COST_TABLES),
)


def _magics(ip: Any) -> ClaudeMagics | None:
    manager = getattr(ip, "magics_manager", None)
    return manager.registry.get(_REGISTRY_KEY) if manager is not None else None


def load_ipython_extension(ip: InteractiveShell) -> None:
    """Register the magics and the Session's HTML view; say in one line where calls go, with which model."""
    from ..core.fmt import fit  # the notice wrapped to a notebook's text width

    existing = _magics(ip)
    if existing is not None:
        print(fit(f"pcache_magic is already loaded; {existing.notice()}"))
        return
    from IPython.core.error import UsageError
    from traitlets import TraitError

    from .magics import ClaudeMagics

    try:
        magics = ClaudeMagics(shell=ip)
    except (TraitError, KeyError, ValueError) as error:  # a bad ClaudeMagics setting in the config
        ip.configurables[:] = [c for c in ip.configurables if not isinstance(c, ClaudeMagics)]
        raise UsageError(f"pcache_magic was not loaded: {error}") from None
    ip.register_magics(magics)
    html = _html_formatter(ip)
    for kind, view in _VIEWS:
        module, name = kind.rsplit(".", 1)
        html.for_type_by_name(module, name, view)
    if empty_cell_magic_as_line not in ip.input_transformers_cleanup:
        ip.input_transformers_cleanup.append(empty_cell_magic_as_line)
    ip.events.register("post_run_cell", magics.explain_new_calls)
    print(fit(f"pcache_magic: {magics.notice()}"))
    if magics.show_panel:
        magics.open_panel()


def unload_ipython_extension(ip: InteractiveShell) -> None:
    """Remove the magics and the Session's HTML view (only those this extension registered), close
    the panel, and say in one line what the session held, if anything (the magics let go of it)."""
    magics = _magics(ip)
    if magics is None:
        return
    farewell = magics.farewell()  # the next %load_ext starts a new session: say what this one held
    magics.close()
    with contextlib.suppress(ValueError):  # ValueError: not registered (loaded by an older version)
        ip.events.unregister("post_run_cell", magics.explain_new_calls)
    if empty_cell_magic_as_line in ip.input_transformers_cleanup:
        ip.input_transformers_cleanup.remove(empty_cell_magic_as_line)
    html = _html_formatter(ip)
    for kind, view in _VIEWS:
        with contextlib.suppress(KeyError):  # KeyError: nothing registered for it
            if html.lookup_by_type(kind) is view:  # by name: imports nothing
                html.pop(kind)
    manager = ip.magics_manager
    for kind, table in magics.magics.items():
        registered = manager.magics.get(kind, {})
        for name, method in table.items():
            if registered.get(name) == method:
                del registered[name]
    del manager.registry[_REGISTRY_KEY]
    ip.configurables[:] = [c for c in ip.configurables if c is not magics]
    if farewell is not None:
        from ..core.fmt import fit

        with contextlib.suppress(Exception):  # the unload is done: a failing stdout must not undo it
            print(fit(farewell))


def current_session() -> Session:
    """The Session the magics use (so plain Python in the notebook can inspect or drive it)."""
    from IPython import get_ipython

    magics = _magics(get_ipython())
    if magics is None:
        raise RuntimeError("pcache_magic is not loaded: run %load_ext pcache_magic first.")
    return magics.session
