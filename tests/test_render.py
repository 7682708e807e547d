"""The pure HTML renderers: formatting, escaping, and the DOM contract the browser test relies on.

Renderer output is well-formed XML by design, so it is parsed here with the standard library
and queried by the same `pcache-` classes and `data-*` attributes the browser test uses.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any, get_args, get_type_hints

import pytest
from anthropic.types import Message

from pcache_magic.analysis.ledger import Prediction
from pcache_magic.core.conversation import Block, BlockKind
from pcache_magic.core.fmt import DOLLAR_HTML, LABELS, entry_names, status_words
from pcache_magic.core.models import Prices
from pcache_magic.core.record import CallRecord
from pcache_magic.emulator import Emulator
from pcache_magic.session.session import Session
from pcache_magic.session.transport import connect
from pcache_magic.view import render
from pcache_magic.view.calls import CALLS_WIDTH
from pcache_magic.view.html import ERROR, WARNING
from pcache_magic.view.render import (
    BAR_WIDTH,
    COLOURS,
    ENTRIES_SHOWN,
    bar_scale,
    calls_table,
    predicted_outcome,
    render_bar,
    render_blocks,
    render_call_row,
    render_calls,
    render_countdown,
    render_session,
    render_summary,
    session_html,
    style,
    summary_text,
)

from _helpers import cell, parse, sanitized, select, styles, text, unguarded_dollars

MODEL = "claude-sonnet-4-5"
LONG = " ".join(f"Rule {i}: review every function for missing tests and unclear names." for i in range(120))
PRICES = Prices(input=3, cache_write_5m=3.75, cache_write_1h=6, cache_read=0.3, output=15)


# Advance widths (1/2048 em) of DejaVu Sans, regular and bold (headers): the widest common UI
# sans and the one a Linux notebook falls back to, so a cell that holds it holds Arial or Roboto.
_GLYPHS = "abcdefghijklmnopqrstuvwxyz_ 0123456789~,+-()"
_ADVANCE = {
    False: (1255, 1300, 1126, 1300, 1260, 721, 1300, 1298, 569, 569, 1186, 569, 1995, 1298, 1253)
    + (1300, 1300, 842, 1067, 803, 1298, 1212, 1675, 1212, 1212, 1075, 1024, 651)
    + (1303,) * 10
    + (1716, 651, 1716, 739, 799, 799),
    True: (1382, 1466, 1214, 1466, 1389, 891, 1466, 1458, 702, 702, 1362, 702, 2134, 1458, 1407)
    + (1466, 1466, 1010, 1219, 979, 1458, 1335, 1892, 1321, 1335, 1192, 1024, 713)
    + (1425,) * 10
    + (1716, 778, 1716, 852, 938, 938),
}
PAD = 8  # a cell's padding, 4 px a side (`panel.css`)


def px(label: str, bold: bool = False) -> float:
    """`label`'s width at the panel's 12 px, in DejaVu Sans."""
    advance = dict(zip(_GLYPHS, _ADVANCE[bold], strict=True))
    return sum(advance[c] for c in label) * 12 / 2048


def narrow_rules(width: int = 720) -> list[tuple[list[str], str]]:
    """The stylesheet's rules for outputs under `width` px (720: 700 px windows; 480: a 1008 px
    window at 200%), as (selectors, declarations)."""
    body = style().removeprefix("<style>").removesuffix("</style>")
    narrow = body.split(f"@container (max-width:{width}px){{")[1].partition("}}")[0] + "}"
    return [
        (sel.split(","), decl) for sel, _, decl in (rule.partition("{") for rule in narrow.split("}")[:-1])
    ]


def new_session(**kwargs: Any) -> Session:
    return Session(model=MODEL, connection=connect(emulator=Emulator(), max_retries=0), **kwargs)


@pytest.fixture
def session() -> Session:
    s = new_session()
    s.system(LONG, cache="5m", name="intro")
    return s


def record(usage: dict[str, Any], *, estimated: bool = False, **fields: Any) -> CallRecord:
    message = Message.model_validate(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [{"type": "text", "text": "ok"}],
            "stop_reason": "end_turn",
            "usage": usage,
            **fields.pop("message", {}),
        }
    )
    defaults: dict[str, Any] = {"index": 1, "model": MODEL, "started_at": 0.0, "request": {}}
    return CallRecord(**{**defaults, **fields}, response=message, prices=PRICES, estimated=estimated)


HIT = {"input_tokens": 87, "output_tokens": 120, "cache_read_input_tokens": 12345}


def test_summary_line_matches_the_documented_format() -> None:
    rec = record(HIT)
    line = (
        "cache read 12,345 · cache write 0 · uncached input 87 · output 120 · $0.0058 (saved $0.0333) · HIT"
    )
    assert summary_text(rec) == line
    html = render_summary(rec)
    assert text(parse(html)) == line
    assert 'data-call="1"' in html
    assert html.count(DOLLAR_HTML) == 2 and not unguarded_dollars(html)
    estimated = summary_text(record(HIT, estimated=True))
    assert estimated.startswith("cache read ~12,345 · cache write 0 · uncached input ~87")
    assert estimated.endswith("· HIT · ~ estimated offline")
    write = record({"input_tokens": 5, "output_tokens": 10, "cache_creation_input_tokens": 2000})
    assert "cache write 5m 2,000 ·" in summary_text(write) and "more than uncached" in summary_text(write)
    assert summary_text(write).endswith("· WRITE")
    both = {"ephemeral_5m_input_tokens": 1500, "ephemeral_1h_input_tokens": 500}
    split = record(
        {"input_tokens": 5, "output_tokens": 10, "cache_creation_input_tokens": 2000, "cache_creation": both}
    )
    assert "cache write 5m 1,500 + 1h 500 ·" in summary_text(split)


def why(row: ET.Element) -> str:
    """The "why" cell's first line (its `<summary>`), as the table shows it folded."""
    (summary,) = cell(row, "pcache-why").iter("summary")
    (line,) = select(summary, "span", "pcache-why-line")
    return text(line)


def test_failed_row_and_summary() -> None:
    failed = CallRecord(index=3, model=MODEL, started_at=0.0, request={}, error="500 APIError: <boom>")
    row = parse(render_call_row(failed))
    (tr,) = select(row, "tr", "pcache-call", data_call="3")
    assert tr.get("data-outcome") == "failed"
    assert text(cell(tr, "pcache-outcome")) == "failed"
    assert why(tr) == "500 APIError: <boom>"
    assert text(cell(tr, "pcache-read")) == "—" and text(cell(tr, "pcache-cost")) == "—"
    assert summary_text(failed) == "call 3 failed · 500 APIError: <boom>"
    assert "&lt;boom&gt;" in render_summary(failed)


def test_why_column_uses_the_api_diagnostics() -> None:
    reason = {"type": "system_changed", "cache_missed_input_tokens": 2000}
    changed = record(HIT, message={"diagnostics": {"cache_miss_reason": reason}})
    assert why(parse(render_call_row(changed))) == "system_changed (2,000 missed)"
    pending = record(HIT, message={"diagnostics": {"cache_miss_reason": None}})
    assert why(parse(render_call_row(pending))) == "diagnosis pending"
    assert why(parse(render_call_row(record(HIT)))) == "hit"


@pytest.mark.parametrize("missed", ["2000", 2.5, True, [1], -3])
def test_a_missed_count_that_is_no_count_shows_no_figure(missed: object) -> None:
    """A reply with a str (or other non-count) there renders its row, without the figure (the SDK
    builds replies without validating them)."""
    reason = {"type": "system_changed", "cache_missed_input_tokens": 2000}
    changed = record(HIT, message={"diagnostics": {"cache_miss_reason": reason}})
    diagnostics: Any = getattr(changed.response, "diagnostics")  # noqa: B009 (not a typed field)
    diagnostics.cache_miss_reason.cache_missed_input_tokens = missed
    assert why(parse(render_call_row(changed))) == "system_changed"


def test_the_why_cell_folds_the_details_of_the_call() -> None:
    rec = record(HIT, latency_s=0.25, started_at=3723.0, prediction=[{"status": "hit"}])
    long = "read 12,345 tokens at intro; " * 8
    td = cell(parse(render_call_row(rec, why=long)), "pcache-why")
    assert td.get("title") == long  # the whole explanation on hover
    (details,) = td.iter("details")
    assert text(select(details, "div", "pcache-why-text")[0]) == long
    # opened, the folded line hides: the whole "why" is said once, not twice in two orders; the
    # summary keeps a word to click (and a name for a screen reader)
    assert text(select(details, "span", "pcache-why-line")[0]) == long
    assert text(select(details, "span", "pcache-why-open")[0]) == "why"
    css = style()
    hidden = ".pcache-panel .pcache-why details[open] .pcache-why-line,.pcache-panel .pcache-why-open"
    assert hidden + "{display:none}" in css
    # hidden inline (an untrusted notebook drops the stylesheet), shown by the stylesheet when open
    assert select(details, "span", "pcache-why-open")[0].get("style") == "display:none"
    assert (
        ".pcache-panel .pcache-why details[open] .pcache-why-open{display:inline!important;opacity:.6}" in css
    )
    info = text(select(details, "div", "pcache-call-info")[0])
    assert info == f"01:02:03 UTC · {MODEL} · ask · latency 0.25 s · predicted hit ✓"
    assert select(details, "span", "pcache-bar")
    assert text(select(details, "span", "pcache-latency")[0]) == "0.25 s"  # notebooks/sanitize.cfg
    # the info wraps anywhere, but never inside the model id (`claude-/sonnet-/5`)
    assert text(select(details, "span", "pcache-model")[0]) == MODEL
    assert ".pcache-panel .pcache-model{white-space:nowrap}" in style()


def test_columns_come_in_reading_order_with_fixed_widths() -> None:
    root = parse(calls_table(head=True))
    heads = [text(th) for th in root.iter("th")]
    assert heads == [
        "call",
        "outcome",
        "cache read",
        "cache write",
        "uncached input",
        "output",
        "cost",
        "saving",
        "why",
    ]
    widths = [c.get("style") for c in root.iter("col")]
    assert widths[-1] is None and all(widths[:-1])  # "why" takes what the others leave
    assert sum(int((w or "").removeprefix("width:").removesuffix("px")) for w in widths[:-1]) == CALLS_WIDTH
    assert CALLS_WIDTH <= 560  # a 700 px window leaves about 600 px for an output
    row = parse(render_call_row(record(HIT)))
    cells = [td.get("class", "").split()[-1] for td in row.iter("td")]
    assert cells == [
        "pcache-index",
        "pcache-outcome",
        "pcache-read",
        "pcache-write",
        "pcache-uncached",
        "pcache-output",
        "pcache-cost",
        "pcache-saving",
        "pcache-why",
    ]


def test_predicted_against_actual() -> None:
    assert predicted_outcome(None) is None
    assert predicted_outcome([{"status": "write"}]) == "write"
    assert predicted_outcome([{"status": "hit"}, {"status": "write"}]) == "hit+write"
    assert predicted_outcome([{"status": "below-minimum"}]) == "uncached"
    wrong = record(HIT, prediction=[{"status": "write"}])
    outcome = cell(parse(render_call_row(wrong)), "pcache-outcome")
    (mark,) = select(outcome, "span", "pcache-predicted")
    assert (text(outcome), mark.get("data-match"), mark.get("data-predicted")) == ("hit ✗", "no", "write")
    right = record(HIT, prediction=[{"status": "covered"}, {"status": "hit"}])
    outcome = cell(parse(render_call_row(right)), "pcache-outcome")
    (mark,) = select(outcome, "span", "pcache-predicted")
    assert (text(outcome), mark.get("data-match")) == ("hit ✓", "yes")
    assert text(cell(parse(render_call_row(record(HIT))), "pcache-outcome")) == "hit"  # no prediction


def test_bar_segments_are_proportional_to_the_scale() -> None:
    rec = record({"input_tokens": 1000, "output_tokens": 500, "cache_read_input_tokens": 2096})
    assert bar_scale([rec]) == 4096
    assert bar_scale([]) == 1024
    bar = parse(render_bar(rec, 4096))
    segments = [s for s in bar.iter("span") if (s.get("class") or "").startswith("pcache-seg-")]
    widths = {s.get("class"): float(styles(s)["width"].removesuffix("px")) for s in segments}
    assert widths == {
        "pcache-seg-read": pytest.approx(BAR_WIDTH * 2096 / 4096, abs=0.05),
        "pcache-seg-uncached": pytest.approx(BAR_WIDTH * 1000 / 4096, abs=0.05),
        "pcache-seg-output": pytest.approx(BAR_WIDTH * 500 / 4096, abs=0.05),
    }
    titles = [s.get("title") for s in segments]
    assert titles == ["cache read 2,096", "uncached input 1,000", "output 500"]


def test_countdown_shows_time_left_and_drops_expired_entries() -> None:
    entries: list[dict[str, Any]] = [
        {"block": "<intro>", "path": "system.0", "tokens": 2102, "ttl": "5m", "expires_at": 400.0},
        {"block": None, "path": "messages.0.content.0", "tokens": 3000, "ttl": "1h", "expires_at": 3700.0},
        {"block": "old", "path": "system.1", "tokens": 10, "ttl": "5m", "expires_at": 90.0},
    ]
    root = parse(render_countdown(entries, now=148.0))
    rows = select(root, "tr", "pcache-entry")
    assert [r.get("data-block") for r in rows] == ["<intro>", "messages.0.content.0"]
    assert text(cell(rows[0], "pcache-expires")) == "expires in 4m 12s"
    assert text(cell(rows[1], "pcache-expires")) == "expires in 59m 12s"
    assert "&lt;intro&gt;" in render_countdown(entries, now=148.0)
    assert "No live cache entries" in render_countdown(entries, now=5000.0)
    assert not select(root, "div", "pcache-clock-note")  # online, time runs by itself


def test_countdown_folds_the_entries_that_expire_soonest_past_a_dozen() -> None:
    # A chat marked at its tail leaves one entry per call: 30 live ones list the 12 touched last.
    entries = [
        {
            "block": f"q{i}",
            "path": f"messages.{i}.content.0",
            "tokens": 100 * i,
            "ttl": "5m",
            "expires_at": 100.0 + i,
        }
        for i in range(30)
    ]
    root = parse(render_countdown(entries, now=50.0))
    rows = select(root, "tr", "pcache-entry")
    assert [r.get("data-block") for r in rows] == [f"q{i}" for i in range(18, 30)]
    assert ENTRIES_SHOWN == 12
    (folded,) = select(root, "tr", "pcache-folded")
    assert text(folded).startswith("18 entries that expire sooner, not shown")
    # Twelve or fewer: no folded row.
    assert not select(parse(render_countdown(entries[:12], now=50.0)), "tr", "pcache-folded")
    # Expired entries do not count towards the fold.
    assert not select(parse(render_countdown(entries, now=117.5)), "tr", "pcache-folded")


def test_the_countdown_holds_a_default_name_and_its_earlier_version_whole() -> None:
    """At 1008 px the entries table cut the README's own default name ("you-are-a-careful-revie…"):
    the table stopped at 44em, which left its name column ~160 px."""
    body = style().removeprefix("<style>").removesuffix("</style>").split("@container")[0]
    (table,) = re.findall(r"table\.pcache-countdown\{[^}]*max-width:([\d.]+)em", body)
    fixed = sum(
        int(w) for w in re.findall(r"table\.pcache-countdown th:nth-child\(\d\)\{width:(\d+)px\}", body)
    )
    assert float(table) * 12 - fixed - PAD >= px("you-are-a-careful-reviewer (earlier entry)")


def test_offline_the_countdown_says_whose_clock_it_follows() -> None:
    entry = {"block": "rules", "path": "system.0", "tokens": 2102, "ttl": "5m", "expires_at": 400.0}
    for entries in ([entry], []):
        root = parse(render_countdown(entries, now=0.0, offline=True))
        (note,) = select(root, "div", "pcache-clock-note")
        assert "emulator's clock" in text(note) and "%claude_clock advance 5m" in text(note)


def test_entry_names_add_the_model_only_when_entries_span_two() -> None:
    one: list[dict[str, Any]] = [
        {"block": "rules", "path": "system.0", "model": "m1"},
        {"block": None, "path": "tools.0", "model": "m1"},
    ]
    assert entry_names(one) == ["rules", "tools.0"]
    two = [*one, {"block": "rules", "path": "system.0", "model": "m2"}]
    assert entry_names(two) == ["rules (m1)", "tools.0 (m1)", "rules (m2)"]
    assert entry_names([]) == []


def test_countdown_names_the_model_when_entries_span_two() -> None:
    entry = {"block": "rules", "path": "system.0", "tokens": 2102, "ttl": "5m", "expires_at": 400.0}
    one = [{**entry, "model": "claude-sonnet-5"}]
    two = [*one, {**entry, "model": "claude-opus-5", "expires_at": 300.0}]
    names = [
        text(cell(r, "pcache-name"))
        for r in select(parse(render_countdown(two, now=0.0)), "tr", "pcache-entry")
    ]
    assert names == ["rules (claude-sonnet-5)", "rules (claude-opus-5)"]
    only = select(parse(render_countdown(one, now=0.0)), "tr", "pcache-entry")
    assert [text(cell(r, "pcache-name")) for r in only] == ["rules"]
    assert [r.get("data-block") for r in only] == ["rules"]


def test_blocks_table_shows_markers_breakpoints_and_prefix_tokens(session: Session) -> None:
    session.context("A short note.", name="note")
    root = parse(render_blocks(session))
    assert text(select(root, "b", "pcache-breakpoints")[0]) == "1/4"
    (intro,) = select(root, "tr", "pcache-block", data_block="intro")
    assert text(cell(intro, "pcache-marker")) == "5m"
    assert text(cell(intro, "pcache-next")) == "write"
    assert text(cell(intro, "pcache-tokens")).startswith("~")
    (note,) = select(root, "tr", "pcache-block", data_block="note")
    assert text(cell(note, "pcache-marker")) == ""
    first = int(text(cell(intro, "pcache-cumulative")).strip("~").replace(",", ""))
    second = int(text(cell(note, "pcache-cumulative")).strip("~").replace(",", ""))
    assert first >= 1024 and second > first


def test_findings_are_shown_on_their_block_row() -> None:
    s = new_session()
    s.system("Too short to cache.", cache="1h", name="tiny")
    root = parse(render_blocks(s))
    (tiny,) = select(root, "tr", "pcache-block", data_block="tiny")
    assert text(cell(tiny, "pcache-marker")) == "1h"
    assert not select(tiny, "div", "pcache-finding")  # in a full-width row of its own, just below
    (notes,) = select(root, "tr", "pcache-block-notes", data_block="tiny")
    rows = list(root.iter("tr"))
    assert rows.index(notes) == rows.index(tiny) + 1
    (td,) = notes.iter("td")
    assert td.get("colspan") == str(len(list(tiny.iter("td"))))
    (finding,) = select(notes, "div", "pcache-finding")
    assert finding.get("data-code") == "below-minimum" and "pcache-warning" in (finding.get("class") or "")
    for i in range(4):
        s.context(f"note {i}", cache="5m", name=f"n{i}")
    root = parse(render_blocks(s))
    count = select(root, "b", "pcache-breakpoints")[0]
    assert text(count) == "5/4" and "pcache-error" in (count.get("class") or "")
    codes = [f.get("data-code") for f in select(root, "div", "pcache-finding")]
    assert "too-many-breakpoints" in codes


@pytest.mark.parametrize("mode", ["automatic", "auto"])
def test_markers_added_by_the_cache_mode_are_marked_auto(mode: str) -> None:
    s = new_session(auto_cache=mode == "auto")
    s.cache_mode = mode  # type: ignore[assignment]
    s.system(LONG, name="intro")
    s.context("doc", name="doc")
    root = parse(render_blocks(s))
    (doc,) = select(root, "tr", "pcache-block", data_block="doc")
    marker = cell(doc, "pcache-marker")
    # in words, not a stylesheet's `::after`: an untrusted notebook's copy says it too
    assert text(marker) == "5m auto" and "pcache-auto" in (marker.get("class") or "")


def test_user_text_is_escaped_everywhere() -> None:
    s = new_session()
    evil = '<script>alert("x")</script>'
    s.system(LONG, cache="5m", name=evil)
    s.context(evil + " & more", name="a&b")
    html = render_session(s)
    assert "<script>" not in html
    root = parse(html)  # still well-formed
    assert select(root, "tr", "pcache-block", data_block=evil)
    assert select(root, "tr", "pcache-block", data_block="a&b")


def test_calls_table_reports_each_call_as_recorded(session: Session) -> None:
    assert "No calls yet" in render_calls(session)
    session.ask("q1", stream=False)
    session.ask("q1", stream=False)
    root = parse(render_calls(session))
    for rec in session.calls:
        (tr,) = select(root, "tr", "pcache-call", data_call=str(rec.index))
        assert int(cell(tr, "pcache-read").get("data-tokens") or -1) == rec.tokens.read
        assert int(cell(tr, "pcache-write").get("data-tokens") or -1) == rec.tokens.written
        assert text(cell(tr, "pcache-outcome")) == f"{rec.outcome} ✓"  # as predicted
        assert text(select(tr, "span", "pcache-time")[0]) == "09:00:00 UTC"
        assert tr.get("data-estimated") == "yes"  # offline: the emulator's estimates
    first, second = session.calls
    assert (first.outcome, second.outcome) == ("write", "hit")
    tr = select(root, "tr", "pcache-call", data_call="2")[0]
    assert text(cell(tr, "pcache-read")) == f"~{second.tokens.read:,}"
    assert text(cell(tr, "pcache-write")) == "0" and not select(tr, "span", "pcache-write-ttl")
    tr = select(root, "tr", "pcache-call", data_call="1")[0]
    assert text(cell(tr, "pcache-write")) == f"~{first.tokens.write_5m:,} 5m"
    assert text(select(tr, "span", "pcache-write-ttl")[0]) == "5m"


def test_the_legend_says_it_is_for_the_token_bars_and_sits_on_the_table(session: Session) -> None:
    session.ask("q1", stream=False)
    html = render_calls(session)
    (legend,) = select(parse(html), "div", "pcache-legend")
    assert text(legend).startswith("Token bar, in each call's why (click it to open):")
    assert html.index("pcache-legend") < html.index("<table") and "pcache-more" not in html
    assert len(select(legend, "span", "pcache-swatch")) == len(COLOURS)
    items = select(legend, "span", "pcache-legend-item")  # a swatch never wraps apart from its label
    assert [text(i) for i in items] == [label for _, label in COLOURS.values()]
    assert all(len(select(i, "span", "pcache-swatch")) == 1 for i in items)
    assert all(styles(i)["white-space"] == "nowrap" for i in items)  # inline: untrusted too
    skipped = render_calls(session, skip=1)  # the "not shown" line comes first, the legend on the table
    assert skipped.index("pcache-more") < skipped.index("pcache-legend") < skipped.index("<table")


def test_session_html_is_static_and_complete(session: Session) -> None:
    session.ask("q1", stream=False)
    html = session_html(session)
    assert html == render_session(session)
    root = parse(html)
    (panel,) = select(root, "div", "pcache-panel")
    assert panel.find("style") is not None
    assert select(root, "tr", "pcache-block", data_block="intro")
    assert select(root, "tr", "pcache-call", data_call="1")
    assert select(root, "tr", "pcache-entry", data_block="intro")
    assert " id=" not in html
    assert text(select(root, "b", "pcache-mode")[0]) == "offline"


def test_the_stylesheet_is_the_packaged_css_scoped_to_the_panel(session: Session) -> None:
    css = style()
    assert style() is css  # read once
    assert css.startswith("<style>.pcache-panel") and css.endswith("}</style>")
    assert "$" not in css and "/*" not in css and "\n" not in css  # comments and breaks gone
    # the wide tables take the output's width, never more: nothing scrolls sideways
    assert "table.pcache-calls,.pcache-panel table.pcache-blocks{table-layout:fixed;width:100%;" in css
    body = css.removeprefix("<style>").removesuffix("</style>")
    # narrow outputs (under 720 px) get the calls as three lines each, in one container query; under
    # 480 px (200% zoom) the blocks as two, in another
    wide, narrow = body.split("@container (max-width:720px){")
    narrow, narrower = narrow.split("@container (max-width:480px){")
    assert (
        narrow.endswith("}}")
        and narrower.endswith("}}")
        and "display:grid" in narrow
        and ".pcache-panel{container-type:inline-size" in wide
    )
    rules = (wide + narrow.removesuffix("}") + narrower.removesuffix("}")).split("}")[:-1]
    assert len(rules) > 10 and all(rule.count("{") == 1 for rule in rules)
    selectors = [s for rule in rules for s in rule.partition("{")[0].split(",")]
    assert all(s.startswith(".pcache-panel") for s in selectors)  # never restyles the notebook
    assert render_session(session).startswith(f'<div class="pcache-panel">{css}')


def test_no_dollar_in_any_view_can_be_typeset_as_latex() -> None:
    """JupyterLab 4 and Notebook 7 typeset text/html outputs with MathJax 3: every `$` (amounts,
    and the user's own text) stands alone in an element MathJax skips."""
    s = new_session()
    s.system(LONG, cache="5m", name="costs $5 or $10")
    s.context("Prices: $5 per seat, $10 per team, $$x$$.", name="prices")
    s.ask("Which costs $5?", stream=False)
    s.ask("And $10?", stream=False)
    failed = CallRecord(index=9, model=MODEL, started_at=0.0, request={}, error="a $5 $6 error")
    for html in (
        render_session(s),
        render_summary(s.calls[-1]),
        render_summary(failed),
        render_call_row(failed, why="no $ here $"),
        render_countdown(s.ledger.entries(s.now()), s.now(), offline=True),
    ):
        assert not unguarded_dollars(html), html
    html = render_session(s)
    assert html.count(DOLLAR_HTML) >= 4 * len(s.calls) + 2  # the header, and cost and saving per call
    # the text a reader sees (and copies) still has the literal amounts
    (cost,) = [td for td in parse(html).iter("td") if "pcache-cost" in (td.get("class") or "")][-1:]
    assert text(cost).startswith("$0.")


def test_a_calls_row_says_how_much_output_was_thinking() -> None:
    from pcache_magic.view.calls import render_call_row, thinking_tokens

    thought = {
        "type": "thinking",
        "thinking": "Careful reasoning about the answer, at length. " * 5,
        "signature": "c2ln",
    }
    content = [thought, {"type": "text", "text": "ok"}]
    rec = record(HIT, message={"content": content})
    n = thinking_tokens(rec)
    assert n > 0
    assert f"output of which ~{n:,} thinking (estimate)" in render_call_row(rec)
    assert thinking_tokens(record(HIT)) == 0 and "thinking" not in render_call_row(record(HIT))


def test_a_long_chat_folds_its_earlier_unmarked_turn_blocks_into_one_row() -> None:
    s = new_session()
    s.system(LONG, cache="5m", name="intro")
    for i in range(40):
        s.conversation.add(
            Block(name=f"q{i}", role="user", kind="prompt", content=[{"type": "text", "text": f"q {i}"}])
        )
        s.conversation.add(
            Block(name=f"a{i}", role="assistant", kind="reply", content=[{"type": "text", "text": f"a {i}"}])
        )
    root = parse(render_blocks(s))
    shown = [r.get("data-block") for r in select(root, "tr", "pcache-block") if r.get("data-block")]
    assert shown[0] == "intro" and shown[1:] == [f"{k}{i}" for i in range(30, 40) for k in "qa"]
    (folded,) = select(root, "tr", "pcache-folded")
    assert text(folded).startswith("60 earlier turn blocks without a marker or a note (~")
    s.conversation.blocks[:] = s.conversation.blocks[:12]  # a short chat shows every block
    assert not select(parse(render_blocks(s)), "tr", "pcache-folded")


def _block_column_widths(root: Any, header: str) -> list[int]:
    """The widths (px) the blocks table's `header` column gets: its `<col>`'s, then the narrow
    layout's (the stylesheet's rules for outputs under 720 px)."""
    n = [text(th) for th in root.iter("th")].index(header) + 1
    widths = [int(re.findall(r"width:(\d+)px", list(root.iter("col"))[n - 1].get("style") or "")[0])]
    for selectors, declarations in narrow_rules():
        if f".pcache-panel table.pcache-blocks col:nth-child({n})" in selectors:
            widths += [int(w) for w in re.findall(r"width:(\d+)px", declarations)]
    return widths


def test_each_fixed_blocks_column_holds_its_widest_value_whole(session: Session) -> None:
    """At 700 px "context" read "cont…" (the narrow layout squeezed the kind column to 52 px), a
    token estimate "~12,3…" and a next call "below-mi…".  Each fixed column now holds its widest
    value in every layout; the content preview is what gives way."""
    root = parse(render_blocks(session))
    for selectors, _ in narrow_rules():
        assert ".pcache-panel table.pcache-blocks td.pcache-kind" not in selectors  # never hidden
    longest_kind = max(get_args(BlockKind), key=px)
    assert longest_kind == "tool_result"
    statuses = [status_words(s)[0] for s in get_args(get_type_hints(Prediction)["status"])]
    for header, widest in (
        ("kind", longest_kind),
        ("tokens", "~200,000"),
        ("prefix", "~200,000"),
        ("next call", max(statuses, key=px)),
    ):
        widths = _block_column_widths(root, header)
        assert min(widths) >= px(widest) + PAD, (header, widest, widths)
    assert any("td.pcache-preview" in s and "display:none" in d for sels, d in narrow_rules() for s in sels)


def test_under_480_px_a_blocks_name_has_a_line_of_its_own() -> None:
    """At 200% zoom the fixed columns left a block's name 27 px ("o…"): that narrow, each block is
    two lines, its name across the first, the figures under it (a 700 px window keeps one line)."""
    rules = {s: d for sels, d in narrow_rules(480) for s in sels}
    assert "display:grid" in rules[".pcache-panel table.pcache-blocks tr"]
    assert "grid-column:1/-1" in rules[".pcache-panel table.pcache-blocks tr>:first-child"]
    assert "grid-column:1/-1" in rules[".pcache-panel table.pcache-blocks td[colspan]"]
    assert not [s for sels, _ in narrow_rules() for s in sels if s == ".pcache-panel table.pcache-blocks tr"]


def test_a_preview_keeps_a_languages_marks_and_shows_controls_as_pictures() -> None:
    s = new_session()
    s.context("שלום\u200f עולם 🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f", name="he")
    s.context("a\x1b[2Jb\u202ec", name="evil")
    root = parse(render_blocks(s))
    (he,) = select(root, "tr", "pcache-block", data_block="he")
    assert "\u200f" in text(cell(he, "pcache-preview")) and "\\u200f" not in text(cell(he, "pcache-preview"))
    (evil,) = select(root, "tr", "pcache-block", data_block="evil")
    assert text(cell(evil, "pcache-preview")) == "a␛[2Jb\\u202ec"


def test_a_long_next_call_status_is_short_with_its_meaning_in_a_tooltip() -> None:
    s = new_session()
    s.system("Be brief.", cache="5m", name="tiny")  # far below any model's minimum
    (cell,) = [td for td in parse(render_blocks(s)).iter("td") if "pcache-next" in (td.get("class") or "")]
    assert text(cell) == "below min" and "minimum" in (cell.get("title") or "")


def test_a_marker_inside_a_longer_hit_says_so_in_words(session: Session) -> None:
    """A new user read "covered" in the "next call" column and did not know it: a longer prefix
    is read, so this marker neither reads nor writes.  It says "in a hit", the meaning in a tooltip."""
    session.context("A short note after the rules. " * 20, cache="5m", name="note")
    session.ask("First", stream=False)  # writes both: the next call reads the longer prefix
    (_, predictions) = session.check()
    assert {p.block: p.status for p in predictions}["intro"] == "covered"
    root = parse(render_blocks(session))
    (intro,) = select(root, "tr", "pcache-block", data_block="intro")
    shown = cell(intro, "pcache-next")
    assert text(shown) == "in a hit" and "covered" not in text(root)
    assert "longer prefix" in (shown.get("title") or "") and "neither reads nor writes" in shown.get("title")
    (note,) = select(root, "tr", "pcache-block", data_block="note")
    assert text(cell(note, "pcache-next")) == "hit" and cell(note, "pcache-next").get("title") is None
    assert px("in a hit") + PAD <= dict(render._BLOCK_COLUMNS)["next call"]  # whole in its 70 px


@pytest.mark.parametrize("output", [575, 600, 660])  # 1008 px with the file browser open; 700 px
def test_the_narrow_calls_header_is_two_lines_whose_words_fit(output: int) -> None:
    """Under 720 px each call is three lines, and the header was too: "why" alone on the third.
    The why line now says "why:" itself, so the header is two lines, each label on one line in
    its grid cell, and the first column holds "call" and a call's number up to 9999."""
    rules = narrow_rules()

    def value(cls: str, prop: str) -> str | None:  # the last rule that sets `prop` on a `th.cls`
        found = None
        for selectors, declarations in rules:
            if any(
                s.endswith((f"table.pcache-calls .{cls}", f"table.pcache-calls th.{cls}")) for s in selectors
            ):
                found = dict(d.split(":", 1) for d in declarations.split(";") if d).get(prop, found)
        return found

    (template,) = [d for sels, d in rules if "grid-template-columns:" in d and "pcache-calls" in sels[0]]
    first = (
        float(re.findall(r"grid-template-columns:([\d.]+)em repeat\(4,minmax\(0,1fr\)\)", template)[0]) * 12
    )
    column = [first] + [(output - first) / 4] * 4
    lines, seen = set(), []
    for th in parse(calls_table(head=True)).iter("th"):
        cls = (th.get("class") or "").split()[-1]
        if value(cls, "display") == "none":
            continue
        area = [int(a) for a in (value(cls, "grid-area") or "").split("/")]
        row, col, end = area[0], area[1], area[3] if len(area) == 4 else area[1] + 1
        lines.add(row)
        seen.append(text(th))
        assert px(text(th), bold=True) + PAD <= sum(column[col - 1 : end - 1]), (text(th), output)
    assert len(lines) == 2 and "why" not in seen and len(seen) == 8
    assert px("9999") + PAD <= column[0]
    # the why line, under each call, says what it is
    assert any(
        s.endswith("td.pcache-why summary::before") and "content:'why: '" in d
        for sels, d in rules
        for s in sels
    )


def test_a_prewarm_reads_as_one_in_the_calls_and_cost_tables() -> None:
    """A pre-warm showed as an ordinary "hit": it answers nothing, and the tables now say what it is."""
    from pcache_magic.analysis.savings import money

    s = new_session()
    s.system(LONG, cache="5m", name="intro")
    s.prewarm()
    s.ask("Hi?", stream=False)
    rows = [tr for tr in parse(render_calls(s)).iter("tr") if tr.get("data-call")]
    cells = [next(td for td in tr.iter("td") if "pcache-outcome" in (td.get("class") or "")) for tr in rows]
    assert [text(c).rstrip("✓✗ ") for c in cells] == ["pre-warm", "hit"]
    assert cells[0].get("title") == "a pre-warm (max_tokens 0): write"
    assert [c.outcome for c in money(s).calls] == ["pre-warm (write)", "hit"]


# -- an untrusted notebook ---------------------------------------------------------------------
def test_an_untrusted_notebooks_copy_keeps_what_carries_meaning(session: Session) -> None:
    """R16U: a shared notebook is untrusted, and its stored outputs lose `<style>` and SVG to the
    sanitizer (`_helpers.sanitized`), while JupyterLab right-aligns every cell.  Then the swatches,
    the bars, the left-aligned words, the hidden "why" label and a loss's colour must be inline."""
    session.cache_mode = "automatic"
    session.context("doc", name="doc")
    session.ask("q1", stream=False)  # writes the prefix: costs more than no caching
    root = sanitized(render_session(session))
    assert not list(root.iter("style"))
    swatches = select(root, "span", "pcache-swatch")
    assert [styles(s)["background"] for s in swatches] == [hue for hue, _ in COLOURS.values()]
    assert all(styles(s)["display"] == "inline-block" and styles(s)["width"] == "10px" for s in swatches)
    (row,) = select(root, "tr", "pcache-call")
    for cls in ("pcache-outcome", "pcache-why"):
        assert styles(cell(row, cls))["text-align"] == "left"
    for cls in ("pcache-index", "pcache-read", "pcache-write", "pcache-cost"):
        assert "text-align" not in styles(cell(row, cls))  # figures keep the front end's right
    assert styles(select(row, "span", "pcache-why-open")[0]) == {"display": "none"}
    saving = cell(row, "pcache-saving")
    assert text(saving).startswith("-") and styles(saving)["color"] == WARNING
    (bar,) = select(row, "span", "pcache-bar")
    assert styles(bar)["display"] == "flex" and "height" in styles(bar)
    segments = list(bar)
    assert segments and all(styles(s)["width"].endswith("px") and styles(s)["background"] for s in segments)
    assert all(s.get("title") for s in segments)  # the token counts, as the SVG's <title> said
    words = ("pcache-name", "pcache-kind", "pcache-marker", "pcache-next", "pcache-preview")
    for block in select(root, "tr", "pcache-block"):
        assert all(styles(cell(block, cls))["text-align"] == "left" for cls in words)
        assert "text-align" not in styles(cell(block, "pcache-tokens"))
    autos = [text(c) for c in select(root, "td", "pcache-auto")]  # the cache mode's marker, in words
    assert autos and set(autos) == {"5m auto"}
    headers = {text(h): styles(h).get("text-align") for h in root.iter("th")}
    assert headers["why"] == headers["block"] == "left" and headers[LABELS["read"]] is None
    entries = select(root, "tr", "pcache-entry")
    assert entries and all(styles(cell(e, "pcache-name"))["text-align"] == "left" for e in entries)
    left = [list(select(e, "span", "pcache-bar")[0]) for e in entries]
    assert all(len(spans) == 1 and float(styles(spans[0])["width"][:-2]) > 0 for spans in left)


def test_an_untrusted_copy_says_a_failure_and_a_missed_prediction_in_colour() -> None:
    failed = CallRecord(index=3, model=MODEL, started_at=0.0, request={}, error="529 overloaded")
    assert styles(cell(sanitized(render_call_row(failed)), "pcache-outcome"))["color"] == ERROR
    missed = record(HIT, prediction=[{"status": "write"}])
    (mark,) = select(sanitized(render_call_row(missed)), "span", "pcache-predicted")
    assert text(mark) == "✗" and styles(mark)["color"] == WARNING
