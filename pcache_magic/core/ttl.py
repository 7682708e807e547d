"""Cache lifetimes: the one TTL type, its values and their length in seconds."""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["TTL", "TTLS", "TTL_SECONDS"]

TTL = Literal["5m", "1h"]
"""A cache marker's lifetime, as the API spells it (`cache_control.ttl`)."""
TTLS: tuple[TTL, ...] = get_args(TTL)
TTL_SECONDS: dict[str, int] = {"5m": 300, "1h": 3600}
