"""The panel's number formats and colours, shared by every renderer.

A token count, a dollar sum or a time must read the same in the blocks table, the calls
table, the countdown and the one-line summary, so they are formatted in one place.  The
values (`~` for estimates, fixed-point dollars, UTC clocks) are a contract with the
browser tests and with users' eyes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

BAR_WIDTH = 160
#: Okabe-Ito colours (readable with colour-blindness), in the order the prompt is billed.
COLOURS: dict[str, tuple[str, str]] = {
    "read": ("#009E73", "cache read"),
    "write_1h": ("#D55E00", "cache write 1h"),
    "write_5m": ("#E69F00", "cache write 5m"),
    "uncached": ("#56B4E9", "uncached input"),
    "output": ("#CC79A7", "output"),
}


def entry_names(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each cache entry's block (or path), with its model when the entries span more than one:
    caches are per model, so the same block cached for two models is two entries."""
    names = [str(e.get("block") or e.get("path") or "?") for e in entries]
    if len({e.get("model") for e in entries}) <= 1:
        return names
    return [f"{name} ({e.get('model')})" for name, e in zip(names, entries, strict=True)]


def tokens(n: int, estimated: bool = False) -> str:
    """`12,345`, or `~12,345` when the figure is an estimate (offline, or before sending)."""
    return f"{'~' if estimated and n else ''}{n:,}"


def money(usd: float) -> str:
    """`$0.0123`: fixed-point always (never `1e-05`), sign first, more digits for tiny sums."""
    sign, value = ("-" if usd < 0 else ""), abs(usd)
    if value >= 100:
        return f"{sign}${value:,.2f}"
    return f"{sign}${value:.6f}" if 0 < value < 0.0001 else f"{sign}${value:.4f}"


def duration(seconds: float) -> str:
    """`4:12` (or `1:00:00`), rounded up so a live entry never reads `0:00`."""
    total = max(0, math.ceil(seconds - 1e-6))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def clock(timestamp: float) -> str:
    """Session-clock seconds as `HH:MM:SS` UTC (UTC keeps offline notebooks reproducible)."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%H:%M:%S")


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def _th(label: str, numeric: bool = False) -> str:
    return f'<th class="pcache-num">{label}</th>' if numeric else f"<th>{label}</th>"
