"""help.py: the magics and their flags, read from the magics themselves."""

from __future__ import annotations

import re

from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, cell_magic, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from pcache_magic.core.fmt import TEXT_WIDTH
from pcache_magic.ipython.help import Flag, HelpText, describe

from _helpers import loaded_magics


@magics_class
class Demo(Magics):
    @line_magic
    def demo_plain(self, line: str) -> None:
        """A magic without arguments."""

    @magic_arguments()
    @argument("command", nargs="?", choices=["show", "drop"])
    @argument("target", nargs="?", help="What to drop.")
    @argument("-o", "--out", metavar="NAME", help="Keep it\n   in NAME.")
    @argument("--cache", nargs="?", const=True, choices=["5m", "1h"], help="Cache it.")
    @argument("--file", nargs="+", metavar="PATH", help="Files.")
    @argument("--all", action="store_true", help="Everything.")
    @line_cell_magic
    def demo_full(self, line: str, cell: str | None = None) -> None:
        """A magic with every kind of argument.

        Its second paragraph is for the full help only.
        """

    @cell_magic
    def other(self, line: str, cell: str) -> None:
        """Not ours: another prefix."""


def test_describe_reads_forms_order_flags_and_docstrings() -> None:
    plain, full = describe(Demo(shell=None).magics, prefix="demo")
    assert (plain.name, plain.forms, plain.summary, plain.flags) == (
        "demo_plain",
        ("%demo_plain",),
        "A magic without arguments.",
        (),
    )
    assert full.forms == ("%%demo_full", "%demo_full")
    assert full.summary == "A magic with every kind of argument."
    assert full.doc.endswith("Its second paragraph is for the full help only.")
    assert "options:" not in full.doc and "::" not in full.doc
    assert full.flags == (
        Flag("[show|drop]", ""),
        Flag("[TARGET]", "What to drop."),
        Flag("-o/--out NAME", "Keep it in NAME."),
        Flag("--cache [5m|1h]", "Cache it."),
        Flag("--file PATH ...", "Files."),
        Flag("--all", "Everything."),
    )


def test_help_text_in_markdown_and_plain() -> None:
    text = HelpText(describe(Demo(shell=None).magics, prefix="demo"))
    markdown = text._repr_markdown_()
    assert "**`%%demo_full / %demo_full [show|drop] [TARGET] [-o/--out NAME] [--cache [5m|1h]]" in markdown
    assert "- `--file PATH ...`: Files." in markdown and "second paragraph" not in markdown
    assert "- `[show|drop]`" not in markdown  # an argument without help is in the usage line only
    plain = repr(text)
    assert plain.startswith("%demo_plain\n    A magic without arguments.")
    assert "      --all: Everything." in plain
    full = repr(HelpText(describe(Demo(shell=None).magics, prefix="demo")[1:], full=True))
    assert "Its second paragraph is for the full help only." in full


def test_every_claude_magic_and_every_flag_is_listed(ip: InteractiveShell) -> None:
    magics = loaded_magics(ip).magics
    listed = repr(HelpText(describe(magics)))
    names = {name for table in magics.values() for name in table if name.startswith("claude")}
    for name in names:
        assert re.search(rf"%{re.escape(name)}\b", listed), name
        parser = getattr(magics["line"].get(name) or magics["cell"][name], "parser", None)
        for flag in re.findall(r"--[\w-]+", parser.format_usage() if parser else ""):
            assert flag in listed, (name, flag)


def test_usage_wraps_between_whole_groups_and_paragraphs_keep_no_source_line_breaks(
    ip: InteractiveShell,
) -> None:
    (claude,) = [m for m in describe(loaded_magics(ip).magics) if m.name == "claude"]
    full = HelpText([claude], full=True)
    plain = repr(full).splitlines()
    assert all(len(line) <= TEXT_WIDTH for line in plain)
    usage = plain[: next(i for i, line in enumerate(plain) if line.startswith("    "))]
    pieces = [
        "%%claude / %claude",
        *(f"[{f.usage}]" if f.usage.startswith("-") else f.usage for f in claude.flags),
    ]
    assert len(usage) > 1
    for line in usage:  # each line is whole groups: `[--max-tokens MAX_TOKENS]` is never cut
        taken = [pieces.pop(0)]
        while pieces and len(" ".join([*taken, pieces[0]])) <= len(line.strip()):
            taken.append(pieces.pop(0))
        assert line.strip() == " ".join(taken)
    assert pieces == []
    markdown = full._repr_markdown_()
    assert [line for line in markdown.splitlines() if line.startswith("**`")] == [
        f"**`{line.strip()}`**" + ("  " if n < len(usage) - 1 else "") for n, line in enumerate(usage)
    ]
    doc = " ".join(claude.doc.split("\n\n")[1].split())  # the second paragraph, wrapped in the source
    assert doc.startswith("`{name}` or `{name.attr}`") and f"\n{doc}\n" in markdown  # one line in Markdown
    assert "    " + doc[:60] in repr(full)  # and in plain text, wrapped afresh
