"""`%claude_help`: every magic with its flags, read from the magics themselves.

Nothing here is a hand-kept list: the magics come from the `Magics` instance's own table, in
the order they are defined, and each flag from its `magic_arguments` parser, so a new magic
or flag shows up without touching this file.
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from IPython.core.magic_arguments import argument

from ..core.fmt import TEXT_WIDTH

__all__ = ["Flag", "HelpText", "MagicHelp", "describe"]


@dataclass(frozen=True)
class Flag:
    """One argument: how it is written (`--cache [5m|1h]`) and what it does."""

    usage: str
    help: str


@dataclass(frozen=True)
class MagicHelp:
    """One magic: its forms (`%%claude_context`, `%claude_context`), summary, flags and docstring."""

    name: str
    forms: tuple[str, ...]
    summary: str
    flags: tuple[Flag, ...]
    doc: str


def _flag(action: argparse.Action) -> Flag:
    metavar = action.metavar
    if metavar is None and action.choices is not None:
        metavar = "|".join(str(c) for c in action.choices)
    takes = str(metavar or action.dest.upper())
    if not action.option_strings:  # a positional argument
        many = action.nargs in ("*", "+", argparse.REMAINDER)
        usage = f"{takes} ..." if many else takes
        optional = action.nargs in ("?", "*", argparse.REMAINDER)
        return Flag(f"[{usage}]" if optional else usage, _one_line(action.help))
    names = "/".join(action.option_strings)
    if action.nargs == 0:
        usage = names
    elif action.nargs == "?":
        usage = f"{names} [{takes}]"
    elif action.nargs in ("+", "*"):
        usage = f"{names} {takes} ..."
    else:
        usage = f"{names} {takes}"
    return Flag(usage, _one_line(action.help))


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def _flags(fn: Callable[..., Any]) -> tuple[Flag, ...]:
    """The magic's arguments, added again to a scratch parser in source order.

    `add_argument` returns each `Action` (argparse's public way to see one), so nothing reads
    the magic's own parser's private lists.
    """
    scratch = argparse.ArgumentParser(add_help=False)
    decorators = reversed(getattr(fn, "decorators", []))
    return tuple(
        _flag(scratch.add_argument(*d.args, **d.kwds)) for d in decorators if isinstance(d, argument)
    )


def _doc(fn: Callable[..., Any]) -> str:
    """The docstring as the magic's author wrote it.

    `magic_arguments` replaces a magic's `__doc__` with its parser's help: a `::` usage block,
    the original docstring (kept as written), then the argument sections.  The middle is
    what is wanted here; the arguments are listed from the decorators instead.
    """
    paragraphs = (getattr(fn, "__doc__", None) or "").strip().split("\n\n")
    if paragraphs and paragraphs[0].strip() == "::":
        paragraphs = paragraphs[2:]  # "::" and the indented usage line(s)
    kept = []
    for paragraph in paragraphs:
        if paragraph.startswith(("options:", "optional arguments:", "positional arguments:")):
            break
        kept.append(paragraph)
    return "\n\n".join(kept).strip()


def describe(
    table: Mapping[str, Mapping[str, Callable[..., Any]]], prefix: str = "claude"
) -> list[MagicHelp]:
    """Every magic whose name starts with `prefix`, in the order the class defines them."""
    found: dict[str, tuple[Callable[..., Any], list[str]]] = {}
    for kind in ("cell", "line"):
        for name, fn in table.get(kind, {}).items():
            if name.startswith(prefix):
                found.setdefault(name, (fn, []))[1].append("%%" + name if kind == "cell" else "%" + name)

    def defined_at(item: tuple[str, tuple[Callable[..., Any], list[str]]]) -> int:
        code = getattr(getattr(item[1][0], "__func__", item[1][0]), "__code__", None)
        return code.co_firstlineno if code is not None else 0

    result = []
    for name, (fn, forms) in sorted(found.items(), key=defined_at):
        doc = _doc(fn)
        summary = " ".join(doc.split("\n\n", 1)[0].split())
        result.append(MagicHelp(name, tuple(forms), summary, _flags(fn), doc))
    return result


#: The indent of a usage line's continuation: less than the description's, so the two read apart.
_MORE = "  "


def _wrap(text: str, first: str, more: str) -> list[str]:
    """`text` in lines of `TEXT_WIDTH`, broken between words only (a flag or a number stays whole)."""
    return textwrap.wrap(
        text,
        TEXT_WIDTH,
        initial_indent=first,
        subsequent_indent=more,
        break_long_words=False,
        break_on_hyphens=False,
    )


class HelpText:
    """The listing as Markdown for rich front ends, plain text in a terminal."""

    def __init__(self, magics: list[MagicHelp], full: bool = False) -> None:
        self.magics = magics
        self.full = full

    def _usage(self, magic: MagicHelp) -> list[str]:
        """The usage, wrapped to `TEXT_WIDTH` between whole groups (`[--max-tokens MAX_TOKENS]`):
        a front end that breaks a long line would break it inside a flag."""
        groups = [f"[{f.usage}]" if f.usage.startswith("-") else f.usage for f in magic.flags]
        lines = [" / ".join(magic.forms)]
        for group in groups:
            if len(lines[-1]) + 1 + len(group) > TEXT_WIDTH:
                lines.append(_MORE + group)
            else:
                lines[-1] += " " + group
        return lines

    def _paragraphs(self, magic: MagicHelp) -> list[str]:
        """The docstring's paragraphs, each one line: its line breaks are the source's, not the reader's."""
        text = magic.doc if self.full else magic.summary
        return [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]

    def _repr_markdown_(self) -> str:
        parts = []
        for magic in self.magics:
            usage = "  \n".join(f"**`{line.strip()}`**" for line in self._usage(magic))
            lines = [usage, "", "\n\n".join(self._paragraphs(magic))]
            flags = [f"- `{f.usage}`: {f.help}" for f in magic.flags if f.help]
            lines += ["", *flags] if flags else []
            parts.append("\n".join(lines))
        return "\n\n".join(parts)

    def __repr__(self) -> str:
        parts = []
        for magic in self.magics:
            lines = self._usage(magic)
            for n, paragraph in enumerate(self._paragraphs(magic)):
                lines += [""] * bool(n) + _wrap(paragraph, "    ", "    ")
            for f in magic.flags:
                lines += _wrap(f"{f.usage}: {f.help}", "      ", "        ") if f.help else []
            parts.append("\n".join(lines))
        return "\n\n".join(parts)
