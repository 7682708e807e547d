"""The HTML renderers' shared pieces: colours, the bar width, escaped attributes, header cells."""

from __future__ import annotations

from html import escape

__all__ = ["BAR_WIDTH", "COLOURS", "attr", "th"]

BAR_WIDTH = 160
#: Okabe-Ito colours (readable with colour-blindness), in the order the prompt is billed.
COLOURS: dict[str, tuple[str, str]] = {
    "read": ("#009E73", "cache read"),
    "write_1h": ("#D55E00", "cache write 1h"),
    "write_5m": ("#E69F00", "cache write 5m"),
    "uncached": ("#56B4E9", "uncached input"),
    "output": ("#CC79A7", "output"),
}


def attr(value: object) -> str:
    """`value` escaped for an HTML attribute."""
    return escape(str(value), quote=True)


def th(label: str, numeric: bool = False) -> str:
    return f'<th class="pcache-num">{label}</th>' if numeric else f"<th>{label}</th>"
