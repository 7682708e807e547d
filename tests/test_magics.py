"""The magics, driven through a real IPython shell against the in-process emulator."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from _images import PNG_1X1
from IPython.core.error import UsageError
from IPython.core.interactiveshell import ExecutionResult, InteractiveShell
from IPython.utils.capture import capture_output

import pcache_magic
from pcache_magic.core.fmt import TEXT_WIDTH
from pcache_magic.emulator import Emulator
from pcache_magic.emulator.server import EmulatorHTTPServer
from pcache_magic.ipython.magics import ClaudeMagics
from pcache_magic.session.session import Session
from pcache_magic.session.transport import connect

from _helpers import loaded_magics

LONG = " ".join(f"Rule {i}: review the code carefully and explain each finding." for i in range(160))
KEY = "sk-ant-api03-never-print-me"


def run(ip: InteractiveShell, code: str, **kwargs: Any) -> ExecutionResult:
    result = ip.run_cell(code, **kwargs)
    result.raise_error()
    return result


def state(session: Session) -> tuple[object, ...]:
    return ([b.model_dump() for b in session.conversation.blocks], len(session.calls), session.model)


def usage_error(ip: InteractiveShell, code: str) -> str:
    """Run a cell that must fail with a one-line UsageError and leave the session unchanged."""
    session = pcache_magic.current_session()
    before = state(session)
    with capture_output():
        result = ip.run_cell(code)
    assert isinstance(result.error_in_exec or result.error_before_exec, UsageError), result
    message = str(result.error_in_exec or result.error_before_exec)
    assert state(pcache_magic.current_session()) == before
    return message


# -- loading -------------------------------------------------------------------------------------
def test_load_prints_one_line_and_never_the_key(
    shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PCACHE_OFFLINE", "1")
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    with capture_output() as out:
        shell.run_line_magic("load_ext", "pcache_magic")
    try:
        _, *more = out.stdout.splitlines()  # one line, wrapped to the text width
        assert all(line.startswith("  ") for line in more) and len(more) <= 1
        assert out.stdout.startswith("pcache_magic: offline") and "claude-" in out.stdout
        assert KEY not in out.stdout
        assert isinstance(pcache_magic.current_session(), Session)
        assert "claude_context" in shell.magics_manager.magics["line"]
    finally:
        shell.run_line_magic("unload_ext", "pcache_magic")
    assert "ClaudeMagics" not in shell.magics_manager.registry
    for kind in ("line", "cell"):
        assert not any(name.startswith("claude") for name in shell.magics_manager.magics[kind])
    assert not any(isinstance(c, ClaudeMagics) for c in shell.configurables)
    with pytest.raises(RuntimeError, match="load_ext pcache_magic"):
        pcache_magic.current_session()


def test_show_panel_on_load(shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PCACHE_OFFLINE", "1")
    shell.config.ClaudeMagics.show_panel = True
    try:
        with capture_output() as out:
            shell.run_line_magic("load_ext", "pcache_magic")
        assert any("application/vnd.jupyter.widget-view+json" in o.data for o in out.outputs)
        assert loaded_magics(shell)._panel is not None
    finally:
        del shell.config.ClaudeMagics["show_panel"]
        shell.run_line_magic("unload_ext", "pcache_magic")


def test_help_lists_the_arguments(ip: InteractiveShell) -> None:
    doc = ip.find_cell_magic("claude_context").__doc__ or ""
    assert "%%claude_context [--cache [5m|1h]] [--name NAME]" in doc
    for flag in ("--cache", "--name", "--file", "--image", "5m|1h"):
        assert flag in doc
    assert "--run" in (ip.find_cell_magic("claude_tools").__doc__ or "")
    assert "--no-stream" in (ip.find_cell_magic("claude").__doc__ or "")
    assert "advance" in (ip.find_line_magic("claude_clock").__doc__ or "")


# -- blocks ---------------------------------------------------------------------------------------
def test_system_cache_flags_and_rerun_replaces(ip: InteractiveShell) -> None:
    session = pcache_magic.current_session()
    with capture_output() as out:
        run(ip, "%%claude_system --cache\nBe brief.")
    assert "system block 'be-brief'" in out.stdout and "cached 5m" in out.stdout
    run(ip, "%%claude_system --cache 1h\nBe brief.\nVery brief.\n\n")  # the same first line: a re-run
    (block,) = session.conversation.blocks
    assert block.cache is not None and block.cache.ttl == "1h"
    assert block.content == [{"type": "text", "text": "Be brief.\nVery brief."}]
    run(ip, "%%claude_system --name persona\nYou are a pirate.")
    assert session.conversation.names() == ["be-brief", "persona"]
    assert session.conversation.blocks[1].cache is None
    run(ip, "%config ClaudeMagics.default_ttl = '1h'")
    run(ip, "%%claude_system --cache\nBe brief.")
    assert session.conversation.blocks[0].cache.ttl == "1h"  # type: ignore[union-attr]


def test_system_from_files(ip: InteractiveShell, tmp_path: Path) -> None:
    session = pcache_magic.current_session()
    (tmp_path / "guide.md").write_text("# Guide\nBe kind.\n")
    (tmp_path / "paper.pdf").write_bytes(b"%PDF-1.4 fake")
    run(ip, "%%claude_system --cache 1h --file guide.md\nYou review code.")
    (block,) = session.conversation.blocks
    assert block.content == [
        {"type": "text", "text": "You review code.\n\nFile: guide.md\n\n# Guide\nBe kind."}
    ]
    run(ip, "%%claude_system --name only-files --file guide.md\n")  # files alone: an empty body is fine
    assert session.conversation.get("only-files") is not None
    assert "takes text only" in usage_error(ip, "%claude_system --file paper.pdf")
    assert "(or --file)" in usage_error(ip, "%claude_system --cache")


def test_cell_id_names_blocks_and_a_rerun_replaces_them(ip: InteractiveShell) -> None:
    session = pcache_magic.current_session()
    cell = "3f2a9c1b-0000-4000-8000-000000000000"
    run(ip, "%%claude_system\nFirst version.", cell_id=cell)
    run(ip, "%%claude_system\nSecond version.", cell_id=cell)  # edited: renamed, not added
    assert session.conversation.names() == ["second-version"]
    assert session.conversation.blocks[0].content[0]["text"] == "Second version."
    run(ip, "%%claude_context\nNow it is context.", cell_id=cell)  # the cell became another magic
    assert session.conversation.names() == ["now-it-is-context"]
    run(ip, "%%claude_system\nAnother cell.", cell_id="other-cell")
    assert session.conversation.names() == ["now-it-is-context", "another-cell"]


def test_an_edited_cell_keeps_its_place_and_a_namesake_gets_a_suffix(ip: InteractiveShell) -> None:
    # store_history=True, as a kernel runs cells: each run gets its own execution count
    session = pcache_magic.current_session()
    run(ip, "%%claude_context\nAlpha notes\none.", cell_id="a", store_history=True)
    run(ip, "%%claude_context\nBeta notes\ntwo.", cell_id="b", store_history=True)
    run(
        ip, "%%claude_context\nGamma notes\nthree.", cell_id="a", store_history=True
    )  # edited: same place, new name
    assert session.conversation.names() == ["gamma-notes", "beta-notes"]
    assert session.conversation.blocks[0].content[0]["text"] == "Gamma notes\nthree."
    run(
        ip, "%%claude_context\nBeta notes\nfour.", cell_id="c", store_history=True
    )  # another cell, the same first words
    run(
        ip, "%%claude_context\nBeta notes\nfive.", cell_id="c", store_history=True
    )  # its re-run keeps the suffix
    run(ip, "%%claude_context\nBeta notes\nsix.", cell_id="b", store_history=True)
    assert session.conversation.names() == ["gamma-notes", "beta-notes", "beta-notes-2"]
    assert [b.content[0]["text"] for b in session.conversation.blocks][1:] == [
        "Beta notes\nsix.",
        "Beta notes\nfive.",
    ]
    with capture_output() as out:
        run(ip, "%claude_session drop beta-notes-2")  # the name is typed back as it is shown
    assert "Dropped 'beta-notes-2'" in out.stdout
    run(
        ip, "%%claude_context --name notes\nBeta notes\nseven.", cell_id="b", store_history=True
    )  # --name wins, in place
    assert session.conversation.names() == ["gamma-notes", "notes"]


def test_cell_id_from_ipykernel_metadata(ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch) -> None:
    class Kernel:
        def get_parent(self) -> dict[str, Any]:
            return {"header": {}, "metadata": {"cellId": "abcdef99-kernel"}}

    monkeypatch.setattr(ip, "kernel", Kernel(), raising=False)
    run(ip, "%%claude_system\nFrom a kernel.")
    run(ip, "%%claude_system\nFrom a kernel, again.")
    assert pcache_magic.current_session().conversation.names() == ["from-a-kernel-again"]


def test_context_text_files_images_and_rerun(ip: InteractiveShell, tmp_path: Path) -> None:
    session = pcache_magic.current_session()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("print('a')\n")
    (tmp_path / "src" / "b.py").write_text("print('b')\n")
    (tmp_path / "paper.pdf").write_bytes(b"%PDF-1.4\n%%EOF\n")
    (tmp_path / "pic.png").write_bytes(PNG_1X1)
    run(ip, "%%claude_context --cache 1h --file src/*.py paper.pdf --image pic.png\nThe project:")
    (block,) = session.conversation.blocks
    assert block.name == "*.py" and block.source == "src/a.py and 3 more"
    assert [c["type"] for c in block.content] == ["text", "text", "text", "document", "image"]
    assert block.content[1]["text"].startswith("File: src/a.py\n")
    assert block.cache is not None and block.cache.ttl == "1h"
    run(ip, "%claude_context --file src/*.py")  # the line form, for files only
    assert len(session.conversation.blocks) == 1
    assert [c["type"] for c in session.conversation.blocks[0].content] == ["text", "text"]
    run(ip, "%%claude_context\nFirst line\nmore")
    run(ip, "%%claude_context\nFirst line\nchanged")  # no cell id: the same first line is a re-run
    assert session.conversation.names() == ["*.py", "first-line"]
    run(ip, "%%claude_system\nFirst line")  # another kind: a suffix, not a replacement
    assert session.conversation.names() == ["*.py", "first-line", "first-line-2"]


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (
            "%%claude_system --bogus\nx",
            r"unrecognized arguments: --bogus \(flags: %claude_help claude_system\)$",
        ),
        (
            "%%claude_tools --bogus\n[]",  # a cell magic alone: IPython's `?` finds it under %% only
            r"unrecognized arguments: --bogus \(flags: %claude_help claude_tools\)$",
        ),
        ("%%claude_system --cache 2h\nx", "invalid choice: '2h'"),
        ("%%claude_system --cache\n  \n", "The cell is empty"),
        ("%claude_context --cache", "Nothing to add"),
        ("%%claude_context --cache\n\n", "Nothing to add"),
        ("%%claude_context --cache 5m --file missing.txt\nx", "missing.txt: the file does not exist"),
        ("%%claude_context --file nothing/*.md\nx", r"nothing/\*.md: the pattern matches no file"),
        ("%%claude_context --image notes.txt\nx", "not a PNG, JPEG, GIF or WebP"),
        ('%%claude_tools\n[{"name": "x",, }]', r"not valid JSON \(Expecting .* line 1, column 15\)"),
        ("%%claude_tools\nundefined_name", r"evaluating it failed \(NameError"),
        ('%%claude_tools --run\n{"name": "nofn", "input_schema": {"type": "object"}}', "no function named"),
        ('%%claude_tools\n{"name": "bad name!", "input_schema": {"type": "object"}}', "invalid"),
        ("%%claude\n  \n", "The cell is empty"),
        ("%%claude\n", "the cell body is empty"),
        ("%%claude --max-tokens 0\nhi", "at least 1"),
        ("%%claude --model claude-sonet-4-5\nhi", "Did you mean"),
        ("%%claude --cache sometimes\nhi", "invalid choice"),
        ("%claude_session drop nope", "No block named 'nope'; there are no blocks yet"),
        ("%claude_session drop", "needs a block NAME"),
        ("%claude_session export yaml", "python, ipynb or json"),
        ("%claude_session frobnicate", "invalid choice"),
        ("%claude_session show extra", "Too many arguments"),
        ("%claude_session load missing.json", "no such file"),
        ("%claude_clock advance 6x", "write e.g. 6m, 90s, 1h30m"),
        ("%claude_clock advance", "write e.g. 6m"),
        ("%claude_clock 6m", "Did you mean %claude_clock advance 6m"),
        ("%claude_clock rewind 6m", "Did you mean %claude_clock advance 6m"),
        ("%claude_prewarm now", r"unrecognized arguments: now \(flags: %claude_help claude_prewarm\)"),
    ],
)
def test_usage_errors_are_one_line_and_change_nothing(
    ip: InteractiveShell, tmp_path: Path, code: str, words: str
) -> None:
    (tmp_path / "notes.txt").write_text("plain text")
    message = usage_error(ip, code)
    assert "\n" not in message and "Traceback" not in message
    assert __import__("re").search(words, message), message


@pytest.mark.parametrize(
    ("code", "flag"), [("%%claude_system --bogus\nx", "--file"), ("%%claude_tools --x\n[]", "--run")]
)
def test_an_unknown_flag_points_to_help_that_lists_the_flags(
    ip: InteractiveShell, code: str, flag: str
) -> None:
    helper = usage_error(ip, code).split("(flags: ", 1)[1].removesuffix(")")
    with capture_output() as out:
        run(ip, helper)
    assert flag in out.stdout + "".join(str(o.data) for o in out.outputs)


ABBREVIATED = "flags are not abbreviated: write {} in full"


@pytest.mark.parametrize(
    ("code", "unknown", "full"),
    [
        ("%%claude --cach last\nHello?", "--cach last", "--cache"),
        ("%%claude --no-st\nHello?", "--no-st", "--no-stream"),
        ("%%claude --n q\nHello?", "--n q", "--no-stream or --name or --no-expand"),
        ("%%claude_context --fil notes.txt\nx", "--fil notes.txt", "--file"),
        ("%claude_context --im notes.png", "--im notes.png", "--image"),
        ("%%claude_context --cach=1h\nx", "--cach=1h", "--cache"),
        ("%%claude_system --cach\nx", "--cach", "--cache"),
        ('%%claude_tools --ru\n{"name": "x", "input_schema": {"type": "object"}}', "--ru", "--run"),
        ("%claude_explain --a", "--a", "--all"),
    ],
)
def test_abbreviated_flags_are_refused_in_one_line(
    ip: InteractiveShell, code: str, unknown: str, full: str
) -> None:
    # argparse would take an unambiguous prefix: `--cach last` quietly meant `--cache last`
    message = usage_error(ip, code)
    assert message == f"unrecognized arguments: {unknown} ({ABBREVIATED.format(full)})"


def test_every_magic_parser_wants_flags_in_full(ip: InteractiveShell) -> None:
    parsers = {
        name: fn.parser
        for table in loaded_magics(ip).magics.values()
        for name, fn in table.items()
        if hasattr(fn, "parser")
    }
    assert {"claude", "claude_context", "claude_system", "claude_tools", "claude_session"} <= set(parsers)
    assert {name for name, parser in parsers.items() if parser.allow_abbrev} == set()


def test_flags_in_full_and_with_equals_still_work(ip: InteractiveShell, tmp_path: Path) -> None:
    session = pcache_magic.current_session()
    (tmp_path / "notes.txt").write_text(LONG)
    run(ip, "%%claude_context --cache=1h --name=guide --file=notes.txt\nRead the notes.")
    run(ip, "%%claude --cache=last --no-stream --max-tokens=40 --name=q\nHello?")
    assert session.conversation.names() == ["guide", "q", "reply"]
    guide = session.conversation.blocks[0]
    assert guide.cache is not None and guide.cache.ttl == "1h" and guide.source == "notes.txt"
    assert session.calls[-1].request["max_tokens"] == 40


def test_tools_json_expression_and_cache_marker(ip: InteractiveShell) -> None:
    session = pcache_magic.current_session()
    run(ip, '%%claude_tools\n{"name": "search", "input_schema": {"type": "object", "properties": {}}}')
    run(ip, "def add(a: int, b: int) -> int:\n    'Add two numbers.'\n    return a + b\n")
    run(ip, "%%claude_tools --cache\n[add, {'name': 'noop', 'input_schema': {'type': 'object'}}]")
    assert session.conversation.names() == ["search", "add+noop"]
    params = session.params()
    assert [t["name"] for t in params["tools"]] == ["search", "add", "noop"]
    assert params["tools"][1]["description"] == "Add two numbers."
    assert params["tools"][1]["input_schema"]["required"] == ["a", "b"]
    assert "cache_control" in params["tools"][2] and "cache_control" not in params["tools"][1]


# -- calls ------------------------------------------------------------------------------------------
def test_ask_flow_reads_from_cache_and_prints_the_summary(ip: InteractiveShell) -> None:
    assert len(LONG.split()) > 1100
    run(ip, f"%%claude_system --cache\n{LONG}")
    with capture_output() as first:
        run(ip, "%%claude\nWhich functions have no tests?")
    with capture_output() as second:
        run(ip, "%%claude\nAnd which are the longest?")
    session = pcache_magic.current_session()
    assert [c.kind for c in session.calls] == ["ask", "ask"]
    assert session.calls[0].tokens.written > 0
    assert session.calls[1].tokens.read > 0
    markdown = [o.data["text/markdown"] for o in second.outputs if "text/markdown" in o.data]
    assert "longest" in markdown[-1] and "offline emulator" in markdown[-1]
    summaries = [o.data for o in second.outputs if "text/html" in o.data]
    assert len(summaries) == 1
    assert "pcache-summary" in summaries[0]["text/html"] and "HIT" in summaries[0]["text/plain"]
    assert "WRITE" in next(o.data for o in first.outputs if "text/html" in o.data)["text/plain"]
    assert session.conversation.names()[1:] == ["prompt", "reply", "prompt-2", "reply-2"]


def test_claude_flags(ip: InteractiveShell) -> None:
    session = pcache_magic.current_session()
    run(ip, f"%%claude_system --cache --name system\n{LONG}")
    run(ip, "%%claude --no-stream --max-tokens 50 --model claude-haiku-4-5 --cache last --name q\nHello?")
    request = session.calls[-1].request
    assert (request["model"], request["max_tokens"]) == ("claude-haiku-4-5", 50)
    assert request["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral", "ttl": "5m"}
    run(ip, "%%claude\nAnother question.")
    run(ip, "%%claude_context --name later\nA later note.")
    run(ip, "%%claude --name q\nHello again?")  # --name: the whole turn is asked again
    names = session.conversation.names()
    assert names == ["system", "prompt", "reply-2", "later", "q", "reply"]
    assert session.calls[-1].request["model"] == session.model
    assert "names a system block" in usage_error(ip, "%%claude --name system\nHi")


def prompt_text(name: str) -> str:
    block = pcache_magic.current_session().conversation.get(name)
    assert block is not None
    return str(block.content[0]["text"])


def test_braces_put_notebook_variables_into_the_prompt(ip: InteractiveShell) -> None:
    run(ip, "question = 'Which rules concern money?'\nclass Doc: title = 'Refunds'")
    run(ip, "%%claude --no-stream --name q\n{question} See {Doc.title}; keep {{question}} and {'a': 1}.")
    assert prompt_text("q") == "Which rules concern money? See Refunds; keep {question} and {'a': 1}."
    run(ip, "%%claude --no-stream --no-expand --name q\n{question} as written")
    assert prompt_text("q") == "{question} as written"
    calls = len(pcache_magic.current_session().calls)
    message = usage_error(ip, "%%claude\nSummarise {report}.")
    assert message == (
        "Not sent: no variable 'report' in the notebook; define it or write {{report}} for a literal brace."
    )
    assert "only names and attributes" in usage_error(ip, "%%claude\nLook at {question.upper()}")
    assert len(pcache_magic.current_session().calls) == calls


def test_out_keeps_the_reply_text_in_a_variable(ip: InteractiveShell) -> None:
    with capture_output() as out:
        run(ip, "%%claude --no-stream -o answer\nHello?")
    answer = ip.user_ns["answer"]
    assert isinstance(answer, str) and answer and answer in out.outputs[0].data["text/markdown"]
    run(ip, "%%claude --no-stream --out=second\nAgain?")
    assert ip.user_ns["second"] != answer and "Again?" in ip.user_ns["second"]
    assert usage_error(ip, "%%claude --out 1x\nHi") == (
        "Not sent: --out takes a Python variable name such as answer, not '1x' (no leading underscore, "
        "not In, Out or IPython's helpers)."
    )
    run(ip, "def helper():\n    pass")
    assert "is a function in the notebook" in usage_error(ip, "%%claude -o helper\nHi")


@pytest.mark.parametrize("stream", ["", "--no-stream"])
def test_format_text_and_code(ip: InteractiveShell, stream: str) -> None:
    with capture_output() as out:
        run(ip, f"%%claude {stream} --format text -o said\nHello in plain text?")
    assert not any("text/markdown" in o.data for o in out.outputs)  # nothing rendered
    assert ip.user_ns["said"] in out.stdout
    with capture_output() as out:
        run(ip, f"%%claude {stream} --format code -o said\nSome code?")
    markdown = [o.data["text/markdown"] for o in out.outputs if "text/markdown" in o.data]
    assert len(markdown) == 1 and markdown[0].startswith("```") and markdown[0].endswith("```")
    assert ip.user_ns["said"].strip() in markdown[0]
    assert "cache read" in out.outputs[-1].data["text/plain"]  # then the usage line, as always
    assert "invalid choice: 'html'" in usage_error(ip, "%%claude --format html\nHi")


def test_one_percent_claude_sends_nothing_and_shows_its_help(ip: InteractiveShell) -> None:
    with capture_output() as out:
        run(ip, "%claude")
    assert (
        "--no-expand" in out.outputs[0].data["text/plain"] and "{name}" in out.outputs[0].data["text/plain"]
    )
    message = usage_error(ip, "%claude Tell me about caching, briefly.")
    assert message == "%claude sends nothing: write your message on the lines below %%claude."
    assert pcache_magic.current_session().calls == []
    with capture_output() as out:
        result = ip.run_cell("%claude?")
    assert result.success and "--format" in out.stdout and "{name}" in out.stdout
    with capture_output():
        result = ip.run_cell("%%claude\n")
    assert "Did you mean the line magic %claude" in str(result.error_before_exec or result.error_in_exec)


def test_claude_help_lists_every_magic(ip: InteractiveShell) -> None:
    with capture_output() as out:
        run(ip, "%claude_help")
    (shown,) = out.outputs
    for name in ("%%claude_system", "%%claude_context", "%%claude_tools", "%%claude /", "%claude_clock"):
        assert name in shown.data["text/markdown"] and name in shown.data["text/plain"]
    assert "`-o/--out NAME`" in shown.data["text/markdown"]
    with capture_output() as out:
        run(ip, "%claude_help context  # one magic, in full")
    assert "IPython refuses a `%%` cell magic with an empty body" in out.outputs[0].data["text/plain"]
    message = usage_error(ip, "%claude_help nope")
    assert message.startswith("No magic named 'nope'; the magics are: claude_system, claude_context")


@pytest.mark.parametrize("flags", ["", "--no-stream"])
def test_a_terminal_gets_plain_text(
    ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch, flags: str
) -> None:
    monkeypatch.setattr(ip.display_formatter, "active_types", ["text/plain"])
    run(ip, "def ping() -> str:\n    'Ping.'\n    return 'pong'\n")
    run(ip, "%%claude_tools --run\nping")
    with capture_output() as out:
        run(ip, f"%%claude {flags}\nHello from a terminal, use ping")
    assert out.stdout.count("Calling `ping`") == 1  # each part once, whether streamed or not
    assert out.stdout.count("> tool `ping({})` → pong") == 1
    assert out.stdout.count('Your last message: "tool results: ["pong"]"') == 1
    assert all("cache read" in o.data["text/plain"] for o in out.outputs)


def test_tool_loop_runs_the_function(ip: InteractiveShell) -> None:
    run(
        ip,
        "calls = []\n"
        "def get_weather(city: str) -> str:\n"
        "    'The weather.'\n"
        "    calls.append(city)\n"
        "    return f'Sunny in {city}'\n",
    )
    run(ip, "%%claude_tools --run\nget_weather")
    with capture_output() as out:
        run(ip, "%%claude\nUse get_weather for Paris")
    session = pcache_magic.current_session()
    assert ip.user_ns["calls"] == ["example"]  # the emulator fills required arguments with placeholders
    assert [c.kind for c in session.calls] == ["ask", "tool_loop"]
    assert session.calls[0].response.stop_reason == "tool_use"  # type: ignore[union-attr]
    assert session.calls[1].response.stop_reason == "end_turn"  # type: ignore[union-attr]
    result = session.calls[1].request["messages"][-1]["content"][0]
    assert result["type"] == "tool_result" and result["content"] == "Sunny in example"
    final = [o.data["text/markdown"] for o in out.outputs if "text/markdown" in o.data][-1]
    assert 'get_weather({"city": "example"})` → Sunny in example' in final
    assert len([o for o in out.outputs if "text/html" in o.data]) == 2
    # Without --run the turn ends at the tool call, and says so.
    run(ip, "%%claude_tools\nget_weather")
    with capture_output() as out:
        run(ip, "%%claude\nUse get_weather for Rome")
    assert "not run" in [o.data["text/markdown"] for o in out.outputs if "text/markdown" in o.data][-1]


def test_tool_rounds_are_bounded(ip: InteractiveShell) -> None:
    run(ip, "def ping() -> str:\n    'Ping.'\n    return 'Use ping again'\n")
    run(ip, "%%claude_tools --run\nping")
    run(ip, "%config ClaudeMagics.max_tool_rounds = 0")
    with capture_output() as out:
        run(ip, "%%claude\nUse ping now")
    assert "Stopped after 0 tool rounds" in out.stdout


def test_preflight_error_lists_the_markers(ip: InteractiveShell) -> None:
    with capture_output() as out:
        run(ip, f"%%claude_system --cache 1h --name s1\n{LONG}")
        run(ip, "%%claude_system --cache 1h --name s2\nMore rules.")
        for n in range(3):
            run(ip, f"%%claude_context --cache --name c{n}\nDocument {n}.")
    assert "5 cache markers" in out.stdout  # said when the fifth block arrived
    session = pcache_magic.current_session()
    before = state(session)
    with capture_output():
        result = ip.run_cell("%%claude\nHello")
    message = str(result.error_in_exec)
    assert isinstance(result.error_in_exec, UsageError)
    assert message.startswith("Not sent: 5 cache markers, at most 4: s1, s2, c0")
    assert state(session) == before


def test_a_tool_name_in_two_tools_cells_is_one_line_and_not_sent(ip: InteractiveShell) -> None:
    search, fetch = (f'{{"name": "{n}", "input_schema": {{"type": "object"}}}}' for n in ("search", "fetch"))
    with capture_output() as out:
        run(ip, f"%%claude_tools\n{search}")
        run(ip, f"%%claude_tools --name more\n[{fetch}, {search}]")
    said = "Tool names must be unique; 'search' is defined in blocks search, more."
    assert f"error: {said}" in " ".join(out.stdout.split())  # said when the second cell ran
    assert all(len(line) <= TEXT_WIDTH for line in out.stdout.splitlines())
    message = usage_error(ip, "%%claude\nFind it.")  # nothing sent, the conversation unchanged
    assert message.startswith(f"Not sent: {said} Rename one of the tools")
    assert "\n" not in message and "Traceback" not in message
    assert pcache_magic.current_session().calls == []


@pytest.mark.parametrize(
    ("fault", "flags", "expected"),
    [
        (529, "", "The API is overloaded (529) after 2 retries; try again in a minute."),
        (401, "--no-stream", "The API key was rejected (401); check ANTHROPIC_API_KEY."),
        ("disconnect", "", "The connection broke during the reply (RemoteProtocolError); the conversation"),
    ],
)
def test_api_errors_are_one_line(ip: InteractiveShell, fault: Any, flags: str, expected: str) -> None:
    session = pcache_magic.current_session()
    run(ip, "%%claude_system\nBe brief.")
    before = [b.model_dump() for b in session.conversation.blocks]
    session.connection.emulator.inject(fault, times=3, retry_after=0.01)  # type: ignore[union-attr]
    with capture_output():
        result = ip.run_cell(f"%%claude {flags}\nHello")
    assert isinstance(result.error_in_exec, UsageError)
    assert str(result.error_in_exec).startswith(expected)
    assert [b.model_dump() for b in session.conversation.blocks] == before
    assert [c.ok for c in session.calls] == [False]  # the failed call is on record


def test_interrupt_leaves_the_conversation(ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch) -> None:
    session = pcache_magic.current_session()

    def interrupted(**_: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(session.client.messages, "stream", interrupted)  # type: ignore[union-attr]
    before = [b.model_dump() for b in session.conversation.blocks]
    with capture_output():
        result = ip.run_cell("%%claude\nHello")
    assert str(result.error_in_exec) == "Interrupted; the conversation is unchanged."
    assert [b.model_dump() for b in session.conversation.blocks] == before


def test_prewarm_then_a_hit(ip: InteractiveShell) -> None:
    run(ip, f"%%claude_system --cache\n{LONG}")
    with capture_output() as out:
        run(ip, "%claude_prewarm")
    assert "WRITE" in out.outputs[-1].data["text/plain"]
    run(ip, "%%claude\nHello")
    session = pcache_magic.current_session()
    assert [c.kind for c in session.calls] == ["prewarm", "ask"]
    assert session.calls[1].tokens.read > 0


# -- clock, config, session -------------------------------------------------------------------------
def test_clock_shows_entries_and_advancing_expires_them(ip: InteractiveShell) -> None:
    run(ip, f"%%claude_system --cache\n{LONG}")
    run(ip, "%%claude\nHello")
    with capture_output() as out:
        run(ip, "%claude_clock")
    assert (
        "Emulator time: 2026-" in out.stdout
        and "rule-0-review-the-code:" in out.stdout
        and "expires in 5m 00s" in out.stdout
    )
    with capture_output() as out:
        run(ip, "%claude_clock advance 6m")
    assert "Moved the emulator clock on by 6m 00s" in out.stdout and "No live cache entries" in out.stdout
    run(ip, "%%claude\nHello again")
    assert pcache_magic.current_session().calls[-1].tokens.read == 0


def said_before_any_call(ip: InteractiveShell, code: str) -> str:
    """Run a cell before any call: it must succeed (Run All goes on), print one sentence (wrapped to
    `TEXT_WIDTH` columns), make no session; the sentence, unwrapped."""
    with capture_output() as out:
        run(ip, code)
    assert loaded_magics(ip)._session is None and out.outputs == []
    assert all(len(line) <= TEXT_WIDTH for line in out.stdout.splitlines())
    return " ".join(out.stdout.split())


def test_explain_names_the_change_that_broke_the_cache(ip: InteractiveShell) -> None:
    expected = (
        "No calls yet: ask first (%%claude, or .ask() on a Session); why each call hit, wrote or missed "
        "shows here after."
    )
    assert said_before_any_call(ip, "%claude_explain") == expected
    assert said_before_any_call(ip, "%claude_explain --all") == expected
    assert said_before_any_call(ip, "%claude_explain 3") == expected
    assert usage_error(ip, "%claude_explain --bogus") == (
        "unrecognized arguments: --bogus (flags: %claude_help claude_explain)"
    )
    run(ip, f"%%claude_system --cache --name system\n{LONG}")
    run(ip, "%%claude\nHello")
    run(ip, f"%%claude_system --cache --name system\nToday is 2026-11-30.\n{LONG}")
    run(ip, "%%claude\nAnd now?")
    with capture_output() as out:
        run(ip, "%claude_explain")
    (shown,) = [o.data for o in out.outputs]
    assert 'data-call="2"' in shown["text/html"]
    assert "system" in shown["text/plain"] and "changed" in shown["text/plain"]
    with capture_output() as out:
        run(ip, "%claude_explain 1")
    assert "First call" in out.outputs[0].data["text/plain"]
    with capture_output() as out:
        run(ip, "%claude_explain --all")
    assert out.stdout.splitlines()[0].startswith("call 1: wrote") and out.stdout.count("call ") == 2
    assert usage_error(ip, "%claude_explain 7") == "No call 7: calls are numbered 1 to 2."
    assert "invalid int value" in usage_error(ip, "%claude_explain last")


def test_cost_shows_the_money_and_the_what_if(ip: InteractiveShell) -> None:
    expected = (
        "No successful calls yet: ask first (%%claude, or .ask() on a Session); the costs show here after."
    )
    assert said_before_any_call(ip, "%claude_cost") == expected
    assert usage_error(ip, "%claude_cost now") == "%claude_cost takes no arguments."
    run(ip, f"%%claude_system --cache\n{LONG}")
    run(ip, "%%claude\nHello")
    run(ip, "%%claude\nAgain")
    with capture_output() as out:
        run(ip, "%claude_cost")
    money, what_if = (o.data["text/plain"] for o in out.outputs)
    assert "total" in money.lower()
    assert max(len(line) for line in (money + "\n" + what_if).splitlines()) <= 80  # a 700 px window
    assert all(o.data["text/html"].startswith('<div class="pcache-panel pcache-cost') for o in out.outputs)
    for label in ("no caching", "the API's automatic caching", "the planner (--cache auto)", "ideal"):
        assert label in what_if
    assert usage_error(ip, "%claude_cost now") == "%claude_cost takes no arguments."


def test_cost_without_a_what_if_the_emulator_cannot_replay_says_so_in_one_line(ip: InteractiveShell) -> None:
    """A server's block of a type newer than the emulator, sent back in the next request: the replay
    is refused, and %claude_cost said it with a raw traceback."""
    run(ip, f"%%claude_system --cache\n{LONG}")
    run(ip, "%%claude\nHello")
    session = pcache_magic.current_session()
    request = session.calls[-1].request
    request["messages"] = [*request["messages"], {"role": "assistant", "content": [{"type": "brand_new"}]}]
    with capture_output() as out:
        run(ip, "%claude_cost")
    (money,) = out.outputs  # the money table, then one note in place of the what-if
    assert "total" in money.data["text/plain"].lower()
    said = " ".join(out.stdout.split())
    assert said.startswith("No what-if table: call 1 under 'as sent': the emulator rejected it:")
    assert said.endswith("the replay needs every call the emulator accepts.") and "Traceback" not in said


@pytest.mark.parametrize("mode", ["automatic", "auto"])
def test_cache_modes_from_the_line_and_the_config(ip: InteractiveShell, mode: str) -> None:
    session = pcache_magic.current_session()
    run(ip, f"%%claude_system\n{LONG}")  # no marker of its own
    run(ip, f"%%claude --cache {mode}\nHello")
    run(ip, f"%config ClaudeMagics.cache_mode = '{mode}'")
    assert session.cache_mode == mode
    run(ip, "%%claude\nAgain")
    first, second = session.calls
    assert ("cache_control" in first.request) == (mode == "automatic")
    assert first.tokens.written > 1_000 and second.tokens.read >= first.tokens.written


def test_clock_does_not_move_online(ip: InteractiveShell) -> None:
    live = Session(connection=connect(env={"ANTHROPIC_API_KEY": "sk-ant-test"}))
    assert live.connection is not None and live.connection.mode == "live"
    loaded_magics(ip).use(live)
    message = usage_error(ip, "%claude_clock advance 6m")
    assert message.startswith("The clock only moves offline")
    assert live.calls == []
    with capture_output() as out:
        run(ip, "%claude_clock")
    assert "Real time:" in out.stdout


def test_config_reaches_the_live_session(ip: InteractiveShell) -> None:
    session = pcache_magic.current_session()
    run(ip, "%config ClaudeMagics.model = 'claude-haiku-4-5'")
    run(ip, "%config ClaudeMagics.max_tokens = 77")
    assert (session.model, session.max_tokens) == ("claude-haiku-4-5", 77)
    with capture_output():
        ip.run_cell("%config ClaudeMagics.model = 'claude-haiku-4.5x'")  # IPython logs the TraitError
    assert session.model == loaded_magics(ip).model == "claude-haiku-4-5"


def test_bad_config_refuses_to_load_in_one_line(
    shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PCACHE_OFFLINE", "1")
    shell.config.ClaudeMagics.model = "claude-sonet-4-5"
    try:
        with capture_output():
            result = shell.run_cell("%load_ext pcache_magic")
        assert isinstance(result.error_in_exec, UsageError)
        assert str(result.error_in_exec).startswith("pcache_magic was not loaded: Unknown model")
        assert "ClaudeMagics" not in shell.magics_manager.registry
        assert not any(isinstance(c, ClaudeMagics) for c in shell.configurables)
    finally:
        shell.config.pop("ClaudeMagics", None)
        shell.extension_manager.loaded.discard("pcache_magic")


def test_switching_offline_keeps_the_conversation(
    ip: InteractiveShell, threaded: tuple[Emulator, EmulatorHTTPServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    # From a pcache-emulator server to the built-in emulator: a new session, the conversation kept.
    monkeypatch.setenv("PCACHE_EMULATOR_URL", threaded[1].url)
    loaded_magics(ip).use(Session(connection=connect(max_retries=0)))
    assert pcache_magic.current_session().connection.mode == "server"  # type: ignore[union-attr]
    monkeypatch.delenv("PCACHE_EMULATOR_URL")
    run(ip, "%%claude_system\nKeep me.")
    run(ip, "def ping() -> str:\n    'Ping.'\n    return 'pong'\n")
    run(ip, "%%claude_tools --run\nping")
    run(ip, "%claude_panel")
    old = pcache_magic.current_session()
    with capture_output() as out:
        run(ip, "%config ClaudeMagics.offline = True")
    new = pcache_magic.current_session()
    assert new is not old and new.offline and new.conversation.names() == ["keep-me", "ping"]
    assert out.stdout.startswith("pcache_magic: offline")
    assert loaded_magics(ip)._panel is not None and loaded_magics(ip)._panel.session is new
    run(ip, "%%claude\nUse ping")
    assert [c.kind for c in new.calls] == ["ask", "tool_loop"]


def test_session_show_reset_drop(ip: InteractiveShell) -> None:
    run(ip, "%%claude_system --name keep\nKeep.")
    run(ip, "%%claude_system --name gone\nGone.")
    with capture_output() as out:
        run(ip, "%claude_session")
    assert "pcache-panel" in out.outputs[0].data["text/html"]
    assert "keep: system" in out.outputs[0].data["text/plain"]
    run(ip, "%claude_session drop gone")
    session = pcache_magic.current_session()
    assert session.conversation.names() == ["keep"]
    run(ip, "%claude_session reset")
    assert session.conversation.names() == [] and session.calls == []


def test_a_hostile_name_shows_escaped_and_is_typed_back_as_shown(ip: InteractiveShell) -> None:
    # A right-to-left override in a name turned the rest of an error's list of names around, and
    # the text listing printed it raw; the name the views show (`notes\u202etxt`) could not be typed.
    session = pcache_magic.current_session()
    session.context("Hello.", name="notes\u202etxt")
    session.context("Source.", name="src", source="evil\u202egpj.exe")
    message = usage_error(ip, "%claude_session drop nope")
    assert "\u202e" not in message and "notes\\u202etxt" in message
    with capture_output() as out:
        run(ip, "%claude_session show")
    text = out.outputs[0].data["text/plain"]
    assert "\u202e" not in text and "notes\\u202etxt: context" in text and "(evil\\u202egpj.exe)" in text
    run(ip, "%claude_session drop notes\\u202etxt")
    assert session.conversation.names() == ["src"]


def test_a_refusal_before_sending_shows_hostile_names_escaped(ip: InteractiveShell) -> None:
    session = pcache_magic.current_session()
    session.system(LONG, cache="5m", name="evil\x1b[2J\u202e")
    session.system(LONG + " More.", cache="1h", name="later")
    message = usage_error(ip, "%%claude\nHello")
    assert message.startswith(
        "Not sent: A 1h marker comes after a 5m one: later (1h) after evil␛[2J\\u202e (5m)"
    )
    assert "\x1b" not in message and "\u202e" not in message


def test_a_name_in_quotes_loses_them_as_in_a_shell(ip: InteractiveShell) -> None:
    run(ip, '%%claude_context --name "my notes"\nHello.')
    run(ip, "%%claude_context --name 'single'\nHi.")
    assert pcache_magic.current_session().conversation.names() == ["my notes", "single"]


def test_save_load_round_trip(ip: InteractiveShell, tmp_path: Path) -> None:
    run(ip, f"%%claude_system --cache 1h\n{LONG}")
    run(ip, "%%claude\nHello")
    run(ip, "%config ClaudeMagics.max_tokens = 300")
    session = pcache_magic.current_session()
    saved = (state(session), session.totals)
    run(ip, "%claude_session save saved.json")
    run(ip, "%claude_session reset")
    run(ip, "%config ClaudeMagics.max_tokens = 100")
    with capture_output() as out:
        run(ip, "%claude_session load saved.json")
    assert "Loaded 3 blocks and 1 call" in out.stdout
    assert (state(session), session.totals) == saved
    assert loaded_magics(ip).max_tokens == 300
    (tmp_path / "broken.json").write_text((tmp_path / "saved.json").read_text()[:100])
    assert "truncated" in usage_error(ip, "%claude_session load broken.json")


def test_export_json_and_python(
    ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    run(ip, f"%%claude_system --cache\n{LONG}")
    run(ip, "%%claude\nHello")
    with capture_output() as out:
        run(ip, "%claude_session export json")
    exported = json.loads(out.stdout)
    assert exported["next_request"]["system"][0]["cache_control"]["type"] == "ephemeral"
    assert exported["calls"][0]["outcome"] == "write"
    with capture_output() as out:
        run(ip, "%claude_session export python")
    compile(out.stdout, "replay.py", "exec")
    assert KEY not in out.stdout and "ANTHROPIC_API_KEY" in out.stdout
    run(ip, "%claude_session export python replay.py")
    assert (tmp_path / "replay.py").read_text().strip() == out.stdout.strip()


def test_panel_replaces_the_previous_one(ip: InteractiveShell) -> None:
    with capture_output() as out:
        run(ip, "%claude_panel")
        first = loaded_magics(ip)._panel
        run(ip, "%claude_panel")
    second = loaded_magics(ip)._panel
    assert first is not None and second is not None and first is not second
    # two panels shown, and the first one's output updated to say it was replaced (test_live_panel)
    assert [o.update for o in out.outputs] == [False, True, False]
    assert first._closed and first.comm is None  # closed and unsubscribed from the session
    assert not second._closed


def test_stream_updates_are_throttled(ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch) -> None:
    from pcache_magic.ipython import output as _output

    clock = iter(float(i) * 0.01 for i in range(10_000))  # 10 ms between chunks
    monkeypatch.setattr(_output.time, "monotonic", lambda: next(clock))
    with capture_output() as out:
        reply = _output.Reply(rich=True)
        for n in range(100):
            reply.write(f"{n} ")
        reply.flush()
    updates = [o for o in out.outputs if "text/markdown" in o.data]
    assert 2 <= len(updates) <= 1 + 100 * 0.01 / _output.UPDATE_EVERY_S + 1  # first, ~every 0.1 s, flush
    assert updates[-1].data["text/markdown"] == "".join(f"{n} " for n in range(100))


def test_importing_the_package_stays_cheap() -> None:
    import subprocess
    import sys

    heavy = "('anthropic', 'IPython', 'ipywidgets')"
    code = f"import sys, pcache_magic; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- advice before money is spent ----------------------------------------------------------------
def test_an_edit_inside_the_cached_prefix_is_priced_when_the_cell_is_rerun(ip: InteractiveShell) -> None:
    with capture_output():
        run(ip, "%%claude_context --name notes\nshort notes, version one")
        run(ip, f"%%claude_context --cache --name paper\n{LONG}")
        run(ip, "%%claude\nSummarise the rules.")
    with capture_output() as out:
        run(ip, "%%claude_context --name notes\nshort notes, version two")
    assert all(len(line) <= TEXT_WIDTH for line in out.stdout.splitlines())  # wrapped between words
    (note,) = [line for line in out.stdout.replace("\n    ", " ").splitlines() if "note:" in line]
    assert "Editing notes rewrites ~" in note
    assert "at the 5m rate; the 1 block after it (paper) too" in note
    assert "Put notes after them" in note
    with capture_output() as out:  # the same content again: nothing more to pay than already said
        run(ip, "%%claude_context --name paper --cache\n" + LONG)
    assert "note:" not in out.stdout or "Editing notes" in out.stdout


def test_a_block_added_inside_the_cached_prefix_is_told_as_an_addition(ip: InteractiveShell) -> None:
    """A new block before a live entry rewrites it at once: not an edit that may come (a new user)."""
    with capture_output():
        run(ip, f"%%claude_context --cache --name paper\n{LONG}")
        run(ip, "%%claude\nSummarise the rules.")
    with capture_output() as out:
        run(ip, "%%claude_system --name style\nShort answers.")
    note = " ".join(out.stdout.split())
    assert "note: Adding style here rewrites ~" in note and "Editing" not in note


def test_keep_warm_is_opt_in_and_refreshes_on_the_offline_clock(ip: InteractiveShell) -> None:
    session = pcache_magic.current_session()
    with capture_output():
        run(ip, f"%%claude_system --cache --name rules\n{LONG}")
        for question in ("One?", "Two?", "Three?"):  # six minutes apart: each 5m entry dies just before
            run(ip, "%claude_clock advance 6m")
            run(ip, f"%%claude\n{question}")
    calls = len(session.calls)
    with capture_output() as out:
        run(ip, "%claude_prewarm --keep-warm on")
    assert out.stdout.startswith("Keep-warm on.")
    with capture_output() as out:
        run(ip, "%claude_clock advance 6m")
    assert [c.kind for c in session.calls[calls:]] == ["prewarm"]
    assert "Keep-warm is on (1 refresh sent)" in out.stdout
    with capture_output():
        run(ip, "%claude_panel")
        run(ip, "%claude_panel")  # the first is replaced; keep-warm is not stopped with it
    assert session.keepwarm.on
    with capture_output():
        run(ip, "%claude_prewarm --keep-warm off")
    assert not session.keepwarm.on
    assert "must be one of" in usage_error(
        ip, "%claude_prewarm --keep-warm maybe"
    ) or "invalid choice" in usage_error(ip, "%claude_prewarm --keep-warm maybe")


# -- --thinking ------------------------------------------------------------------------------------
def test_thinking_flag_sends_it_and_shows_the_thinking_and_its_tokens(ip: InteractiveShell) -> None:
    run(ip, '%config ClaudeMagics.model = "claude-sonnet-4-5"')
    with capture_output() as out:
        run(ip, "%%claude --thinking 2048 --max-tokens 4096\nThink, then answer.")
    record = pcache_magic.current_session().calls[-1]
    assert record.request["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    shown = [o.data["text/markdown"] for o in out.outputs if o.data.get("text/markdown")]
    assert shown[-1].startswith("<details><summary>thinking · ~")
    summary = next(
        o.data["text/plain"] for o in out.outputs if "pcache-summary" in o.data.get("text/html", "")
    )
    assert re.search(r"output of which ~\d+ thinking \(estimate\)$", summary)


def test_thinking_flag_errors_are_one_line_and_send_nothing(ip: InteractiveShell) -> None:
    run(ip, '%config ClaudeMagics.model = "claude-sonnet-4-5"')
    assert usage_error(ip, "%%claude --thinking 512 --max-tokens 4096\nHi").startswith(
        "--thinking is 512; a thinking budget is at least 1,024 tokens"
    )
    assert "add --max-tokens" in usage_error(ip, "%%claude --thinking 2048 --max-tokens 2048\nHi")
    assert "has no adaptive thinking" in usage_error(ip, "%%claude --thinking adaptive\nHi")
    assert "takes only adaptive" in usage_error(ip, "%%claude --model claude-sonnet-5 --thinking 2048\nHi")


# -- --schema (structured outputs; the logic is ipython/output_schema.py) ----------------------------
def test_schema_is_in_the_help_and_a_bad_one_changes_nothing(ip: InteractiveShell) -> None:
    with capture_output() as out:
        run(ip, "%claude_help claude")
    assert "`--schema NAME`" in out.outputs[0].data["text/markdown"]
    ip.user_ns["Loose"] = {"type": "object", "properties": {"a": {"type": "string"}}}
    ip.user_ns.pop("got", None)  # the shell is shared: another test's `-o got` may be there
    message = usage_error(ip, "%%claude --schema Loose -o got\nHi")
    assert message.startswith("Not sent: --schema Loose: the API refuses it:")
    assert "got" not in ip.user_ns


def test_schema_with_out_stores_the_object_and_the_json_is_the_reply(ip: InteractiveShell) -> None:
    ip.user_ns["Point"] = {
        "type": "object",
        "properties": {"x": {"type": "integer"}, "label": {"type": "string", "format": "email"}},
        "required": ["x", "label"],
        "additionalProperties": False,
    }
    with capture_output():
        run(ip, "%%claude --schema Point -o p --format text\nWhere?")
    assert ip.user_ns["p"] == {"x": 1, "label": "user@example.com"}
    session = pcache_magic.current_session()
    (block,) = session.conversation.blocks[-1].model_dump()["content"]
    assert block == {"type": "text", "text": '{"x": 1, "label": "user@example.com"}'}  # the reply is the JSON


def test_a_key_pasted_as_the_model_is_never_shown_back(
    ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)  # offline: a key the session never saw
    pasted = "sk-ant-api03-" + "Z" * 40
    said = usage_error(ip, f"%%claude --model {pasted}\nhi")
    assert pasted not in said and "Z" * 8 not in said and "[API key]" in said
