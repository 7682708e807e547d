"""A reply as the notebook shows it: Markdown whose amounts stay literal and whose markup is inert,
the thinking folded above the answer, and the turn's transcript of texts and tool calls.

Front ends typeset `$...$` as math and render a freshly run cell's Markdown as trusted HTML, and
a reply's text is the model's (or a tool's): these helpers keep it the text it is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..core.fmt import DOLLAR_HTML, plural, tokens

if TYPE_CHECKING:
    from ..core.record import CallRecord

__all__ = [
    "THINKING_LINES",
    "MarkdownText",
    "ReplyText",
    "inert",
    "literal_amounts",
    "thinking_part",
    "transcript",
]


class MarkdownText:
    """Markdown for rich front ends, the same text in a terminal.

    Not `IPython.display.Markdown`: that one reads its argument as a file name
    when a file of that name exists, and a reply may well say "README.md".
    """

    def __init__(self, text: str) -> None:
        self.text = text

    def _repr_markdown_(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text


_CODE = re.compile(r"(`{3,}.*?`{3,}|~{3,}.*?~{3,}|`[^`\n]*`)", re.S)
_AMOUNT = re.compile(r"(?<!\\)\$(?=\d)")
# The views' guarded dollar, as an entity: Markdown's math scan runs on the source, before HTML.
_LITERAL_DOLLAR = DOLLAR_HTML.replace("$", "&#36;")


def literal_amounts(markdown: str) -> str:
    """Each `$` before a digit (an amount) outside code, as a `$` no front end typesets: a reply
    saying "$5 and $10" is otherwise set as math between the two.  `$x^2$` stays math."""
    parts = _CODE.split(markdown)
    return "".join(p if i % 2 else _AMOUNT.sub(_LITERAL_DOLLAR, p) for i, p in enumerate(parts))


def inert(markdown: str) -> str:
    """`markdown` from the model (or a tool) with each `<` outside code as `&lt;`: a freshly run
    cell's Markdown is trusted, so HTML in a reply (a prompt injection's `<img onerror=...>` or
    `<script>`) would run in the notebook; it shows as the text it is."""
    parts = _CODE.split(markdown)
    return "".join(p if i % 2 else p.replace("<", "&lt;") for i, p in enumerate(parts))


class ReplyText(MarkdownText):
    """A reply's Markdown, its amounts kept literal (`literal_amounts`) and its markup inert (`inert`;
    `ours`: the text is a `transcript`, whose model parts are inert already and whose own markup,
    the folded thinking, must stay); as written in a terminal."""

    def __init__(self, text: str, ours: bool = False) -> None:
        super().__init__(text)
        self._ours = ours

    def _repr_markdown_(self) -> str:
        return literal_amounts(self.text if self._ours else inert(self.text))


THINKING_LINES = 8  # a plain-text reply shows this much of the thinking; the record keeps it all


def thinking_part(thought: str, estimate: int, rich: bool) -> str:
    """The thinking, folded above the answer: a closed `<details>` in Markdown, dimmed quoted lines
    (the first `THINKING_LINES`) in plain text, so the answer stays what catches the eye."""
    head = f"thinking · {tokens(estimate, True)} tokens (estimate)"
    if rich:
        quoted = "\n".join(f"> {line}" for line in thought.splitlines())
        return f"<details><summary>{head}</summary>\n\n{quoted}\n\n</details>"
    lines = thought.splitlines()
    more = len(lines) - THINKING_LINES
    shown = [f"  │ {line}" for line in lines[:THINKING_LINES]]
    if more > 0:
        shown.append(f"  │ … {plural(more, 'more line')} (the call record keeps them all)")
    return "\n".join([f"[{head}]", *shown])


def transcript(records: Sequence[CallRecord], tool_lines: Sequence[str], rich: bool | None = None) -> str:
    """The turn as the user should read it: the reply texts, tool calls and results in place.

    `rich`: Markdown (True) or plain text (False) for each call's thinking, folded above its
    answer (`thinking_part`); None leaves the thinking out."""
    from ..view.calls import thinking_tokens

    parts: list[str] = []
    lines = iter(tool_lines)
    for record in records:
        blocks = record.response.content if record.response is not None else ()
        thought = "\n\n".join(b.thinking for b in blocks if b.type == "thinking" and b.thinking)
        if thought and rich is not None:
            parts.append(thinking_part(inert(thought) if rich else thought, thinking_tokens(record), rich))
        for block in blocks:
            if block.type == "text" and block.text:
                parts.append(inert(block.text) if rich else block.text)
            elif block.type == "tool_use":
                line = next(lines, f"> tool `{block.name}` requested (not run: no `--run` tools)")
                parts.append(inert(line) if rich else line)
    return "\n\n".join(parts)
