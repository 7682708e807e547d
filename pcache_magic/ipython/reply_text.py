"""A reply as the notebook shows it: Markdown whose amounts stay literal and whose markup is inert,
the thinking folded above the answer, and the turn's transcript of texts and tool calls.

Front ends typeset `$...$` as math and render a freshly run cell's Markdown as trusted HTML, and
a reply's text is the model's (or a tool's): these helpers keep it the text it is.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..core.env import KEY_SHAPE, MIN_KEY, getenv, without_api_key
from ..core.fmt import DOLLAR_HTML, plural, tokens, visible_text

if TYPE_CHECKING:
    from ..core.record import CallRecord

__all__ = [
    "THINKING_LINES",
    "MarkdownText",
    "ReplyText",
    "held_back",
    "inert",
    "literal_amounts",
    "shown",
    "thinking_part",
    "transcript",
]


#: What can sit inside a key and leave it reading whole: any character not ASCII (a key is ASCII,
#: and Unicode has many that render as nothing: soft hyphens, joiners, fillers, variation selectors,
#: tags), and the Markdown marks of emphasis, code, escapes and links (`sk-ant-*a*pi03...`,
#: `sk-ant-[api03...]()` render as the key).  Removed only to look for a key, and from a text that
#: holds one.
_HIDERS = re.compile(r"[^\x00-\x7f]|[*_~`\\\[\]()]")


def shown(text: str, *, pieces: bool = False) -> str:
    """A server's text as a view shows it: the API key blotted out (`env.without_api_key`: the
    environment's, and anything shaped like one; a server that knows the key may echo it in a reply
    or a tool's name), controls as pictures (`fmt.visible_text`: ESC would drive a terminal, RLO
    turn the text after it; a language's marks and an emoji's tags stay).  `pieces`: also words
    holding a piece of the key (a short text).  A key broken up by what renders as nothing (a soft
    hyphen, a zero width space, emphasis inside the word) is blotted too, from the text without them."""
    unhidden = _hidden_keys_blotted(text) if _HIDERS.search(text) else text  # before: it splits keys
    return visible_text(without_api_key(unhidden, pieces=pieces))


def _hidden_keys_blotted(text: str) -> str:
    """`text` with each key that shows once `_HIDERS` are gone blotted where it stands: only those
    characters of `text` go, the rest of it is kept as written."""
    bare = _HIDERS.sub("", text)
    key = _HIDERS.sub("", (getenv("ANTHROPIC_API_KEY") or "").strip())  # as bare as the text
    spans = [m.span() for m in KEY_SHAPE.finditer(bare)]
    if len(key) >= MIN_KEY:
        spans += [(m.start(), m.end()) for m in re.finditer(re.escape(key), bare)]
    if not spans:
        return text
    merged: list[list[int]] = []
    for start, end in sorted(spans):  # the key and its shape may match the same place
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    kept = [i for i, c in enumerate(text) if not _HIDERS.match(c)]  # bare[j] is text[kept[j]]
    for start, end in reversed(merged):  # from the end, so earlier places stay put
        text = text[: kept[start]] + "[API key]" + text[kept[end - 1] + 1 :]
    return text


#: The last run of a text without white space: a word still coming.
_LAST_WORD = re.compile(r"\S+\Z")


def held_back(text: str) -> int:
    """Where the last word of `text` begins (`len(text)` after white space): a reply printed as it
    streams holds that word back until the next white space (or the end) says it is whole, so a key
    split between two pieces, plainly or by characters that render as nothing, is printed whole
    and blotted, never in two halves no blotting finds."""
    found = _LAST_WORD.search(text)
    return found.start() if found is not None else len(text)


class MarkdownText:
    """Markdown for rich front ends, the same text in a terminal; either `shown`, never the key.

    Not `IPython.display.Markdown`: that one reads its argument as a file name
    when a file of that name exists, and a reply may well say "README.md".
    """

    def __init__(self, text: str) -> None:
        self.text = text

    def _repr_markdown_(self) -> str:
        return shown(self.text)

    def __repr__(self) -> str:
        return shown(self.text)


_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_TICKS = re.compile(r"`+")
_AMOUNT = re.compile(r"(?<!\\)\$(?=\d)")
# The views' guarded dollar, as an entity: Markdown's math scan runs on the source, before HTML.
_LITERAL_DOLLAR = DOLLAR_HTML.replace("$", "&#36;")


def _segments(markdown: str) -> list[tuple[bool, str]]:
    """`markdown` cut into (is code, text): fenced blocks as CommonMark finds them (one left open
    runs to the end), then code spans in the prose between.  What is taken for code must be code to
    a renderer too, or a `<` in it would run; the other way round (an indented block, a fence in a
    quote) only shows `&lt;` where `<` was written."""
    out: list[tuple[bool, str]] = []
    lines = markdown.splitlines(keepends=True)
    prose_from, i = 0, 0
    while i < len(lines):
        opened = _FENCE.fullmatch(lines[i].rstrip("\r\n"))
        if opened is None or (opened[1][0] == "`" and "`" in opened[2]):  # no fence: an info with `
            i += 1
            continue
        run, j = opened[1], i + 1
        while j < len(lines):
            closed = _FENCE.fullmatch(lines[j].rstrip("\r\n"))
            if closed and closed[1][0] == run[0] and len(closed[1]) >= len(run) and not closed[2].strip():
                break
            j += 1
        out += _spans("".join(lines[prose_from:i]))
        out.append((True, "".join(lines[i : j + 1])))
        prose_from = i = j + 1
    return out + _spans("".join(lines[prose_from:]))


def _spans(text: str) -> list[tuple[bool, str]]:
    """`text` (no fences) cut at its code spans: a backtick run not escaped by a backslash opens
    one, closed by the next run of the same length; unmatched, its backticks are text."""
    runs = [(m.start(), m.end()) for m in _TICKS.finditer(text)]
    by_length: dict[int, list[int]] = {}
    for start, end in runs:
        by_length.setdefault(end - start, []).append(start)
    out: list[tuple[bool, str]] = []
    done = 0  # text before this is already cut
    for start, end in runs:
        if start < done:
            continue
        slashes = 0
        while start - slashes - 1 >= done and text[start - slashes - 1] == "\\":
            slashes += 1
        if slashes % 2:  # `\``: the first backtick is text; the rest of the run may open a span
            start += 1
            if start == end:
                continue
        length = end - start
        starts = by_length.get(length, [])  # runs are whole and never overlap: the next one after
        k = bisect.bisect_right(starts, start)  # `start` begins past this run
        if k == len(starts):
            continue
        close = starts[k] + length
        out += [(False, text[done:start]), (True, text[start:close])]
        done = close
    return [*out, (False, text[done:])]


def literal_amounts(markdown: str, *, markup: bool = True) -> str:
    """Each `$` before a digit (an amount) outside code, as a `$` no front end typesets: a reply
    saying "$5 and $10" is otherwise set as math between the two.  `$x^2$` stays math.  With
    `markup=False`, the markup outside code is made inert too (`inert`), in the same pass."""
    return "".join(
        part if code else _AMOUNT.sub(_LITERAL_DOLLAR, part if markup else _inert(part))
        for code, part in _segments(markdown)
    )


def inert(markdown: str) -> str:
    """`markdown` from the model (or a tool) with each `<` and `&` outside code as an entity, each image
    as its text: a freshly run cell's Markdown is trusted, so HTML in a reply (a prompt injection's
    `<img onerror=...>` or `<script>`) would run in the notebook, and an image would be fetched."""
    return "".join(part if code else _inert(part) for code, part in _segments(markdown))


def _inert(prose: str) -> str:
    # `&` too: a character reference (`&#115;&#107;...`) would render what the text does not say
    return prose.replace("&", "&amp;").replace("<", "&lt;").replace("![", "!\\[")


class ReplyText(MarkdownText):
    """A reply's Markdown, its amounts kept literal (`literal_amounts`) and its markup inert (`inert`;
    `ours`: the text is a `transcript`, whose model parts are inert already and whose own markup,
    the folded thinking, must stay); as written in a terminal (`shown` in both)."""

    def __init__(self, text: str, ours: bool = False) -> None:
        super().__init__(text)
        self._ours = ours

    def _repr_markdown_(self) -> str:
        return literal_amounts(shown(self.text), markup=self._ours)  # one pass over the text, not two


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
    kept = [f"  │ {line}" for line in lines[:THINKING_LINES]]
    if more > 0:
        kept.append(f"  │ … {plural(more, 'more line')} (the call record keeps them all)")
    return "\n".join([f"[{head}]", *kept])


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
