"""Save, load and export a Session: versioned JSON, and a replay script for the raw SDK.

Pure (no IPython): the magics call it, and so can scripts.  A saved file holds
the conversation's blocks, the settings, and each call's usage (not its full
request, which repeats the whole prefix every time).  Loading validates the
whole file with pydantic *before* touching the session, so a corrupt,
truncated, foreign or newer file leaves the live session exactly as it was.
Files are written to a temporary sibling and moved into place with
`os.replace`, so an interrupted save never leaves half a file.
"""

from __future__ import annotations

import json
import os
import pprint
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from anthropic.types import Message, Usage
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..core.conversation import Block, Conversation
from ..core.record import CallRecord
from ..core.ttl import TTL
from .session import CacheMode

if TYPE_CHECKING:
    from .session import Session

__all__ = [
    "FORMAT",
    "VERSION",
    "SavedCall",
    "SavedConfig",
    "SessionFile",
    "StoreError",
    "apply",
    "dumps",
    "export_json",
    "export_python",
    "load",
    "loads",
    "save",
    "snapshot",
    "write_atomic",
]

FORMAT: Final = "pcache_magic.session.session"
VERSION: Final = 1


class StoreError(ValueError):
    """A session file that cannot be loaded (or written); the message says which and why."""


class SavedConfig(BaseModel):
    """The session settings that shape the next request."""

    model_config = ConfigDict(extra="forbid")

    model: str
    max_tokens: int = Field(ge=0)
    default_ttl: TTL | None = None
    cache_mode: CacheMode = "none"
    diagnostics: bool = True


class SavedCall(BaseModel):
    """What is kept of one call: enough for totals and costs, not the request body."""

    model_config = ConfigDict(extra="forbid")

    index: int
    kind: Literal["ask", "prewarm", "create", "tool_loop"]
    model: str
    started_at: float
    latency_s: float = 0.0
    error: str | None = None
    estimated: bool = False
    response_id: str | None = None
    stop_reason: str | None = None
    usage: Usage | None = None


class SessionFile(BaseModel):
    """The whole file, format and version first so foreign and newer files are told apart."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["pcache_magic.session.session"] = FORMAT
    version: int = VERSION
    saved_at: str = ""
    config: SavedConfig
    blocks: list[Block]
    calls: list[SavedCall] = Field(default_factory=list)


def snapshot(session: Session) -> SessionFile:
    """The session's state as a `SessionFile` (a deep copy of the blocks)."""
    calls = [
        SavedCall(
            index=c.index,
            kind=c.kind,
            model=c.model,
            started_at=c.started_at,
            latency_s=c.latency_s,
            error=c.error,
            estimated=c.estimated,
            response_id=c.response.id if c.response is not None else None,
            stop_reason=c.response.stop_reason if c.response is not None else None,
            usage=c.usage,
        )
        for c in session.calls
    ]
    config = SavedConfig(
        model=session.model,
        max_tokens=session.max_tokens,
        default_ttl=session.default_ttl,
        cache_mode=session.cache_mode,
        diagnostics=session.diagnostics,
    )
    return SessionFile(
        saved_at=datetime.now(UTC).isoformat(timespec="seconds"),
        config=config,
        blocks=[b.model_copy(deep=True) for b in session.conversation.blocks],
        calls=calls,
    )


def dumps(session: Session) -> str:
    return snapshot(session).model_dump_json(indent=1, exclude_none=True)


def write_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write `text` to a temporary sibling, then `os.replace` it over `path`."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise StoreError(f"{path}: is a directory; give a file name such as session.json.")
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        what = "is not a folder" if directory.exists() else "does not exist"
        raise StoreError(f"{path}: the folder {directory} {what}.")
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as error:
        raise StoreError(
            f"{path}: cannot write in {directory} ({error.strerror or error}); save somewhere writable."
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return target


def save(session: Session, path: str | os.PathLike[str]) -> Path:
    return write_atomic(path, dumps(session) + "\n")


def loads(text: str, source: str = "the file") -> SessionFile:
    """Parse and validate; StoreError (one line) for anything that is not a file this version reads."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise StoreError(
            f"{source} is not valid JSON ({error.msg} at line {error.lineno}); it may be truncated."
        ) from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise StoreError(f"{source} is not a pcache_magic session file (saved with %claude_session save).")
    version = raw.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise StoreError(f"{source} has no valid format version.")
    if version > VERSION:
        raise StoreError(
            f"{source} was saved by a newer pcache_magic (format {version}, this one reads {VERSION}); "
            "upgrade pcache_magic to load it."
        )
    try:
        state = SessionFile.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise StoreError(
            f"{source} is damaged: {where}: {first['msg']} ({error.error_count()} problem(s))."
        ) from None
    seen: set[str] = set()
    for block in state.blocks:  # a session never holds two blocks of one name: a re-run replaces
        if block.name in seen:
            raise StoreError(f"{source} is damaged: blocks: the name {block.name!r} is used twice.")
        seen.add(block.name)
    return state


def load(path: str | os.PathLike[str]) -> SessionFile:
    target = Path(path).expanduser()
    try:
        text = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StoreError(f"{path}: no such file.") from None
    except UnicodeDecodeError:
        raise StoreError(f"{path} is not a pcache_magic session file (not UTF-8 text).") from None
    except OSError as error:
        raise StoreError(f"{path}: cannot be read ({type(error).__name__}: {error}).") from None
    return loads(text, str(path))


def _record(call: SavedCall, session: Session) -> CallRecord:
    response = None
    if call.usage is not None:
        response = Message(
            id=call.response_id or f"msg_restored_{call.index}",
            type="message",
            role="assistant",
            model=call.model,
            content=[],
            stop_reason=call.stop_reason,  # type: ignore[arg-type]
            stop_sequence=None,
            usage=call.usage,
        )
    prices = session.models.get(call.model).prices if call.model in session.models else None
    return CallRecord(
        index=call.index,
        kind=call.kind,
        model=call.model,
        started_at=call.started_at,
        request={"model": call.model},
        response=response,
        latency_s=call.latency_s,
        error=call.error,
        estimated=call.estimated,
        prices=prices,
    )


def apply(state: SessionFile, session: Session) -> None:
    """Replace the session's conversation, settings and call history with `state`.

    Everything that can fail (an unknown model, a bad stop reason) runs before
    the first assignment, so a failure leaves the session untouched.  The
    ledger is cleared: what the API's cache holds now is unknown.
    """
    try:
        session.models.get(state.config.model)
        records = [_record(call, session) for call in state.calls]
    except (KeyError, ValidationError, ValueError) as error:
        raise StoreError(f"The file cannot be applied: {error}") from None
    conversation = Conversation(blocks=[b.model_copy(deep=True) for b in state.blocks])
    config = state.config
    session.restore(
        conversation,
        records,
        model=config.model,
        max_tokens=config.max_tokens,
        default_ttl=config.default_ttl,
        cache_mode=config.cache_mode,
        diagnostics=config.diagnostics,
    )


def export_json(session: Session) -> str:
    """The next call's request params, and each call's usage and cost, as JSON."""
    calls = []
    for record in session.calls:
        calls.append(
            {
                "index": record.index,
                "kind": record.kind,
                "model": record.model,
                "outcome": record.outcome,
                "usage": record.usage.model_dump(exclude_none=True) if record.usage else None,
                "cost_usd": round(record.cost.total, 6),
                "error": record.error,
            }
        )
    payload = {"format": "pcache_magic.export", "next_request": session.params(), "calls": calls}
    return json.dumps(payload, indent=1, default=str)


_SCRIPT = '''\
"""Replay of a pcache_magic session with the raw `anthropic` SDK ({what}).

Reads ANTHROPIC_API_KEY from the environment; no key is stored here.
Run twice within the cache lifetime and compare the cache figures.
"""

import os

import anthropic

REQUESTS = {requests}


def main() -> None:
    if not os.environ.get("ANTHROPIC_API_KEY"):
        raise SystemExit("Set ANTHROPIC_API_KEY first: this script reads the key from the environment.")
    client = anthropic.Anthropic()  # the key comes from ANTHROPIC_API_KEY
    for number, params in enumerate(REQUESTS, 1):
        message = client.messages.create(**params)
        usage = message.usage
        print(
            f"call {{number}}: read {{usage.cache_read_input_tokens or 0}}, "
            f"written {{usage.cache_creation_input_tokens or 0}}, "
            f"uncached {{usage.input_tokens}}, output {{usage.output_tokens}}"
        )


if __name__ == "__main__":
    main()
'''


def _replayable(request: dict[str, Any]) -> dict[str, Any]:
    """A recorded request minus what only made sense at the time (the diagnostics link)."""
    params = dict(request)
    params.pop("diagnostics", None)
    return params


def export_python(session: Session) -> str:
    """A runnable script that sends the session's recorded requests (or the next one) again."""
    recorded = [_replayable(c.request) for c in session.calls if c.ok and "messages" in c.request]
    if recorded:
        what = f"the {len(recorded)} recorded request(s)"
    else:
        recorded = [_replayable(session.params())]
        what = "the next request; no call was recorded yet"
        if not recorded[0]["messages"]:
            recorded[0]["messages"] = [{"role": "user", "content": "Hello"}]
    literal = pprint.pformat(recorded, indent=1, width=100, sort_dicts=False)
    return _SCRIPT.format(what=what, requests=literal)
