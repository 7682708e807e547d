"""Exports: a replay script (or notebook) for the raw `anthropic` SDK, and the figures as JSON.

The script holds data, never code made from the session: the recorded requests are one JSON
document inside the script, read with `json.loads` (no `repr()`, so a string cannot smuggle code
in, and nesting is `json`'s to handle, not Python's parser).  They are packed as a session file
packs them (`pack.Packer`): each distinct content block, tool and message is written once and
referred to by its place, so a long system prompt sent by 100 calls is written once, and a file
whose one item is referenced a million times exports at the file's size, not a million copies.

It replays the successful calls in order: offline against `pcache-emulator`
(`PCACHE_EMULATOR_URL`), whose clock it moves on by the time the session waited between calls,
or live with the key from the environment (`--wait` waits those gaps for real).  Each call
prints its cache figures, and a call whose pattern (read, write, miss) differs from the
session's record says so.  Nothing secret is exported: the requests as sent never hold the key,
and headers are not kept.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal, Protocol

from ..core.record import CallRecord
from .pack import Packer
from .transport import redact_key

__all__ = [
    "REPLAY_FORMAT",
    "Exportable",
    "Kind",
    "export",
    "export_json",
    "export_notebook",
    "export_python",
    "pattern",
    "replay_data",
]

Kind = Literal["python", "json", "ipynb"]
REPLAY_FORMAT = "pcache_magic.replay"
_PLACEHOLDER = {"role": "user", "content": "Hello"}


class Exportable(Protocol):
    """What the exports read of a `Session`."""

    @property
    def calls(self) -> list[CallRecord]: ...
    def params(self) -> dict[str, Any]: ...


def pattern(read: int, written: int) -> str:
    """A call's cache pattern as the replay prints it."""
    return "read+write" if read and written else "read" if read else "write" if written else "miss"


def _replayable(request: Mapping[str, Any]) -> dict[str, Any]:
    """A recorded request minus what only made sense at the time (the diagnostics link)."""
    return {k: v for k, v in request.items() if k != "diagnostics"}


def replay_data(session: Exportable) -> dict[str, Any]:
    """The successful calls to replay, each with its time and its recorded cache figures; before
    any call, the next request (ending with a user turn, as a request must).  The requests are
    packed (`Packer`): the replay's `requests` rebuilds them from `items` and `messages`."""
    done = [c for c in session.calls if c.ok and isinstance(c.request.get("messages"), list)]
    packer = Packer()
    calls: list[dict[str, Any]] = []
    first = done[0].started_at if done else 0.0
    for record in done:
        t = record.tokens
        calls.append(
            {
                "call": record.index,
                "kind": record.kind,
                "at": round(record.started_at - first, 6),
                "request": packer.request(_replayable(record.request)),
                "recorded": {
                    "read": t.read,
                    "written": t.written,
                    "uncached": t.uncached,
                    "output": t.output,
                    "pattern": pattern(t.read, t.written),
                },
            }
        )
    if not calls:
        request = _replayable(session.params())
        messages = list(request.get("messages") or [])
        if not messages or messages[-1].get("role") != "user":  # newer models refuse a prefill
            messages.append(_PLACEHOLDER)
        request["messages"] = messages
        calls.append(
            {"call": 1, "kind": "ask", "at": 0.0, "request": packer.request(request), "recorded": None}
        )
    return {
        "format": REPLAY_FORMAT,
        "version": 2,
        "items": packer.items,
        "messages": packer.messages,
        "calls": calls,
    }


def _dumps(value: Any, indent: int | None = None) -> str:
    """`value` as JSON, its text as written (a lone surrogate, which UTF-8 cannot hold, escaped)."""
    spaced = None if indent else (", ", ": ")
    try:
        text = json.dumps(value, indent=indent, separators=spaced, ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value, indent=indent, separators=spaced, ensure_ascii=True, allow_nan=False)
    return text


def _json_literal(data: Mapping[str, Any]) -> str:
    """`data` as JSON text that sits safely in a raw triple-quoted string (JSON has no single quote
    outside strings, and inside them `\\u0027` means the same), laid out to be read: each item
    indented, each message and each call on a line of its own."""
    lines = [f" {_dumps(key)}: {_dumps(data[key])}," for key in ("format", "version")]
    for key, indent in (("items", 1), ("messages", None), ("calls", None)):
        values = ",\n".join("  " + _dumps(v, indent).replace("\n", "\n  ") for v in data[key])
        lines.append(f" {_dumps(key)}: [\n{values}\n ]" + ("" if key == "calls" else ","))
    return "\n".join(["{", *lines, "}"]).replace("'", "\\u0027")


_HEAD = '''\
"""Replay of a pcache_magic session with the raw `anthropic` SDK ({what}).

    PCACHE_EMULATOR_URL=http://127.0.0.1:8765 python replay.py   # offline, against pcache-emulator
    python replay.py [--wait]                                     # live, with ANTHROPIC_API_KEY

Offline, the emulator's clock moves on by the time the session waited between calls; live,
--wait waits as long (without it, an entry that had expired may still be read). The key is read
from the environment; none is stored here.
"""

import inspect
import json
import os
import sys
import time
import urllib.request

import anthropic

SESSION = json.loads(r\'\'\'
{data}
\'\'\')


def requests(session):
    """Each call's request as it was sent.  Written once above, and shared: "items" (tools, system
    and content blocks) and "messages" (each a role and its content, or "raw"), named by their
    place.  A request's messages are the previous request's first "keep", then those it "add"s."""
    items = session["items"]

    def message(packed):
        if "raw" in packed:
            return packed["raw"]
        content = packed["content"]
        if not isinstance(content, str):
            content = [items[i] for i in content]
        return {{"role": packed["role"], "content": content}}

    pool = [message(m) for m in session["messages"]]
    previous, built = [], []
    for call in session["calls"]:
        packed, params, current = call["request"], {{}}, []
        for key in packed["keys"]:
            if key in packed["fields"]:
                params[key] = packed["fields"][key]
            elif key == "messages":
                current = params[key] = previous[: packed["keep"]] + [pool[i] for i in packed["add"]]
            else:  # tools or system: places in items (a system prompt may be one string)
                value = packed[key]
                params[key] = value if isinstance(value, str) else [items[i] for i in value]
        previous = current
        built.append(params)
    return built


REQUESTS = requests(SESSION)
'''

_BODY = '''

def pattern(read, written):
    return "read+write" if read and written else "read" if read else "write" if written else "miss"


def connect():
    """A client for pcache-emulator (PCACHE_EMULATOR_URL) or the live API, and the emulator's URL."""
    url = os.environ.get("PCACHE_EMULATOR_URL", "").rstrip("/")
    if url:  # the emulator takes any key, and the URL may be plain http: never send the real one
        return anthropic.Anthropic(base_url=url, api_key="sk-ant-replay-stand-in"), url
    key = os.environ.get("ANTHROPIC_API_KEY")
    if not key:
        raise SystemExit(
            "Set ANTHROPIC_API_KEY (live), or PCACHE_EMULATOR_URL to replay against pcache-emulator."
        )
    return anthropic.Anthropic(), None  # the key (and ANTHROPIC_BASE_URL) from the environment


def advance(url, seconds):
    body = json.dumps({"seconds": seconds}).encode()
    request = urllib.request.Request(
        url + "/_emulator/advance", data=body, headers={"content-type": "application/json"}
    )
    urllib.request.urlopen(request, timeout=30).close()


#: The SDK's own options, not the API's fields: a field so named travels in the body, as it was sent.
OPTIONS = {"extra_headers", "extra_query", "extra_body", "timeout", "stream"}


def send(client, params):
    """`messages.create`, not streamed; fields this SDK has no keyword for, and those named like
    its own options (headers, timeout), travel in `extra_body`, as the session sent them."""
    known = set(inspect.signature(client.messages.create).parameters) - OPTIONS
    body = {k: v for k, v in params.items() if k != "stream"}
    kwargs = {k: v for k, v in body.items() if k in known}
    extra = {k: v for k, v in body.items() if k not in known}
    return client.messages.create(**kwargs, **({"extra_body": extra} if extra else {}))


def main(argv):
    client, emulator = connect()
    wait, before, differ = "--wait" in argv, None, 0
    for number, (call, request) in enumerate(zip(SESSION["calls"], REQUESTS), 1):
        gap = 0.0 if before is None else call["at"] - before
        before = call["at"]
        if gap > 0 and emulator:
            advance(emulator, gap)
        elif gap > 0 and wait:
            time.sleep(gap)
        elif gap >= 300:
            print(f"(the session waited {gap:.0f}s before this call; --wait waits too)", file=sys.stderr)
        usage = send(client, request).usage
        read = usage.cache_read_input_tokens or 0
        written = usage.cache_creation_input_tokens or 0
        print(
            f"call {number}: read {read}, written {written}, "
            f"uncached {usage.input_tokens}, output {usage.output_tokens}"
        )
        recorded = call["recorded"]
        if recorded and recorded["pattern"] != pattern(read, written):
            differ += 1
            print(
                f"call {number}: the session's call {call['call']} was a {recorded['pattern']}, "
                f"this one a {pattern(read, written)}",
                file=sys.stderr,
            )
    if differ:
        print(f"{differ} call(s) differ from the session's cache pattern.", file=sys.stderr)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
'''


def _what(data: Mapping[str, Any]) -> str:
    calls = data["calls"]
    if calls and calls[0]["recorded"] is None:
        return "the next request; no call was recorded yet"
    return f"the {len(calls)} successful call(s) of the session, in order"


def export_python(session: Exportable) -> str:
    """A runnable script that sends the session's calls again (see the module's docstring)."""
    return _script(replay_data(session))


def _script(data: Mapping[str, Any]) -> str:
    return _HEAD.format(what=_what(data), data=_json_literal(data)) + _BODY


def export_notebook(session: Exportable) -> str:
    """The replay as a notebook (nbformat 4): the setup, then one cell per call."""
    data = replay_data(session)
    setup, _, _ = _script(data).partition('\n\nif __name__ == "__main__":')

    def code(source: str) -> dict[str, Any]:
        return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source}

    cells: list[dict[str, Any]] = [
        {
            "cell_type": "markdown",
            "metadata": {},
            "source": f"# Replay of a pcache_magic session\n\n{_what(data)}.",
        },
        code(setup.strip() + "\n\nclient, emulator = connect()"),
    ]
    before = None
    for number, call in enumerate(data["calls"]):
        gap = 0.0 if before is None else call["at"] - before
        before = call["at"]
        moved = f"if emulator:\n    advance(emulator, {json.dumps(gap)})\n" if gap > 0 else ""
        cells.append(
            code(
                f"# the session's call {call['call']} ({call['kind']})\n{moved}"
                f"message = send(client, REQUESTS[{number}])\nmessage.usage"
            )
        )
    notebook = {
        "cells": cells,
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(notebook, indent=1, ensure_ascii=False)


def export_json(session: Exportable) -> str:
    """The next call's request params, and each call's usage and cost, as JSON."""
    calls = [
        {
            "index": record.index,
            "kind": record.kind,
            "model": record.model,
            "outcome": record.outcome,
            "usage": record.usage.model_dump(mode="json", exclude_none=True, warnings=False)
            if record.usage
            else None,
            "cost_usd": round(record.cost.total, 6),
            "error": record.error,
        }
        for record in session.calls
    ]
    payload = {"format": "pcache_magic.export", "next_request": session.params(), "calls": calls}
    return json.dumps(payload, indent=1, ensure_ascii=False, allow_nan=False)


def export(session: Exportable, kind: Kind = "python") -> str:
    """`kind`: `python` (a replay script), `ipynb` (the same as a notebook) or `json` (figures)."""
    makers = {"python": export_python, "ipynb": export_notebook, "json": export_json}
    if kind not in makers:
        raise ValueError(f"export takes {', '.join(makers)}, not {kind!r}")
    return redact_key(makers[kind](session), getattr(session, "client", None))  # a prompt that quoted it
