"""Readable default names for the blocks the magics make: the file, the first words, the tools.

A name is typed back (`%claude_session drop NAME`), so it is one word that needs no quotes:
lower-case words joined by `-` (`you-are-a-careful-reviewer`), a file's own name as written
(`paper.md`, `*.py`), or the tool names joined by `+` (`lookup_section+owners`).  The kind is
not part of the name: every view shows it beside the name.  A name another block holds gets
`-2`, `-3`... (see `cells.CellBlocks`, which also keeps a cell's name across its re-runs).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from IPython.core.error import UsageError

from ..core.fmt import visible
from .output import one_line

__all__ = ["MAX_WORDS", "check_given", "derived", "file_label", "slug", "tools_label", "typed_back"]

#: Words of a cell's text a name keeps: enough to tell cells apart, short enough to type.
MAX_WORDS = 5
_MAX_CHARS = 32
_WORD = re.compile(r"[^\W_]+(?:_[^\W_]+)*")  # letters and digits; `snake_case` stays one word
_UNSAFE = re.compile(r"[^\w.*+-]+")
#: Block names a "no block named" error lists before "and N more".
_LISTED = 20


def slug(text: str) -> str:
    """The first words of `text`'s first line that has any, lower-case, joined by `-`.

    Up to `MAX_WORDS` words and about 32 characters, cut at a word: `You are a careful
    reviewer of the code below` -> `you-are-a-careful-reviewer`; "" when there are no words.
    Only the first line counts, so editing the rest of a cell keeps its name.
    """
    line = next((line for line in text[:4_000].splitlines() if _WORD.search(line)), "")
    words: list[str] = []
    for match in _WORD.finditer(line):
        word = match.group().lower()
        if words and len("-".join([*words, word])) > _MAX_CHARS:
            break
        words.append(word[:_MAX_CHARS])
        if len(words) == MAX_WORDS:
            break
    return "-".join(words)


def file_label(path: str) -> str:
    """A file argument's own name as written (`data/paper.md` -> `paper.md`, `src/*.py` -> `*.py`).

    Characters a magic line would need quotes for become `-`; a leading `-` goes, so the
    name is never read as a flag.
    """
    last = path.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
    return _UNSAFE.sub("-", last).strip("-")[:48]


def tools_label(names: Sequence[str]) -> str:
    """`lookup_section+owners`; past three tools, the first two and how many more."""
    if len(names) <= 3:
        return "+".join(names)
    return f"{names[0]}+{names[1]}+{len(names) - 2}-more"


def derived(kind: str, text: str = "", files: Sequence[str] = (), tools: Sequence[str] = ()) -> str:
    """The default name of a block of `kind` (falls back to the kind itself).

    A system block is named by its text (the persona reads best), then its first file; a
    context block by its first file (the bulk of it), then its text; a tools block by its tools.
    """
    if kind == "tools":
        name = tools_label(tools)
    elif kind == "system":
        name = slug(text) or (file_label(files[0]) if files else "")
    else:
        name = (file_label(files[0]) if files else "") or slug(text)
    return name or kind


def check_given(name: str | None) -> None:
    """UsageError for a `--name` given empty or blank (`--name ""`): no block could be typed back."""
    if name is not None and not name.strip():
        raise UsageError("--name is empty: give the block a name, or leave --name out for one made for you.")


def typed_back(typed: str, names: Sequence[str]) -> str:
    """The one of `names` that `typed` means: the name, the name as the views show it
    (`notes\\u202etxt`), or one an older parser kept in quotes (`"my notes"`); UsageError if none
    means it, or several do (two names that show alike are never guessed between)."""
    found = [n for n in names if typed in (n, visible(n))] or [n for n in names if typed == _unquoted(n)]
    if len(found) == 1:
        return found[0]
    if found:
        alike = ", ".join(repr(n)[:60] for n in found)
        raise UsageError(
            f"{len(found)} blocks show as {typed!r} ({alike}); drop the one you mean from Python: "
            "current_session().drop(NAME)."
        )
    shown = [one_line(n, 40) for n in names[:_LISTED]]
    if len(names) > _LISTED:
        shown.append(f"and {len(names) - _LISTED} more (%claude_session show)")
    listed = f"the blocks are: {', '.join(shown)}" if shown else "there are no blocks yet"
    raise UsageError(f"No block named {typed!r}; {listed}.")


def _unquoted(name: str) -> str | None:
    """`name` without the quotes around it, as an older parser kept them (`"my notes"`)."""
    return name[1:-1] if len(name) >= 2 and name[0] == name[-1] and name[0] in "'\"" else None
