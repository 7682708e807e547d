"""Where two sequences stop holding the same items: the bookkeeping of a growing request.

The session re-renders the same (frozen) blocks and the same rendered dicts call after call, so
what was worked out for a prefix of them (a scan, an index, a rendering) holds while that prefix
is unchanged.  List equality runs at C speed and looks at identity first (about 1 us for a
thousand blocks kept as they were); only a list that changed somewhere is walked item by item.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

__all__ = ["common_prefix"]


def common_prefix(a: Sequence[object], b: Sequence[object], *, identical: bool = False) -> int:
    """How many leading items `a` and `b` share: at least those that are the same objects, and
    all of the shorter one's when every item is the same or equal (an equal item is as good for
    work that depends on its value only).  `identical`: the same objects only (one C loop)."""
    n = min(len(a), len(b))
    if not identical:
        a = a if isinstance(a, list) else list(a)  # a list and a tuple never compare equal
        b = b if isinstance(b, list) else list(b)
        if (a if len(a) == n else a[:n]) == (b if len(b) == n else b[:n]):
            return n
        if n > 1 and a[: n - 1] == b[: n - 1]:  # the usual change: the last one replaced
            return n - 1
    same = list(map(operator.is_, a, b))
    try:
        return same.index(False)
    except ValueError:
        return n
