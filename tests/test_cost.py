"""`view/cost.py`: `%claude_cost`'s tables, fitted to a 700 px window and to 80 columns of text.

A browser is not needed to know the HTML's width hints: every figure stays on one line (the
panel's `nowrap`), only the columns of words wrap, and the tables sit in the panel's stylesheet
(12 px, narrow padding), which is what brings the nine-column calls table under 584 px.
"""

from __future__ import annotations

import re

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from pcache_magic.analysis.savings import Money, WhatIf, money, what_if
from pcache_magic.core.fmt import money as usd
from pcache_magic.emulator import Emulator
from pcache_magic.session.session import Session
from pcache_magic.session.transport import connect
from pcache_magic.view.cost import TEXT_WIDTH, CostTable, fit, money_text, render_cost
from pcache_magic.view.render import style

from _helpers import parse, sanitized, select, styles, text, unguarded_dollars

MODEL = "claude-sonnet-4-5"
LONG = " ".join(f"Rule {i}: review every function for missing tests and unclear names." for i in range(120))
FIGURE = re.compile(r"^-?~?\$?[\d,.]+%?$|^—$|^$")  # an amount, a count, a share, or nothing
MODEL_ID = re.compile(r"^claude-[a-z0-9.-]+$")


@pytest.fixture(scope="module")
def tables() -> tuple[Money, WhatIf]:
    s = Session(model=MODEL, connection=connect(emulator=Emulator(), max_retries=0))
    s.system(LONG, cache="5m", name="rules")
    for pause, question in (
        (0, "Which functions have no tests?"),
        (60, "And unclear names?"),
        (600, "Again?"),
    ):
        s.advance(pause)
        s.ask(question, stream=False)
    s.model = "claude-haiku-4-5"
    s.ask("A second model?", stream=False)
    return money(s), what_if(s)


def columns_by_rule(html: str, declarations: str) -> list[str]:
    """The headers of the columns a rule of the table's own `<style>` gives `declarations`."""
    heads = [text(th) for th in parse(html).iter("th")]
    own = html.split("</style>")[1]  # the stylesheet first, then the table's own rules
    rule = re.search(r"(?:<style>|\})([^{}<]*)\{" + re.escape(declarations) + r"\}", own)
    assert rule is not None, own[:400]
    return [heads[int(i) - 1] for i in re.findall(r"nth-child\((\d+)\)", rule.group(1))]


def word_columns(html: str) -> list[str]:
    """The headers of the columns the table's own rule lets wrap (`:nth-child(i)`)."""
    return columns_by_rule(html, "white-space:normal;text-align:left")


def test_the_tables_are_the_analysis_figures_in_the_panels_style(tables: tuple[Money, WhatIf]) -> None:
    for table, kind in zip(tables, ("pcache-cost-calls", "pcache-cost-whatif"), strict=True):
        html = render_cost(table)
        assert html.startswith(f'<div class="pcache-panel pcache-cost {kind}">{style()}<style>')
        assert html.endswith(f"{table.to_html()}</div>")  # the same figures, untouched
        root = parse(html)
        assert select(root, "table", "pcache-money")
        assert not unguarded_dollars(html)  # no amount can be typeset as LaTeX
    css = style()
    # every cell of a cost table holds its content on one line unless its column is words
    assert ".pcache-panel .pcache-table th,.pcache-panel .pcache-table td{" in css
    assert "white-space:nowrap;" in css.split(".pcache-panel .pcache-table td{")[1].split("}")[0]
    assert ".pcache-panel.pcache-cost .pcache-money td{text-align:right;" in css


def test_only_the_columns_of_words_wrap(tables: tuple[Money, WhatIf]) -> None:
    calls, whatif = (render_cost(t) for t in tables)
    assert word_columns(calls) == ["outcome"]  # a call's note has a row of its own (below)
    assert word_columns(whatif) == ["strategy"]
    # a model id stays on one line, read left to right: never `claude-/sonnet-/4-5` at 700 px
    assert columns_by_rule(calls, "text-align:left") == ["model"]
    for html in (calls, whatif):
        heads = [text(th) for th in parse(html).iter("th")]
        wrapping = set(word_columns(html))
        for tr in parse(html).iter("tr"):
            if tr.get("class") == "pcache-row-note":  # words across the table (the next test)
                continue
            cells = [text(td) for td in tr.iter("td")]
            kept = [(c, h) for c, h in zip(cells, heads, strict=False) if h not in wrapping]
            assert all(MODEL_ID.match(c) if h == "model" else FIGURE.match(c) for c, h in kept), kept


def test_an_untrusted_notebooks_copy_keeps_the_words_left(tables: tuple[Money, WhatIf]) -> None:
    """Untrusted, the stylesheet and the table's own rules are gone and JupyterLab right-aligns
    every cell: the model, the outcome, the strategy and each note read left from inline styles."""
    for table, words in zip(tables, ({"model", "outcome"}, {"strategy"}), strict=True):
        root = sanitized(render_cost(table))
        assert not list(root.iter("style"))
        heads = [text(th) for th in root.iter("th")]
        assert {h for h, th in zip(heads, root.iter("th"), strict=True) if styles(th)} == words
        for tr in root.iter("tr"):
            aligned = [h for h, td in zip(heads, tr.iter("td"), strict=False) if styles(td).get("text-align")]
            notes = [td for td in tr.iter("td") if td.get("class") == "pcache-notes"]
            assert all(styles(td)["text-align"] == "left" for td in notes)
            assert notes or set(aligned) <= words
    notes = [td for td in sanitized(render_cost(tables[0])).iter("td") if td.get("class") == "pcache-notes"]
    assert notes


def test_each_note_has_a_full_width_row_under_its_call(tables: tuple[Money, WhatIf]) -> None:
    """At 700 px the note column was ~70 px wide (two models) to ~160 px: four to six lines a call,
    or more.  Now the figures keep their columns and each call's note is a row of its own across
    the table, as the blocks table shows a block's findings: left-aligned, wrapping between words."""
    calls, _ = tables
    html = render_cost(calls)
    root = parse(html)
    heads = [text(th) for th in root.iter("th")]
    assert "note" not in heads and "model" in heads  # two models in the fixture: the widest table
    rows = list(next(root.iter("tbody")))
    noted = [c for c in calls.calls if c.note]
    assert noted and len(rows) == len(calls.calls) + len(noted)
    for c in calls.calls:
        (figures,) = [
            i for i, tr in enumerate(rows) if tr.get("class") is None and text(tr[0]) == str(c.index)
        ]
        if not c.note:
            continue
        note = rows[figures + 1]
        (td,) = list(note)
        assert note.get("class") == "pcache-row-note" and td.get("class") == "pcache-notes"
        assert td.get("colspan") == str(len(heads)) and text(td) == c.note
    css = style()
    rule = css.split(".pcache-panel.pcache-cost .pcache-money td.pcache-notes{")[1].split("}")[0]
    assert "text-align:left" in rule  # not the figures' right alignment
    assert "white-space:normal" in css.split(".pcache-panel .pcache-table td.pcache-notes{")[1].split("}")[0]
    assert "overflow-wrap:normal" in rule  # a word, `$0.0276` or `10,207`, never broken
    # a call and its note read as one: no rule between them
    assert (
        ".pcache-panel.pcache-cost .pcache-money tr:has(+.pcache-row-note) td{border-bottom-style:none}"
        in css
    )
    # nor a front end's zebra stripes, which shaded a call and left its note white
    assert ".pcache-panel.pcache-cost .pcache-money tbody tr{background:transparent}" in css


def test_the_text_fits_80_columns_and_no_number_is_split(tables: tuple[Money, WhatIf]) -> None:
    calls, whatif = tables
    for shown in (repr(CostTable(calls)), repr(CostTable(whatif))):
        assert max(len(line) for line in shown.splitlines()) <= TEXT_WIDTH, shown
    shown = money_text(calls)
    for c in calls.calls:  # every figure of every call is there, whole
        (row,) = [line.split() for line in shown.splitlines() if line.split()[:1] == [str(c.index)]]
        assert row[2:5] == [usd(c.cost.total), usd(c.cost.no_cache), usd(c.cost.saving)]
        # two models: each call's line names its model (a call with no note, the model alone)
        assert (f"call {c.index} ({c.model}): " if c.note else f"call {c.index}: {c.model}") in shown
    assert f"total {usd(calls.total.total)}, saved {usd(calls.total.saving)}" in shown
    for line in str(whatif).splitlines():  # the what-if's table rows fit without wrapping
        if re.search(r"\$\d", line) and not line.startswith(("What if", "The planner")):
            assert len(line) <= TEXT_WIDTH, line


def test_fit_wraps_between_words_only() -> None:
    line = "note: " + " ".join(f"$0.{i:04d}" for i in range(20)) + " 12,345,678,901,234"
    wrapped = fit(line, 30).splitlines()
    assert all(len(w) <= 30 for w in wrapped)
    assert " ".join(w.strip() for w in wrapped) == line  # nothing cut inside an amount or a count
    assert all(w.startswith("  ") for w in wrapped[1:])  # continuations are indented
    assert fit("short\n  kept as is") == "short\n  kept as is"


def test_before_any_call_money_and_what_if_say_what_claude_cost_says(ip: InteractiveShell) -> None:
    """`money(s)` and `what_if(s)` before the first successful call showed an empty table (and a
    what-if of zeros), where `%claude_cost` says there are no calls yet: now the same one line."""
    with capture_output() as out:
        ip.run_line_magic("claude_cost", "")
    said = " ".join(out.stdout.split())  # one sentence, wrapped to fit a notebook's text output
    assert said.startswith("No successful calls yet")
    s = Session(model=MODEL, connection=connect(emulator=Emulator(), max_retries=0))
    s.system(LONG, cache="5m", name="rules")  # blocks, but no call
    for table in (money(s), what_if(s)):
        html = ip.display_formatter.format(table)[0]["text/html"]  # as a notebook shows it
        assert html == render_cost(table) and "<table" not in html
        (line,) = select(parse(html), "p", "pcache-empty")
        assert text(line) == said and not unguarded_dollars(html)
        assert repr(CostTable(table)) == said
        assert str(table) == said and "<table" not in table._repr_html_()  # without the extension too
