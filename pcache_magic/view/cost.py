"""`%claude_cost`'s two tables as they fit a notebook: the calls priced, and the what-if.

The figures are the analysis's own (`Money.to_html`, `WhatIf.to_html`), laid out for a 700 px
window (an output area of about 584 px): in the panel's style (12 px, narrow padding), every
figure on one line, the headers and the words ("model", "outcome", "note", the strategy) wrapping,
so no figure is hidden and nothing scrolls sideways.  The plain text keeps to `TEXT_WIDTH`
columns and wraps between words, never inside a number: JupyterLab breaks an over-long output
line anywhere, `12,345` or `$0.0123` included.
"""

from __future__ import annotations

import re
import textwrap

from ..analysis.savings import Money, WhatIf
from ..core import fmt
from .render import style

__all__ = ["TEXT_COLUMNS", "TEXT_WIDTH", "CostTable", "fit", "money_text", "render_cost"]

TEXT_WIDTH = 80
#: The columns of words, which wrap and read left to right; every other column holds figures.
TEXT_COLUMNS = frozenset({"model", "outcome", "note", "strategy"})
_HEADER = re.compile(r"<th>([^<]*)</th>")


def render_cost(table: Money | WhatIf) -> str:
    """The table's HTML in the panel's style (`panel.css`: figures on one line, right-aligned),
    with a rule of its own for its columns of words, found by their headers (one class more
    specific than the stylesheet's, which a later output's copy may follow)."""
    kind = "pcache-cost-calls" if isinstance(table, Money) else "pcache-cost-whatif"
    html = table.to_html()
    heads = _HEADER.findall(html.split("</thead>", 1)[0])
    words = ",".join(
        f".pcache-panel.pcache-cost.{kind} :is(td,th):nth-child({i})"
        for i, h in enumerate(heads, 1)
        if h in TEXT_COLUMNS
    )
    rule = f"<style>{words}{{white-space:normal;text-align:left}}</style>" if words else ""
    return f'<div class="pcache-panel pcache-cost {kind}">{style()}{rule}{html}</div>'


def fit(text: str, width: int = TEXT_WIDTH) -> str:
    """Each line longer than `width` wrapped between words (its continuation indented), never
    inside a word: a number stays whole."""
    out: list[str] = []
    for line in text.splitlines():
        if len(line) <= width:
            out.append(line)
            continue
        indent = " " * (len(line) - len(line.lstrip()) + 2)
        out += textwrap.wrap(
            line, width, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False
        )
    return "\n".join(out)


def money_text(money: Money) -> str:
    """The calls priced, in 80 columns: the figures as a table, each call's note below it (and
    the model there, when the calls used more than one)."""
    head = ("call", "outcome", "cost", "no caching", "saving", "total so far", "saved so far")
    rows = [
        [
            str(c.index),
            c.outcome,
            *(fmt.money(v) for v in (c.cost.total, c.cost.no_cache, c.cost.saving)),
            *(fmt.money(v) for v in (c.cumulative.total, c.cumulative.saving)),
        ]
        for c in money.calls
    ]
    models = sorted({c.model for c in money.calls})
    one = len(models) == 1
    notes = [
        f"  call {c.index}{'' if one else f' ({c.model})'}: {c.note}"
        for c in money.calls
        if c.note or not one
    ]
    total = money.footer()
    total += f" ({models[0]})" if one else ""
    return fit("\n".join([fmt.text_table(head, rows), *notes, total]))


class CostTable:
    """One of `%claude_cost`'s tables for `display()`: `render_cost` in a notebook, 80 columns
    of text in a terminal."""

    def __init__(self, table: Money | WhatIf) -> None:
        self.table = table

    def _repr_html_(self) -> str:
        return render_cost(self.table)

    def __repr__(self) -> str:
        return money_text(self.table) if isinstance(self.table, Money) else fit(str(self.table))
