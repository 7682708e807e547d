"""Plain helpers shared by several test files; the shared fixtures are in conftest.py.

tests/ has no `__init__.py`, so pytest (in its default "prepend" import mode) puts this folder
on `sys.path` and the test files import these as `from _helpers import ...`.
"""

from __future__ import annotations

import re
import selectors
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from IPython.core.interactiveshell import InteractiveShell

from pcache_magic.emulator import Emulator
from pcache_magic.ipython.magics import ClaudeMagics

#: The model of the shared `session` fixture: its cache minimum is 1,024 tokens.
MODEL = "claude-sonnet-4-5"


# -- request bodies ------------------------------------------------------------------------------
def sample_request(**extra: Any) -> dict[str, Any]:
    """A small Messages request body: one tool, one system block, three turns (no markers)."""
    body: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 100,
        "tools": [{"name": "lookup", "input_schema": {"type": "object"}}],
        "system": [{"type": "text", "text": "You are terse."}],
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": "there"}],
            },
            {"role": "assistant", "content": "Hi"},
            {"role": "user", "content": "Bye"},
        ],
    }
    body.update(extra)
    return body


# -- the emulator --------------------------------------------------------------------------------
def deep_dict(levels: int) -> dict[str, Any]:
    """`{"a": {"a": ...}}`, `levels` deep, built without recursion (deeper than Python recurses)."""
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(levels):
        node = node.setdefault("a", {})
    return deep


def deep_list(levels: int) -> list[Any]:
    """`[[[...]]]`, `levels` deep, built without recursion."""
    deep: list[Any] = ["x"]
    for _ in range(levels):
        deep = [deep]
    return deep


class Counter:
    """How many requests reached the emulator: its request-id counter, read without a request."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.peeks = 0

    def __call__(self) -> int:
        self.peeks += 1
        return int(self.emu.next_request_id().rpartition("_")[2]) - self.peeks


# -- the loaded extension --------------------------------------------------------------------------
def loaded_magics(ip: InteractiveShell) -> ClaudeMagics:
    """The `ClaudeMagics` that `%load_ext pcache_magic` registered on the shell."""
    found = ip.magics_manager.registry["ClaudeMagics"]
    assert isinstance(found, ClaudeMagics)
    return found


# -- rendered HTML ---------------------------------------------------------------------------------
# Renderer output is well-formed XML by design, so it is parsed with the standard library and
# queried by the same `pcache-` classes and `data-*` attributes the browser test uses.
def parse(html: str) -> ET.Element:
    return ET.fromstring(f"<root>{html}</root>")


def select(root: ET.Element, tag: str, cls: str, **attrs: str) -> list[ET.Element]:
    """Elements `tag.cls[data-key=value]`: keyword `data_block="x"` means `data-block="x"`."""
    wanted = {k.replace("_", "-"): v for k, v in attrs.items()}
    return [
        el
        for el in root.iter(tag)
        if cls in (el.get("class") or "").split() and all(el.get(k) == v for k, v in wanted.items())
    ]


def cell(row: ET.Element, cls: str) -> ET.Element:
    """The one `td` of class `cls` in `row`."""
    (found,) = select(row, "td", cls)
    return found


def text(el: ET.Element) -> str:
    return "".join(el.itertext())


# What JupyterLab 4's and Notebook 7's sanitizer (`@jupyterlab/apputils` `Sanitizer`, applied to
# an untrusted notebook's stored HTML) keeps, as far as these outputs use it: a subset of its
# allowed tags, attributes (no `data-*`, no `aria-*`) and `style` properties; a style value must be
# plain (its regexes allow no `var()` or `calc()`).  `<style>` goes with its rules, SVG with its shapes.
_SAFE_TAGS = frozenset(
    [
        "a",
        "abbr",
        "b",
        "br",
        "caption",
        "code",
        "col",
        "colgroup",
        "details",
        "div",
        "em",
        "i",
        "li",
        "p",
        "small",
        "span",
        "strong",
        "summary",
        "table",
        "tbody",
        "td",
        "th",
        "thead",
        "tr",
        "ul",
    ]
)
_SAFE_ATTRS = frozenset({"class", "title", "style", "colspan", "open", "width", "align", "id", "lang"})
_SAFE_STYLES = frozenset(
    [
        "background",
        "background-color",
        "color",
        "display",
        "font-family",
        "font-size",
        "font-style",
        "height",
        "margin",
        "max-width",
        "min-width",
        "opacity",
        "text-align",
        "white-space",
        "width",
    ]
)


def styles(el: ET.Element) -> dict[str, str]:
    """An element's inline `style` declarations, by property."""
    pairs = (d.partition(":") for d in (el.get("style") or "").split(";") if d.strip())
    return {k.strip(): v.strip() for k, _, v in pairs}


def sanitized(html: str) -> ET.Element:
    """`html` as an untrusted notebook shows it (see `_SAFE_TAGS`): a tag not allowed is unwrapped
    (its text kept), `<style>` dropped whole, attributes and style declarations not allowed dropped."""

    def add_text(out: ET.Element, words: str | None) -> None:
        if words:
            if len(out):
                out[-1].tail = (out[-1].tail or "") + words
            else:
                out.text = (out.text or "") + words

    def clean(el: ET.Element, out: ET.Element) -> None:
        for child in el:
            if child.tag in ("style", "script"):
                pass
            elif child.tag in _SAFE_TAGS:
                attrs = {k: v for k, v in child.attrib.items() if k in _SAFE_ATTRS}
                plain = {k: v for k, v in styles(child).items() if "var(" not in v and "calc(" not in v}
                kept = [f"{k}:{v}" for k, v in plain.items() if k in _SAFE_STYLES]
                attrs.pop("style", None)
                if kept:
                    attrs["style"] = ";".join(kept)
                new = ET.SubElement(out, child.tag, attrs)
                new.text = child.text
                clean(child, new)
            else:
                add_text(out, child.text)
                clean(child, out)
            add_text(out, child.tail)

    root = ET.Element("root")
    parsed = parse(html)
    root.text = parsed.text
    clean(parsed, root)
    return root


def unguarded_dollars(html: str) -> list[str]:
    """The texts of `html` where a `$` stands outside the one element MathJax skips
    (`core.fmt.DOLLAR_HTML`): what JupyterLab 4 or Notebook 7 could typeset as LaTeX."""
    found = []
    for el in parse(html).iter():
        guarded = "pcache-dollar" in (el.get("class") or "").split()
        if guarded and not {"mathjax_ignore", "tex2jax_ignore"} <= set((el.get("class") or "").split()):
            found.append(f"<{el.tag}> without the ignore classes")
        if el.text and "$" in el.text and not (guarded and el.text == "$") and el.tag != "style":
            found.append(el.text)
        if el.tail and "$" in el.tail:
            found.append(el.tail)
    return found


# -- a pcache-emulator process ---------------------------------------------------------------------
#: The first line `pcache-emulator` prints: its base URL and port.
EMULATOR_LINE = re.compile(r"^pcache-emulator listening on (http://127\.0\.0\.1:(\d+)) ")


def emulator_command(*args: str) -> list[str]:
    """`pcache-emulator *args`: the console script beside this Python, or the module without it."""
    script = Path(sys.executable).with_name("pcache-emulator")
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "pcache_magic.emulator.server"]
    return [*argv, *args]


@dataclass
class EmulatorProcess:
    proc: subprocess.Popen[str]
    line: str  #: the first line it printed, without the newline
    url: str
    port: int

    def stop(self, sig: int = signal.SIGINT) -> tuple[int, str, str]:
        """Send `sig` (Ctrl-C by default) and wait: the exit code and the rest of stdout and stderr.

        A process still running 20 s later is killed (so its exit code is -9).
        """
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            out, err = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate(timeout=20)
        return self.proc.returncode, out, err


@contextmanager
def spawn_emulator(*args: str) -> Iterator[EmulatorProcess]:
    """`pcache-emulator --port 0 *args` on a free loopback port; killed at the end if still running."""
    proc = subprocess.Popen(
        emulator_command(*args, "--port", "0"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as selector:  # fail rather than hang on a silent process
            selector.register(proc.stdout, selectors.EVENT_READ)
            assert selector.select(30), "pcache-emulator printed nothing in 30 s"
        line = proc.stdout.readline().rstrip("\n")
        match = EMULATOR_LINE.match(line)
        assert match, f"pcache-emulator did not listen on 127.0.0.1: {line!r}"  # loopback by default
        yield EmulatorProcess(proc, line, match.group(1), int(match.group(2)))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=20)


# -- sessions ------------------------------------------------------------------------------------
def gathered_then_one(session: Any, system_text: str, together: int = 3) -> None:
    """`together` calls sent at once (`acreate` under `asyncio.gather`) over one cached system
    message, then one call after them: the shape whose calls in flight each write."""
    import asyncio

    from pcache_magic import UserMessage

    system = session.cached_system_message(system_text)

    async def at_once() -> None:
        asks = (
            session.acreate([system, UserMessage(content=f"q{i}", source="user")]) for i in range(together)
        )
        await asyncio.gather(*asks)

    asyncio.run(at_once())
    session.create([system, UserMessage(content="after", source="user")])


def reply_record(*content: dict[str, Any], index: int = 1) -> Any:
    """A `CallRecord` whose reply holds `content` (the SDK's block dicts)."""
    from anthropic.types import Message

    from pcache_magic.core.record import CallRecord

    message = Message.model_validate(
        {
            "id": f"msg_{index}",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": list(content),
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 5},
        }
    )
    return CallRecord(index=index, model=MODEL, started_at=0.0, request={}, response=message)
