"""Turn what a notebook cell says into content blocks, tool definitions and durations.

The magics stay thin by leaving the fiddly parts here: putting a cell's text
and its files (read, within bounds, by `files`) into blocks, refusing what the
API would reject *before* anything is sent, reading a tools cell as JSON or as
a Python expression, and parsing "1h30m".  Every failure is a `ValueError`
whose message names the file or the input and says what to do; the magics
show it as a one-line UsageError.
"""

from __future__ import annotations

import ast
import collections
import itertools
import json
import math
import re
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .files import CellFiles, Limits, file_block, image_block

__all__ = [
    "CellBlocks",
    "Naming",
    "cell_id",
    "clean_text",
    "context_content",
    "parse_duration",
    "parse_tools",
    "system_text",
]

#: A duration's parts: a number and a unit (`90s`, `90 minutes`, `1h30m`, `1 h 30 min`, `1d`).
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)\s*,?\s*")
_DURATION_UNITS: dict[str, float] = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1.0),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600.0),
    **dict.fromkeys(("d", "day", "days"), 86400.0),
}


def clean_text(cell: str | None) -> str:
    """Cell text without leading blank lines or trailing whitespace.

    A stray trailing newline changes the bytes of the prefix and so misses the
    cache on the next run; trimming it keeps re-runs byte-identical.
    """
    return (cell or "").strip("\n").rstrip()


def context_content(
    cell: str, files: Sequence[str] = (), images: Sequence[str] = (), limits: Limits | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """The blocks of one context cell (its text, then files, then images) and a source label.

    Every path is expanded and every size checked before the first byte is read, so a cell
    that names too much is refused whole, quickly, and adds nothing.
    """
    content: list[dict[str, Any]] = []
    text = clean_text(cell)
    if text:
        content.append({"type": "text", "text": text})
    reader = CellFiles(limits)
    file_paths = reader.expand(files)
    image_paths = reader.expand(images)
    reader.check(file_paths, image_paths)
    content.extend(file_block(p, reader) for p in file_paths)
    content.extend(image_block(p, reader) for p in image_paths)
    paths = [str(p) for p in (*file_paths, *image_paths)]
    source = None
    if paths:
        source = paths[0] if len(paths) == 1 else f"{paths[0]} and {len(paths) - 1} more"
    return content, source


def system_text(cell: str, files: Sequence[str] = (), limits: Limits | None = None) -> str:
    """A system prompt: the cell's text, then each file headed by its name (text files only)."""
    text = clean_text(cell)
    parts = [text] if text else []
    reader = CellFiles(limits)
    paths = reader.expand(files)
    reader.check(paths)
    for path in paths:
        block = file_block(path, reader)
        if block["type"] != "text":
            raise ValueError(f"{path}: a system prompt takes text only; send PDFs with %%claude_context.")
        parts.append(block["text"])
    return "\n\n".join(parts)


ToolSpec = Mapping[str, Any] | Callable[..., Any]


def _as_list(value: Any) -> list[ToolSpec]:
    items = list(value) if isinstance(value, list | tuple) else [value]
    if not items:
        raise ValueError("The cell lists no tools: give at least one tool definition or function.")
    for item in items:
        if not isinstance(item, Mapping) and not callable(item):
            raise ValueError(f"A tool is a dict or a function, not {type(item).__name__}.")
    return items


def parse_tools(cell: str, namespace: dict[str, Any]) -> list[ToolSpec]:
    """Tool specs from a cell: JSON (a list or one object), else a Python expression.

    JSON comes first because it is what people paste from the docs; an
    expression such as `[get_weather, search]` names functions in the notebook.
    """
    text = clean_text(cell)
    if not text:
        raise ValueError("The cell is empty: write JSON tool definitions or a list of functions.")
    try:
        return _checked(_as_list(json.loads(text)))
    except json.JSONDecodeError as error:
        json_error = f"{error.msg} at line {error.lineno}, column {error.colno}"
    try:
        tree = ast.parse(text, "<claude_tools>", mode="eval")
    except SyntaxError:
        raise ValueError(f"The cell is not valid JSON ({json_error}) nor a Python expression.") from None
    try:
        value = eval(compile(tree, "<claude_tools>", "eval"), namespace)  # the user's own cell
    except Exception as error:
        raise ValueError(
            f"The cell is not valid JSON ({json_error}) and evaluating it failed "
            f"({type(error).__name__}: {error})."
        ) from None
    return _checked(_as_list(value))


def _checked(specs: list[ToolSpec]) -> list[ToolSpec]:
    """Refuse here what the API would refuse at send time: a repeated name, a malformed field.

    The shapes are the emulator's copy of the API's own validation, so a cell that passes
    here is not answered with a 400 for its tools (and no failed call lands in the session).
    """
    from ..core.toolspec import tool_param
    from ..emulator.errors import ApiError
    from ..emulator.validate import validate_request

    try:
        params = [tool_param(s) for s in specs]
    except ValueError:  # the caller's own tool_param call reports it, in the same words
        return specs
    names = [p["name"] for p in params]
    counts = collections.Counter(names)  # one pass: 100,000 tools counted each in turn took minutes
    repeated = next((n for n in names if counts[n] > 1), None)
    if repeated is not None:
        raise ValueError(f"Tool name {repeated!r} is given twice in the cell; tool names must be unique.")
    probe = {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]}
    for param in params:
        try:
            validate_request({**probe, "tools": [param]}, known_model=lambda _: True)
        except ApiError as error:
            where, _, problem = error.message.removeprefix("tools.0.").partition(": ")
            raise ValueError(
                f"Tool {param['name']!r}: {where}: {problem}; the API refuses it as written."
            ) from None
    return specs


def parse_duration(text: str, limit: float | None = None) -> float:
    """Seconds from `90`, `90s`, `90m`, `90 minutes`, `1h30m`, `1.5h`, `2h` or `1d`; ValueError
    with an example otherwise.  `limit`: the most allowed (the emulator clock's longest move)."""
    value = text.strip().lower()
    try:
        seconds = float(value)
    except ValueError:
        seconds = _duration_parts(value, text)
    if seconds < 0 or not math.isfinite(seconds):
        raise ValueError(f"The duration {text!r} must be a finite number of seconds >= 0, e.g. 6m.")
    if limit is not None and seconds > limit:
        raise ValueError(f"The duration {text!r} is too long: at most {limit / 86400:,.0f} days at a time.")
    return seconds


def _duration_parts(value: str, text: str) -> float:
    """`1h30m` or `2 hours 5 minutes`: each unit once, the parts covering the whole text."""
    unreadable = f"Cannot read the duration {text!r}; write e.g. 6m, 90s, 1h30m, 300."
    seconds, seen, at = 0.0, set(), 0
    for match in _DURATION_PART.finditer(value):
        unit = _DURATION_UNITS.get(match.group(2))
        if match.start() != at or unit is None or unit in seen:
            raise ValueError(unreadable)
        seen.add(unit)
        seconds += float(match.group(1)) * unit
        at = match.end()
    if not seen or at != len(value):
        raise ValueError(unreadable)
    return seconds


def cell_id(shell: Any) -> tuple[str | None, Hashable]:
    """The front end's id of the running cell, if it sent one, and a token for this run.

    IPython >= 8 keeps the id on the running cell's `ExecutionInfo`; ipykernel
    also has it in the execute_request metadata (`cellId`).  Plain IPython has
    neither, and the magics fall back to names derived from the magic line.
    """
    result = getattr(getattr(shell, "displayhook", None), "exec_result", None)
    cell = getattr(getattr(result, "info", None), "cell_id", None)
    if not cell:
        get_parent = getattr(getattr(shell, "kernel", None), "get_parent", None)
        try:
            parent = get_parent() if callable(get_parent) else None
        except Exception:  # not inside an execute_request
            parent = None
        if isinstance(parent, dict):
            cell = (parent.get("metadata") or {}).get("cellId")
    return (str(cell) if cell else None), (getattr(shell, "execution_count", None), id(result))


@dataclass(frozen=True)
class Naming:
    """The name a magic's block gets, and the block this cell made last time in its place."""

    name: str
    replaces: str | None = None
    cell: str | None = None
    run: Hashable = None


@dataclass
class _Run:
    run: Hashable
    names: list[str] = field(default_factory=list)
    before: list[str] = field(default_factory=list)


def _candidates(stem: str) -> Iterator[str]:
    """`stem`, `stem-2`, `stem-3`...: the names a block may take, the plainest first."""
    yield stem
    for n in itertools.count(2):
        yield f"{stem}-{n}"


class CellBlocks:
    """Which blocks each notebook cell made, so that re-running a cell replaces them.

    A block's default name is read from the cell (`names.derived`); a name another block
    holds gets `-2`, `-3`...  A cell keeps the name it gave a block on its earlier runs, so a
    re-run lands on the same name and replaces the block where it stands.  If the cell now
    makes a differently named block (other first words, another file, `--name`), `replaces`
    names the old one, which the magic puts the new block in place of.

    Without a cell id (a plain IPython shell) a block of the same kind and name is taken to
    be this cell's own: it is replaced, as a re-run would.
    """

    def __init__(self) -> None:
        self._cells: dict[str, _Run] = {}

    def plan(
        self,
        cell: str | None,
        run: Hashable,
        kind: str,
        explicit: str | None,
        derived: str,
        taken: Mapping[str, str] | None = None,
    ) -> Naming:
        """The name for the next block of `kind`; `taken` maps the conversation's names to kinds."""
        taken = taken or {}
        entry = self._cells.get(cell) if cell is not None else None
        same_run = entry is not None and entry.run == run
        index = len(entry.names) if entry is not None and same_run else 0
        before = (entry.before if same_run else entry.names) if entry is not None else []
        old = before[index] if index < len(before) else None
        others = {n for c, e in self._cells.items() if c != cell for n in e.names}
        if same_run and entry is not None:
            others.update(entry.names)  # the blocks this run already made are not to be replaced

        def free(name: str) -> bool:
            if name not in taken or name == old:
                return name not in others
            return name not in others and taken[name] == kind and (cell is None or name not in before)

        family = re.compile(re.escape(derived) + r"(-\d+)?")
        if explicit:
            name = explicit
        elif old is not None and family.fullmatch(old) and old not in others:
            name = old  # the cell's earlier name stays, suffix and all
        else:
            name = next(c for c in _candidates(derived) if free(c))
        return Naming(name, old if old is not None and old != name else None, cell, run)

    def commit(self, naming: Naming) -> None:
        """Record a block the cell made (only once the session accepted it)."""
        if naming.cell is None:
            return
        entry = self._cells.get(naming.cell)
        if entry is None or entry.run != naming.run:
            entry = _Run(naming.run, before=entry.names if entry is not None else [])
            self._cells[naming.cell] = entry
        entry.names.append(naming.name)

    def clear(self) -> None:
        self._cells.clear()
