"""The environment, read on every call without the exception an unset name costs.

`os.environ.get(name)` (and `name in os.environ`) raises and catches a KeyError inside when the
name is unset: about 30 us with cold caches, and a call reads two names (the API key the key
guard hides, the model file `$PCACHE_MODELS`), each every time, since either may change between
calls.  CPython's `os.environ` keeps its data in a plain dict of encoded names: it is read
through that dict when `os.environ` is CPython's own mapping, through the mapping's `get` when it
is anything else (a subclass that overrides a lookup, a plain dict put in its place).
"""

from __future__ import annotations

import os
import re
from typing import Any

__all__ = ["KEY_SHAPE", "getenv", "without_api_key"]

#: Anything shaped like an Anthropic API key: a key pasted where a name goes may be one the session
#: has never seen (the real key typed offline), so it is blotted out by its shape too.
KEY_SHAPE = re.compile(r"sk-ant-[A-Za-z0-9_-]{8,}")


def getenv(name: str) -> str | None:
    """`os.environ.get(name)`, without raising inside for an unset name."""
    env: Any = os.environ
    if type(env) is getattr(os, "_Environ", None):  # CPython's own, no lookup overridden
        raw = getattr(env, "_data").get(env.encodekey(name))  # noqa: B009 (private to os)
        return None if raw is None else str(env.decodevalue(raw))
    return env.get(name)


def without_api_key(text: str) -> str:
    """`text` with `ANTHROPIC_API_KEY` blotted out: a message that quotes a name or a path the user
    typed may quote a key pasted there by mistake (`transport.redact_key` also knows a client's own)."""
    key = (getenv("ANTHROPIC_API_KEY") or "").strip()
    return KEY_SHAPE.sub("[API key]", text.replace(key, "[API key]") if len(key) >= 8 else text)
