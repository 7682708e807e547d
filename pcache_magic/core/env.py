"""The environment, read on every call without the exception an unset name costs.

`os.environ.get(name)` (and `name in os.environ`) raises and catches a KeyError inside when the
name is unset: about 30 us with cold caches, and a call reads two names (the API key the key
guard hides, the model file `$PCACHE_MODELS`), each every time, since either may change between
calls.  CPython's `os.environ` keeps its data in a plain dict of encoded names: it is read
through that dict when `os.environ` is CPython's own mapping, through the mapping's `get` when it
is anything else (a subclass that overrides a lookup, a plain dict put in its place).

It also finds a key, or a piece of one, in a short text (`without_pieces`), for the layers that
quote what the user typed back in a message (`core.models`, `session.transport`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["KEY_SHAPE", "MIN_KEY", "PIECE", "getenv", "holds_piece", "without_api_key", "without_pieces"]

#: Anything shaped like an Anthropic API key: a key pasted where a name goes may be one the session
#: has never seen (the real key typed offline), so it is blotted out by its shape too.
KEY_SHAPE = re.compile(r"sk-ant-[A-Za-z0-9_-]{8,}")
#: The shortest string taken for a key, and the shortest run of a key's characters taken for a piece
#: of it (shorter runs would blot out ordinary words).
MIN_KEY = 8
#: What a word holding a piece of a key is replaced by.
PIECE = "[part of the API key]"
#: A word, as `without_pieces` blots it: a key's characters (letters, digits, "-", "_"), so quotes,
#: slashes and "=" around what the user typed are not in it.
_WORD = re.compile(r"[A-Za-z0-9_-]+")
#: A key's public start (`sk-ant-api03-`): the same in every key of its kind, so no secret.
_KIND = re.compile(r"sk-ant-[a-z]+\d*-")


def getenv(name: str) -> str | None:
    """`os.environ.get(name)`, without raising inside for an unset name."""
    env: Any = os.environ
    if type(env) is getattr(os, "_Environ", None):  # CPython's own, no lookup overridden
        raw = getattr(env, "_data").get(env.encodekey(name))  # noqa: B009 (private to os)
        return None if raw is None else str(env.decodevalue(raw))
    return env.get(name)


def without_api_key(text: str, *, pieces: bool = False) -> str:
    """`text` with `ANTHROPIC_API_KEY` blotted out: a message that quotes a name or a path the user
    typed may quote a key pasted there by mistake (`transport.redact_key` also knows a client's own).

    `pieces`, for a short message: also each word holding a piece of the key (`without_pieces`)."""
    key = (getenv("ANTHROPIC_API_KEY") or "").strip()
    if len(key) < MIN_KEY:
        return KEY_SHAPE.sub("[API key]", text)
    text = KEY_SHAPE.sub("[API key]", text.replace(key, "[API key]"))
    return without_pieces(text, [key]) if pieces else text


def _pieces(key: str) -> list[str]:
    """Every run of `MIN_KEY` characters of `key` that holds some of its secret part."""
    start = kind.end() if (kind := _KIND.match(key)) else 0
    return [key[i : i + MIN_KEY] for i in range(max(start - MIN_KEY + 1, 0), len(key) - MIN_KEY + 1)]


def holds_piece(text: str, keys: Iterable[str]) -> bool:
    """Whether `text` shares `MIN_KEY` or more consecutive characters with one of `keys` (the
    public start of a key aside): a key split by a space, glued to other characters or typed with
    one wrong is still mostly the key.  A substring search per piece: cheap for a short text."""
    return any(piece in text for key in keys for piece in _pieces(key))


def without_pieces(text: str, keys: Iterable[str]) -> str:
    """`text` with each word that holds a piece of one of `keys` (`holds_piece`) replaced whole by
    `PIECE`: a message quoting "5<key>" or "/tmp/a<key>.png" shows neither part.  For short texts
    (errors), never a whole file: each piece is searched for in the text."""
    found = [piece for key in keys for piece in _pieces(key) if piece in text]
    if not found:
        return text
    text = _WORD.sub(lambda word: PIECE if any(p in word[0] for p in found) else word[0], text)
    for piece in found:  # a key holding other characters than a word's: its pieces themselves
        text = text.replace(piece, PIECE)
    return text
