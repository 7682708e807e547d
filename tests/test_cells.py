"""cells.py: files and globs to content blocks, tools cells, durations, per-cell block names."""

from __future__ import annotations

import base64
from pathlib import Path
from types import SimpleNamespace

import pytest

from pcache_magic.ipython import cells

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 16
GIF = b"GIF89a" + b"\x00" * 16
WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 8
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


def test_expand_paths_sorts_globs_and_dedupes(files: Path) -> None:
    found = cells.expand_paths(["src/*.py", "src/a.py"])
    assert [p.name for p in found] == ["a.py", "b.py"]


@pytest.mark.parametrize(
    ("pattern", "words"),
    [("nope/*.py", "matches no file"), ("missing.txt", "does not exist"), ("src", "is a directory")],
)
def test_expand_paths_errors_name_the_pattern(files: Path, pattern: str, words: str) -> None:
    with pytest.raises(ValueError, match=words) as info:
        cells.expand_paths([pattern])
    assert pattern in str(info.value)


def test_text_file_is_a_text_block_with_a_header(files: Path) -> None:
    block = cells.file_block(Path("src/a.py"))
    assert block == {"type": "text", "text": "File: src/a.py\n\ndef a():\n    return 1"}


def test_pdf_is_a_base64_document(files: Path) -> None:
    block = cells.file_block(Path("paper.pdf"))
    assert block["type"] == "document"
    assert block["source"]["media_type"] == "application/pdf"
    assert base64.b64decode(block["source"]["data"]) == PDF
    assert block["title"] == "paper.pdf"


@pytest.mark.parametrize(
    ("name", "words"),
    [("fake.pdf", "not a PDF"), ("blob.bin", "binary file"), ("latin1.txt", "not UTF-8")],
)
def test_unsendable_files_are_refused_by_name(files: Path, name: str, words: str) -> None:
    with pytest.raises(ValueError, match=words) as info:
        cells.file_block(Path(name))
    assert name in str(info.value)


def test_size_cap(files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cells, "MAX_FILE_BYTES", 10)
    with pytest.raises(ValueError, match=r"src/a.py: .* over the"):
        cells.file_block(Path("src/a.py"))


@pytest.mark.parametrize(
    ("data", "media"),
    [(PNG, "image/png"), (JPEG, "image/jpeg"), (GIF, "image/gif"), (WEBP, "image/webp")],
)
def test_images_by_their_bytes(tmp_path: Path, data: bytes, media: str) -> None:
    path = tmp_path / "picture.img"
    path.write_bytes(data)
    block = cells.image_block(path)
    assert block["type"] == "image"
    assert block["source"] == {"type": "base64", "media_type": media, "data": base64.b64encode(data).decode()}


def test_unsupported_image_type(files: Path) -> None:
    with pytest.raises(ValueError, match=r"pic\.bmp: not a PNG, JPEG, GIF or WebP"):
        cells.image_block(Path("pic.bmp"))


def test_context_content_orders_text_files_images(files: Path) -> None:
    content, source = cells.context_content("\nRead these.\n", ["src/*.py", "paper.pdf"], ["pic.png"])
    assert [c["type"] for c in content] == ["text", "text", "text", "document", "image"]
    assert content[0]["text"] == "Read these."
    assert source == "src/a.py and 3 more"
    assert cells.context_content("", ["paper.pdf"]) == ([cells.file_block(Path("paper.pdf"))], "paper.pdf")
    assert cells.context_content("  \n") == ([], None)


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
    [("90", 90), ("90s", 90), ("6m", 360), ("1h30m", 5400), ("1.5h", 5400), (" 2M ", 120), ("0", 0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert cells.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "6x", "m", "-5", "1h-2m", "nan", "inf", "5 m"])
def test_parse_duration_errors_give_an_example(text: str) -> None:
    with pytest.raises(ValueError, match="6m"):
        cells.parse_duration(text)


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
    assert names.plan(None, 1, "system", None, "system") == cells.Naming("system")
    first = names.plan("abcdef1234", 1, "system", None, "system")
    assert first.name == "system-abcdef12" and first.replaces is None
    names.commit(first)
    second = names.plan("abcdef1234", 1, "system", None, "system")  # a second block in the same run
    assert second.name == "system-abcdef12-2"
    names.commit(second)
    rerun = names.plan("abcdef1234", 2, "system", None, "system")
    assert rerun.name == "system-abcdef12" and rerun.replaces is None
    renamed = names.plan("abcdef1234", 2, "context", "docs", "context:x")
    assert renamed == cells.Naming("docs", "system-abcdef12", "abcdef1234", 2)
    names.commit(renamed)
    again = names.plan("abcdef1234", 3, "context", None, "context:x")
    assert again.replaces == "docs"
