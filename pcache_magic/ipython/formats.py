"""How a `%%claude` reply is shown (`--format markdown|text|code`) and kept (`--out NAME`).

`markdown` (the default) renders the reply; `text` shows it as written, so Markdown
syntax and dollar signs stay literal characters; `code` shows only the reply's code (its fenced
blocks, or the whole reply when it has none) as one highlighted block, ready to copy.  What
`--out` stores is the turn's reply text without the tool notes: what Claude wrote.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from IPython.display import display

from .output import Summary
from .reply_text import shown

if TYPE_CHECKING:
    from ..core.record import CallRecord

__all__ = ["FORMATS", "CodeText", "code_of", "reply_text", "show_code"]

FORMATS = ["markdown", "text", "code"]
_FENCE = re.compile(
    r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[\w+#.-]*)[^\n]*\n(?P<code>.*?)^[ \t]*(?P=fence)[ \t]*$",
    re.M | re.S,
)


def reply_text(records: Sequence[CallRecord]) -> str:
    """The text blocks of the turn's replies (every tool round's), joined by blank lines."""
    parts = [
        block.text
        for record in records
        for block in (record.response.content if record.response is not None else ())
        if block.type == "text" and block.text
    ]
    return "\n\n".join(parts)


def code_of(text: str) -> tuple[str, str]:
    """The language and the code of a reply: its fenced blocks joined, or all of it without any."""
    blocks = list(_FENCE.finditer(text))
    if not blocks:
        return "", text.strip("\n")
    return blocks[0]["lang"], "\n\n".join(b["code"].rstrip("\n") for b in blocks)


class CodeText:
    """Code in a fenced Markdown block for rich front ends, the bare code in a terminal; either
    `shown` (no key, controls as pictures)."""

    def __init__(self, code: str, language: str = "") -> None:
        self.code = code
        self.language = language

    def _repr_markdown_(self) -> str:
        code = shown(self.code)
        longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
        fence = "`" * max(3, longest + 1)
        return f"{fence}{shown(self.language)}\n{code}\n{fence}"

    def __repr__(self) -> str:
        return shown(self.code)


def show_code(records: Sequence[CallRecord], stop_reason: str | None) -> None:
    """`--format code`: the reply's code as one block, then one usage line per call."""
    language, code = code_of(reply_text(records))
    if code:
        display(CodeText(code, language))
    else:
        print(shown(f"(no text; stop reason: {stop_reason})"))
    for record in records:
        display(Summary(record))
