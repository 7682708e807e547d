"""Save and load a session file: bounded, strict, validated whole, written atomically.

Pure (no IPython): `Session.save`/`Session.load` and `%claude_session save|load` are this code.

Reading is bounded before anything is parsed: only a regular file (a FIFO, a device such as
`/dev/zero` or a folder is refused, never opened for reading), at most `max_bytes`
(`DEFAULT_MAX_BYTES` unless raised), strict JSON (no NaN or Infinity, integers of at most
`MAX_INT_DIGITS` digits, nesting at most `MAX_DEPTH`).  Then the whole file is validated
(`schema`, then `snapshot.prepare`) before the session changes, so a refused file leaves it as
it was, with one `StoreError` line naming the field and the fix.  Older formats load through
migrations with a note of what they lack; a newer one says which pcache_magic to upgrade to.
Writing goes to a temporary file in the same folder, is `fsync`ed and `os.replace`d into place.

`python -m pcache_magic.session.store --schema [PATH]` writes the file's JSON Schema
(docs/session-schema.json).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import stat
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from pydantic import ValidationError

from ..core import strict_json
from ..core.fmt import cut, plural, visible
from .export import export_json, export_python
from .schema import FORMAT, VERSION, SessionFile, StoreError, json_schema
from .snapshot import Prepared, Saveable, prepare, snapshot
from .snapshot import version as package_version
from .transport import redact_key

__all__ = [
    "DEFAULT_MAX_BYTES",
    "FORMAT",
    "MAX_DEPTH",
    "MAX_INT_DIGITS",
    "MAX_VALUES",
    "VERSION",
    "Loaded",
    "StoreError",
    "dumps",
    "export_json",
    "export_python",
    "load",
    "load_into",
    "loads",
    "main",
    "read_bounded",
    "save",
    "write_atomic",
]

#: The largest session file read unless `max_bytes` says otherwise: a thousand-call session is a
#: few MB; parsed, a file takes several times its size in memory, so the cap bounds that too.
DEFAULT_MAX_BYTES: Final = 64 * 2**20
#: Nesting allowed in a file: a request's own limit (`strict_json.MAX_DEPTH`) plus the file's levels.
MAX_DEPTH: Final = strict_json.MAX_DEPTH + 8
#: The longest integer read (`strict_json.MAX_INT_DIGITS`; replies are checked against it too).
MAX_INT_DIGITS: Final = strict_json.MAX_INT_DIGITS
#: Values (about one per comma) a file may hold: a session has about a hundred per call (200 calls:
#: 21,000), and a file of `[],[],...` would otherwise take some 50 times its size once parsed.
MAX_VALUES: Final = 2_000_000
#: Said of a file that is no session file at all (another format, a script).
_NOT_A_SESSION_FILE: Final = "is not a pcache_magic session file (saved with %claude_session save FILE)."
_FIX = "fix that field or save the session again"


@dataclass(frozen=True)
class Loaded:
    """What `load` read: the validated file, ready to apply, and notes on what an old one lacks."""

    prepared: Prepared
    source: str

    @property
    def blocks(self) -> int:
        return len(self.prepared.file.blocks)

    @property
    def calls(self) -> int:
        return len(self.prepared.records)

    @property
    def notes(self) -> list[str]:
        return self.prepared.notes

    def summary(self) -> str:
        return f"Loaded {plural(self.blocks, 'block')} and {plural(self.calls, 'call')} from {self.source}."


# -- writing ----------------------------------------------------------------------------------
def dumps(session: Saveable) -> str:
    """The session file's text: strict, compact JSON (a value that is not finite is a StoreError)."""
    with session.lock:  # between turns: never half of another thread's turn
        data = snapshot(session, datetime.now(UTC).isoformat(timespec="seconds"))
    try:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise StoreError(
            f"The session holds a value JSON cannot carry ({error}); nothing was saved."
        ) from None
    return redact_key(text, getattr(session, "client", None))  # a prompt that quoted the key


def write_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write `text` to a temporary file beside `path`, `fsync` it, then `os.replace` it over `path`."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise StoreError(f"{path}: is a directory; give a file name such as session.json.")
    if target.is_symlink() or (target.exists() and not target.is_file()):
        raise StoreError(f"{path}: is not a regular file (a link, device or pipe); give a plain file name.")
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
        os.chmod(temp, _mode(target))
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # the rename itself, durable where the platform allows
        folder = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    return target


def _mode(target: Path) -> int:
    """The mode a plain `open` would give (the file's own when it is replaced): `mkstemp` makes 0600."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        umask = os.umask(0o022)
        os.umask(umask)
        return 0o666 & ~umask


def save(session: Saveable, path: str | os.PathLike[str]) -> Path:
    return write_atomic(path, dumps(session) + "\n")


# -- reading ----------------------------------------------------------------------------------
def read_bounded(path: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The bytes of a regular file of at most `max_bytes`; StoreError for anything else.

    A FIFO would block `open` and `/dev/zero` never ends: both are refused from `stat`, and the
    file is opened non-blocking and checked again (it may have been swapped in between).
    """
    shown = str(path)
    try:
        info = os.stat(Path(path).expanduser())
    except FileNotFoundError:
        raise StoreError(f"{shown}: no such file.") from None
    except OSError as error:
        raise StoreError(f"{shown}: cannot be read ({error.strerror or error}).") from None
    _check_kind(info, shown, max_bytes)
    try:
        fd = os.open(Path(path).expanduser(), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as error:
        raise StoreError(f"{shown}: cannot be read ({error.strerror or error}).") from None
    try:
        _check_kind(os.fstat(fd), shown, max_bytes)
        chunks, total = [], 0
        while chunk := os.read(fd, min(1 << 20, max_bytes + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise StoreError(_too_big(shown, max_bytes, "it grew while being read"))
    finally:
        os.close(fd)
    return b"".join(chunks)


def _too_big(shown: str, max_bytes: int, size: str) -> str:
    return (
        f"{shown}: {size}, more than the {max_bytes:,} bytes a session file may have; if you trust "
        "it, load it with a larger max_bytes (%claude_session load PATH --max-mb N)."
    )


def _check_kind(info: os.stat_result, shown: str, max_bytes: int) -> None:
    if not stat.S_ISREG(info.st_mode):
        kind = (
            "a folder"
            if stat.S_ISDIR(info.st_mode)
            else "a pipe (FIFO)"
            if stat.S_ISFIFO(info.st_mode)
            else "a device"
            if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)
            else "not a regular file"
        )
        raise StoreError(f"{shown}: is {kind}; give the path of a saved session file.")
    if info.st_size > max_bytes:
        raise StoreError(_too_big(shown, max_bytes, f"{info.st_size:,} bytes"))


def _header(raw: Any, source: str) -> int:
    """The file's format version, after checking it is a session file this version can read."""
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise StoreError(f"{source} {_NOT_A_SESSION_FILE}")
    version = raw.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise StoreError(f"{source}: version: not a format version; {_FIX}.")
    if version > VERSION:
        by = raw.get("saved_by")
        who = (
            f"pcache_magic {by}"
            if isinstance(by, str) and by.isprintable() and len(by) <= 40
            else "a newer pcache_magic"
        )
        raise StoreError(
            f"{source} was saved by {who} (session format {version}); this pcache_magic {package_version()} "
            f"reads format {VERSION} and older: upgrade pcache_magic to load it."
        )
    return version


def _from_v1(raw: dict[str, Any], source: str) -> tuple[dict[str, Any], list[str]]:
    """Format 1 kept the blocks and settings, and of each call only its usage: the calls cannot
    be replayed, explained or priced again, so they are left out (said in a note)."""
    calls = raw.get("calls")
    count = len(calls) if isinstance(calls, list) else 0
    upgraded = {
        "format": FORMAT,
        "version": VERSION,
        "saved_at": raw.get("saved_at", ""),
        "settings": raw.get("config"),
        "clock": {"now": 0.0, "mode": "custom"},
        "blocks": raw.get("blocks"),
    }
    notes = [
        f"{source} is a format 1 file: it kept the blocks and settings but not the requests, so its "
        f"{count} call record(s) and the cache entries are not loaded; save again to write format {VERSION}."
    ]
    return upgraded, notes


def _where(error: ValidationError) -> str:
    """The first error's place and words; a place named by a hostile key shown cut and visible."""
    first = error.errors()[0]
    where = ".".join(cut(visible(str(p))) for p in first["loc"]) or "(top level)"
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}".replace("\n", " ")


def loads(data: bytes | str, source: str = "the file") -> tuple[SessionFile, list[str]]:
    """Parse and validate a file's contents (any version this one reads) as a `SessionFile`,
    with notes on what an older format lacks; StoreError (one line) for anything else.  Text that
    is no JSON object at all is said to be no session file, not JSON that may be truncated."""
    try:
        text = data.decode() if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise StoreError(f"{source} is not a pcache_magic session file (not UTF-8 text).") from None
    if not text.lstrip().startswith("{"):  # a script or other text, not a session file gone bad
        raise StoreError(f"{source} {_NOT_A_SESSION_FILE}")
    if text.count(",") >= MAX_VALUES:  # counted before parsing: a parsed value costs ~50x its text
        raise StoreError(
            f"{source} holds more than {MAX_VALUES:,} values, more than a session file of this size "
            f"can; {_FIX}."
        )
    try:
        raw = strict_json.loads(text, max_depth=MAX_DEPTH, max_int_digits=MAX_INT_DIGITS, unique_keys=True)
    except json.JSONDecodeError as error:
        raise StoreError(
            f"{source} is not valid JSON ({error.msg} at line {error.lineno}); it may be truncated."
        ) from None
    except ValueError as error:
        raise StoreError(f"{source} is not strict JSON ({error}); {_FIX}.") from None
    notes: list[str] = []
    if _header(raw, source) == 1:
        raw, notes = _from_v1(raw, source)
    try:
        return SessionFile.model_validate(raw, strict=True), notes
    except ValidationError as error:
        raise StoreError(f"{source}: {_where(error)}; {_FIX}.") from None


def load(path: str | os.PathLike[str], session: Saveable, *, max_bytes: int | None = None) -> Loaded:
    """Read and check the file at `path` for `session` (its models), changing nothing yet."""
    source = str(path)
    file, notes = loads(read_bounded(path, DEFAULT_MAX_BYTES if max_bytes is None else max_bytes), source)
    try:
        return Loaded(prepare(file, session.models, notes), source)
    except StoreError as error:
        raise StoreError(f"{source}: {error}") from None


def load_into(session: Saveable, path: str | os.PathLike[str], *, max_bytes: int | None = None) -> Loaded:
    """Replace `session`'s state with the file's; StoreError (nothing changed) if it is refused."""
    loaded = load(path, session, max_bytes=max_bytes)
    loaded.prepared.apply(session)
    return loaded


def main(argv: Sequence[str] | None = None) -> int:
    """`--schema [PATH]`: write the session file's JSON Schema (to stdout without PATH)."""
    parser = argparse.ArgumentParser(prog="python -m pcache_magic.session.store")
    parser.add_argument("--schema", nargs="?", const="-", metavar="PATH", help="write the JSON Schema")
    args = parser.parse_args(argv)
    if args.schema is None:
        parser.print_help()
        return 2
    text = json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
    if args.schema == "-":
        sys.stdout.write(text)
    else:
        write_atomic(args.schema, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
