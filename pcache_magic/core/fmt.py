"""The one formatter: dollars, token counts, durations and clock times, in text and HTML alike.

A sum or a time must read the same in the usage line, the panel, the cost table, the miss
explanations and `%claude_clock`, so every view formats through here.  Compact, in the manner of
claudette's usage lines: `$0.0123`, `12,345` (`~12,345` for an estimate), `4m 05s`, `14:03:27`.
It sits in `core` (pure, no I/O) because reprs below the view (the cost and what-if tables) need it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

__all__ = ["clock", "duration", "entry_names", "html_table", "money", "text_table", "tokens"]


def money(usd: float) -> str:
    """`$0.0123`, `$12.50`: fixed point always (never `1e-05`), sign first, more digits for tiny sums."""
    sign, value = ("-" if usd < 0 else ""), abs(usd)
    if value >= 1:
        return f"{sign}${value:,.2f}"
    return f"{sign}${value:.6f}" if 0 < value < 0.0001 else f"{sign}${value:.4f}"


def tokens(n: int, estimated: bool = False) -> str:
    """`12,345`, or `~12,345` when the figure is an estimate (offline, or before sending)."""
    return f"{'~' if estimated and n else ''}{n:,}"


def duration(seconds: float, *, ceil: bool = False) -> str:
    """`45s`, `4m 05s`, `1h 05m`.  `ceil` rounds up, so a live entry's countdown never reads `0s`."""
    whole = max(0, math.ceil(seconds - 1e-6) if ceil else round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def clock(timestamp: float, *, date: bool = False) -> str:
    """Session-clock seconds as `HH:MM:SS` UTC (UTC keeps offline notebooks reproducible)."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC" if date else "%H:%M:%S")


def entry_names(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each cache entry's block (or path), with its model when the entries span more than one:
    caches are per model, so the same block cached for two models is two entries."""
    names = [str(e.get("block") or e.get("path") or "?") for e in entries]
    if len({e.get("model") for e in entries}) <= 1:
        return names
    return [f"{name} ({e.get('model')})" for name, e in zip(names, entries, strict=True)]


def html_table(head: Sequence[str], rows: Iterable[Sequence[str]], caption: str) -> str:
    """A plain HTML table (the cost and what-if reports), every cell escaped."""
    cells = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return (
        f'<table class="pcache-table pcache-money"><caption>{escape(caption)}</caption>'
        f"<thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"
    )


def text_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """The same table for a terminal: columns padded to their widest cell."""
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [head, *rows]
    )
