"""The settings that shape a session's next request, in one object its parts share.

The parts that build or send requests (blocks, requests, the guide, the call pipeline) are each
given the session's `Settings` and read it when they act, so `session.model = ...` (or
`%config ClaudeMagics.model`, or loading a saved session) reaches all of them at once, with
nothing copied into each part to fall out of step.  `Setting` keeps those names attributes of
`Session` itself.  The fields are those a saved session stores (`store.SavedConfig`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar, cast, overload

from ..core.ttl import TTL

__all__ = [
    "DEFAULT_MODEL",
    "MAX_CONCURRENCY",
    "TOKEN_COUNTS",
    "CacheMode",
    "HasSettings",
    "Setting",
    "Settings",
    "TokenCounts",
]

DEFAULT_MODEL = "claude-sonnet-5"
#: The most calls `Session.map` runs at once (here, not in `fanout`, so `%%claude_map`'s help can
#: say it without importing the fan-out when the extension loads).
MAX_CONCURRENCY = 64
CacheMode = Literal["none", "last", "automatic", "auto"]
"""Markers added to a call beyond the blocks' own: none; one on the last turn (claudette's way);
the API's top-level automatic caching; or the planner's choice of up to four (`auto`)."""

TokenCounts = Literal["auto", "api", "estimate"]
"""Where the pre-flight's token figures come from: `auto` (the API's `count_tokens` on a live
connection to the Anthropic API, the estimate otherwise), `api` (always the endpoint, the
emulator's too), or `estimate` (never a request).  See `counts`."""
TOKEN_COUNTS: tuple[TokenCounts, ...] = ("auto", "api", "estimate")

T = TypeVar("T")


@dataclass
class Settings:
    """What a call uses unless it says otherwise."""

    model: str = DEFAULT_MODEL
    """The model a call goes to unless it names another."""
    max_tokens: int = 1024
    """The answer's limit unless a call gives its own."""
    default_ttl: TTL | None = None
    """The lifetime of a marker asked for without one (`cache=True`, the guide's helpers); None: 5m."""
    cache_mode: CacheMode = "none"
    """The markers added to a call beyond the blocks' own (see `CacheMode`)."""
    diagnostics: bool = True
    """Ask the API why the cache missed (each request names the previous response)."""
    max_cost: float | None = None
    """USD one call may cost at most, its answer counted at `max_tokens`; None: no limit."""
    budget: float | None = None
    """USD the session's calls may cost in all (those made, those in flight, the next); None: no limit."""
    token_counts: TokenCounts = "auto"
    """The pre-flight's prefix figures: counted by the API, or estimated (see `TokenCounts`)."""


class HasSettings(Protocol):
    """The owner of `Setting` attributes: it holds the `Settings` they live in."""

    @property
    def settings(self) -> Settings: ...


class Setting(Generic[T]):
    """An attribute of its owner that lives in the owner's `settings` (`Session.model`, ...)."""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type[Any] | None = None) -> Setting[T]: ...
    @overload
    def __get__(self, obj: HasSettings, owner: type[Any] | None = None) -> T: ...
    def __get__(self, obj: HasSettings | None, owner: type[Any] | None = None) -> T | Setting[T]:
        return self if obj is None else cast(T, getattr(obj.settings, self.name))

    def __set__(self, obj: HasSettings, value: T) -> None:
        setattr(obj.settings, self.name, value)
