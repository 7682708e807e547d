"""IPython's `magic_arguments`, with every flag written out in full and room for a comment.

argparse takes an unambiguous prefix for a flag, so `%%claude --cach last` would quietly
mean `--cache last`; the magics refuse it, and the error names the flag meant.  IPython hands
a line magic the whole line, so `%claude_panel  # show it` would pass `# show it` along; a
`#` that starts a word (outside quotes) ends the arguments, as in a shell, and a word in quotes
(`--name "my notes"`) loses them, as in a shell (backslashes stay: `C:\\data\\a.md`).  An unknown flag's
error, and a positional argument's invalid choice, say where the flags are listed
(`%claude_help NAME`, and IPython's `%NAME?`); a command word written as a flag (`--advance`)
gets the line as it should read.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from typing import Any, cast

from IPython.core import magic_arguments as ipython_arguments
from IPython.core.error import UsageError
from IPython.utils.process import arg_split

__all__ = ["magic_arguments", "no_arguments", "parse_argstring", "without_comment"]


def magic_arguments(name: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """IPython's `magic_arguments`, with every flag spelled out in full.

    argparse takes an unambiguous prefix for a flag, so `--cach last` would quietly be `--cache
    last`; here it is refused.  IPython's `kwds(allow_abbrev=False)` cannot say so (9.x's
    `MagicArgumentParser.__init__` takes no `allow_abbrev`), and argparse reads the attribute
    when it parses, so it is set on the parser once built.
    """

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        func = ipython_arguments.magic_arguments(name)(func)
        cast(Any, func).parser.allow_abbrev = False
        return func

    return decorate


def without_comment(line: str) -> str:
    """`line` up to a `#` that starts a word outside quotes (`a#b` and `"# x"` are kept)."""
    quote = ""
    for i, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line


def no_arguments(magic: str, line: str) -> None:
    """UsageError unless `line` is empty but for a comment."""
    if without_comment(line).strip():
        raise UsageError(f"%{magic} takes no arguments.")


def parse_argstring(magic: Callable[..., Any], line: str, *, words: Sequence[str] = ()) -> Any:
    """Parse a magic's line; a flag given by the start of its name gets the full name in the error,
    an unknown one (or a positional argument's invalid choice) where the flags are listed, and one
    of `words` (the magic's command words) written as a flag the line as it should read."""
    try:
        words_given = [_unquoted(word) for word in arg_split(_spaced(without_comment(line)))]
    except ValueError:  # the split's own words: "No closing quotation"
        raise UsageError('A quote on the line is not closed; close it (--name "my notes").') from None
    try:
        return cast(Any, magic).parser.parse_args(words_given)
    except UsageError as error:
        parser = cast(Any, magic).parser
        name, hint = _help_hint(magic, parser)
        message = _as_word(parser, without_comment(line), words, name) if words else None
        raise UsageError(message or _spell_out(parser, str(error), hint)) from None


def _unquoted(word: str) -> str:
    """`word` without one pair of quotes around it: IPython splits a magic's line keeping them (its
    split is not a POSIX shell's, so a Windows path keeps its backslashes), and `--name "my notes"`
    would otherwise name a block `"my notes"`, quotes and all."""
    if word.startswith("--") and "=" in word:  # `--name="-x"`, kept whole by `_spaced`
        flag, value = word.split("=", 1)
        return f"{flag}={_unquoted(value)}"
    if len(word) >= 2 and word[0] == word[-1] and word[0] in "'\"":
        return word[1:-1]
    return word


def _spaced(line: str) -> str:
    """`line` with `--flag="a b"` written `--flag "a b"`: IPython's split takes a quote inside a word
    for a letter, so the value would be cut at its space (and keep its quotes)."""
    out, quote, flag = [], "", line.startswith("--")  # in a word that began `--`, no `=` in it yet
    for i, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char.isspace():
            flag = line.startswith("--", i + 1)
        elif char == "=" and flag:
            flag = False
            if line[i + 1 : i + 2] in ("'", '"') and not line.startswith("-", i + 2):  # `--name="-x"`: whole
                char = " "
        out.append(char)
    return "".join(out)


def _help_hint(magic: Callable[..., Any], parser: Any) -> tuple[str, str]:
    """The magic's name, and `(flags: %claude_help claude_tools)`: what lists its flags, as a
    command to run.

    `%claude_help` when the same magics have it (a trailing `?` read as a question); else IPython's
    `?`, which finds a cell-only magic under `%%` alone, so the form comes from the magics' tables.
    """
    tables = getattr(getattr(magic, "__self__", None), "magics", None) or {}
    line, cell = tables.get("line", {}), tables.get("cell", {})
    name = next((n for n, m in [*line.items(), *cell.items()] if m == magic), str(parser.prog).lstrip("%"))
    ask = f"%{name}?" if name in line or not cell else f"%%{name}?"
    hint = (
        f"(flags: %claude_help {name})"
        if "claude_help" in line and name != "claude_help"
        else f"(flags: {ask})"
    )
    return name, hint


def _as_word(parser: Any, line: str, words: Sequence[str], name: str) -> str | None:
    """`--advance` where `advance` is one of `words` (and no flag): the line as it should read
    (`--advance is not a flag: write %claude_clock advance 5m`); None when no word is written so."""
    flags = set(re.findall(r"--?[\w-]+", parser.format_usage()))
    for written in line.split():
        flag, _, value = written.partition("=")
        word = flag.lstrip("-")
        if flag.startswith("-") and word in words and flag not in flags:
            fixed = " ".join(f"{word} {value}".strip() if part == written else part for part in line.split())
            return f"{flag} is not a flag: write %{name} {fixed}"
    return None


def _spell_out(parser: Any, message: str, hint: str) -> str:
    """`unrecognized arguments: --cach last` -> the same, plus `(... write --cache in full)`; any
    other unrecognized argument, or an invalid choice for a positional argument (a command word,
    whose forms the help lists), -> the same, plus `hint` (where the flags are listed)."""
    if re.match(r"argument [^-][^:]*: invalid choice:", message):
        return f"{message} {hint}"
    words = message.removeprefix("unrecognized arguments:")
    if words == message:
        return message
    flags = list(dict.fromkeys(re.findall(r"--[\w-]+", parser.format_usage())))  # the usage names every flag
    starts = [word.split("=", 1)[0] for word in words.split() if word.startswith("--") and len(word) > 2]
    full = [" or ".join(matches) for s in starts if (matches := [f for f in flags if f.startswith(s)])]
    if full:
        return f"{message} (flags are not abbreviated: write {', '.join(full)} in full)"
    near = [m[0] for s in starts if (m := _near(s, flags))]
    return f"{message} (did you mean {', '.join(near)}? {hint[1:]}" if near else f"{message} {hint}"


def _near(word: str, flags: list[str]) -> list[str]:
    """The flag closest to a misspelt `word`, unless it says the opposite (`--stream`, `--no-stream`)."""
    return [
        f for f in difflib.get_close_matches(word, flags, n=1, cutoff=0.7) if _negated(f) == _negated(word)
    ]


def _negated(flag: str) -> bool:
    """Whether a flag's name says "not" (`--no-stream`, `--nocache`, `--uncached`, `--cache-none`)."""
    return re.match(r"(no|un|non|not|dont|disable|without)", flag.lstrip("-")) is not None or flag.endswith(
        ("-none", "-off")
    )
