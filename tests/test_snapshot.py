"""A session file's entries checked against what an emulator server says it holds: an answer that
is not an emulator's leaves them as saved (a hostile server cannot break a load)."""

from __future__ import annotations

from typing import Any

import pytest

from pcache_magic.session.snapshot import _state_shaped


@pytest.mark.parametrize(
    ("state", "shaped"),
    [
        ({"now": 1.0, "entries": [{"model": "m", "tokens": 2048, "ttl": "5m"}]}, True),
        ({"now": 1.0, "entries": []}, True),
        ({"now": 1.0}, False),  # no entries
        ({"entries": []}, False),  # no time
        ({"now": "soon", "entries": []}, False),
        ({"now": 1.0, "entries": [{"model": "m", "tokens": 1}]}, False),  # an entry without its ttl
        ({"now": 1.0, "entries": [{"model": ["m"], "tokens": 1, "ttl": "5m"}]}, False),  # unhashable
        ({"now": 1.0, "entries": ["m"]}, False),
        ([1, 2], False),
        (None, False),
    ],
)
def test_only_an_emulators_state_is_read(state: Any, shaped: bool) -> None:
    assert _state_shaped(state) is shaped
