"""`ipython.map_magic`: `%%claude_map` in IPython's shell against the offline emulator.

The prediction is shown before anything is sent, the summary after; `-o` keeps the results;
`{name}` comes from the notebook and `{item...}` from each item; every mistake is one line and
sends nothing; a real Ctrl-C (SIGINT) keeps what finished.
"""

from __future__ import annotations

import itertools
import signal
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from pcache_magic.ipython.map_magic import WRITTEN_OUT, template
from pcache_magic.session.fanout import MapResult

from _helpers import loaded_magics

RUBRIC = "Grade the answer against the rubric: clarity, accuracy, completeness. " * 200


def _shown(out: Any) -> str:
    """What the cell displayed (plain text of each output, then its HTML) and printed."""
    parts = [o.data.get("text/plain", "") + o.data.get("text/html", "") for o in out.outputs]
    return "\n".join([*parts, out.stdout])


def _setup(ip: InteractiveShell) -> Any:
    with capture_output():
        ip.run_cell_magic("claude_system", "--name rubric", RUBRIC)
    ip.user_ns["answers"] = [{"id": i, "text": f"answer {i}"} for i in range(6)]
    ip.user_ns["tone"] = "strict"
    return loaded_magics(ip).session


def test_template_keeps_item_fields_and_expands_names() -> None:
    ns = {"tone": "kind", "item": "NOT THIS"}
    assert template("Be {tone}: {item} {item[a]} {item.b} {{item}} {{tone}}", ns) == (
        "Be kind: {item} {item[a]} {item.b} {{item}} {tone}"
    )
    assert template("{tone} {item}", ns, no_expand=True) == "{tone} {item}"


def test_map_shows_the_prediction_then_the_summary_and_keeps_results(ip: InteractiveShell) -> None:
    session = _setup(ip)
    before = session.conversation.model_copy(deep=True)
    with capture_output() as out:
        ip.run_cell_magic(
            "claude_map", "answers -o grades --concurrency 3", "Be {tone}. Grade: {item[text]}\n"
        )
    text = _shown(out)
    assert text.index("predicted ~$") < text.index("IntProgress") < text.index("6 of 6 items answered")
    assert "naive parallel" in text and "saving vs naive parallel" in text and "saving vs no caching" in text
    grades = ip.user_ns["grades"]
    assert isinstance(grades, MapResult) and grades.ok == 6
    assert [r.prompt for r in grades] == [f"Be strict. Grade: answer {i}" for i in range(6)]
    assert grades[0].tokens.written > 1000 and all(
        r.tokens.read == grades[0].tokens.written for r in grades[1:]
    )
    assert session.conversation == before and len(session.calls) == 6


@pytest.mark.parametrize(
    ("line", "cell", "message"),
    [
        ("missing", "Q {item}", "No variable 'missing' in the notebook"),
        ("word", "Q {item}", "word holds a str, not a list of items"),
        ("number", "Q {item}", "number holds an int, not a list of items."),
        ("['a', 'b', 'c']", "Q {item}", WRITTEN_OUT),  # a list written out, spaces and all
        ("--concurrency 2 ('a', 'b')", "Q {item}", WRITTEN_OUT),
        ("['a','b']", "Q {item}", WRITTEN_OUT),  # no spaces: one word, still no variable's name
        ("mapping", "Q {item}", "list(d.items())"),
        ("empty", "Q {item}", "empty is empty"),
        ("answers", "Q {item[nope]}", "{item[nope]} failed (KeyError)"),
        ("answers", "Q {nothing}", "Not sent: no variable 'nothing'"),
        ("answers", "Q {item} {k.\x1b[2Jx}", "Not sent: {k.␛[2Jx}"),  # controls shown as pictures
        ("answers", "Q", "has no {item}"),
        ("answers --concurrency 0", "Q {item}", "concurrency is a whole number from 1 to 64"),
        ("answers -o fn", "Q {item}", "'fn' is a function"),
        ("endless", "Q {item}", "endless has more than 100,000 items; map a slice"),
    ],
)
def test_mistakes_are_one_line_and_send_nothing(
    ip: InteractiveShell, line: str, cell: str, message: str
) -> None:
    session = _setup(ip)
    ip.user_ns.update(word="abc", number=5, mapping={"a": 1}, empty=[], fn=len, endless=itertools.count())
    with pytest.raises(UsageError) as error, capture_output():
        ip.run_cell_magic("claude_map", line, cell)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert session.calls == []


def test_a_map_over_budget_is_refused_after_its_prediction(ip: InteractiveShell) -> None:
    session = _setup(ip)
    ip.run_line_magic("config", "ClaudeMagics.max_cost = 0.001")
    assert session.max_cost == 0.001
    with (
        pytest.raises(UsageError, match=r"Not sent: Refused: this map of 6 calls .*max_cost = 0\.0") as error,
        capture_output() as out,
    ):
        ip.run_cell_magic("claude_map", "answers", "Q {item}")
    assert "predicted ~$" in _shown(out) and "\n" not in str(error.value) and session.calls == []
    ip.run_line_magic("config", "ClaudeMagics.max_cost = None")
    ip.run_line_magic("config", "ClaudeMagics.budget = 2.5")
    assert (session.max_cost, session.budget) == (None, 2.5)


def test_ctrl_c_keeps_the_finished_items(ip: InteractiveShell) -> None:
    session = _setup(ip)

    def interrupt(event: str, payload: Any) -> None:
        if event == "call" and payload.index == 3:
            signal.raise_signal(signal.SIGINT)  # a real Ctrl-C, delivered to the notebook's thread

    session.subscribe(interrupt)
    stopped = r"Interrupted after \d of 6 items; the \d finished are in partial"
    with pytest.raises(UsageError, match=stopped), capture_output():
        ip.run_cell_magic("claude_map", "answers -o partial --concurrency 1", "Q {item[text]}")
    partial = ip.user_ns["partial"]
    assert partial.interrupted and 2 <= partial.ok < 6  # the third, if it finished before the Ctrl-C
    assert all(partial.texts[i] for i in range(2)) and "not run (interrupted)" in partial.errors.values()
