"""The one formatter: dollars, token counts, durations, clock times, plurals and HTML text.

A sum or a time must read the same in the usage line, the panel, the cost table, the miss
explanations and `%claude_clock`, so every view formats through here.  Compact, in the manner of
claudette's usage lines: `$0.0123`, `12,345` (`~12,345` for an estimate), `4m 05s`, `14:03:27`.
It sits in `core` (pure, no I/O) because reprs below the view (the cost and what-if tables) need it.

Dollars in HTML: JupyterLab 4 and Notebook 7 hand every text/html output to MathJax 3
(rendermime's `renderHTML` ends with `latexTypesetter.typeset(host)`), so two `$` in one text
would become math.  MathJax 3 looks for delimiters inside one "DOM string" at a time, and its
`HTMLDomStrings.handleContainer` ends the string at every element and skips an element whose class
is `mathjax_ignore` (its default `ignoreHtmlClass`; `tex2jax_ignore` for MathJax 2 in nbconvert
and the classic notebook).  `html_text` therefore puts each `$` alone in such a span: never paired,
never searched, still a literal `$` to read and copy.  An `&#36;` entity would not help: the browser
decodes it before MathJax sees the text.

Untrusted notebooks: JupyterLab 4 and Notebook 7 sanitize a stored HTML output of a notebook they
do not trust (one shared, or freshly cloned): `<style>` and SVG go, `class`, `title` and `style`
attributes stay, the latter with plain values only (no `var()`).  Their own stylesheet right-aligns
every table cell, so a cell of words carries `LEFT` inline: it reads left without our stylesheet.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from html import escape
from types import MappingProxyType
from typing import Any

from .ttl import TTL_SECONDS

__all__ = [
    "DOLLAR_HTML",
    "LABELS",
    "LEFT",
    "NO_COSTS",
    "NO_COSTS_HTML",
    "STATUS_WORDS",
    "TEXT_WIDTH",
    "WORD_COLUMNS",
    "clock",
    "cut",
    "duration",
    "entry_names",
    "fit",
    "html_cost",
    "html_prose",
    "html_table",
    "html_text",
    "labelled",
    "money",
    "no_calls_yet",
    "plural",
    "quoted",
    "share",
    "status_cell",
    "status_words",
    "text_table",
    "tokens",
    "visible",
    "visible_text",
]

#: The API's quantities under one name each, in every text and HTML view (usage fields in brackets):
#: cache read (cache_read_input_tokens), cache write 5m/1h (cache_creation.ephemeral_*),
#: uncached input (input_tokens: only what follows the last breakpoint), output (output_tokens).
LABELS: dict[str, str] = {
    "read": "cache read",
    "write": "cache write",
    "write_5m": "cache write 5m",
    "write_1h": "cache write 1h",
    "uncached": "uncached input",
    "output": "output",
}
#: A breakpoint's status (`ledger.Prediction`, `diagnose.Mark`) as the blocks table's "next call"
#: column (70 px) and `%claude_explain` show it, with its meaning for a tooltip: the literals are
#: what a session file keeps, not words a new user knows.  The others read as they are.
STATUS_WORDS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "covered": (
            "in a hit",
            "covered: a later marker's longer prefix, which holds this one, is read from the cache, "
            "so this marker itself neither reads nor writes",
        ),
        "below-minimum": ("below min", "below the model's minimum: this marker caches nothing"),
    }
)
#: C0 controls but tab, newline and return, and DEL -> their Control Pictures (U+2400 block).  C1
#: controls (a terminal's 8-bit CSI among them), the bidirectional marks, embeddings, overrides and
#: isolates, line and paragraph separators, and the invisible ones that hide or join text (zero
#: width space, word joiner, invisible operators, deprecated format controls, BOM, interlinear
#: annotations, tags) have no pictures -> their escapes as Python writes them ("\\u202e", as a why
#: quotes a name): a right-to-left override in a name would show later text backwards.  Zero width
#: (non-)joiners stay: scripts and emoji need them.
_UNSEEN = (
    *range(0x80, 0xA0),
    0x061C,
    0x200B,
    0x200E,
    0x200F,
    *range(0x2028, 0x202F),
    *range(0x2060, 0x2070),
    0xFEFF,
    *range(0xFFF9, 0xFFFC),
    0xE0001,
    *range(0xE0020, 0xE0080),
)
_PICTURES = MappingProxyType(
    {c: 0x2400 + c for c in range(0x20) if chr(c) not in "\t\n\r"}
    | {0x7F: 0x2421}
    | {c: repr(chr(c))[1:-1] for c in _UNSEEN}
)
#: What a model's text shows as pictures (`visible_text`): the controls that drive a terminal (C0 but
#: tab and newlines, DEL, C1) and the bidirectional embeddings, overrides and isolates that turn the
#: text after them ("Trojan Source").  Not the marks, joiners and tags a language or an emoji needs
#: (a right-to-left mark in Hebrew, a zero width space in Thai, a flag's tag characters).
_TEXT_PICTURES = MappingProxyType(
    {c: _PICTURES[c] for c in (*range(0x20), 0x7F, *range(0x80, 0xA0)) if c in _PICTURES}
    | {c: repr(chr(c))[1:-1] for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
)
#: A `$` that no notebook front end typesets (see the module docstring).
DOLLAR_HTML = '<span class="pcache-dollar mathjax_ignore tex2jax_ignore">$</span>'
#: The columns a text view keeps to: a terminal's, and a notebook's plain-text output (JupyterLab
#: breaks a longer line anywhere, inside `12,345` or `$0.0123` too).
TEXT_WIDTH = 80


def _round(value: float, places: int) -> Decimal:
    """`value` to `places` decimals, half up, after dropping float noise: the same sum reached two
    ways (0.01915 and 0.019149999999999997) must print the same everywhere."""
    exact = Decimal(repr(round(value, 12)))
    return exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def money(usd: float) -> str:
    """`$0.0123`, `$12.50`: fixed point always (never `1e-05`), sign first, more digits for tiny sums."""
    value = abs(round(usd, 12))  # float noise (a difference of equal sums) is no tiny amount
    places = 2 if value >= 1 else 6 if 0 < value < 0.0001 else 4
    shown = _round(value, places)
    sign = "-" if usd < 0 and shown else ""
    return f"{sign}${shown:,.{places}f}"


def tokens(n: int, estimated: bool = False) -> str:
    """`12,345`, or `~12,345` when the figure is an estimate (offline, or before sending)."""
    return f"{'~' if estimated and n else ''}{n:,}"


def plural(n: int, one: str, many: str | None = None) -> str:
    """`1 live entry`, `2 live entries`, `0 calls`: the count and the word that fits it."""
    if n == 1:
        return f"1 {one}"
    if many is None:
        many = one[:-1] + "ies" if one.endswith("y") and one[-2:-1] not in "aeiou" else one + "s"
    return f"{n:,} {many}"


#: The inline style of a table cell of words (see the module's docstring: untrusted notebooks).
LEFT = ' style="text-align:left"'
#: `html_table`'s columns of words (and ids), which read left; every other holds figures.
WORD_COLUMNS = frozenset({"outcome", "strategy", "model"})


def share(fraction: float | None) -> str:
    """A share of a saving as `72%`; a negative one (caching cost more) reads `none`, not `-11%`."""
    if fraction is None:
        return ""
    return "none" if fraction < 0 else f"{_round(fraction * 100, 0):.0f}%"


def status_words(status: str) -> tuple[str, str]:
    """A breakpoint's status as shown, and its tooltip (empty when the status says it itself)."""
    return STATUS_WORDS.get(status, (status, ""))


def status_cell(status: str, css: str = "") -> str:
    """A breakpoint's status as a table cell (the blocks table's "next call", `%claude_explain`'s
    marks): its words, and the meaning of shortened ones in a tooltip (`status_words`)."""
    shown, title = status_words(status)
    cls = f' class="{css}"' if css else ""
    tip = f' title="{escape(visible(title))}"' if title else ""
    return f"<td{cls}{tip}{LEFT}>{html_text(shown)}</td>"


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
    caches are per model, so the same block cached for two models is two entries.  A block
    whose prefix changed since it was cached (the block or one before it edited, an image added)
    has two entries too: all but the latest written read `(earlier entry)`, numbered when there
    are several, since the next call can only read the latest.  Two written at the same instant
    (the emulator's clock stands still until moved) are told apart by their order: the ledger lists
    writes as they were made (`Ledger.entries` sorts stably)."""
    names = [str(e.get("block") or e.get("path") or "?") for e in entries]
    if len({e.get("model") for e in entries}) > 1:
        names = [f"{name} ({e.get('model')})" for name, e in zip(names, entries, strict=True)]
    order: dict[str, list[tuple[float, int]]] = {}
    for n, (name, e) in enumerate(zip(names, entries, strict=True)):
        order.setdefault(name, []).append((_written(e), n))
    shown = list(names)
    for name, writes in order.items():
        earlier = sorted(writes)[:-1]  # the latest keeps the plain name
        for k, (_, n) in enumerate(earlier, 1):
            shown[n] = f"{name} (earlier entry{f' {k}' if len(earlier) > 1 else ''})"
    return shown


def _written(entry: Mapping[str, Any]) -> float:
    """When an entry was written or last refreshed: its expiry less its lifetime."""
    return float(entry.get("expires_at", 0.0)) - TTL_SECONDS.get(str(entry.get("ttl")), 300)


def html_text(text: object) -> str:
    """`text` escaped for HTML content, each `$` in an element MathJax skips, control characters
    as their pictures (`visible`).  Every text a view puts in HTML goes through here, so no amount
    is ever typeset as LaTeX."""
    return escape(visible(text)).replace("$", DOLLAR_HTML)


def html_prose(text: str) -> str:
    """`html_text` for running text a user or a model wrote (a block's preview): only what could
    drive a terminal or turn the text after it as pictures (`visible_text`), a language's marks and
    an emoji's tags kept."""
    return escape(visible_text(text)).replace("$", DOLLAR_HTML)


def visible(text: object) -> str:
    """`text` with each control character but tab and newlines shown as its Unicode picture (ESC
    as ␛), C1, bidirectional and other invisible controls as escapes (\\x9b, \\u202e): a block name
    or path from a hostile file can neither break the HTML (XML allows no NUL or ESC), drive a
    terminal, nor turn or hide the text after it."""
    return str(text).translate(_PICTURES)


def visible_text(text: str) -> str:
    """A model's (or a server's) running text with what could drive a terminal or turn the text
    after it shown as pictures (`_TEXT_PICTURES`), and nothing a language or an emoji needs."""
    return text.translate(_TEXT_PICTURES)


def cut(text: str, limit: int = 40) -> str:
    """`text` in at most `limit` characters, an ellipsis where it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def quoted(name: str, limit: int = 40) -> str:
    """A block's name as a sentence quotes it: in quotes (a block named `system` or `change` reads
    as a name), on one line, control characters as pictures, other unprintable ones (zero-width,
    direction marks) as escapes, a long one cut."""
    shown = cut(visible(" ".join(name.split())), limit)
    return "'" + "".join(c if c.isprintable() else repr(c)[1:-1] for c in shown) + "'"  # a \ stays one


def labelled(names: Mapping[str, str], path: str) -> str:
    """The block at request path `path` as a sentence names it, `'rules' (system.0)`, or by its
    path when `names` has no name for it."""
    name = names.get(path)
    return f"{quoted(name)} ({path})" if name is not None else path


def html_table(
    head: Sequence[str],
    rows: Iterable[Sequence[str]],
    caption: str,
    *,
    titles: Mapping[tuple[int, int], str] | None = None,
    notes: Sequence[str] = (),
) -> str:
    """A plain HTML table (the cost and what-if reports), every cell escaped.

    `titles`: tooltips by (row, column), for a cell whose meaning is not in its text (a dash).
    `notes`: a line of words per row, shown in a full-width row under it when not empty, so a long
    note wraps across the table, not down a narrow column beside the figures."""
    tips = titles or {}
    left = [LEFT if h in WORD_COLUMNS else "" for h in head]  # the words read left, untrusted too

    def td(r: int, c: int) -> str:
        tip = tips.get((r, c))
        return f'<td title="{escape(visible(tip))}"{left[c]}>' if tip else f"<td{left[c]}>"

    body = []
    for r, row in enumerate(rows):
        body.append("<tr>" + "".join(f"{td(r, c)}{html_text(v)}</td>" for c, v in enumerate(row)) + "</tr>")
        if r < len(notes) and notes[r]:
            body.append(
                f'<tr class="pcache-row-note"><td class="pcache-notes" colspan="{len(head)}"{LEFT}>'
                f"{html_text(notes[r])}</td></tr>"
            )
    cells = "".join(f"<th{left[c]}>{html_text(h)}</th>" for c, h in enumerate(head))
    return (
        f'<table class="pcache-table pcache-money"><caption>{html_text(caption)}</caption>'
        f"<thead><tr>{cells}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def html_cost(kind: str, table: str) -> str:
    """A cost or what-if `table` in the classes `%claude_cost` gives it (`pcache-panel pcache-cost
    KIND`), so the panel's stylesheet (in the view, which a notebook registers for these tables,
    or any pcache output on the page) lays it out as there."""
    return f'<div class="pcache-panel pcache-cost {kind}">{table}</div>'


def text_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """The same table for a terminal: columns padded to their widest cell, control characters
    shown as their pictures (`visible`)."""
    head, rows = [visible(c) for c in head], [[visible(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [head, *rows]
    )


def fit(text: str, width: int = TEXT_WIDTH) -> str:
    """Each line longer than `width` wrapped between words (its continuation indented two more),
    never inside a word: a number stays whole."""
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


def no_calls_yet(after: str, *, ok: bool = False) -> str:
    """The line a view says before the first call (`ok`: the first successful one), in place of an
    empty table: the magics, `Money` and `WhatIf` say it in the same words (both ways to ask, as
    `money(s)` may be over a `Session` driven from Python, which `%%claude` does not feed)."""
    return (
        f"No {'successful ' if ok else ''}calls yet: ask first (%%claude, or .ask() on a Session); {after}."
    )


#: What `%claude_cost`, `money(s)` and `what_if(s)` say before the first successful call.
NO_COSTS = no_calls_yet("the costs show here after", ok=True)
#: The same, where `Money` and `WhatIf` would show their table.
NO_COSTS_HTML = f'<p class="pcache-empty">{html_text(NO_COSTS)}</p>'
