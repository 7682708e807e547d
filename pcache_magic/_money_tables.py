"""The money tables' cells and layout, shared by the per-call report and the what-if table.

Both show dollars side by side, in a notebook (HTML) and in a terminal (plain text), and
must format them the same way so the two tables can be read against each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape


def _usd(value: float) -> str:
    sign = "-" if value < 0 else ""
    value = abs(value)
    return f"{sign}${value:,.4f}" if value < 1 else f"{sign}${value:,.2f}"


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], caption: str) -> str:
    cells = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return (
        f'<table class="pcache-table pcache-money"><caption>{escape(caption)}</caption>'
        f"<thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"
    )


def _text_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [head, *rows]
    )
