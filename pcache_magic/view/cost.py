"""`%claude_cost`'s two tables as they fit a notebook: the calls priced, and the what-if.

The figures are the analysis's own (`Money.to_html`, `WhatIf.to_html`), laid out for a 700 px
window (an output area of about 584 px): in the panel's style (12 px, narrow padding), every
figure and model id on one line, the headers and the words ("outcome", the strategy) wrapping, a
call's note in a full-width row under its figures (`fmt.html_table`'s `notes`: in a column of its
own it wrapped to four or six lines a call), so no figure is hidden, no id is cut at its hyphens,
and nothing scrolls sideways.  The plain text is the tables' own (`str`: `fmt.TEXT_WIDTH`
columns, wrapped between words, never inside a number: JupyterLab breaks an over-long output line
anywhere, `12,345` or `$0.0123` included).
The extension shows a `Money` or `WhatIf` displayed from Python through `render_cost` too, and
before the session's first successful call both say `%claude_cost`'s one line, not an empty table.
"""

from __future__ import annotations

import re

from ..analysis.savings import Money, WhatIf
from ..core import fmt
from ..core.fmt import TEXT_WIDTH, WORD_COLUMNS, fit
from .render import style

__all__ = ["TEXT_COLUMNS", "TEXT_WIDTH", "CostTable", "fit", "money_text", "render_cost"]

#: The columns of words, which wrap and read left to right; every other column holds figures, or
#: a model id (`claude-sonnet-5`), which stays on one line like a figure.  A call's note is no
#: column: it has a row of its own (`panel.css`, `td.pcache-notes`).
TEXT_COLUMNS = frozenset({"outcome", "strategy"})
_ID_COLUMNS = WORD_COLUMNS - TEXT_COLUMNS  # read left to right like words, kept whole like figures
_HEADER = re.compile(r"<th[^>]*>([^<]*)</th>")


def render_cost(table: Money | WhatIf) -> str:
    """The table's HTML in the panel's style (`panel.css`: figures on one line, right-aligned),
    with rules of its own, its columns found by their headers: the words wrap and read left, a
    model id reads left on one line (one class more specific than the stylesheet's, which a later
    output's copy may follow)."""
    kind = table.HTML_CLASS
    html = table.to_html()  # before the first successful call, `%claude_cost`'s line: no headers
    heads = _HEADER.findall(html.split("</thead>", 1)[0])

    def cells(columns: frozenset[str]) -> str:
        return ",".join(
            f".pcache-panel.pcache-cost.{kind} :is(td,th):nth-child({i})"
            for i, h in enumerate(heads, 1)
            if h in columns
        )

    words, ids = cells(TEXT_COLUMNS), cells(_ID_COLUMNS)
    rules = (f"{words}{{white-space:normal;text-align:left}}" if words else "") + (
        f"{ids}{{text-align:left}}" if ids else ""
    )
    rule = f"<style>{rules}</style>" if rules else ""
    return fmt.html_cost(kind, f"{style()}{rule}{html}")


def money_text(money: Money) -> str:
    """The calls priced, in 80 columns (`str(money)`: the figures as a table, each call's note
    below it, and the model there when the calls used more than one)."""
    return str(money)


class CostTable:
    """One of `%claude_cost`'s tables for `display()`: `render_cost` in a notebook, 80 columns
    of text in a terminal."""

    def __init__(self, table: Money | WhatIf) -> None:
        self.table = table

    def _repr_html_(self) -> str:
        return render_cost(self.table)

    def __repr__(self) -> str:
        return str(self.table)
