"""The HTML renderers' shared pieces: colours, the bar width, escaped text and attributes, headers.

Every text a renderer puts in HTML goes through `text` (`core.fmt.html_text`): escaped, and each
`$` in an element MathJax skips, so no front end typesets an amount (see `core.fmt`).
"""

from __future__ import annotations

from html import escape

from ..core.fmt import LABELS, html_text, visible

__all__ = ["BAR_WIDTH", "COLOURS", "attr", "text", "th"]

BAR_WIDTH = 160
#: Okabe-Ito colours (readable with colour-blindness), in the order the prompt is billed.
COLOURS: dict[str, tuple[str, str]] = {
    "read": ("#009E73", LABELS["read"]),
    "write_1h": ("#D55E00", LABELS["write_1h"]),
    "write_5m": ("#E69F00", LABELS["write_5m"]),
    "uncached": ("#56B4E9", LABELS["uncached"]),
    "output": ("#CC79A7", LABELS["output"]),
}

text = html_text


def attr(value: object) -> str:
    """`value` escaped for an HTML attribute (MathJax never reads attributes), control characters
    shown as their pictures (`fmt.visible`)."""
    return escape(visible(value), quote=True)


def th(label: str, numeric: bool = False, title: str | None = None, cls: str = "") -> str:
    """A header cell: `pcache-num` right-aligns it over figures; `cls` names its column (the
    stylesheet places it in the narrow layout)."""
    classes = " ".join(c for c in ("pcache-num" if numeric else "", cls) if c)
    cls_attr = f' class="{classes}"' if classes else ""
    tip = f' title="{attr(title)}"' if title else ""
    return f"<th{cls_attr}{tip}>{text(label)}</th>"
