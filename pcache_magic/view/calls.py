"""The calls table: one row a call, with tokens by billing rate, cost, outcome and why.

The live panel appends a row per call instead of re-rendering, so the table is built from
parts that line up on their own: one shared column spec (`CALLS_WIDTH` feeds the panel's
CSS), a row renderer, and a table shell for the header or a run of rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import TYPE_CHECKING, Any

from ..analysis.diagnose import explain_all
from ..core.fmt import clock, money, tokens
from ..core.record import CallRecord
from .html import BAR_WIDTH, COLOURS, attr, th

if TYPE_CHECKING:
    from ..session.session import Session

# (header, class, width px): one colgroup for the static table and the widget's chunks,
# so separately rendered chunks line up under one header (table-layout: fixed).
_CALL_COLUMNS = (
    ("#", "pcache-index", 34),
    ("time (UTC)", "pcache-time", 92),
    ("model", "pcache-model", 124),
    ("input", "pcache-uncached", 72),
    ("cache write", "pcache-write", 92),
    ("ttl", "pcache-write-ttl", 64),
    ("cache read", "pcache-read", 92),
    ("output", "pcache-output", 64),
    ("cost", "pcache-cost", 76),
    ("saving", "pcache-saving", 76),
    ("latency", "pcache-latency", 64),
    ("outcome", "pcache-outcome", 76),
    ("predicted", "pcache-predicted", 100),
    ("why", "pcache-why", 140),
    ("tokens", "pcache-bar-cell", BAR_WIDTH + 12),
)
CALLS_WIDTH = sum(width for _, _, width in _CALL_COLUMNS)
_NUMERIC = frozenset(
    {
        "pcache-index",
        "pcache-uncached",
        "pcache-write",
        "pcache-read",
        "pcache-output",
        "pcache-cost",
        "pcache-saving",
        "pcache-latency",
    }
)


def bar_scale(records: Iterable[CallRecord], floor: int = 1024) -> int:
    """Tokens at full bar width: a power of two, so it changes rarely as calls come in."""
    largest = max((r.tokens.prompt + r.tokens.output for r in records), default=0)
    return max(floor, 1 << max(0, largest - 1).bit_length())


def render_bar(record: CallRecord, scale: int) -> str:
    """One call's tokens as a stacked horizontal SVG bar: read, writes, uncached input, output."""
    t = record.tokens
    parts = {"read": t.read, "write_1h": t.write_1h, "write_5m": t.write_5m}
    parts.update(uncached=t.uncached, output=t.output)
    rects, x = [], 0.0
    for key, n in parts.items():
        if n <= 0:
            continue
        width = BAR_WIDTH * n / max(scale, 1)
        colour, label = COLOURS[key]
        rects.append(
            f'<rect class="pcache-seg-{key}" x="{x:.1f}" y="0" width="{width:.1f}" height="12" '
            f'fill="{colour}"><title>{label} {tokens(n, record.estimated)}</title></rect>'
        )
        x += width
    return (
        f'<svg class="pcache-bar" width="{BAR_WIDTH}" height="12" viewBox="0 0 {BAR_WIDTH} 12">'
        f"{''.join(rects)}</svg>"
    )


def render_legend() -> str:
    swatches = "".join(
        f'<span class="pcache-swatch" style="background:{colour}"></span>{label}'
        for colour, label in COLOURS.values()
    )
    return f'<div class="pcache-legend">{swatches}</div>'


def predicted_outcome(prediction: Sequence[Mapping[str, Any]] | None) -> str | None:
    """The outcome the pre-flight prediction implied, in `CallRecord.outcome` terms."""
    if prediction is None:
        return None
    statuses = {p.get("status") for p in prediction}
    hit = bool(statuses & {"hit", "hit+write"})
    write = bool(statuses & {"write", "hit+write"})
    return "hit+write" if hit and write else "hit" if hit else "write" if write else "uncached"


def _why(record: CallRecord) -> str:
    """Without a local explanation: the API's cache-miss reason when it gave one, else the outcome."""
    if not record.ok:
        return record.error or "failed"
    diagnostics = getattr(record.response, "diagnostics", None)
    if diagnostics is not None:
        reason = diagnostics.cache_miss_reason
        if reason is None:
            return "diagnosis pending"
        missed = getattr(reason, "cache_missed_input_tokens", None)
        return reason.type + (f" ({tokens(missed)} missed)" if missed else "")
    return record.outcome


def render_call_row(record: CallRecord, scale: int | None = None, why: str | None = None) -> str:
    """One `<tr>` of the calls table; the panel appends these instead of re-rendering.

    `why` is the call's `diagnose.Explanation.summary` (the panel explains calls as they come).
    """
    t, c, est, ok = record.tokens, record.cost, record.estimated, record.ok
    scale = scale or bar_scale([record])

    def num(cls: str, n: int, extra: str = "") -> str:
        shown = tokens(n, est) if ok else "—"
        return f'<td class="pcache-num {cls}" data-tokens="{n}"{extra}>{shown}</td>'

    ttl = "+".join(k for k, n in (("1h", t.write_1h), ("5m", t.write_5m)) if n)
    predicted = predicted_outcome(record.prediction)
    if predicted is None or not ok:
        predicted_cell = f'<td class="pcache-predicted">{escape(predicted or "")}</td>'
    elif predicted == record.outcome:
        predicted_cell = f'<td class="pcache-predicted" data-match="yes">{escape(predicted)} ✓</td>'
    else:
        predicted_cell = (
            f'<td class="pcache-predicted pcache-mismatch" data-match="no" title="the prediction missed">'
            f"{escape(predicted)} ✗</td>"
        )
    why = why or _why(record)
    saving_cls = " pcache-negative" if c.saving < 0 else ""
    return (
        f'<tr class="pcache-call pcache-outcome-{attr(record.outcome)}" data-call="{record.index}" '
        f'data-outcome="{attr(record.outcome)}"><td class="pcache-num pcache-index">{record.index}</td>'
        f'<td class="pcache-time">{clock(record.started_at)}</td>'
        f'<td class="pcache-model" title="{attr(record.model)}">{escape(record.model)}</td>'
        + num("pcache-uncached", t.uncached)
        + num("pcache-write", t.written, f' data-write-5m="{t.write_5m}" data-write-1h="{t.write_1h}"')
        + f'<td class="pcache-write-ttl">{ttl}</td>'
        + num("pcache-read", t.read)
        + num("pcache-output", t.output)
        + f'<td class="pcache-num pcache-cost">{money(c.total) if ok else "—"}</td>'
        f'<td class="pcache-num pcache-saving{saving_cls}">{money(c.saving) if ok else "—"}</td>'
        f'<td class="pcache-num pcache-latency">{record.latency_s:.2f} s</td>'
        f'<td class="pcache-outcome">{escape(record.outcome)}</td>'
        f"{predicted_cell}"
        f'<td class="pcache-why" title="{attr(why)}">{escape(why)}</td>'
        f'<td class="pcache-bar-cell">{render_bar(record, scale) if ok else ""}</td></tr>'
    )


def calls_table(rows: str = "", *, head: bool = False) -> str:
    """A calls `<table>` with the shared column widths: the header alone, or a run of rows."""
    cols = "".join(f'<col style="width:{w}px"/>' for _, _, w in _CALL_COLUMNS)
    thead = "<thead><tr>" + "".join(th(h, c in _NUMERIC) for h, c, _ in _CALL_COLUMNS) + "</tr></thead>"
    return (
        f'<table class="pcache-table pcache-calls"><colgroup>{cols}</colgroup>'
        f"{thead if head else ''}<tbody>{rows}</tbody></table>"
    )


def render_calls(session: Session) -> str:
    """Every call: tokens by billing rate, cost, saving, outcome against the prediction, why."""
    records = session.calls
    if not records:
        return '<div class="pcache-caption">Calls</div><p class="pcache-empty">No calls yet.</p>'
    scale = bar_scale(records)
    whys = [e.summary for e in explain_all(session)]
    rows = "".join(render_call_row(r, scale, why) for r, why in zip(records, whys, strict=True))
    return f'<div class="pcache-caption">Calls</div>{render_legend()}{calls_table(rows, head=True)}'
