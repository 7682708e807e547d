"""Read the files a cell names (`--file`, `--image`) within bounds no path can get past.

The magic line is not shell-expanded, so globs are expanded here, by a walk rather than
`glob.glob`: with `**` that follows symlinked directories round a loop without end.  The
walk enters each directory once per pattern position (a symlink loop is followed once),
lists a bounded number of entries and keeps a bounded number of regular files.  Sizes are
checked from `stat`, per file and for the cell as a whole, before any byte is read; each
read is bounded as well, so a file that grows meanwhile cannot pass the limits; a FIFO or
a device is refused unread (opened without blocking, checked with `fstat`).  Every refusal
is a one-line `ValueError` that names the file or pattern and says what to do.
"""

from __future__ import annotations

import base64
import difflib
import fnmatch
import glob
import heapq
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

__all__ = [
    "DEFAULT_MAX_FILES",
    "DEFAULT_TOTAL_BYTES",
    "MAX_FILE_BYTES",
    "MAX_IMAGE_BYTES",
    "MAX_WALK_ENTRIES",
    "MIB",
    "CellFiles",
    "Limits",
    "expand_paths",
    "file_block",
    "image_block",
]

MIB = 1024 * 1024
#: Larger files are refused: the whole request must stay under the API's 32 MB limit.
MAX_FILE_BYTES = 20 * MIB
#: The API's limit for one image: 5 MB of its base64 text (`core.tokens.MAX_IMAGE_BASE64`), so 3.75
#: MB of file (a 4 MB file is refused there).
MAX_IMAGE_BYTES = 5 * MIB // 4 * 3
#: All the files of one cell together (ClaudeMagics.max_files_mb): no request carries more.
DEFAULT_TOTAL_BYTES = 32 * MIB
#: Files one cell may name once its globs are expanded (ClaudeMagics.max_files).
DEFAULT_MAX_FILES = 1000
#: Directory entries one glob may look through before it is refused as too broad.
MAX_WALK_ENTRIES = 100_000
_CHUNK = 1024 * 1024

#: The media type a file's suffix names; the bytes' own is the one sent (`image_block`).
_SUFFIX_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".jpe": "image/jpeg",
    ".jfif": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
#: Why the API could not decode an image file (`core.image_bytes.ImageFlaw`), said to its user.
_FLAWS = {
    "no size": "starts like a {} but its header gives no size (damaged?)",
    "no pixels": "a {} header with no image data after it (cut short?)",
    "cut short": "the {} data stops before its end (cut short?)",
    "damaged": "the {} data is damaged (a checksum, a length or a header field is wrong)",
}


#: Names a missing file's error compares it with, at most (`_nearest`).
_NEAREST_SCANNED = 2_000


@dataclass(frozen=True)
class Limits:
    """How much one cell may read from disk (the magics fill it from their settings)."""

    total_bytes: int = DEFAULT_TOTAL_BYTES
    max_files: int = DEFAULT_MAX_FILES
    walk_entries: int = MAX_WALK_ENTRIES
    file_bytes: int = MAX_FILE_BYTES
    image_bytes: int = MAX_IMAGE_BYTES


def _mb(limit: int) -> str:
    return f"{limit / MIB:g} MB" if limit >= MIB else f"{limit:,} bytes"


def _too_big(path: Path, size: int, limit: int) -> ValueError:
    why = " (the API's 5 MB counts an image as base64)" if limit == MAX_IMAGE_BYTES else ""
    return ValueError(
        f"{path}: {size / 1e6:.1f} MB is over the {_mb(limit)} limit{why}; send a smaller file."
    )


def _unreadable(path: object, error: OSError) -> ValueError:
    return ValueError(
        f"{path}: cannot be read ({error.strerror or error}); check the path and its permissions."
    )


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file"


class _Walk:
    """One glob's expansion: each directory listed at most once per pattern position."""

    def __init__(self, pattern: str, limit: int) -> None:
        self.pattern, self.limit, self.listed = pattern, limit, 0

    def _entries(self, base: str, hidden: bool) -> list[tuple[str, bool, bool]]:
        """(name, is a directory, is a symlink) of `base`'s entries, counted against the limit."""
        found: list[tuple[str, bool, bool]] = []
        try:
            with os.scandir(base or os.curdir) as entries:
                for entry in entries:
                    self.listed += 1
                    if self.listed > self.limit:
                        raise ValueError(
                            f"{self.pattern}: the pattern looks through over {self.limit:,} entries; "
                            "narrow it (e.g. src/**/*.py rather than **/*.py)."
                        )
                    if entry.name.startswith(".") and not hidden:
                        continue
                    try:
                        found.append((entry.name, entry.is_dir(), entry.is_symlink()))
                    except OSError:
                        continue
        except OSError:  # not a directory, gone, or not readable: no matches there, as with glob
            return []
        return found

    def matches(self) -> list[str]:
        """The paths the pattern matches (any file type), sorted; `glob`'s rules for dots."""
        pure = PurePath(self.pattern)
        parts = pure.parts[1:] if pure.anchor else pure.parts
        # Real directories before symlinked ones (fewest links first), so a directory reached
        # both ways is walked, once, under its own name.
        queue: list[tuple[int, str, int]] = [(0, pure.anchor, 0)]
        seen: set[tuple[int, int, int]] = set()
        found: dict[str, None] = {}
        while queue:
            links, base, index = heapq.heappop(queue)
            if index == len(parts):
                found[base] = None
                continue
            part = parts[index]
            if part == "**":
                try:
                    info = os.stat(base or os.curdir)
                except OSError:
                    continue
                if (info.st_dev, info.st_ino, index) in seen:  # walked already, under another name
                    continue
                seen.add((info.st_dev, info.st_ino, index))
                heapq.heappush(queue, (links, base, index + 1))  # `**` matching no directory
                for name, is_dir, is_link in self._entries(base, hidden=False):
                    if is_dir:
                        heapq.heappush(queue, (links + is_link, os.path.join(base, name), index))
                    elif index == len(parts) - 1:
                        found[os.path.join(base, name)] = None
            elif glob.has_magic(part):
                last = index == len(parts) - 1
                for name, is_dir, is_link in self._entries(base, hidden=part.startswith(".")):
                    if fnmatch.fnmatch(name, part) and (last or is_dir):
                        heapq.heappush(queue, (links + is_link, os.path.join(base, name), index + 1))
            elif index < len(parts) - 1:
                heapq.heappush(queue, (links, os.path.join(base, part), index + 1))
            elif os.path.lexists(os.path.join(base, part)):
                found[os.path.join(base, part)] = None
        return sorted(found)


class CellFiles:
    """The files of one cell: expanded, counted, size-checked and read against one `Limits`.

    One instance per cell run, so `--file` and `--image` share the cell's count and total.
    """

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._count = 0
        self._left = self.limits.total_bytes

    def expand(self, patterns: Sequence[str]) -> list[Path]:
        """Regular files for `patterns` (`~` and globs expanded), sorted per pattern, de-duplicated."""
        found: dict[Path, None] = {}
        for pattern in patterns:
            expanded = os.path.expanduser(pattern)
            if glob.has_magic(expanded):
                paths = self._glob(pattern, expanded)
            else:
                paths = [Path(expanded)]
                try:
                    mode = os.stat(expanded).st_mode
                except (FileNotFoundError, NotADirectoryError):
                    raise ValueError(f"{pattern}: the file does not exist{_nearest(expanded)}.") from None
                except OSError as error:  # a symlink loop, a folder it may not look in
                    raise _unreadable(pattern, error) from None
                if stat.S_ISDIR(mode):
                    raise ValueError(f"{pattern}: the file is a directory; use a glob such as dir/*.py.")
                if not stat.S_ISREG(mode):  # a device, a pipe or a socket: reading it may never end
                    raise ValueError(f"{pattern}: not a regular file; give a file on disk.")
            found.update(dict.fromkeys(paths))
            if self._count + len(found) > self.limits.max_files:
                raise ValueError(
                    f"{pattern}: over {self.limits.max_files:,} files for one cell; "
                    "narrow the pattern or raise %config ClaudeMagics.max_files."
                )
        self._count += len(found)
        return list(found)

    def _glob(self, pattern: str, expanded: str) -> list[Path]:
        paths: list[Path] = []
        for match in _Walk(expanded, self.limits.walk_entries).matches():
            try:
                mode = os.stat(match).st_mode
            except OSError:  # a dangling symlink: glob.glob lists it, and it cannot be read
                continue
            if stat.S_ISREG(mode):
                paths.append(Path(match))
            elif not stat.S_ISDIR(mode):  # directories are a glob's by-catch; a FIFO is not
                raise ValueError(f"{match}: {_kind(mode)}, not a regular file; narrow the pattern {pattern}.")
        if not paths:
            raise ValueError(f"{pattern}: the pattern matches no file; check the path and the cwd.")
        return paths

    def check(self, files: Iterable[Path], images: Iterable[Path] = ()) -> None:
        """Refuse, from `stat` alone and before anything is read, a file or a total over its limit."""
        limits, total, count = self.limits, 0, 0
        for paths, limit in ((files, limits.file_bytes), (images, limits.image_bytes)):
            for path in paths:
                try:
                    size = path.stat().st_size
                except OSError as error:  # gone since the glob saw it
                    raise _unreadable(path, error) from None
                if size > limit:
                    raise _too_big(path, size, limit)
                total, count = total + size, count + 1
        if total > limits.total_bytes:
            raise ValueError(
                f"The {count} files come to {total / 1e6:,.1f} MB, over the {_mb(limits.total_bytes)} "
                "one cell may read; name fewer files or raise %config ClaudeMagics.max_files_mb."
            )

    def read(self, path: Path, limit: int) -> bytes:
        """The file's bytes: never more than `limit`, nor than what is left of the cell's total."""
        nonblocking = getattr(os, "O_NONBLOCK", 0)  # opening a FIFO must not wait for a writer
        try:
            fd = os.open(path, os.O_RDONLY | nonblocking | getattr(os, "O_NOCTTY", 0))
        except OSError as error:
            raise _unreadable(path, error) from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):  # swapped for a FIFO or a device since the walk
                raise ValueError(f"{path}: {_kind(info.st_mode)}, not a regular file; give a file on disk.")
            if info.st_size > limit:
                raise _too_big(path, info.st_size, limit)
            if info.st_size > self._left:
                raise self._over_total(path)
            if nonblocking:
                os.set_blocking(fd, True)
            cap = min(limit, self._left)
            data = bytearray()
            while len(data) <= cap:  # in chunks: memory follows the file, not the limit
                chunk = os.read(fd, min(_CHUNK, cap + 1 - len(data)))
                if not chunk:
                    break
                data += chunk
        finally:
            os.close(fd)
        if len(data) > cap:
            if cap < limit:
                raise self._over_total(path)
            raise ValueError(
                f"{path}: grew past the {_mb(limit)} limit while being read; send a smaller file."
            )
        self._left -= len(data)
        return bytes(data)

    def _over_total(self, path: Path) -> ValueError:
        return ValueError(
            f"{path} takes the cell's files over the {_mb(self.limits.total_bytes)} one cell may read; "
            "name fewer files or raise %config ClaudeMagics.max_files_mb."
        )


def expand_paths(patterns: Sequence[str], limits: Limits | None = None) -> list[Path]:
    """Regular files for `patterns` (`~` and globs expanded), within `limits`."""
    return CellFiles(limits).expand(patterns)


def file_block(path: Path, files: CellFiles | None = None) -> dict[str, Any]:
    """A text block headed by the file's name, or a base64 `document` block for a PDF."""
    files = files or CellFiles()
    data = files.read(path, files.limits.file_bytes)
    if data.startswith(b"%PDF-"):
        return {
            "type": "document",
            "source": {
                "type": "base64",
                "media_type": "application/pdf",
                "data": base64.b64encode(data).decode("ascii"),
            },
            "title": path.name,
        }
    if path.suffix.lower() == ".pdf":
        raise ValueError(f"{path}: named .pdf but it is not a PDF file.")
    if b"\x00" in data[:8192]:
        raise ValueError(f"{path}: a binary file; only text files and PDFs can be sent (images: --image).")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path}: not UTF-8 text (byte {error.start}); convert it, e.g. iconv -t utf-8."
        ) from None
    return {"type": "text", "text": f"File: {path}\n\n{text.rstrip()}"}


def image_block(path: Path, files: CellFiles | None = None) -> dict[str, Any]:
    """A base64 `image` block; the media type comes from the bytes, since a wrong one is a 400.

    A name whose suffix says another type (a JPEG saved as .png) is said in one line, and the
    file sent as what its bytes are: the API judges the bytes, and the user's intent is plain.
    Bytes the API could not decode (`core.image_bytes.image_flaw`) are refused before sending.
    """
    files = files or CellFiles()
    data = files.read(path, files.limits.image_bytes)
    from ..core.image_bytes import image_flaw, image_size, image_type  # here: not when the extension loads
    from ..core.tokens import MAX_IMAGE_EDGE

    media = image_type(data)
    if not data:
        raise ValueError(f"{path}: the file is empty; give an image file (PNG, JPEG, GIF or WebP).")
    if media is None:
        raise ValueError(f"{path}: not a PNG, JPEG, GIF or WebP image; convert it to one of those.")
    kind = media.partition("/")[2].upper()
    flaw = image_flaw(data)
    if flaw is not None:  # the API would answer "Could not process image"
        raise ValueError(f"{path}: {_FLAWS.get(flaw, _FLAWS['damaged']).format(kind)}; re-save it.")
    size = image_size(data) or (0, 0)
    if max(size) > MAX_IMAGE_EDGE:  # a 400 from the API (vision docs, "General limits")
        raise ValueError(
            f"{path}: {size[0]} x {size[1]} px is over the API's limit of {MAX_IMAGE_EDGE} px a side;"
            " resize it (the model sees at most 1568 px on the long edge anyway)."
        )
    named = _SUFFIX_TYPES.get(path.suffix.lower())
    if named is not None and named != media:
        from .output import say

        say(f"{path}: named {path.suffix} but its bytes are a {kind} image; sent as {media}.")
    encoded = base64.b64encode(data).decode("ascii")
    return {"type": "image", "source": {"type": "base64", "media_type": media, "data": encoded}}


def _nearest(path: str) -> str:
    """What a missing file's error adds: a folder that is missing, or the name closest to it in its
    folder, case aside (`(did you mean data/notes.md?)`), or, for a relative path, the folder it was
    looked for from.  A folder of more names than `_NEAREST_SCANNED` is not guessed in: the name
    closest among those read may not be the closest there is."""
    folder, name = os.path.split(path)
    cwd = "" if os.path.isabs(path) else f" in {os.getcwd()}"
    if folder and not os.path.isdir(folder):
        return f" (no folder {folder}{cwd})"
    try:
        with os.scandir(folder or ".") as entries:
            names = [entry.name for _, entry in zip(range(_NEAREST_SCANNED + 1), entries, strict=False)]
    except OSError:
        names = []
    lowered = {n.lower(): n for n in names if n != name}  # `name` itself: a link to nothing
    if len(names) <= _NEAREST_SCANNED and (match := difflib.get_close_matches(name.lower(), lowered, 1, 0.8)):
        return f" (did you mean {os.path.join(folder, lowered[match[0]])}?)"
    return cwd
