"""The bad-input table: every mistake a notebook user can make on a magic line, and its answer.

Each case runs through the real magics on IPython's `InteractiveShell`, offline, after a
session with a cached system prompt and one answered call. Every answer is one line
(IPython's `UsageError`: no traceback) that says what is wrong and what to do, and the
session is exactly as it was: the same blocks, the same call records, the same settings,
and no file left behind.

104 cases, one test each (the parametrize ids name them): the magic line (9: unknown flags,
bad TTLs, bad choices, a quote left open, an empty name), empty cells (5), markers and the
request as a whole (5: a fifth marker, listing all five; 1h after 5m; over the context
window), tools (12: invalid JSON,
bad names, bad or missing schema, repeated names, fields the API refuses, --run without a
function), files and images (22: missing, directory, not a regular file (a FIFO, /dev/zero,
named or reached by a glob), a symlink loop, binary, not UTF-8, oversized, over the cell's
total or file count, fake PDF, unsupported image type), model and max_tokens (6: unknown
model with the nearest suggested, out of range), the clock (5, %claude_clock online among
them), the other magics (9), loading a session (14: missing, corrupt, a script, truncated,
foreign, newer, damaged, repeated block names, not UTF-8, a directory), where saves and
exports go (5: unwritable, missing folder, a directory) and `%config` values the traits
refuse (12: NaN or infinite timeouts, max_tokens below 1, negative or zero counts; IPython
answers those in one logged line; the retry policy stays as it was).
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import pcache_magic
from pcache_magic.ipython.files import MAX_FILE_BYTES, MAX_IMAGE_BYTES, MIB

from _helpers import loaded_magics

LONG = " ".join(f"Rule {i}: review the code carefully and explain each finding." for i in range(160))
#: Every case starts from here: a cached system block and one answered turn.
BASE = (f"%%claude_system --cache --name rules\n{LONG}", "%%claude --name q1\nFirst question?")
SAVE = "%claude_session save good.json"


def rewrite(source: str, target: str, old: str, new: str) -> str:
    """A Python cell that writes a damaged copy of a saved session (setup for the load cases)."""
    return (
        "import pathlib\n"
        f"text = pathlib.Path({source!r}).read_text()\n"
        f"assert {old!r} in text\n"
        f"pathlib.Path({target!r}).write_text(text.replace({old!r}, {new!r}))\n"
    )


GO_LIVE = (
    "from pcache_magic.session.session import Session\n"
    "from pcache_magic.session.transport import connect\n"
    "get_ipython().magics_manager.registry['ClaudeMagics'].use(\n"
    "    Session(connection=connect(env={'ANTHROPIC_API_KEY': 'sk-ant-test-not-used'}))\n"
    ")\n"
)
MARKERS = (
    "%%claude_system --cache --name style\nShort answers.",
    "%%claude_context --cache --name c1\nDocument one.",
    "%%claude_context --cache --name c2\nDocument two.",
    "%%claude_context --cache --name c3\nDocument three.",
)
FIVE = (
    "Not sent: 5 cache markers, at most 4: rules, style, c1, c2, c3. Take markers off the smaller "
    "blocks (add such a block again without one); a marker caches everything before it."
)
JSON_ERROR = r"is not valid JSON \(.+ at line \d+\); it may be truncated\."


@dataclass(frozen=True)
class Case:
    """`code` fails with `message` (exact, or a full-match pattern when it holds a number that varies).

    `{ro}` in either stands for a folder nobody (not even root) may write to.
    """

    id: str
    code: str
    message: str | re.Pattern[str]
    setup: tuple[str, ...] = ()


CASES = [
    # -- the magic line -------------------------------------------------------------------------
    Case(
        "unknown-flag",
        "%%claude_system --bogus\nBe brief.",
        "unrecognized arguments: --bogus (flags: %claude_help claude_system)",
    ),
    Case(
        "unknown-flag-claude",
        "%%claude --temperature 0.5\nHi",
        "unrecognized arguments: --temperature 0.5 (flags: %claude_help claude)",
    ),
    Case(
        "bad-ttl",
        "%%claude_system --cache 2h\nBe brief.",
        "argument --cache: invalid choice: '2h' (choose from '5m', '1h')",
    ),
    Case(
        "bad-ttl-context",
        "%%claude_context --cache 10m\nNotes.",
        "argument --cache: invalid choice: '10m' (choose from '5m', '1h')",
    ),
    Case(
        "bad-cache-mode",
        "%%claude --cache sometimes\nHi",
        "argument --cache: invalid choice: 'sometimes' (choose from 'none', 'last', 'automatic', 'auto')",
    ),
    Case(
        "file-flag-without-path", "%claude_context --file", "argument --file: expected at least one argument"
    ),
    Case(
        "max-tokens-not-a-number",
        "%%claude --max-tokens lots\nHi",
        "argument --max-tokens: invalid int value: 'lots'",
    ),
    # -- empty cells ----------------------------------------------------------------------------
    Case(
        "cache-on-empty-system",
        "%%claude_system --cache\n   \n",
        "The cell is empty: write the system prompt below %%claude_system (or --file).",
    ),
    Case(
        "cache-on-no-body",
        "%%claude_system --cache",
        "The cell is empty: write the system prompt below %%claude_system (or --file).",
    ),
    Case(
        "cache-on-empty-context",
        "%%claude_context --cache 1h\n\n",
        "Nothing to add: the cell is empty and no --file or --image was given.",
    ),
    Case(
        "cache-on-empty-context-line",
        "%claude_context --cache",
        "Nothing to add: the cell is empty and no --file or --image was given.",
    ),
    Case("empty-prompt", "%%claude\n   \n", "The cell is empty: write your message below %%claude."),
    # -- markers and the request as a whole ------------------------------------------------------
    Case("fifth-marker", "%%claude\nHello", FIVE, MARKERS),
    Case("fifth-marker-prewarm", "%claude_prewarm", FIVE, MARKERS),
    Case(
        "1h-after-5m",
        "%%claude\nHello",
        "Not sent: A 1h marker comes after a 5m one: late (1h) after rules (5m); the order is tools, "
        "system, messages. Drop the marker on rules, or mark it 1h too (a block's marker comes off when "
        "it is added again without one).",
        ("%%claude_context --cache 1h --name late\nLate notes.",),
    ),
    Case(
        "over-the-context-window",
        "%%claude --model claude-haiku-4-5\nSummarise.",
        re.compile(
            r"Not sent: The prompt is an estimated 23\d,\d{3} tokens; claude-haiku-4-5 takes 200,000\. "
            r"Drop or shorten context blocks \(%claude_session drop NAME\)\."
        ),
        (
            "import pathlib; pathlib.Path('big.txt').write_text('word ' * 210_000)",
            "%claude_context --name big --file big.txt",
        ),
    ),
    Case(
        "turn-name-taken",
        "%%claude --name rules\nHi",
        "'rules' names a system block; give the turn another --name.",
    ),
    # -- tools ------------------------------------------------------------------------------------
    Case(
        "tools-invalid-json",
        '%%claude_tools\n[{"name": "lookup",, }]',
        "The cell is not valid JSON (Expecting property name enclosed in double quotes at line 1, column 20) "
        "nor a Python expression.",
    ),
    Case(
        "tools-bad-name",
        '%%claude_tools\n{"name": "look up!", "input_schema": {"type": "object"}}',
        "Tool name 'look up!' is missing or invalid: use letters, digits, _ or -.",
    ),
    Case(
        "tools-schema-not-an-object",
        '%%claude_tools\n{"name": "lookup", "input_schema": {"type": "string"}}',
        'Tool \'lookup\' needs an input_schema with "type": "object".',
    ),
    Case(
        "tools-no-schema",
        '%%claude_tools\n{"name": "lookup", "description": "Look it up."}',
        'Tool \'lookup\' needs an input_schema with "type": "object".',
    ),
    Case("tools-not-a-tool", "%%claude_tools\n42", "A tool is a dict or a function, not int."),
    Case(
        "tools-empty-list",
        "%%claude_tools --cache\n[]",
        "The cell lists no tools: give at least one tool definition or function.",
    ),
    Case(
        "tools-unknown-name",
        "%%claude_tools\nundefined_tool",
        "The cell is not valid JSON (Expecting value at line 1, column 1) and evaluating it failed "
        "(NameError: name 'undefined_tool' is not defined).",
    ),
    Case(
        "tools-duplicate-names",
        '%%claude_tools\n[{"name": "lookup", "input_schema": {"type": "object"}},'
        ' {"name": "lookup", "input_schema": {"type": "object"}}]',
        "Tool name 'lookup' is given twice in the cell; tool names must be unique.",
    ),
    Case(
        "tools-schema-properties-not-an-object",
        '%%claude_tools\n{"name": "lookup", "input_schema": {"type": "object", "properties": ["q"]}}',
        "Tool 'lookup': input_schema.properties: Input should be a valid dictionary; "
        "the API refuses it as written.",
    ),
    Case(
        "tools-openai-style-parameters",
        '%%claude_tools\n{"name": "lookup", "parameters": {"type": "object"},'
        ' "input_schema": {"type": "object"}}',
        "Tool 'lookup': parameters: Extra inputs are not permitted; the API refuses it as written.",
    ),
    Case(
        "tools-description-not-text",
        '%%claude_tools\n{"name": "lookup", "description": 5, "input_schema": {"type": "object"}}',
        "Tool 'lookup': description: Input should be a valid string; the API refuses it as written.",
    ),
    Case(
        "tools-run-without-function",
        '%%claude_tools --run\n{"name": "nofn", "input_schema": {"type": "object"}}',
        "--run: there is no function named 'nofn' in the notebook.",
    ),
    # -- files and images ----------------------------------------------------------------------------
    Case(
        "file-missing",
        "%claude_context --file missing.txt",
        re.compile(r"missing\.txt: the file does not exist in /\S+\."),  # where it was looked for
    ),
    Case(
        "file-pattern-matches-nothing",
        "%claude_context --file nothing/*.md",
        "nothing/*.md: the pattern matches no file; check the path and the cwd.",
    ),
    Case(
        "file-is-a-directory",
        "%claude_context --file adir",
        "adir: the file is a directory; use a glob such as dir/*.py.",
    ),
    Case(
        "file-not-regular",
        "%claude_context --file /dev/null",
        "/dev/null: not a regular file; give a file on disk.",
    ),
    Case(
        "image-missing",
        "%claude_context --image nope.png",
        re.compile(r"nope\.png: the file does not exist in /\S+\."),
    ),
    Case(
        "file-binary",
        "%claude_context --file bin.dat",
        "bin.dat: a binary file; only text files and PDFs can be sent (images: --image).",
    ),
    Case(
        "file-not-utf8",
        "%claude_context --file latin.txt",
        "latin.txt: not UTF-8 text (byte 3); convert it, e.g. iconv -t utf-8.",
    ),
    Case(
        "file-oversized",
        "%claude_context --file huge.txt",
        "huge.txt: 21.0 MB is over the 20 MB limit; send a smaller file.",
    ),
    Case(
        "file-fake-pdf", "%claude_context --file fake.pdf", "fake.pdf: named .pdf but it is not a PDF file."
    ),
    Case(
        "file-one-bad-among-good",
        "%%claude_context --cache --file notes.txt bin.dat\nBoth files:",
        "bin.dat: a binary file; only text files and PDFs can be sent (images: --image).",
    ),
    Case("file-fifo", "%claude_context --file pipe", "pipe: not a regular file; give a file on disk."),
    Case(
        "file-dev-zero",
        "%claude_context --file /dev/zero",
        "/dev/zero: not a regular file; give a file on disk.",
    ),
    Case(
        "file-glob-reaches-a-fifo",
        "%claude_context --file pip*",
        "pipe: a named pipe, not a regular file; narrow the pattern pip*.",
    ),
    Case(
        "file-symlink-to-itself",
        "%claude_context --file selfloop",
        "selfloop: cannot be read (Too many levels of symbolic links); check the path and its permissions.",
        ("import os; os.symlink('selfloop', 'selfloop')",),
    ),
    Case(
        "file-glob-through-symlink-loops",
        "%claude_context --file tree/**/*.md",
        "tree/**/*.md: the pattern matches no file; check the path and the cwd.",
        ("import os; os.makedirs('tree/sub'); os.symlink('..', 'tree/sub/up'); os.symlink('.', 'tree/me')",),
    ),
    Case(
        "files-over-the-cells-total",
        "%%claude_context --cache --file big/*.txt\nAll of these:",
        "The 2 files come to 39.8 MB, over the 32 MB one cell may read; "
        "name fewer files or raise %config ClaudeMagics.max_files_mb.",
    ),
    Case(
        "files-over-the-cells-total-system",
        "%claude_system --file big/*.txt",
        "The 2 files come to 39.8 MB, over the 32 MB one cell may read; "
        "name fewer files or raise %config ClaudeMagics.max_files_mb.",
    ),
    Case(
        "files-over-a-lowered-total",
        "%claude_context --file notes.txt big/a.txt",
        "The 2 files come to 19.9 MB, over the 1 MB one cell may read; "
        "name fewer files or raise %config ClaudeMagics.max_files_mb.",
        ("%config ClaudeMagics.max_files_mb = 1",),
    ),
    Case(
        "files-too-many",
        "%claude_context --file *.txt",
        "*.txt: over 2 files for one cell; narrow the pattern or raise %config ClaudeMagics.max_files.",
        ("%config ClaudeMagics.max_files = 2",),
    ),
    Case(
        "image-unsupported-type",
        "%claude_context --image pic.bmp",
        "pic.bmp: not a PNG, JPEG, GIF or WebP image; convert it to one of those.",
    ),
    Case(
        "image-is-text",
        "%claude_context --image notes.txt",
        "notes.txt: not a PNG, JPEG, GIF or WebP image; convert it to one of those.",
    ),
    Case(
        "image-oversized",
        "%claude_context --image huge.png",
        "huge.png: 3.9 MB is over the 3.75 MB limit (the API's 5 MB counts an image as base64); "
        "send a smaller file.",
    ),
    # -- model and max_tokens ------------------------------------------------------------------------
    Case(
        "model-unknown",
        "%%claude --model claude-sonet-4-5\nHi",
        "Unknown model 'claude-sonet-4-5'. Did you mean 'claude-sonnet-4-5'?",
    ),
    Case(
        "model-unknown-version",
        "%%claude --model claude-haiku-4.5\nHi",
        "Unknown model 'claude-haiku-4.5'. Did you mean 'claude-haiku-4-5'?",
    ),
    Case(
        "max-tokens-zero",
        "%%claude --max-tokens 0\nHi",
        "--max-tokens must be at least 1 (%claude_prewarm fills the cache without output).",
    ),
    Case(
        "max-tokens-over-the-model",
        "%%claude --max-tokens 999999\nHi",
        "--max-tokens is 999,999; claude-sonnet-5 takes 1 to 128,000.",
    ),
    Case(
        "max-tokens-over-this-turns-model",
        "%%claude --model claude-3-haiku-20240307 --max-tokens 5000\nHi",
        "--max-tokens is 5,000; claude-3-haiku-20240307 takes 1 to 4,096.",
    ),
    Case(
        "max-tokens-config-out-of-range",
        "%%claude\nHi",
        "ClaudeMagics.max_tokens is 200,000; claude-sonnet-5 takes 1 to 128,000.",
        ("%config ClaudeMagics.max_tokens = 200000",),
    ),
    # -- clock ------------------------------------------------------------------------------------
    Case(
        "clock-online",
        "%claude_clock advance 6m",
        "The clock only moves offline: the live API's cache lifetimes run in real time "
        "(%config ClaudeMagics.offline = True switches to the emulator).",
        (GO_LIVE,),
    ),
    Case(
        "clock-bad-duration",
        "%claude_clock advance 6x",
        "Cannot read the duration '6x'; write e.g. 6m, 90s, 1h30m, 300.",
    ),
    Case(
        "clock-no-duration",
        "%claude_clock advance",
        "Cannot read the duration ''; write e.g. 6m, 90s, 1h30m, 300.",
    ),
    Case("clock-unknown-action", "%claude_clock forward 6m", "Did you mean %claude_clock advance 6m?"),
    Case(
        "clock-advance-as-flag",
        "%claude_clock --advance 5m",
        "--advance is not a flag: write %claude_clock advance 5m",
    ),
    # -- other magics -------------------------------------------------------------------------------
    Case(
        "prewarm-arguments",
        "%claude_prewarm now",
        "unrecognized arguments: now (flags: %claude_help claude_prewarm)",
    ),
    Case("panel-arguments", "%claude_panel big", "%claude_panel takes no arguments."),
    Case(
        "name-empty",
        '%%claude_context --name ""\nHello.',
        "--name is empty: give the block a name, or leave --name out for one made for you.",
    ),
    Case(
        "quote-left-open",
        '%%claude_context --name "my notes\nHello.',
        'A quote on the line is not closed; close it (--name "my notes").',
    ),
    Case(
        "session-unknown-command",
        "%claude_session frobnicate",
        "argument command: invalid choice: 'frobnicate' (choose from 'show', 'reset', 'drop', 'save', "
        "'load', 'export') (flags: %claude_help claude_session)",
    ),
    Case(
        "session-drop-unknown",
        "%claude_session drop nope",
        "No block named 'nope'; the blocks are: rules, q1, reply.",
    ),
    Case("session-drop-no-name", "%claude_session drop", "%claude_session drop needs a block NAME."),
    Case(
        "session-drop-name-with-a-space",
        "%claude_session drop my notes",
        'A block name with a space goes in quotes: %claude_session drop "my notes".',
    ),
    Case("session-save-no-path", "%claude_session save", "%claude_session save needs a PATH."),
    Case(
        "session-too-many-arguments",
        "%claude_session show extra",
        "Too many arguments for %claude_session show.",
    ),
    Case(
        "session-export-unknown-kind",
        "%claude_session export yaml",
        "%claude_session export takes python, ipynb or json: %claude_session export python replay.py",
    ),
    # -- saved sessions: load ---------------------------------------------------------------------
    Case("load-missing", "%claude_session load missing.json", "missing.json: no such file."),
    Case(
        "load-corrupt",
        "%claude_session load corrupt.json",
        "corrupt.json is not a pcache_magic session file (saved with %claude_session save FILE).",
        ("open('corrupt.json', 'wb').write(b'\\x00\\x01 not json at all')",),
    ),
    Case(
        "load-truncated",
        "%claude_session load truncated.json",
        re.compile("truncated.json " + JSON_ERROR),
        (SAVE, "t = open('good.json').read(); open('truncated.json', 'w').write(t[: len(t) // 2])"),
    ),
    Case(
        "load-foreign-json",
        "%claude_session load foreign.json",
        "foreign.json is not a pcache_magic session file (saved with %claude_session save FILE).",
        ("open('foreign.json', 'w').write('{\"cells\": [], \"nbformat\": 4, \"nbformat_minor\": 5}')",),
    ),
    Case(
        "load-newer-version",
        "%claude_session load newer.json",
        "newer.json was saved by pcache_magic 0.1.0 (session format 3); this pcache_magic 0.1.0 reads "
        "format 2 and older: upgrade pcache_magic to load it.",
        (SAVE, rewrite("good.json", "newer.json", '"version":2', '"version":3')),
    ),
    Case(
        "load-bad-version",
        "%claude_session load unversioned.json",
        "unversioned.json: version: not a format version; fix that field or save the session again.",
        (SAVE, rewrite("good.json", "unversioned.json", '"version":2', '"version":"one"')),
    ),
    Case(
        "load-invalid-block",
        "%claude_session load damaged.json",
        "damaged.json: blocks.0.role: Input should be 'tools', 'system', 'user' or 'assistant'; "
        "fix that field or save the session again.",
        (SAVE, rewrite("good.json", "damaged.json", '"role":"system"', '"role":"robot"')),
    ),
    Case(
        "load-invalid-config",
        "%claude_session load damaged.json",
        "damaged.json: settings.max_tokens: Input should be greater than or equal to 0; "
        "fix that field or save the session again.",
        (
            SAVE,
            rewrite(
                "good.json",
                "damaged.json",
                '"max_tokens":1024,"default_ttl"',
                '"max_tokens":-5,"default_ttl"',
            ),
        ),
    ),
    Case(
        "load-unknown-model",
        "%claude_session load renamed.json",
        "renamed.json: settings.model: unknown model 'claude-sonnet-9' (did you mean 'claude-sonnet-5'?); "
        "add it to the catalogue with $PCACHE_MODELS (a JSON file of model entries) or "
        "Session(models=default_models().with_overrides({...})), then load again.",
        (
            SAVE,
            rewrite("good.json", "renamed.json", '"model":"claude-sonnet-5"', '"model":"claude-sonnet-9"'),
        ),
    ),
    Case(
        "load-duplicate-block-names",
        "%claude_session load twins.json",
        "twins.json: blocks: the name 'rules' is used twice; rename one (names are unique).",
        (SAVE, rewrite("good.json", "twins.json", '"name":"q1"', '"name":"rules"')),
    ),
    Case(
        "load-empty-object",
        "%claude_session load empty.json",
        "empty.json is not a pcache_magic session file (saved with %claude_session save FILE).",
        ("open('empty.json', 'w').write('{}')",),
    ),
    Case(
        "load-a-script",
        "%claude_session load some_file.py",
        "some_file.py is not a pcache_magic session file (saved with %claude_session save FILE).",
        ("open('some_file.py', 'w').write('import json\\nprint(json.dumps({}))\\n')",),
    ),
    Case(
        "load-not-utf8",
        "%claude_session load latin.txt",
        "latin.txt is not a pcache_magic session file (not UTF-8 text).",
    ),
    Case(
        "load-directory",
        "%claude_session load adir",
        "adir: is a folder; give the path of a saved session file.",
    ),
    # -- saved sessions and exports: where they are written ---------------------------------------
    Case(
        "save-unwritable",
        "%claude_session save {ro}/session.json",
        re.compile(r"{ro}/session\.json: cannot write in {ro} \([^)]+\); save somewhere writable\."),
    ),
    Case(
        "save-missing-folder",
        "%claude_session save nope/session.json",
        "nope/session.json: the folder nope does not exist.",
    ),
    Case(
        "save-onto-a-directory",
        "%claude_session save adir",
        "adir: is a directory; give a file name such as session.json.",
    ),
    Case(
        "save-under-a-file",
        "%claude_session save notes.txt/session.json",
        "notes.txt/session.json: the folder notes.txt is not a folder.",
    ),
    Case(
        "export-unwritable",
        "%claude_session export python {ro}/replay.py",
        re.compile(r"{ro}/replay\.py: cannot write in {ro} \([^)]+\); save somewhere writable\."),
    ),
]


@pytest.fixture
def ip(ip: InteractiveShell, tmp_path: Path) -> InteractiveShell:
    """The shell with pcache_magic loaded (conftest.py), and the files the cases name in its folder."""
    make_files(tmp_path)
    return ip


def make_files(folder: Path) -> None:
    (folder / "notes.txt").write_text("Plain notes.\n")
    (folder / "bin.dat").write_bytes(b"ELF\x00\x01\x02 binary")
    (folder / "latin.txt").write_bytes("café".encode("latin-1"))
    with (folder / "huge.txt").open("wb") as handle:  # sparse: the size is checked before reading
        handle.truncate(MAX_FILE_BYTES + 1)
    with (folder / "huge.png").open("wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n")
        handle.truncate(MAX_IMAGE_BYTES + 1)
    (folder / "fake.pdf").write_text("not a pdf")
    (folder / "pic.bmp").write_bytes(b"BM" + bytes(64))
    (folder / "adir").mkdir()
    os.mkfifo(folder / "pipe")  # reading it would wait for a writer forever
    (folder / "big").mkdir()
    for name in ("a.txt", "b.txt"):  # together over the cell's total, each under the per-file limit
        with (folder / "big" / name).open("wb") as handle:
            handle.truncate(19 * MIB)


@pytest.fixture
def unwritable(tmp_path: Path) -> Iterator[str]:
    """A folder this process cannot create files in: a read-only one, or /sys for root."""
    if os.geteuid() != 0:
        folder = tmp_path / "readonly"
        folder.mkdir()
        folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
        yield str(folder)
        folder.chmod(stat.S_IRWXU)
        return
    try:
        fd, probe = tempfile.mkstemp(dir="/sys")
    except OSError:
        yield "/sys"
        return
    os.close(fd)
    os.unlink(probe)
    pytest.skip("no folder here refuses writes to root")


def state(ip: InteractiveShell) -> tuple[Any, ...]:
    """All a failed magic could have changed: the session, its calls, the settings, the files."""
    session = pcache_magic.current_session()
    magics = loaded_magics(ip)
    settings = (
        session.model,
        session.max_tokens,
        session.default_ttl,
        session.cache_mode,
        session.diagnostics,
    )
    traits = (
        magics.model,
        magics.max_tokens,
        magics.default_ttl,
        magics.cache_mode,
        magics.max_tool_rounds,
        magics.max_files,
        magics.max_files_mb,
    )
    files = sorted(str(p) for p in Path.cwd().rglob("*"))
    return (
        id(session),
        [b.model_dump() for b in session.conversation.blocks],
        [c.model_dump() for c in session.calls],
        settings,
        traits,
        sorted(magics._runners),
        files,
    )


def test_the_table_is_large_enough_and_ids_are_unique() -> None:
    assert len(CASES) + len(CONFIG_CASES) == 104  # the count in the docstring
    assert len({c.id for c in CASES} | {p.id for p in CONFIG_CASES}) == 104


@pytest.mark.timeout(120)  # a FIFO or /dev/zero that were read would hang here
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(ip: InteractiveShell, unwritable: str, case: Case) -> None:
    with capture_output():
        for cell in (*BASE, *case.setup):
            ip.run_cell(cell).raise_error()
    before = state(ip)
    code = case.code.replace("{ro}", unwritable)
    with capture_output() as out:
        result = ip.run_cell(code)
    error = result.error_in_exec or result.error_before_exec
    assert isinstance(error, UsageError), (type(error), error, out.stdout, out.stderr)
    message = str(error)
    if isinstance(case.message, re.Pattern):
        pattern = re.compile(case.message.pattern.replace("{ro}", re.escape(unwritable)))
        assert pattern.fullmatch(message), message
    else:
        assert message == case.message.replace("{ro}", unwritable)
    assert "\n" not in message and len(message) <= 300
    assert out.stderr == f"UsageError: {message}\n"  # IPython's one-line rendering, no traceback
    assert "Traceback" not in out.stdout
    assert state(ip) == before


#: `%config` is IPython's own magic: a refused value is one logged line, and nothing changes.
CONFIG_CASES = [
    pytest.param(
        "%config ClaudeMagics.model = 'claude-sonet-4-5'",
        "Unknown model 'claude-sonet-4-5'. Did you mean 'claude-sonnet-4-5'?",
        id="config-unknown-model",
    ),
    pytest.param(
        "%config ClaudeMagics.max_retries = -1",
        "The value of the 'max_retries' trait of a ClaudeMagics instance should not be less than 0, "
        "but a value of -1 was specified",
        id="config-negative-retries",
    ),
    pytest.param(
        "%config ClaudeMagics.timeout = 0",
        "The value of the 'timeout' trait of a ClaudeMagics instance should not be less than 0.001, "
        "but a value of 0.0 was specified",
        id="config-zero-timeout",
    ),
    pytest.param(
        "%config ClaudeMagics.timeout = float('nan')",
        "ClaudeMagics.timeout must be a number of seconds from 0.001 to 86,400, "
        "or None for the SDK's default; not nan.",
        id="config-nan-timeout",
    ),
    pytest.param(
        "%config ClaudeMagics.timeout = float('inf')",
        "The value of the 'timeout' trait of a ClaudeMagics instance should not be greater than 86400.0, "
        "but a value of inf was specified",
        id="config-infinite-timeout",
    ),
    pytest.param(
        "%config ClaudeMagics.max_tokens = 0",
        "ClaudeMagics.max_tokens must be at least 1, not 0 (%claude_prewarm fills the cache without output).",
        id="config-zero-max-tokens",
    ),
    pytest.param(
        "%config ClaudeMagics.max_tokens = -1",
        "ClaudeMagics.max_tokens must be at least 1, not -1 "
        "(%claude_prewarm fills the cache without output).",
        id="config-negative-max-tokens",
    ),
    pytest.param(
        "%config ClaudeMagics.max_tool_rounds = -1",
        "The value of the 'max_tool_rounds' trait of a ClaudeMagics instance should not be less than 0, "
        "but a value of -1 was specified",
        id="config-negative-tool-rounds",
    ),
    pytest.param(
        "%config ClaudeMagics.max_files_mb = 0",
        "The value of the 'max_files_mb' trait of a ClaudeMagics instance should not be less than 1, "
        "but a value of 0 was specified",
        id="config-zero-files-total",
    ),
    pytest.param(
        "%config ClaudeMagics.max_files = 0",
        "The value of the 'max_files' trait of a ClaudeMagics instance should not be less than 1, "
        "but a value of 0 was specified",
        id="config-zero-max-files",
    ),
    pytest.param(
        "%config ClaudeMagics.default_ttl = '2h'",
        "The 'default_ttl' trait of a ClaudeMagics instance expected any of ['5m', '1h'], not the str '2h'.",
        id="config-bad-ttl",
    ),
    pytest.param(
        "%config ClaudeMagics.max_tokens = 'lots'",
        "The 'max_tokens' trait of a ClaudeMagics instance expected an int, not the str 'lots'.",
        id="config-max-tokens-not-int",
    ),
]


@pytest.mark.parametrize(("code", "message"), CONFIG_CASES)
def test_bad_config_values_are_one_line_and_change_nothing(
    ip: InteractiveShell, caplog: pytest.LogCaptureFixture, code: str, message: str
) -> None:
    with capture_output():
        for cell in BASE:
            ip.run_cell(cell).raise_error()
    magics = loaded_magics(ip)
    client = pcache_magic.current_session().client
    assert client is not None
    policy = (magics.max_retries, magics.timeout, client.max_retries, client.timeout)
    before = state(ip)
    caplog.clear()
    with capture_output() as out:
        result = ip.run_cell(code)
    assert result.success and "Traceback" not in out.stdout + out.stderr
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == [message]
    assert state(ip) == before
    client = pcache_magic.current_session().client
    assert client is not None
    assert (magics.max_retries, magics.timeout, client.max_retries, client.timeout) == policy
