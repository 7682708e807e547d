"""The environment, read on every call without the exception an unset name costs.

`os.environ.get(name)` (and `name in os.environ`) raises and catches a KeyError inside when the
name is unset: about 30 us with cold caches, and a call reads two names (the API key the key
guard hides, the model file `$PCACHE_MODELS`), each every time, since either may change between
calls.  CPython's `os.environ` keeps its data in a plain dict of encoded names: it is read
through that dict when it is there, through the mapping's own `get` otherwise.
"""

from __future__ import annotations

import os

__all__ = ["getenv"]


def getenv(name: str) -> str | None:
    """`os.environ.get(name)`, without raising inside for an unset name."""
    env = os.environ
    data = getattr(env, "_data", None)
    encode = getattr(env, "encodekey", None)
    decode = getattr(env, "decodevalue", None)
    if type(data) is dict and callable(encode) and callable(decode):
        raw = data.get(encode(name))
        return None if raw is None else str(decode(raw))
    return env.get(name)
