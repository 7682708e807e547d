"""`%claude_help`: every magic with its flags, read from the magics themselves.

Nothing here is a hand-kept list: the magics come from the `Magics` instance's own table, in
the order they are defined, and each flag from its `magic_arguments` parser, so a new magic
or flag shows up without touching this file.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from IPython.core.magic_arguments import argument

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


class HelpText:
    """The listing as Markdown for rich front ends, plain text in a terminal."""

    def __init__(self, magics: list[MagicHelp], full: bool = False) -> None:
        self.magics = magics
        self.full = full

    def _usage(self, magic: MagicHelp) -> str:
        flags = " ".join(f"[{f.usage}]" if f.usage.startswith("-") else f.usage for f in magic.flags)
        return " ".join([" / ".join(magic.forms), flags]).strip()

    def _text(self, magic: MagicHelp) -> str:
        return magic.doc if self.full else magic.summary

    def _repr_markdown_(self) -> str:
        parts = []
        for magic in self.magics:
            lines = [f"**`{self._usage(magic)}`**", "", self._text(magic).replace("\n", "  \n")]
            flags = [f"- `{f.usage}`: {f.help}" for f in magic.flags if f.help]
            lines += ["", *flags] if flags else []
            parts.append("\n".join(lines))
        return "\n\n".join(parts)

    def __repr__(self) -> str:
        parts = []
        for magic in self.magics:
            lines = [self._usage(magic), *("    " + line for line in self._text(magic).splitlines())]
            lines += [f"      {f.usage}: {f.help}" for f in magic.flags if f.help]
            parts.append("\n".join(lines))
        return "\n\n".join(parts)
