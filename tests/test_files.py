"""files.py: globs by a bounded walk, regular files only, sizes checked before reading, bounded reads.

Nothing big is written: large files are sparse (`truncate`), and tests that could hang on a
FIFO, a device or a symlink loop carry a timeout.
"""

from __future__ import annotations

import base64
import glob
import os
import socket
import struct
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from pcache_magic.ipython import files
from pcache_magic.ipython.files import CellFiles, Limits
from pcache_magic.ipython.output import one_line


def png(width: int, height: int) -> bytes:
    """A PNG of this size: signature, IHDR, one IDAT (rows of zeros, compressed), IEND."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(bytes((1 + 3 * width) * height))
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        for kind, body in ((b"IHDR", ihdr), (b"IDAT", rows), (b"IEND", b""))
    )


def refusal(path: Path, data: bytes) -> str:
    """What `--image` says of a file of `data` at `path` (it must refuse it)."""
    path.write_bytes(data)
    with pytest.raises(ValueError) as refused:
        files.image_block(path)
    return str(refused.value)


# The least of each format with its size (2x2) and some pixel data: the API decodes both.
PNG = png(2, 2)
JPEG_HEAD = b"\xff\xd8\xff\xc0" + struct.pack(">HBHHB", 11, 8, 2, 2, 1) + b"\x01\x11\x00"
JPEG = JPEG_HEAD + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" + b"\x12\x34\xff\xd9"  # SOS, scan, EOI
GIF_HEAD = b"GIF89a" + struct.pack("<HH", 2, 2) + b"\x00" * 3
GIF = GIF_HEAD + b"\x2c" + struct.pack("<HHHHB", 0, 0, 2, 2, 0) + b"\x02\x02\x4c\x01\x00\x3b"
WEBP_HEAD = b"RIFF\x18\x00\x00\x00WEBPVP8 \x0c\x00\x00\x00\x00\x00\x00\x9d\x01\x2a" + struct.pack("<HH", 2, 2)
WEBP = WEBP_HEAD + b"\x01\x02"
PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n"
MB = files.MIB


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "b.py").write_text("def b():\n    return 2\n")
    (tmp_path / "src" / "a.py").write_text("def a():\n    return 1\n")
    (tmp_path / "src" / "pkg" / "c.py").write_text("C = 3\n")
    (tmp_path / "src" / ".hidden").mkdir()
    (tmp_path / "src" / ".hidden" / "h.py").write_text("H = 0\n")
    (tmp_path / "src" / ".dot.py").write_text("D = 0\n")
    (tmp_path / "paper.pdf").write_bytes(PDF)
    (tmp_path / "fake.pdf").write_text("not a pdf")
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "pic.png").write_bytes(PNG)
    (tmp_path / "pic.bmp").write_bytes(b"BM" + b"\x00" * 30)
    return tmp_path


def sparse(path: Path, size: int) -> Path:
    """A file of `size` bytes that takes no room on disk."""
    with path.open("wb") as handle:
        handle.truncate(size)
    return path


# -- expanding ----------------------------------------------------------------------------------
def test_expand_paths_sorts_globs_and_dedupes(tree: Path) -> None:
    found = files.expand_paths(["src/*.py", "src/a.py"])
    assert [str(p) for p in found] == ["src/a.py", "src/b.py"]


@pytest.mark.parametrize(
    "pattern",
    [
        "src/*.py",
        "src/**/*.py",
        "**/*.py",
        "src/**",
        "*/*/*.py",
        "src/.*",
        "src/**/.*",
        "**/c.py",
        "src/?.py",
    ],
)
def test_the_walk_matches_what_glob_matches(tree: Path, pattern: str) -> None:
    """Without symlinks the walk is `glob.glob(recursive=True)`: the same files, dot rules included."""
    expected = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
    assert [str(p) for p in files.expand_paths([pattern])] == expected


def test_absolute_and_home_patterns(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert files.expand_paths([f"{tree}/src/*.py"]) == [tree / "src" / "a.py", tree / "src" / "b.py"]
    monkeypatch.setenv("HOME", str(tree))
    assert files.expand_paths(["~/src/pkg/*.py"]) == [tree / "src" / "pkg" / "c.py"]


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("nope/*.py", "the pattern matches no file; check the path and the cwd."),
        ("missing.txt", "the file does not exist in "),  # the folder it was looked for from
        ("src/a.py/x", "the file does not exist"),
        ("src", "the file is a directory; use a glob such as dir/*.py."),
        ("src/pk?", "the pattern matches no file"),  # directories are skipped, not refused
    ],
)
def test_expand_paths_errors_name_the_pattern(tree: Path, pattern: str, words: str) -> None:
    with pytest.raises(ValueError) as info:
        files.expand_paths([pattern])
    assert str(info.value).startswith(f"{pattern}: {words}")


def test_a_missing_file_names_the_nearest_one_in_its_folder(tree: Path) -> None:
    """A typo (`a.pyy`) gets the name it was near; a plain miss says where it was looked for."""
    with pytest.raises(ValueError) as info:
        files.expand_paths(["src/a.pyy"])
    assert str(info.value) == "src/a.pyy: the file does not exist (did you mean src/a.py?)."
    with pytest.raises(ValueError) as info:
        files.expand_paths(["src/zzz.md"])
    assert str(info.value) == f"src/zzz.md: the file does not exist in {os.getcwd()}."
    with pytest.raises(ValueError) as info:
        files.expand_paths([f"{tree}/zzz.md"])
    assert str(info.value) == f"{tree}/zzz.md: the file does not exist."
    with pytest.raises(ValueError) as info:  # case aside
        files.expand_paths(["src/A.PY"])
    assert str(info.value) == "src/A.PY: the file does not exist (did you mean src/a.py?)."
    with pytest.raises(ValueError) as info:  # the folder is what is missing
        files.expand_paths(["nope/a.py"])
    assert str(info.value) == f"nope/a.py: the file does not exist (no folder nope in {os.getcwd()})."
    os.symlink("gone", tree / "src" / "dangling.py")  # a link to nothing is not its own suggestion
    with pytest.raises(ValueError) as info:
        files.expand_paths(["src/dangling.py"])
    assert "did you mean" not in str(info.value)


def test_a_missing_file_in_a_crowded_folder_is_not_guessed_at(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the names read, a near one may be another file than the one meant: none is offered."""
    monkeypatch.setattr(files, "_NEAREST_SCANNED", 2)
    with pytest.raises(ValueError) as info:
        files.expand_paths(["src/a.pyy"])
    assert str(info.value) == f"src/a.pyy: the file does not exist in {os.getcwd()}."


@pytest.mark.timeout(30)
def test_symlink_loops_are_followed_once(tree: Path) -> None:
    """Two links back up the tree: `glob` would walk 2**depth paths; the walk enters each folder once."""
    os.symlink("..", tree / "src" / "pkg" / "up")
    os.symlink(".", tree / "src" / "self")
    os.symlink("..", tree / "src" / "parent")  # out of src: the fixture's other files, once
    found = [str(p) for p in files.expand_paths(["src/**/*.py"])]
    assert found == ["src/a.py", "src/b.py", "src/pkg/c.py"]
    outside = [str(p) for p in files.expand_paths(["src/**/*.pdf"])]
    assert outside == ["src/parent/fake.pdf", "src/parent/paper.pdf"]
    assert files.expand_paths(["src/self/*.py"]) == [Path("src/self/a.py"), Path("src/self/b.py")]


@pytest.mark.timeout(30)
def test_a_link_is_walked_under_the_real_name_when_both_are_there(tree: Path) -> None:
    os.symlink("pkg", tree / "src" / "alias")
    assert [str(p) for p in files.expand_paths(["src/**/c.py"])] == ["src/pkg/c.py"]


@pytest.mark.timeout(30)
def test_a_self_loop_link_is_refused_in_one_line(tree: Path) -> None:
    os.symlink("loop", tree / "loop")
    with pytest.raises(ValueError, match=r"^loop: cannot be read \(Too many levels of symbolic links\)"):
        files.expand_paths(["loop"])
    with pytest.raises(ValueError, match="matches no file"):
        files.expand_paths(["loo*"])


def test_the_walk_is_bounded(tree: Path) -> None:
    for n in range(30):
        (tree / "src" / "pkg" / f"m{n}.txt").write_text("x")
    with pytest.raises(ValueError, match=r"^\*\*/\*\.py: the pattern looks through over 20 entries; narrow"):
        files.expand_paths(["**/*.py"], Limits(walk_entries=20))


def test_the_number_of_files_is_bounded_across_patterns(tree: Path) -> None:
    with pytest.raises(
        ValueError, match=r"^src/\*\.py: over 2 files for one cell; .*ClaudeMagics\.max_files\.$"
    ):
        files.expand_paths(["paper.pdf", "src/*.py"], Limits(max_files=2))
    reader = CellFiles(Limits(max_files=3))
    assert len(reader.expand(["src/*.py", "src/a.py"])) == 2  # the same file twice counts once
    with pytest.raises(ValueError, match=r"^pic\.bmp: over 3 files"):
        reader.expand(["pic.png", "pic.bmp"])  # --file and --image share the cell's count


# -- not regular files ----------------------------------------------------------------------------
@pytest.fixture
def specials(tree: Path) -> Iterator[Path]:
    """A folder holding a FIFO, a socket, a link to /dev/zero and one good file."""
    folder = tree / "specials"
    folder.mkdir()
    os.mkfifo(folder / "pipe")
    os.symlink("/dev/zero", folder / "zero")
    (folder / "ok.txt").write_text("fine")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "sock"))
    yield folder
    server.close()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", ["specials/pipe", "specials/zero", "specials/sock", "/dev/zero"])
def test_a_named_special_file_is_refused_unread(specials: Path, name: str) -> None:
    with pytest.raises(ValueError) as info:
        files.expand_paths([name])
    assert str(info.value) == f"{name}: not a regular file; give a file on disk."


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("specials/p*", "specials/pipe: a named pipe, not a regular file; narrow the pattern specials/p*."),
        ("specials/s*", "specials/sock: a socket, not a regular file; narrow the pattern specials/s*."),
        ("specials/z*", "specials/zero: a device, not a regular file; narrow the pattern specials/z*."),
    ],
)
def test_a_glob_that_reaches_a_special_file_is_refused(specials: Path, pattern: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        files.expand_paths([pattern])
    assert str(info.value) == message
    assert files.expand_paths(["specials/*.txt"]) == [Path("specials/ok.txt")]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("name", "kind"), [("pipe", "a named pipe"), ("zero", "a device")])
def test_reading_checks_the_opened_file_too(specials: Path, name: str, kind: str) -> None:
    """A path swapped for a FIFO or a device after the walk is still refused, without blocking."""
    with pytest.raises(ValueError) as info:
        files.file_block(specials / name)
    assert str(info.value) == f"{specials / name}: {kind}, not a regular file; give a file on disk."


# -- sizes ----------------------------------------------------------------------------------------
def test_a_file_over_its_limit_is_refused_from_its_size(tree: Path) -> None:
    with pytest.raises(
        ValueError, match=r"^src/a\.py: 0\.0 MB is over the 10 bytes limit; send a smaller file"
    ):
        files.file_block(Path("src/a.py"), CellFiles(Limits(file_bytes=10)))
    big = sparse(tree / "big.txt", files.MAX_FILE_BYTES + 1)
    with pytest.raises(
        ValueError, match=r"^big\.txt: 21\.0 MB is over the 20 MB limit; send a smaller file\.$"
    ):
        CellFiles().check([Path("big.txt")])
    assert big.stat().st_blocks == 0  # never written, never read


@pytest.mark.timeout(60)
def test_the_cells_total_is_checked_before_anything_is_read(tree: Path) -> None:
    """60 sparse files of 20 MB: 1.2 GB by their sizes, refused with next to no memory used."""
    (tree / "big").mkdir()
    for n in range(60):
        sparse(tree / "big" / f"{n:02}.txt", 20 * MB)
    reader = CellFiles()
    paths = reader.expand(["big/*.txt"])
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as info:
            reader.check(paths)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(info.value) == (
        "The 60 files come to 1,258.3 MB, over the 32 MB one cell may read; "
        "name fewer files or raise %config ClaudeMagics.max_files_mb."
    )
    assert peak < MB


def test_memory_follows_the_file_not_the_limit(tree: Path) -> None:
    tracemalloc.start()
    try:
        block = files.file_block(Path("src/a.py"))  # 20 MB allowed, 23 bytes there
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert block["text"].endswith("return 1")
    assert peak < 2 * MB


def test_the_total_counts_files_and_images_together(tree: Path) -> None:
    sparse(tree / "a.txt", 3 * MB)
    (tree / "pic.png").write_bytes(PNG + bytes(2 * MB))
    reader = CellFiles(Limits(total_bytes=4 * MB))
    reader.check([Path("a.txt")])
    with pytest.raises(ValueError, match=r"^The 2 files come to 5\.2 MB, over the 4 MB one cell"):
        reader.check([Path("a.txt")], [Path("pic.png")])


def test_reads_draw_on_the_cells_total(tree: Path) -> None:
    """A file that grew after the sizes were checked is refused before it is read."""
    reader = CellFiles(Limits(total_bytes=60))
    paths = reader.expand(["src/a.py", "src/b.py"])
    reader.check(paths)
    files.file_block(paths[0], reader)  # 23 bytes of 60
    with (tree / "src" / "b.py").open("a") as handle:
        handle.write("# grown\n" * 5)
    with pytest.raises(ValueError) as info:
        files.file_block(paths[1], reader)
    assert str(info.value) == (
        "src/b.py takes the cell's files over the 60 bytes one cell may read; "
        "name fewer files or raise %config ClaudeMagics.max_files_mb."
    )


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux /proc")
def test_the_read_itself_is_bounded() -> None:
    """/proc files say they are empty and then give more: as a file growing while it is read."""
    status = Path("/proc/self/status")
    assert status.stat().st_size == 0
    with pytest.raises(ValueError, match=r"grew past the 100 bytes limit while being read; send a smaller"):
        files.file_block(status, CellFiles(Limits(file_bytes=100)))
    with pytest.raises(ValueError, match=r"takes the cell's files over the 100 bytes one cell may read"):
        files.file_block(status, CellFiles(Limits(total_bytes=100)))


# -- blocks -----------------------------------------------------------------------------------------
def test_text_file_is_a_text_block_with_a_header(tree: Path) -> None:
    block = files.file_block(Path("src/a.py"))
    assert block == {"type": "text", "text": "File: src/a.py\n\ndef a():\n    return 1"}


def test_pdf_is_a_base64_document(tree: Path) -> None:
    block = files.file_block(Path("paper.pdf"))
    assert block["type"] == "document"
    assert block["source"]["media_type"] == "application/pdf"
    assert base64.b64decode(block["source"]["data"]) == PDF
    assert block["title"] == "paper.pdf"


@pytest.mark.parametrize(
    ("name", "words"),
    [("fake.pdf", "not a PDF"), ("blob.bin", "binary file"), ("latin1.txt", "not UTF-8")],
)
def test_unsendable_files_are_refused_by_name(tree: Path, name: str, words: str) -> None:
    with pytest.raises(ValueError, match=words) as info:
        files.file_block(Path(name))
    assert name in str(info.value)


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, "PNG"),  # the signature, then no IHDR
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(8), "PNG"),  # a size of 0x0
        (b"\xff\xd8\xff\xe0" + b"\x00" * 16, "JPEG"),  # no frame header
        (b"GIF89a" + b"\x00" * 16, "GIF"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 8, "WEBP"),
    ],
)
def test_an_image_whose_header_gives_no_size_is_refused_at_once(
    tmp_path: Path, data: bytes, kind: str
) -> None:
    """The API answers such bytes with a 400 ("Could not process image"): said before sending."""
    path = tmp_path / "fake.png"
    assert (
        refusal(path, data)
        == f"{path}: starts like a {kind} but its header gives no size (damaged?); re-save it."
    )


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (PNG[:33], "PNG"),  # signature and IHDR only
        (JPEG_HEAD, "JPEG"),  # cut right after the size
        (JPEG_HEAD + b"\xff\xd9", "JPEG"),  # no scan
        (GIF_HEAD, "GIF"),  # no image descriptor
        (GIF_HEAD + b"\x3b", "GIF"),
        (WEBP_HEAD, "WEBP"),  # the bitstream chunk cut after the size
    ],
    ids=["png-ihdr", "jpeg-cut", "jpeg-no-scan", "gif-cut", "gif-no-image", "webp-cut"],
)
def test_an_image_header_without_pixel_data_is_refused_at_once(
    tmp_path: Path, data: bytes, kind: str
) -> None:
    """The API cannot decode such bytes either (a 400, "Could not process image")."""
    path = tmp_path / "cut.png"
    assert (
        refusal(path, data)
        == f"{path}: a {kind} header with no image data after it (cut short?); re-save it."
    )


def test_an_image_over_8000_px_a_side_is_refused_with_its_size(tmp_path: Path) -> None:
    """The API refuses a side over 8000 px (a 400): said before sending, with what to do."""
    path = tmp_path / "tall.png"
    assert refusal(path, png(1, 8001)) == (
        f"{path}: 1 x 8001 px is over the API's limit of 8000 px a side;"
        " resize it (the model sees at most 1568 px on the long edge anyway)."
    )
    path.write_bytes(png(8000, 1))
    assert files.image_block(path)["type"] == "image"  # the limit itself passes


@pytest.mark.parametrize(
    ("data", "media"),
    [(PNG, "image/png"), (JPEG, "image/jpeg"), (GIF, "image/gif"), (WEBP, "image/webp")],
)
def test_images_by_their_bytes(tmp_path: Path, data: bytes, media: str) -> None:
    path = tmp_path / "picture.img"
    path.write_bytes(data)
    block = files.image_block(path)
    assert block["type"] == "image"
    assert block["source"] == {"type": "base64", "media_type": media, "data": base64.b64encode(data).decode()}


def test_unsupported_image_type_and_image_limit(tree: Path) -> None:
    with pytest.raises(ValueError, match=r"pic\.bmp: not a PNG, JPEG, GIF or WebP"):
        files.image_block(Path("pic.bmp"))
    sparse(tree / "huge.png", files.MAX_IMAGE_BYTES + 1)
    with pytest.raises(
        ValueError,
        match=r"^huge\.png: 3\.9 MB is over the 3\.75 MB limit \(the API's 5 MB counts an image as base64\)",
    ):
        files.image_block(Path("huge.png"))


def test_an_empty_image_file_is_said_to_be_empty(tmp_path: Path) -> None:
    said = refusal(tmp_path / "blank.png", b"")
    assert said.endswith("blank.png: the file is empty; give an image file (PNG, JPEG, GIF or WebP).")


def test_a_hostile_file_name_prints_its_control_characters_as_pictures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A name holding ESC ] 0 ; ... BEL (a terminal title) and ESC [ 2 J (clear the screen): the
    note and the refusal quote it as ␛ and ␇, which a front end does not act on."""
    monkeypatch.chdir(tmp_path)
    name = "evil\x1b]0;pwned\x07\x1b[2J.png"
    Path(name).write_bytes(JPEG)
    files.image_block(Path(name))
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "evil␛]0;pwned␇␛[2J.png: named .png" in out
    Path(name).write_bytes(b"not an image")
    with pytest.raises(ValueError) as refused:
        files.image_block(Path(name))
    assert "\x1b" not in one_line(refused.value) and one_line(refused.value).startswith("evil␛]0;pwned␇")


def test_an_image_named_as_another_type_is_sent_as_its_bytes_say_so_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A JPEG saved as .png: the API judges the bytes (a wrong media type is a 400), so they decide,
    and one line says so (the user may have picked the wrong file)."""
    monkeypatch.chdir(tmp_path)
    Path("photo.png").write_bytes(JPEG)
    assert files.image_block(Path("photo.png"))["source"]["media_type"] == "image/jpeg"
    assert (
        capsys.readouterr().out
        == "photo.png: named .png but its bytes are a JPEG image; sent as image/jpeg.\n"
    )
    for name in ("photo.JPG", "photo.jpeg", "photo.img", "photo"):  # the same type, or none named
        Path(name).write_bytes(JPEG)
        assert files.image_block(Path(name))["source"]["media_type"] == "image/jpeg"
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (
            PNG[:45] + bytes([PNG[45] ^ 1]) + PNG[46:],
            "the PNG data is damaged (a checksum, a length or a header field is wrong)",
        ),
        (PNG[:-12], "the PNG data stops before its end (cut short?)"),
        (JPEG[:-2], "the JPEG data stops before its end (cut short?)"),
        (JPEG[:-4] + bytes(range(256)) * 8, "the JPEG data stops before its end (cut short?)"),
        (GIF[:-1], "the GIF data stops before its end (cut short?)"),
        (WEBP[:4] + b"\x40" + WEBP[5:], "the WEBP data stops before its end (cut short?)"),
        (b"\xff\xd8\xff\xda\x00\x00", "starts like a JPEG but its header gives no size (damaged?)"),
    ],
    ids=["png-crc", "png-no-iend", "jpeg-no-eoi", "jpeg-garbage", "gif-no-trailer", "webp-riff", "jpeg-6b"],
)
def test_garbage_after_a_valid_image_header_is_refused_in_one_line(
    tmp_path: Path, data: bytes, why: str
) -> None:
    """The API could not decode such bytes ("Could not process image"): said before sending."""
    path = tmp_path / "pic.img"
    assert refusal(path, data) == f"{path}: {why}; re-save it."
