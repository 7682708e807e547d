"""The notebook as a user sees it (issue 19), in JupyterLab 4 and Notebook 7, light and dark, 1008 and 700 px.

After the quickstart has run (a write, then a read), `%claude_cost` and the panel are shown,
each view is checked on the same outputs:
- no MathJax element inside any output of a magic, and the literal `$0.` in the usage lines,
  the cost tables, the static tables and the panel (two `$` must not become math);
- the calls tables (static and widget) and `%claude_cost`'s tables within their output area,
  nothing scrolling sideways, no cell cut short (but the "why", which folds out), and legible;
- offline, the panel's countdown says that it follows the emulator's clock, and how to move it,
  in text that stands out from its background.
The `notebook` fixture first proves MathJax is live on the page (a control cell is typeset), so
"no MathJax element" cannot pass only because MathJax never ran.

Screenshots of every view go to `test-artifacts/`; four of them (each front-end, theme and
width once) to `docs/` with `PCACHE_SCREENSHOT=1` (`make screenshot`).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from frontends import MATH, OpenNotebook
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
DOCS = {
    ("jupyterlab", "light", 1008),
    ("jupyterlab", "dark", 700),
    ("notebook7", "light", 700),
    ("notebook7", "dark", 1008),
}
WIDTHS = (1008, 700)
THEMES = ("light", "dark")
CALLS_TABLE = "table.pcache-calls"
COST_TABLE = "table.pcache-money"  # `%claude_cost`: the calls priced, and the what-if
WHY_CELL = ".pcache-why"  # the one column that may be cut short: its whole text folds out below
PANEL = ".pcache-panel.widget-vbox"  # the widget, not the static tables of `%claude_session show`
NOTICE = re.compile(r"emulator(?:'s)? clock", re.I)
HOW_TO_MOVE = "%claude_clock advance"
MIN_CONTRAST = 3.0  # WCAG's floor for large text and UI parts: below it, text is hard to read at all
SLACK_PX = 1  # sub-pixel rounding

# Each visible table matching the selector inside `cell`: its right edge against its output area's
# and the notebook's, every box between table and output area that is wider inside than out, and
# every cell (but the "why") whose text does not fit in it.
_FIT_JS = """(cell, [selector, whyCell, slack]) => {
  const describe = (e) => [e.tagName.toLowerCase(), ...(e.getAttribute('class') || '').split(' ')]
      .filter(Boolean).join('.');
  return [...cell.querySelectorAll(selector)]
    .filter(table => table.getClientRects().length > 0)
    .map(table => {
        const area = table.closest('.jp-OutputArea-output');
        const notebook = table.closest('.jp-WindowedPanel-outer') || table.closest('.jp-Notebook');
        const scrolling = [];
        for (let box = table.parentElement; box && box !== area.parentElement; box = box.parentElement) {
            if (box.scrollWidth > box.clientWidth + slack) {
                const edge = box.getBoundingClientRect().left + box.clientLeft + box.clientWidth;
                const widest = [...box.querySelectorAll('*')].reduce((a, b) =>
                    b.getBoundingClientRect().right > a.getBoundingClientRect().right ? b : a, box);
                const past = Math.round(widest.getBoundingClientRect().right - edge);
                scrolling.push(`${describe(box)}: scrollWidth ${box.scrollWidth} > clientWidth`
                    + ` ${box.clientWidth}; ${describe(widest)} ends ${past} px past its edge`);
            }
        }
        // Cells that clip and whose content ends past their padding box (cut: an ellipsis, or
        // clipped), but the "why", which may fold.  A Range measures the laid-out text, whatever
        // the ellipsis hides.  (A cell that lets its text spill over is drawn whole.)
        const clips = (c) => getComputedStyle(c).overflowX !== 'visible';
        const clipped = [...table.querySelectorAll('th, td')].filter(c => !c.matches(whyCell) && clips(c))
          .map(c => {
            const range = document.createRange();
            range.selectNodeContents(c);
            const past = range.getBoundingClientRect().right
                - (c.getBoundingClientRect().left + c.clientLeft + c.clientWidth);
            return past > slack ? `${describe(c)} "${c.innerText.trim()}" cut by ${Math.ceil(past)} px` : '';
        }).filter(Boolean);
        return {
            table: table.getAttribute('class'),
            clipped,
            width: Math.round(table.getBoundingClientRect().width),
            right: table.getBoundingClientRect().right,
            areaRight: area.getBoundingClientRect().right,
            notebookRight: notebook.getBoundingClientRect().right,
            scrolling,
        };
    });
}"""

# What must never break across lines: a model id in a cost table's "model" column (`claude-/sonnet-/5`
# at 700 px), and a legend's swatch apart from its label.  A Range's client rects are its line boxes.
_WHOLE_JS = """(cell) => {
    const boxes = (node) => { const r = document.createRange(); r.selectNodeContents(node);
                              return [...r.getClientRects()].filter(b => b.width > 0); };
    const problems = [];
    for (const table of cell.querySelectorAll('table.pcache-money')) {
        const heads = [...table.querySelectorAll('thead th')];
        const column = heads.findIndex(th => th.innerText.trim() === 'model');
        if (column < 0) continue;
        for (const tr of table.querySelectorAll('tbody tr:not(.pcache-row-note)')) {
            const td = tr.children[column], lines = new Set(boxes(td).map(b => Math.round(b.top))).size;
            if (lines > 1) problems.push(`model "${td.innerText.trim()}" on ${lines} lines`);
        }
    }
    for (const item of cell.querySelectorAll('.pcache-legend-item')) {
        const swatch = item.querySelector('.pcache-swatch').getBoundingClientRect();
        const label = boxes(item.lastChild);
        const apart = label.length !== 1 || swatch.bottom < label[0].top || swatch.top > label[0].bottom
            || swatch.right > label[0].left + 1;
        if (apart) problems.push(`legend "${item.innerText.trim()}": its swatch is apart from its label`);
    }
    return problems;
}"""

# The WCAG contrast of an element's text against the first opaque background behind it, with the
# alpha of its colour and the opacity of it and its ancestors blended in.
_CONTRAST_JS = """(element) => {
    const rgba = (css) => { const v = (css.match(/[\\d.]+/g) || []).map(Number);
                            return v.length >= 3 ? [v[0], v[1], v[2], v.length > 3 ? v[3] : 1] : null; };
    const f = (x) => { x /= 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; };
    const luminance = (c) => 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
    let background = [255, 255, 255], alpha = 1;
    for (let box = element; box; box = box.parentElement) {
        alpha *= Number(getComputedStyle(box).opacity);
        const c = rgba(getComputedStyle(box).backgroundColor);
        if (c && c[3] > 0.5) { background = c; break; }
    }
    const fg = rgba(getComputedStyle(element).color);
    const a = fg[3] * alpha, text = fg.slice(0, 3).map((x, i) => a * x + (1 - a) * background[i]);
    const [hi, lo] = [luminance(text), luminance(background)].sort((x, y) => y - x);
    return {ratio: (hi + 0.05) / (lo + 0.05), color: getComputedStyle(element).color,
            background: `rgb(${background.slice(0, 3).join(', ')})`};
}"""


@pytest.fixture(params=THEMES)
def theme(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=WIDTHS)
def width(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
def view(notebook: OpenNotebook, theme: str, width: int) -> OpenNotebook:
    """The notebook in this theme and width; the first test in a view takes its screenshot."""
    notebook.show(theme, width)
    name = f"{notebook.frontend.name}-{theme}-{width}.png"
    if name not in notebook.screenshots:
        notebook.screenshots.add(name)
        notebook.cell(notebook.cells.panel).evaluate("cell => cell.scrollIntoView({block: 'start'})")
        notebook.page.screenshot(path=ARTIFACTS / name, animations="disabled")
        if os.environ.get("PCACHE_SCREENSHOT") == "1" and (notebook.frontend.name, theme, width) in DOCS:
            shutil.copy(ARTIFACTS / name, ROOT / "docs" / name)
    return notebook


def _where(view: OpenNotebook, index: int) -> str:
    theme, width = view.view or ("?", 0)
    source = view.cell(index).locator(".jp-InputArea-editor .cm-line").first.inner_text()
    return f"{view.frontend.label}, {theme}, {width} px, cell {index} `{source}`"


def _math(view: OpenNotebook, index: int) -> list[str]:
    """The outputs of a cell that hold a MathJax element, as their text (math reads as glyphs)."""
    outputs = view.outputs(index)
    return [o.inner_text()[:160] for o in outputs.all() if o.locator(MATH).count()]


def test_math_check_sees_the_controls_math(view: OpenNotebook) -> None:
    """The check below on a cell that does show math: both its outputs (Markdown, HTML) are caught."""
    assert len(_math(view, view.cells.control)) == 2, _where(view, view.cells.control)


def test_amounts_are_literal_not_math(view: OpenNotebook) -> None:
    cells = view.cells
    for index in cells.project:
        typeset = _math(view, index)
        assert not typeset, f"{_where(view, index)}: MathJax typeset {len(typeset)} output(s): {typeset}"
    for index in (*cells.calls, cells.cost, cells.session, cells.panel):
        text = "\n".join(view.outputs(index).all_inner_texts())
        assert "$0." in text, f"{_where(view, index)}: no literal `$0.` in its outputs:\n{text[:600]}"


def test_calls_tables_fit(view: OpenNotebook) -> None:
    """Every problem of every calls table (and cost table) in this view, reported together."""
    problems: list[str] = []
    for index, selector in (
        (view.cells.session, CALLS_TABLE),
        (view.cells.panel, CALLS_TABLE),
        (view.cells.cost, COST_TABLE),
    ):
        cell = view.cell(index)
        tables = cell.evaluate(_FIT_JS, [selector, WHY_CELL, SLACK_PX])
        if len(tables) < (2 if selector == COST_TABLE else 1):
            problems.append(f"{_where(view, index)}: {len(tables)} visible {selector}")
        for t in tables:
            where = f"{_where(view, index)}: {t['table']} ({t['width']} px)"
            if t["scrolling"]:
                problems.append(f"{where} scrolls sideways: {t['scrolling']}")
            if t["clipped"]:
                problems.append(f"{where} cuts cells short: {t['clipped']}")
            if t["right"] > t["areaRight"] + SLACK_PX:
                problems.append(
                    f"{where} ends at {t['right']:.0f} px, past its output area ({t['areaRight']:.0f} px)"
                )
            if t["areaRight"] > t["notebookRight"] + SLACK_PX:
                problems.append(
                    f"{where}: its output area ends at {t['areaRight']:.0f} px, past the notebook "
                    f"({t['notebookRight']:.0f} px)"
                )
        for text in (cell.locator(f"{selector} th").first, cell.locator(f"{selector} td").first):
            if tables and (contrast := text.evaluate(_CONTRAST_JS))["ratio"] < MIN_CONTRAST:
                problems.append(f"{_where(view, index)}: {selector} is hard to read: {contrast}")
    assert not problems, "\n".join(problems)


def test_model_ids_and_legend_items_stay_whole(view: OpenNotebook) -> None:
    """A model id on one line in the cost table, each legend swatch on its label's line."""
    problems: list[str] = []
    for index in (view.cells.session, view.cells.panel, view.cells.cost):
        found = view.cell(index).evaluate(_WHOLE_JS)
        problems += [f"{_where(view, index)}: {p}" for p in found]
    legends = view.cell(view.cells.session).locator(".pcache-legend-item").count()
    assert legends > 0, f"{_where(view, view.cells.session)}: no legend items to check"
    assert not problems, "\n".join(problems)


def test_offline_clock_notice_is_visible(view: OpenNotebook) -> None:
    panel = view.cell(view.cells.panel).locator(PANEL)
    expect(panel, "the panel widget").to_be_visible()
    notice = panel.get_by_text(NOTICE).first
    where = _where(view, view.cells.panel)
    expect(
        notice, f"{where}: no visible word that the countdown follows the emulator's clock"
    ).to_be_visible()
    expect(notice, f"{where}: the clock notice does not say how to move the clock").to_contain_text(
        HOW_TO_MOVE
    )
    notice.scroll_into_view_if_needed()
    contrast = notice.evaluate(_CONTRAST_JS)
    assert contrast["ratio"] >= MIN_CONTRAST, f"{where}: the clock notice is hard to read: {contrast}"
