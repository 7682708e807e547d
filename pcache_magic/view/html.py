"""The HTML renderers' shared pieces: colours, the bar width, escaped text and attributes, headers.

Every text a renderer puts in HTML goes through `text` (`core.fmt.html_text`): escaped, and each
`$` in an element MathJax skips, so no front end typesets an amount (see `core.fmt`).

What carries meaning is written inline, since an untrusted notebook's stored outputs lose their
`<style>` and SVG (`core.fmt`'s docstring): a cell of words reads left (`LEFT`), colours and bars
are `style` attributes with plain colours (readable on the light and the dark theme), a label the
stylesheet shows only when a "why" is open is hidden inline (`HIDDEN`, which `panel.css` overrides).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from ..core.fmt import LABELS, LEFT, html_text, visible

__all__ = [
    "BAR_WIDTH",
    "COLOURS",
    "ERROR",
    "HIDDEN",
    "LEFT",
    "WARNING",
    "attr",
    "bar",
    "colour",
    "text",
    "th",
]

BAR_WIDTH = 160
#: Okabe-Ito colours (readable with colour-blindness), in the order the prompt is billed.
COLOURS: dict[str, tuple[str, str]] = {
    "read": ("#009E73", LABELS["read"]),
    "write_1h": ("#D55E00", LABELS["write_1h"]),
    "write_5m": ("#E69F00", LABELS["write_5m"]),
    "uncached": ("#56B4E9", LABELS["uncached"]),
    "output": ("#CC79A7", LABELS["output"]),
}

#: Text colours that read on a white and on a dark (#111) background alike: an error, a warning
#: (a negative saving, a missed prediction).
ERROR = "#c62828"
WARNING = "#a15c00"
#: A label shown only by the stylesheet (`panel.css` overrides it with `!important`).
HIDDEN = ' style="display:none"'
_TRACK = "rgba(128,128,128,0.3)"  # a bar's empty part: grey on either theme

text = html_text


def colour(value: str, extra: str = "") -> str:
    """An inline `style` attribute in the text colour `value` (`extra`: more declarations)."""
    return f' style="{extra}color:{value}"'


def bar(
    segments: Sequence[tuple[str, float, str, str]], width: int, height: int, *, track: bool = False
) -> str:
    """A horizontal bar of (class, width px, colour, tooltip) segments, as HTML a sanitizer keeps
    (an SVG would be dropped): a flex row of coloured spans with their tooltips; `track`: grey behind."""
    back = f";background:{_TRACK}" if track else ""
    spans = "".join(
        f'<span class="{cls}" title="{attr(tip)}" style="width:{w:.1f}px;background:{c}"></span>'
        for cls, w, c, tip in segments
    )
    return (
        f'<span class="pcache-bar" style="display:flex;width:{width}px;max-width:100%;'
        f'height:{height}px{back}">{spans}</span>'
    )


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
    return f"<th{cls_attr}{tip}{'' if numeric else LEFT}>{text(label)}</th>"
