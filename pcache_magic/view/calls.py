"""The calls table: one row a call, in the order people read it, narrow enough for any notebook.

Columns: call, outcome, cache read, cache write, uncached input, output, cost, saving, why.  The
eight figure columns have fixed widths (`CALLS_WIDTH` px together); "why" takes what is left and
shows its first line, the rest (the whole explanation, time, model, latency, the prediction and the
token bar) folds into a `<details>` in that cell, so nothing scrolls sideways at 700 px or 1008 px.
The live panel appends a row per call instead of re-rendering, so the table is built from parts
that line up on their own: one shared column spec, a row renderer, and a table shell.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..analysis.call_log import LogView, call_log
from ..core.fmt import LABELS, clock, money, plural, tokens
from ..core.record import CallRecord
from ..core.tokens import TokenEstimator
from .html import BAR_WIDTH, COLOURS, ERROR, HIDDEN, LEFT, WARNING, attr, bar, colour, text, th

if TYPE_CHECKING:
    from ..session.session import Session

__all__ = [
    "CALLS_WIDTH",
    "bar_scale",
    "calls_table",
    "kept_rows",
    "predicted_outcome",
    "render_bar",
    "render_call_row",
    "render_calls",
    "render_legend",
    "thinking_tokens",
]

# (header, class, width px, tooltip): one colgroup for the static table and the widget's chunks,
# so separately rendered chunks line up under one header (table-layout: fixed, width 100%).
# Widths hold `~12,345`, `~12,345 1h+5m`, `hit+write ✗` and `-$0.0123` at the panel's 12 px; "why" has none.
_CALL_COLUMNS: tuple[tuple[str, str, int | None, str], ...] = (
    ("call", "pcache-index", 36, "the call's number; hover for its time and model"),
    ("outcome", "pcache-outcome", 82, "✓ or ✗: whether the pre-flight prediction was right"),
    (LABELS["read"], "pcache-read", 62, "cache_read_input_tokens"),
    (LABELS["write"], "pcache-write", 94, "cache_creation_input_tokens, 5m or 1h"),
    (LABELS["uncached"], "pcache-uncached", 62, "input_tokens: what follows the last cache breakpoint"),
    (LABELS["output"], "pcache-output", 56, "output_tokens"),
    ("cost", "pcache-cost", 62, "what the call cost"),
    ("saving", "pcache-saving", 66, "against the same call with no caching"),
    ("why", "pcache-why", None, "why the cache hit or missed; open for details and the token bar"),
)
_SWATCH = "display:inline-block;width:10px;height:10px;margin:0 3px 0 10px;"
CALLS_WIDTH = sum(width or 0 for _, _, width, _ in _CALL_COLUMNS)
_NUMERIC = frozenset(
    {
        "pcache-index",
        "pcache-read",
        "pcache-write",
        "pcache-uncached",
        "pcache-output",
        "pcache-cost",
        "pcache-saving",
    }
)


def bar_scale(records: Iterable[CallRecord], floor: int = 1024) -> int:
    """Tokens at full bar width: a power of two, so it changes rarely as calls come in."""
    largest = max((r.tokens.prompt + r.tokens.output for r in records), default=0)
    return max(floor, 1 << max(0, largest - 1).bit_length())


def render_bar(record: CallRecord, scale: int) -> str:
    """One call's tokens as a stacked horizontal bar: read, writes, uncached input, output; each
    segment's tooltip names its tokens (HTML spans, not SVG: an untrusted notebook keeps them)."""
    t = record.tokens
    parts = {"read": t.read, "write_1h": t.write_1h, "write_5m": t.write_5m}
    parts.update(uncached=t.uncached, output=t.output)
    segments = [
        (
            f"pcache-seg-{key}",
            BAR_WIDTH * n / max(scale, 1),
            COLOURS[key][0],
            f"{COLOURS[key][1]} {tokens(n, record.estimated)}",
        )
        for key, n in parts.items()
        if n > 0
    ]
    return bar(segments, BAR_WIDTH, 12)


def thinking_tokens(record: CallRecord) -> int:
    """The reply's thinking in estimated tokens: usage counts it in `output_tokens`, unsplit."""
    blocks = record.response.content if record.response is not None else ()
    thought = "".join(b.thinking for b in blocks if b.type == "thinking")
    return TokenEstimator(memo_size=0).text(thought) if thought else 0


def render_legend() -> str:
    """The colours of the token bars, said to be theirs: the bars are folded into each call's
    "why", out of sight of a legend that only listed colours above the table.  Each swatch and
    its label are one unbreakable item, so a narrow window wraps between items, never inside one."""
    swatches = "".join(  # styled inline: an untrusted notebook's copy keeps its colours
        f'<span class="pcache-legend-item" style="white-space:nowrap;display:inline-block">'
        f'<span class="pcache-swatch" style="{_SWATCH}background:{hue}"></span>{text(label)}</span>'
        for hue, label in COLOURS.values()
    )
    return (
        '<div class="pcache-legend"><span class="pcache-legend-title">Token bar, in each call\'s '
        f"<i>why</i> (click it to open):</span>{swatches}</div>"
    )


def _outcome_cell(record: CallRecord, mark: str) -> str:
    """The outcome; a pre-warm's says so (its outcome, a hit or a write, in the tooltip and the
    token columns): it answers nothing, so it should not read as one more question.  Left-aligned
    and a failure in red inline, as an untrusted notebook's copy shows them too."""
    style = colour(ERROR, "text-align:left;") if not record.ok else LEFT
    if record.kind != "prewarm":
        return f'<td class="pcache-outcome"{style}>{text(record.outcome)}{mark}</td>'
    title = f"a pre-warm (max_tokens 0): {record.outcome}"
    return f'<td class="pcache-outcome pcache-prewarm" title="{attr(title)}"{style}>pre-warm{mark}</td>'


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
        if isinstance(missed, int) and not isinstance(missed, bool) and missed > 0:  # else no figure
            return reason.type + f" ({tokens(missed)} missed)"
        return reason.type
    return record.outcome


def _predicted(record: CallRecord) -> tuple[str, str]:
    """The outcome cell's mark (✓/✗ against the prediction) and the details' "predicted" note."""
    predicted = predicted_outcome(record.prediction)
    if predicted is None or not record.ok:
        return "", ""
    match = predicted == record.outcome
    mark = (
        f' <span class="pcache-predicted{"" if match else " pcache-mismatch"}" data-match="'
        f'{"yes" if match else "no"}" data-predicted="{attr(predicted)}" title="predicted '
        f'{attr(predicted)}{"" if match else ": the prediction missed"}"{"" if match else colour(WARNING)}>'
        f"{'✓' if match else '✗'}</span>"
    )
    return mark, f" · predicted {text(predicted)} {'✓' if match else '✗'}"


def _thinking_note(record: CallRecord) -> str:
    thought = thinking_tokens(record)
    return f" · output of which {tokens(thought, True)} thinking (estimate)" if thought else ""


def _details(record: CallRecord, why: str, scale: int, predicted: str) -> str:
    """The "why" cell: its first line, and the rest folded (time, model, latency, the bar)."""
    info = (
        f'<div class="pcache-call-info"><span class="pcache-time">{clock(record.started_at)} UTC</span>'
        f' · <span class="pcache-model">{text(record.model)}</span> · {text(record.kind)}'
        f' · latency <span class="pcache-latency">{record.latency_s:.2f} s</span>{predicted}'
        f"{' · tokens estimated offline' if record.estimated else ''}{_thinking_note(record)}</div>"
    )
    bar = render_bar(record, scale) if record.ok else ""
    more = (  # the advice is the explanation's: say where it is (a new user did not know)
        f'<div class="pcache-call-more">What to do: <code>%claude_explain {record.index}</code>'
        f" (in Python: <code>explain(session, {record.index})</code>)</div>"
        if record.ok and ": " in why  # a cause named: a miss (a first write or a hit has none)
        else ""
    )
    return (
        f'<td class="pcache-why" title="{attr(why)}"{LEFT}><details><summary><span class="pcache-why-line">'
        f'{text(_cause_first(record, why))}</span><span class="pcache-why-open"{HIDDEN}>why</span></summary>'
        f'<div class="pcache-why-text">{text(why)}</div>'
        f"{more}{info}{bar}</details></td>"
    )


def _cause_first(record: CallRecord, why: str) -> str:
    """The folded line: the cause before the tokens ("system changed in 'rules', ... · wrote 1,780
    (1h)"), since the columns beside it show the tokens and a narrow cell cuts its end.  Opened,
    the line hides (panel.css) and the whole "why" below says it once."""
    outcome, said, cause = why.partition(": ")
    return f"{cause} · {outcome}" if said and record.ok else why


def render_call_row(record: CallRecord, scale: int | None = None, why: str | None = None) -> str:
    """One `<tr>` of the calls table; the panel appends these instead of re-rendering.

    `why` is the call's `diagnose.Explanation.summary` (the panel explains calls as they come).
    """
    t, c, est, ok = record.tokens, record.cost, record.estimated, record.ok
    scale = scale or bar_scale([record])

    def num(cls: str, n: int, extra: str = "", suffix: str = "") -> str:
        shown = tokens(n, est) + suffix if ok else "—"
        return f'<td class="pcache-num {cls}" data-tokens="{n}"{extra}>{shown}</td>'

    ttl = "+".join(k for k, n in (("1h", t.write_1h), ("5m", t.write_5m)) if n)
    ttl = f' <span class="pcache-write-ttl">{ttl}</span>' if ttl and ok else ""
    mark, predicted = _predicted(record)
    negative = c.saving < 0  # its colour inline too (untrusted notebooks keep no stylesheet)
    saving = ("pcache-saving pcache-negative", colour(WARNING)) if negative else ("pcache-saving", "")
    where = f"{clock(record.started_at)} UTC · {record.model}"
    estimated = ' data-estimated="yes"' if est else ""
    return (
        f'<tr class="pcache-call pcache-outcome-{attr(record.outcome)}" data-call="{record.index}" '
        f'data-outcome="{attr(record.outcome)}"{estimated}>'
        f'<td class="pcache-num pcache-index" title="{attr(where)}">{record.index}</td>'
        + _outcome_cell(record, mark)
        + num("pcache-read", t.read)
        + num("pcache-write", t.written, f' data-write-5m="{t.write_5m}" data-write-1h="{t.write_1h}"', ttl)
        + num("pcache-uncached", t.uncached)
        + num("pcache-output", t.output)
        + f'<td class="pcache-num pcache-cost">{text(money(c.total)) if ok else "—"}</td>'
        f'<td class="pcache-num {saving[0]}"{saving[1]}>{text(money(c.saving)) if ok else "—"}</td>'
        + _details(record, why or _why(record), scale, predicted)
        + "</tr>"
    )


def kept_rows(view: LogView, start: int, stop: int, scale: int) -> list[str]:
    """The rows of the log's calls `start` to `stop` at `scale`; a row rendered at that scale
    before (by a panel or the static view of the same session) comes from the log's memo."""
    memo, rows = view.memo, []
    for i in range(start, stop):
        kept = memo.get(i)
        if kept is None or kept[0] != scale:
            kept = memo[i] = (scale, render_call_row(view.records[i], scale, view.whys[i]))
        rows.append(kept[1])
    return rows


def calls_table(rows: str = "", *, head: bool = False) -> str:
    """A calls `<table>` with the shared column widths: the header alone, or a run of rows."""
    cols = "".join(f'<col style="width:{w}px"/>' if w else "<col/>" for _, _, w, _ in _CALL_COLUMNS)
    thead = (
        "<thead><tr>"
        + "".join(th(h, c in _NUMERIC, tip, cls=c) for h, c, _, tip in _CALL_COLUMNS)
        + "</tr></thead>"
    )
    return (
        f'<table class="pcache-table pcache-calls"><colgroup>{cols}</colgroup>'
        f"{thead if head else ''}<tbody>{rows}</tbody></table>"
    )


def render_calls(session: Session, *, skip: int = 0) -> str:
    """Every call: tokens by billing rate, cost, saving, outcome against the prediction, why.

    `skip`: the first calls left out, with a line saying so (the live panel's page, so its
    static copy costs what the page does, not what the whole history does)."""
    records = session.calls
    if not records:
        return '<div class="pcache-caption">Calls</div><p class="pcache-empty">No calls yet.</p>'
    view = call_log(session).update(session)  # each call explained once per session, then kept
    scale = bar_scale([view.largest] if view.largest is not None else [])
    skip = min(max(0, skip), view.count)
    rows = "".join(kept_rows(view, skip, view.count, scale))
    more = (
        f'<p class="pcache-empty pcache-more">{plural(skip, "earlier call")} not shown: the live '
        'panel\'s "Show all" shows them, <code>%claude_explain --all</code> explains them.</p>'
        if skip
        else ""
    )
    return f'<div class="pcache-caption">Calls</div>{more}{render_legend()}{calls_table(rows, head=True)}'
