"""The stored notebooks are what nbval compares against: check they are complete and clean.

nbval does not compare a cell that was never executed (no execution count), so a notebook
saved without outputs would pass `make test` without testing anything.  These checks catch
that, an error left in a stored output, and a sanitizer without its justification.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
REQUIRED = {
    "quickstart",
    "cache_lifetimes",
    "breakpoints",
    "tools_and_results",
    "diagnosing_misses",
    "autogen_guide",
    "cost",
}


def _code_cells(path: Path) -> list[dict[str, Any]]:
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def _source(cell: dict[str, Any]) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def test_every_required_notebook_is_there() -> None:
    assert {p.stem for p in PATHS} >= REQUIRED


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_run_top_to_bottom_in_one_kernel(path: Path) -> None:
    """Each code cell executed once, in order (what scripts/run_notebooks.py stores)."""
    counts = [c["execution_count"] for c in _code_cells(path)]
    assert counts == list(range(1, len(counts) + 1)), f"{path.name}: re-run `make notebooks`"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_no_error_outside_cells_that_fail_on_purpose(path: Path) -> None:
    for n, cell in enumerate(_code_cells(path), 1):
        on_purpose = "raises-exception" in cell.get("metadata", {}).get("tags", [])
        for output in cell["outputs"]:
            assert output["output_type"] != "error", f"{path.name} code cell {n}: {output.get('ename')}"
            text = "".join(output.get("text", ""))
            assert "Traceback" not in text, f"{path.name} code cell {n}"
            if output.get("name") == "stderr":
                assert on_purpose, f"{path.name} code cell {n} writes to stderr: {text[:200]}"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_stored_outputs_are_stable(path: Path) -> None:
    """Widget ids as run_notebooks.py stabilises them, no widget state, no timing metadata."""
    notebook = json.loads(path.read_text())
    assert "widgets" not in notebook["metadata"]
    for cell in notebook["cells"]:
        assert "execution" not in cell.get("metadata", {})
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get("application/vnd.jupyter.widget-view+json")
            if view is not None:
                assert re.fullmatch(r"pcache-widget-\d+", view["model_id"])


def test_quickstart_ends_with_the_live_panel() -> None:
    """The browser test runs quickstart.ipynb in JupyterLab and reads the last panel."""
    last = _code_cells(NOTEBOOKS / "quickstart.ipynb")[-1]
    assert _source(last).strip() == "%claude_panel"


def test_each_sanitizer_says_what_varies() -> None:
    """nbval reads `regex:` / `replace:` pairs; each pair is preceded by a comment."""
    lines = (NOTEBOOKS / "sanitize.cfg").read_text().splitlines()
    regexes = [i for i, line in enumerate(lines) if line.startswith("regex: ")]
    assert regexes
    for i in regexes:
        assert lines[i + 1].startswith("replace: "), lines[i]
        assert i > 0 and lines[i - 1].startswith("#"), f"no comment above {lines[i]}"
        re.compile(lines[i].removeprefix("regex: "))
