"""Pure HTML renderers: the cache panel's tables, the notebook repr, the one-line reply summary.

Every function returns a string built from a `Session` or its records, with all
user text escaped, so the same tables show in the live widget (`panel.py`), in
nbconvert and on GitHub.  No ipywidgets here.  The `pcache-` class names and
`data-*` attributes are a contract (browser tests, user CSS); the output holds
no run-dependent ids, only measured latencies vary (class `pcache-latency`).
The output is also well-formed XML, so tests parse it with the standard library.
The number formats live in `core.fmt`, the calls table in `calls.py`, the stylesheet in
`panel.css`; their public names are re-exported here, the one import surface for renderers.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

from ..analysis.call_log import call_log
from ..core.fmt import clock, cut, duration, entry_names, html_prose, money, plural, status_cell, tokens
from ..core.record import CallRecord, Totals
from ..core.rules import MAX_BREAKPOINTS, CacheRuleError, resolve_breakpoints
from ..core.ttl import TTL_SECONDS
from .calls import (
    bar_scale,
    calls_table,
    kept_rows,
    predicted_outcome,
    render_bar,
    render_call_row,
    render_calls,
    render_legend,
)
from .html import BAR_WIDTH, COLOURS, ERROR, LEFT, WARNING, attr, bar, colour, text, th

if TYPE_CHECKING:
    from ..core.conversation import Block
    from ..core.preflight import Finding
    from ..session.keepwarm import KeepWarmer
    from ..session.session import Session

__all__ = [
    "BAR_WIDTH",
    "COLOURS",
    "ENTRIES_SHOWN",
    "bar_scale",
    "calls_table",
    "clock",
    "duration",
    "in_panel",
    "keepwarm_lines",
    "kept_rows",
    "money",
    "predicted_outcome",
    "render_bar",
    "render_blocks",
    "render_call_row",
    "render_calls",
    "render_countdown",
    "render_header",
    "render_legend",
    "render_session",
    "render_summary",
    "session_html",
    "style",
    "summary_text",
    "tokens",
]


@functools.cache
def style() -> str:
    """The panel's `<style>` element, from the packaged `panel.css`: read once, on first use.

    A stylesheet is easier to read and edit as CSS than as Python string literals; the column
    widths come from the tables' `<colgroup>`, so the CSS only says how cells wrap and clip.
    """
    css = (resources.files(__package__ or "pcache_magic.view") / "panel.css").read_text(encoding="utf-8")
    rules = "".join(line.strip() for line in re.sub(r"/\*.*?\*/", "", css, flags=re.S).splitlines())
    return f"<style>{rules}</style>"


# -- blocks -------------------------------------------------------------------------------
def _preview(block: Block, limit: int = 60) -> str:
    if block.role == "tools":
        text = "tools: " + ", ".join(str(item.get("name", "?")) for item in block.content)
    else:
        parts = [
            str(item.get("text", "")) if item.get("type") == "text" else f"[{item.get('type', '?')}]"
            for item in block.content
        ]
        text = " ".join(" ".join(parts).split())
    return cut(text, limit)


def _finding(f: Finding) -> str:
    hue = {"error": colour(ERROR), "warning": colour(WARNING)}.get(f.level, "")  # untrusted too
    return (
        f'<div class="pcache-finding pcache-{attr(f.level)}" data-code="{attr(f.code)}"{hue}>'
        f"{text(f.message)} <i>Fix: {text(f.fix)}</i></div>"
    )


_API_FIGURES = {False: ": the calls table has the API's figures", True: ""}  # offline, all are estimates
#: Turn blocks shown after a folded run of earlier ones (see `_folded`).
BLOCKS_SHOWN = 20
#: Live cache entries listed in the countdown; the ones that expire sooner fold into one row.
ENTRIES_SHOWN = 12
_TURN_KINDS = frozenset({"prompt", "reply", "tool_result", "message"})
# (header, width px): the block's name and its content get what the others leave, and the
# narrow layout (`panel.css`) hides the content.  Each fixed column holds its widest value whole
# in every layout (DejaVu Sans at 12 px, the widest common UI font): the kind `tool_result` (63
# px), a token figure up to "~200,000", a next-call status (`fmt.status_cell` shortens the long ones).
_BLOCK_COLUMNS = (
    ("block", 0),
    ("kind", 72),
    ("tokens", 68),
    ("prefix", 68),
    ("marker", 52),
    ("next call", 70),
    ("content", 0),
)


def render_blocks(session: Session) -> str:
    """The conversation in request order: tokens, prefix tokens, markers, next-call outlook; a
    block's findings in a full-width row under it, so no column is pushed off screen."""
    params, names = session.next_request()
    lay = session.layout(params)
    findings, predictions = session.check(params, names)
    info = session.models.get(str(params["model"]))
    automatic = params.get("cache_control")
    try:
        points = resolve_breakpoints(lay, automatic)
        marks = {lay.positions[b.position].path: (b.ttl, b.automatic) for b in points}
        count = len(points)
    except CacheRuleError:  # the findings explain it; still show the markers as written
        marks = {p.path: (p.marker, False) for p in lay.positions if p.marker}
        count = len(marks) + (1 if automatic else 0)
    stats: dict[str, list[int]] = {}  # name -> [tokens, cumulative]
    marker: dict[str, tuple[str, bool]] = {}
    for p in lay.positions:
        name = names.get(p.path, p.path)
        entry = stats.setdefault(name, [0, 0])
        entry[0] += p.tokens
        entry[1] = p.cumulative
        if p.path in marks:
            marker[name] = marks[p.path]
    outlook = {p.block: p.status for p in predictions if p.block}
    notes: dict[str | None, list[str]] = {}
    for f in findings:
        notes.setdefault(f.block if f.block in stats else None, []).append(_finding(f))
    over = count > MAX_BREAKPOINTS
    bold = (
        f' class="pcache-breakpoints pcache-error"{colour(ERROR)}' if over else ' class="pcache-breakpoints"'
    )
    caption = (
        f'<div class="pcache-caption">Blocks in request order · breakpoints '
        f"<b{bold}>{count}/{MAX_BREAKPOINTS}</b>"
        f" · {text(info.id)} caches prefixes from {info.min_cache_tokens:,} tokens"
        f" · next prompt {tokens(lay.total_tokens, True)} tokens (estimated{_API_FIGURES[session.offline]})"
        "</div>" + "".join(notes.get(None, []))
    )
    blocks = list(session.conversation.in_request_order())
    if not blocks:
        return caption + '<p class="pcache-empty">No blocks yet: add a system prompt or context.</p>'
    rows = []
    folded = _folded(blocks, {*marker, *(name for name in notes if name is not None)})
    for n, b in enumerate(blocks):
        if n in folded:
            if n == folded.start:
                total = sum(stats.get(blocks[i].name, (0, 0))[0] for i in folded)
                rows.append(
                    f'<tr class="pcache-block pcache-folded"><td colspan="{len(_BLOCK_COLUMNS)}"{LEFT}>'
                    f"{plural(len(folded), 'earlier turn block')} without a marker or a note "
                    f"({tokens(total, True)} tokens)</td></tr>"
                )
            continue
        tok, cum = stats.get(b.name, (0, 0))
        ttl, auto = marker.get(b.name, ("", False))
        # a marker the block does not carry itself: the cache mode's (last, automatic, planner), in
        # words (a stylesheet's `::after` would not reach an untrusted notebook's copy)
        auto = bool(ttl) and (auto or b.cache is None)
        auto_cls, auto_word = (" pcache-auto", ' <span style="opacity:0.6">auto</span>') if auto else ("", "")
        rows.append(
            f'<tr class="pcache-block pcache-role-{attr(b.role)}" data-block="{attr(b.name)}" '
            f'data-kind="{attr(b.kind)}"><td class="pcache-name" title="{attr(b.name)}"{LEFT}>'
            f"{text(b.name)}</td>"
            f'<td class="pcache-kind"{LEFT}>{text(b.kind)}</td>'
            f'<td class="pcache-num pcache-tokens">{tokens(tok, True)}</td>'
            f'<td class="pcache-num pcache-cumulative">{tokens(cum, True) if b.name in stats else "—"}</td>'
            f'<td class="pcache-marker{auto_cls}"{LEFT}>{text(ttl or "")}{auto_word}</td>'
            f"{status_cell(outlook.get(b.name, ''), 'pcache-next')}"
            f'<td class="pcache-preview" title="{attr(b.source or "")}"{LEFT}>'
            f"{html_prose(_preview(b))}</td></tr>"
        )
        if b.name in notes:
            rows.append(
                f'<tr class="pcache-block-notes" data-block="{attr(b.name)}">'
                f'<td class="pcache-notes" colspan="{len(_BLOCK_COLUMNS)}"{LEFT}>'
                f"{''.join(notes[b.name])}</td></tr>"
            )
    cols = "".join(f'<col style="width:{w}px"/>' if w else "<col/>" for _, w in _BLOCK_COLUMNS)
    head = "".join(
        th(h, h in ("tokens", "prefix"), "estimated locally" if h in ("tokens", "prefix") else None)
        for h, _ in _BLOCK_COLUMNS
    )
    return (
        f'{caption}<table class="pcache-table pcache-blocks"><colgroup>{cols}</colgroup>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _folded(blocks: Sequence[Block], shown: set[str]) -> range:
    """The turn blocks folded into one row: the unmarked, unremarked run of prompts and replies
    before the latest `BLOCKS_SHOWN`, so a long chat does not push the calls table off screen."""
    if len(blocks) <= BLOCKS_SHOWN * 2:
        return range(0)
    last = len(blocks) - BLOCKS_SHOWN
    start = next((i for i, b in enumerate(blocks) if b.kind in _TURN_KINDS), last)
    stop = start
    while stop < last and blocks[stop].kind in _TURN_KINDS and blocks[stop].name not in shown:
        stop += 1
    return range(start, stop) if stop - start > 1 else range(0)


def render_header(session: Session, totals: Totals | None = None) -> str:
    """Mode, model and the session's totals (the panel passes running totals to stay O(1))."""
    totals = totals if totals is not None else session.totals
    mode = session.connection.mode if session.connection is not None else "custom client"
    shown = "live" if mode == "live" else f"offline ({mode})" if mode == "server" else mode
    est = session.offline and totals.calls > 0
    return (
        f'<div class="pcache-header"><b class="pcache-mode" data-mode="{attr(mode)}">{text(shown)}</b>'
        f' · <span class="pcache-model">{text(session.model)}</span> · <span class="pcache-totals">'
        f"{plural(totals.calls + totals.failed, 'call')} ({totals.failed} failed) · {text(totals.cost)} · "
        f"{text(totals.tokens.line(est))}{' (~ estimated offline)' if est else ''}</span></div>"
    )


# -- countdown and summary ----------------------------------------------------------------
def _clock_note(offline: bool) -> str:
    if not offline:
        return ""
    return (
        '<div class="pcache-clock-note">Offline, time stands still: this countdown follows the '
        "emulator's clock, which moves only when you move it, e.g. <code>%claude_clock advance 5m"
        "</code>.</div>"
    )


def keepwarm_lines(keeper: KeepWarmer, now: float) -> list[str]:
    """Keep-warm advice for each entry that dies before the next likely call, then keep-warm's state."""
    lines = [a.text(keeper.on) for a in keeper.advice(now)]
    if keeper.on:
        sent = plural(keeper.refreshes, "refresh", "refreshes")
        lines.append(f"Keep-warm is on ({sent} sent); %claude_prewarm --keep-warm off stops it.")
    elif keeper.stopped:
        lines.append(keeper.stopped)
    return lines


def render_countdown(
    entries: Sequence[Mapping[str, Any]], now: float, *, offline: bool = False, advice: Sequence[str] = ()
) -> str:
    """Live cache entries with the time left; `now` (not the stored `expires_in`) decides.
    Offline it says that the countdown follows the emulator's clock, and how to move it;
    `advice`: keep-warm lines (`KeepWarm.text`) shown under the entries."""
    live = [(e, name) for e, name in zip(entries, entry_names(entries), strict=True) if e["expires_at"] > now]
    older, live = live[:-ENTRIES_SHOWN], live[-ENTRIES_SHOWN:]  # soonest to expire first
    rows = []
    if older:  # a chat marked at its tail leaves an entry per call: the latest ones are what is read
        rows.append(
            f'<tr class="pcache-folded"><td colspan="5"{LEFT}>{plural(len(older), "entry", "entries")}'
            f" that expire sooner, not shown (below: the {ENTRIES_SHOWN} written or read last)</td></tr>"
        )
    for e, label in live:
        left = float(e["expires_at"]) - now
        name = e.get("block") or e.get("path") or "?"
        ttl = str(e.get("ttl", "5m"))
        width = BAR_WIDTH / 2 * min(1.0, left / TTL_SECONDS.get(ttl, 300))
        progress = bar(
            [("pcache-left", width, COLOURS["read"][0], "time left")], BAR_WIDTH // 2, 8, track=True
        )
        rows.append(
            f'<tr class="pcache-entry" data-block="{attr(name)}" data-ttl="{attr(ttl)}">'
            f'<td class="pcache-name" title="{attr(label)}"{LEFT}>{text(label)}</td>'
            f'<td class="pcache-num pcache-tokens">{tokens(int(e.get("tokens", 0)), True)}</td>'
            f'<td class="pcache-entry-ttl"{LEFT}>{text(ttl)}</td>'
            f'<td class="pcache-expires"{LEFT}>expires in {duration(left, ceil=True)}</td>'
            f'<td class="pcache-progress">{progress}</td></tr>'
        )
    caption = '<div class="pcache-caption">Cache entries written by this session</div>' + _clock_note(offline)
    if not rows:
        return caption + '<p class="pcache-empty">No live cache entries.</p>'
    head = (
        f'<tr><th{LEFT}>block</th><th class="pcache-num" title="estimated locally">prefix tokens</th>'
        f"<th{LEFT}>ttl</th><th{LEFT}>left</th><th></th></tr>"
    )
    notes = "".join(f"<li>{text(line)}</li>" for line in advice)
    return (
        f'{caption}<table class="pcache-table pcache-countdown"><thead>{head}</thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
        + (f'<ul class="pcache-advice">{notes}</ul>' if notes else "")
    )


def summary_text(record: CallRecord) -> str:
    """The one-line usage summary printed after a reply, for terminals and logs: the API's usage
    figures under the words every view uses, `~` and a closing note when they are estimates."""
    if not record.ok:
        return f"call {record.index} failed · {record.error or 'no response'}"
    est = record.estimated
    return (
        f"{record.tokens.line(est)} · {record.cost} · {record.outcome.upper()}"
        f"{' · ~ estimated offline' if est else ''}"
    )


def render_summary(record: CallRecord) -> str:
    """`summary_text` as one styled line; self-contained (no panel CSS needed)."""
    title = ' title="token counts estimated offline"' if record.estimated else ""
    return (
        f'<div class="pcache-summary pcache-outcome-{attr(record.outcome)}" data-call="{record.index}"'
        f'{title} style="font-family:monospace;font-size:12px;opacity:0.8">'
        f"{text(summary_text(record))}</div>"
    )


def render_session(session: Session, *, skip: int = 0, note: str = "") -> str:
    """Everything the panel shows, as static HTML (`_repr_html_` for nbconvert and GitHub);
    `skip`: the first calls left out (`render_calls`); `note`: a line of text above it all."""
    now = session.now()
    entries = session.ledger.entries(now)
    calls = render_calls(
        session, skip=skip
    )  # brings the session's `CallLog` up to date: its totals are the header's
    totals = call_log(session).update(session).totals
    said = f'<p class="pcache-note pcache-snapshot">{text(note)}</p>' if note else ""
    return in_panel(
        f"{said}{render_header(session, totals)}{render_blocks(session)}"
        f"{calls}{render_countdown(entries, now, offline=session.offline)}"
    )


def in_panel(html: str) -> str:
    """`html` in the panel's class, with its stylesheet: laid out as in the panel (a notebook's
    own table style would right-align text)."""
    return f'<div class="pcache-panel">{style()}{html}</div>'


session_html = render_session
