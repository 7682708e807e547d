"""cells.py: a cell and its files to content blocks, tools cells, durations, per-cell block names.

Reading the files themselves (globs, limits, file types) is tests/test_files.py.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from _images import PNG_1X1

from pcache_magic.ipython import cells
from pcache_magic.ipython.files import Limits, file_block

# a whole 1x1 PNG (a header alone is refused, as the API refuses it)
PNG = PNG_1X1
PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n"


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "b.py").write_text("def b():\n    return 2\n")
    (tmp_path / "src" / "a.py").write_text("def a():\n    return 1\n")
    (tmp_path / "paper.pdf").write_bytes(PDF)
    (tmp_path / "fake.pdf").write_text("not a pdf")
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "pic.png").write_bytes(PNG)
    (tmp_path / "pic.bmp").write_bytes(b"BM" + b"\x00" * 30)
    return tmp_path


def test_clean_text_trims_what_would_break_byte_identity() -> None:
    assert cells.clean_text("\n\nhello\n  world  \n\n") == "hello\n  world"
    assert cells.clean_text(None) == ""
    assert cells.clean_text("  indented") == "  indented"


def test_context_content_orders_text_files_images(files: Path) -> None:
    content, source = cells.context_content("\nRead these.\n", ["src/*.py", "paper.pdf"], ["pic.png"])
    assert [c["type"] for c in content] == ["text", "text", "text", "document", "image"]
    assert content[0]["text"] == "Read these."
    assert source == "src/a.py and 3 more"
    assert cells.context_content("", ["paper.pdf"]) == ([file_block(Path("paper.pdf"))], "paper.pdf")
    assert cells.context_content("  \n") == ([], None)


def test_a_cell_is_refused_whole_before_its_files_are_read(files: Path) -> None:
    """The cap covers --file and --image together, and is checked before the first file is read."""
    (files / "big.txt").write_text("x" * 4_000)
    limits = Limits(total_bytes=4_000)
    with pytest.raises(
        ValueError, match=r"^The 2 files come to 0\.0 MB, over the 4,000 bytes one cell may read"
    ):
        cells.context_content("Read.", ["big.txt"], ["pic.png"], limits)
    with pytest.raises(ValueError, match=r"^src/\*\.py: over 2 files for one cell"):
        cells.context_content("Read.", ["paper.pdf", "src/*.py"], [], Limits(max_files=2))
    content, _ = cells.context_content("", ["big.txt"], [], limits)  # exactly at the cap
    assert content == [{"type": "text", "text": "File: big.txt\n\n" + "x" * 4_000}]


def test_system_text_keeps_to_the_limits(files: Path) -> None:
    with pytest.raises(ValueError, match=r"^The 2 files come to .* over the 40 bytes one cell may read"):
        cells.system_text("x", ["src/*.py"], Limits(total_bytes=40))
    with pytest.raises(ValueError, match=r"^/dev/zero: not a regular file; give a file on disk\.$"):
        cells.system_text("x", ["/dev/zero"])


def get_weather(city: str) -> str:
    """Current weather."""
    return city


WEATHER = '{"name": "get_weather", "input_schema": {"type": "object", "properties": {}}}'


def test_system_text_appends_text_files_and_refuses_documents(files: Path) -> None:
    text = cells.system_text("  Review the code.\n", ["src/*.py"])
    a, b = "File: src/a.py\n\ndef a():\n    return 1", "File: src/b.py\n\ndef b():\n    return 2"
    assert text == f"  Review the code.\n\n{a}\n\n{b}"
    assert cells.system_text("", []) == ""
    with pytest.raises(ValueError, match="takes text only"):
        cells.system_text("x", ["paper.pdf"])
    with pytest.raises(ValueError, match="binary"):
        cells.system_text("x", ["blob.bin"])


def test_parse_tools_json_list_object_and_expressions() -> None:
    assert cells.parse_tools(f"[{WEATHER}]", {}) == [
        {"name": "get_weather", "input_schema": {"type": "object", "properties": {}}}
    ]
    assert len(cells.parse_tools(WEATHER, {})) == 1
    assert cells.parse_tools("get_weather", {"get_weather": get_weather}) == [get_weather]
    assert cells.parse_tools("[get_weather, {'name': 'x'}]", {"get_weather": get_weather})[1] == {"name": "x"}


@pytest.mark.parametrize(
    ("cell", "words"),
    [
        ('[{"name": "x",, }]', r"not valid JSON \(Expecting property name .* line 1, column 15\)"),
        ("{\n  'name': true\n}", r"not valid JSON .* evaluating it failed \(NameError"),
        ("", "The cell is empty"),
        ("42", "A tool is a dict or a function, not int"),
    ],
)
def test_parse_tools_errors(cell: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        cells.parse_tools(cell, {})


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("90s", 90),
        ("90m", 5400),
        ("90 minutes", 5400),
        ("1 minute", 60),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("1 h 30 min", 5400),
        ("2 hours, 5 minutes", 7500),
        ("2h", 7200),
        ("1d", 86400),
        ("2 days", 172800),
        ("6m", 360),
        ("1.5h", 5400),
        (" 2M ", 120),
        ("5 m", 300),
        ("0", 0),
        ("90 secs", 90),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert cells.parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "6x", "m", "-5", "1h-2m", "nan", "inf", "1e999", "1h1h", "30 parsecs", "h30", "1h 30", "5m!"]
)
def test_parse_duration_errors_give_an_example(text: str) -> None:
    with pytest.raises(ValueError, match="6m") as error:
        cells.parse_duration(text)
    assert "\n" not in str(error.value)  # one line


def test_parse_duration_stays_within_the_limit() -> None:
    assert cells.parse_duration("3650d", limit=3650 * 86400) == 3650 * 86400
    with pytest.raises(ValueError, match="too long: at most 3,650 days at a time"):
        cells.parse_duration("3651 days", limit=3650 * 86400)


def test_cell_id_from_execution_info_then_kernel_metadata() -> None:
    result = SimpleNamespace(info=SimpleNamespace(cell_id="cell-1"))
    shell = SimpleNamespace(displayhook=SimpleNamespace(exec_result=result), execution_count=3)
    assert cells.cell_id(shell)[0] == "cell-1"
    kernel = SimpleNamespace(get_parent=lambda: {"metadata": {"cellId": "cell-2"}})
    shell = SimpleNamespace(displayhook=SimpleNamespace(exec_result=None), kernel=kernel, execution_count=3)
    assert cells.cell_id(shell)[0] == "cell-2"

    def broken() -> None:
        raise RuntimeError("no parent")

    assert cells.cell_id(SimpleNamespace(kernel=SimpleNamespace(get_parent=broken)))[0] is None
    assert cells.cell_id(object())[0] is None


def test_cell_blocks_keep_names_across_runs_and_report_replaced_ones() -> None:
    names = cells.CellBlocks()
    assert names.plan(None, 1, "system", None, "be-brief").name == "be-brief"
    first = names.plan("cell-a", 1, "system", None, "be-brief")
    assert first == cells.Naming("be-brief", None, "cell-a", 1)
    names.commit(first)
    taken = {"be-brief": "system"}
    second = names.plan("cell-a", 1, "system", None, "be-brief", taken)  # a second block in the same run
    assert second.name == "be-brief-2"
    names.commit(second)
    taken["be-brief-2"] = "system"
    rerun = names.plan("cell-a", 2, "system", None, "be-brief", taken)
    assert rerun.name == "be-brief" and rerun.replaces is None
    names.commit(rerun)
    assert names.plan("cell-a", 2, "system", None, "be-brief", taken).name == "be-brief-2"  # its own again
    renamed = names.plan("cell-a", 3, "context", "docs", "notes", taken)
    assert renamed == cells.Naming("docs", "be-brief", "cell-a", 3)
    names.commit(renamed)
    taken["docs"] = "context"
    again = names.plan("cell-a", 4, "context", None, "notes", taken)
    assert (again.name, again.replaces) == ("notes", "docs")


def test_a_name_another_cell_holds_gets_a_suffix_and_keeps_it() -> None:
    names = cells.CellBlocks()
    names.commit(names.plan("a", 1, "context", None, "paper.md"))
    taken = {"paper.md": "context"}
    other = names.plan("b", 1, "context", None, "paper.md", taken)
    assert other.name == "paper.md-2"  # not cell a's block
    names.commit(other)
    taken["paper.md-2"] = "context"
    del taken["paper.md"]  # cell a's block dropped: cell b keeps its name all the same
    assert names.plan("b", 2, "context", None, "paper.md", taken).name == "paper.md-2"


def test_without_a_cell_id_a_namesake_of_the_same_kind_is_replaced() -> None:
    names = cells.CellBlocks()
    taken = {"notes": "context", "intro": "system"}
    assert names.plan(None, 1, "context", None, "notes", taken) == cells.Naming("notes", None, None, 1)
    assert names.plan(None, 1, "context", None, "intro", taken).name == "intro-2"  # another kind
    assert names.plan(None, 1, "context", "intro", "notes", taken).name == "intro"  # --name wins
    # with a cell id, a block no cell made (loaded, or from Python) of the same kind is taken over
    assert names.plan("c", 1, "context", None, "notes", taken).name == "notes"
