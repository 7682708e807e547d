"""One call, one set of numbers: the usage line, `%claude_cost`, the panel and `Session.calls`.

Every view reads the call's own `usage` (the API's figures, the emulator's offline) and names
its quantities the same way, so the figures agree to the token and the amounts to the cent;
and no view leaves a `$` where MathJax could typeset it.  End to end: the magics in a shell.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import pcache_magic
from pcache_magic.core.fmt import money
from pcache_magic.core.record import CallRecord

from _helpers import cell, loaded_magics, parse, select, text, unguarded_dollars

LONG = " ".join(f"Rule {i}: review every function for missing tests and unclear names." for i in range(120))


def number(shown: str) -> int:
    """`~12,345` (an estimate, marked) or `12,345` as the int it shows."""
    return int(shown.lstrip("~").replace(",", ""))


def figures(line: str) -> dict[str, int]:
    """The usage line's figures by name: cache read, cache write (5m + 1h), uncached input, output."""
    found = dict.fromkeys(("cache read", "cache write", "uncached input", "output"), 0)
    for part in line.split(" · "):
        for name in found:
            if part.startswith(name + " "):
                rest = part.removeprefix(name + " ")
                found[name] = sum(number(n) for n in re.findall(r"~?[\d,]+(?![mh\d])", rest))
    return found


def html_of(outputs: list[Any]) -> list[str]:
    return [o.data["text/html"] for o in outputs if "text/html" in o.data]


def check_call(call: CallRecord, line_html: str, calls: ET.Element, cost_html: str) -> None:
    usage = call.usage
    assert usage is not None
    api = {
        "cache read": usage.cache_read_input_tokens or 0,
        "cache write": usage.cache_creation_input_tokens or 0,
        "uncached input": usage.input_tokens,
        "output": usage.output_tokens,
    }

    # the usage line after the reply
    line = text(parse(line_html))
    assert figures(line) == api
    assert f" · {money(call.cost.total)} (" in line
    assert line.endswith("· ~ estimated offline")  # offline: the emulator's figures, marked

    # the panel's row for the call
    (row,) = select(calls, "tr", "pcache-call", data_call=str(call.index))
    for name, cls in (
        ("cache read", "pcache-read"),
        ("cache write", "pcache-write"),
        ("uncached input", "pcache-uncached"),
        ("output", "pcache-output"),
    ):
        td = cell(row, cls)
        assert int(td.get("data-tokens") or -1) == api[name]
        assert number(text(td).split()[0]) == api[name]
    assert text(cell(row, "pcache-cost")) == money(call.cost.total)
    assert text(cell(row, "pcache-saving")) == money(call.cost.saving)

    # %claude_cost: the call's cost and saving, and the tokens its note names
    trs = [tr for tr in parse(cost_html).iter("tr") if list(tr.iter("td"))]
    rows = [[text(td) for td in tr.iter("td")] for tr in trs]
    (at,) = [i for i, r in enumerate(rows) if r[0] == str(call.index)]
    mine = rows[at]
    heads = [text(th) for th in parse(cost_html).iter("th")]  # one model: no model column
    shown = (mine[heads.index("cost")], mine[heads.index("saving")])
    assert shown == (money(call.cost.total), money(call.cost.saving))
    # the call's note: the full-width row under its figures
    note = rows[at + 1][0] if at + 1 < len(trs) and trs[at + 1].get("class") == "pcache-row-note" else ""
    if api["cache read"]:
        assert f"read {api['cache read']:,} tokens" in note
    if api["cache write"]:
        assert f"write of {api['cache write']:,} tokens" in note

    # Session.calls: the record every view read
    assert (call.tokens.read, call.tokens.written) == (api["cache read"], api["cache write"])
    assert (call.tokens.uncached, call.tokens.output) == (api["uncached input"], api["output"])


def test_one_calls_figures_agree_across_every_view(ip: InteractiveShell) -> None:
    ip.run_cell(f"%%claude_system --cache\n{LONG}").raise_error()
    with capture_output():
        ip.run_cell("%claude_panel").raise_error()
    panel = loaded_magics(ip)._panel
    assert panel is not None
    lines = []
    for question in ("Which functions have no tests?", "And which names are unclear?"):
        with capture_output() as shown:
            ip.run_cell(f"%%claude\n{question}").raise_error()
        lines += [h for h in html_of(shown.outputs) if "pcache-summary" in h]
    session = pcache_magic.current_session()
    assert [c.outcome for c in session.calls] == ["write", "hit"]
    with capture_output() as shown:
        ip.run_cell("%claude_cost").raise_error()
    cost_html = html_of(shown.outputs)
    calls = parse("".join(c.value for c in panel.calls.children))
    for call, line_html in zip(session.calls, lines, strict=True):
        check_call(call, line_html, calls, cost_html[0])

    # the panel's header: the session's totals under the same words
    header = text(parse(panel.header.value.split("</style>")[-1]))
    assert money(session.totals.cost.total) in header
    assert figures(header.split("failed) · ")[1].split(" · ", 1)[1]) == {
        "cache read": session.totals.tokens.read,
        "cache write": session.totals.tokens.written,
        "uncached input": session.totals.tokens.uncached,
        "output": session.totals.tokens.output,
    }

    # and no amount anywhere can be typeset as LaTeX
    for html in [*lines, *cost_html, *(c.value for c in panel.children if hasattr(c, "value"))]:
        assert not unguarded_dollars(html), html
    assert all(isinstance(parse(h), ET.Element) for h in cost_html)
