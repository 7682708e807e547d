"""The AutoGen prompt-caching guide's API, on the Session.

`Session` owns a `Guide` and delegates the guide's names to it, so the guide's code runs
against a session:

    system_msg = session.cached_system_message(large_document)
    user_msg = session.cached_user_message("Summarise it.")
    response = session.create([system_msg, user_msg])     # or: await session.acreate(...)
    if response.usage.cache_usage:
        print(response.usage.cache_usage.cache_read_tokens, response.cached)

`create` is stateless like AutoGen's model client: the messages passed are the
whole request, and the session's own notebook conversation is not touched.
Every call still goes through the session's `CallPipeline`, so it is checked before sending
(more than 4 cached messages is a `PreflightError` naming them), predicted and
recorded in `session.calls` like any other call.

`GuideRules` are the helpers alone (the markers' rules and error wordings, nothing sent), so
`pcache_magic.autogen`'s client makes its messages by the same rules.  The request and reply
conversion (`to_params`, `create_result`) lives in `_guide_convert` and is re-exported here.

Where the guide is silent, the reference implementation it was written with (an unmerged AutoGen
branch) and this project differ in three places; this project's choice is kept in each:

- `cached_tool_results(results)` with neither `cached_indices` nor `cache_all`: there, a message
  with no markers; here, a `ValueError`.  A helper named "cached" that caches nothing is almost
  always a forgotten argument, and its only effect (a silent cache miss) shows nowhere.
- `cached_indices` together with `cache_all=True`: there, `cache_all` wins; here, a `ValueError`.
  Two arguments that disagree are a mistake; quietly dropping one hides which was meant.
- `response.cached` on a call that only wrote the cache: there, True; here, False.  The guide
  reads it as "This response used cached content", which a write is not: a write costs more
  than an uncached call, and `usage.cache_usage.cache_write_tokens` says it happened.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from ..core.conversation import CacheControl
from ..core.ttl import TTL, TTLS
from ._guide_convert import check_index, create_result, to_params, user_blocks
from .calls import CallPipeline
from .guide_messages import (
    AnthropicFunctionExecutionResultMessage,
    AnthropicSystemMessage,
    AnthropicUserMessage,
    CreateResult,
    FunctionExecutionResult,
    GuideMessage,
)
from .session_settings import Settings

__all__ = ["Guide", "GuideRules", "create_result", "to_params"]

_POLICY = "ephemeral"


def _cache_control(policy: str, ttl: TTL | None) -> CacheControl:
    """The marker for a guide `policy`; plain ValueErrors rather than pydantic's, as the guide says."""
    if policy != _POLICY:
        raise ValueError(
            f'Unsupported cache policy {policy!r}: currently, only "ephemeral" cache policy is supported.'
        )
    if ttl is not None and ttl not in TTLS:
        raise ValueError(f"ttl must be '5m' or '1h' (or None for the default 5 minutes), not {ttl!r}")
    return CacheControl(ttl=ttl)


class _Defaults(Protocol):
    """What the helpers read of their owner: a `GuideRules`, or a `Session` that takes them as its own."""

    @property
    def default_ttl(self) -> TTL | None: ...


class GuideRules:
    """The guide's three helpers: cached messages, checked when made (not at `create`).

    `default_ttl` is the lifetime of a marker when a helper is given no `ttl`.  The helpers read
    nothing else, so `Session` takes them as its own methods (its `default_ttl` is a setting).
    """

    def __init__(self, default_ttl: TTL | None = None) -> None:
        self.default_ttl = default_ttl

    def cached_system_message(
        self: _Defaults, text: str, policy: str = _POLICY, *, ttl: TTL | None = None
    ) -> AnthropicSystemMessage:
        """A system message cached whole (`ttl` defaults to `default_ttl`)."""
        marker = _cache_control(policy, ttl or self.default_ttl)
        if not text.strip():
            raise ValueError("A cached system message needs text: cache_control on an empty block is a 400.")
        return AnthropicSystemMessage(content=text, cache_control=marker)

    def cached_user_message(
        self: _Defaults,
        content: str | list[Any],
        source: str = "user",
        policy: str = _POLICY,
        *,
        ttl: TTL | None = None,
        index: int | None = None,
    ) -> AnthropicUserMessage:
        """A cached user message: a string whole; multipart content on its last text block.

        `index` marks another block instead (e.g. an image); out of range is a ValueError.
        """
        marker = _cache_control(policy, ttl or self.default_ttl)
        message = AnthropicUserMessage(
            content=content, source=source, cache_control=marker, cache_index=index
        )
        user_blocks(message)  # fail now, not at create(), on a bad index or nothing to mark
        return message

    def cached_tool_results(
        self: _Defaults,
        content: Sequence[FunctionExecutionResult],
        cached_indices: Sequence[int] | None = None,
        cache_all: bool = False,
        *,
        policy: str = _POLICY,
        ttl: TTL | None = None,
    ) -> AnthropicFunctionExecutionResultMessage:
        """Tool results with markers on `cached_indices`, or on all of them with `cache_all=True`.

        Neither given, or both, is a `ValueError` (the reference implementation sends no markers for
        the first and lets `cache_all` win for the second): both are mistakes a silent cache miss
        would hide.  An index out of range is a `ValueError` too.
        """
        marker = _cache_control(policy, ttl or self.default_ttl)
        results = list(content)
        if cached_indices is not None and cache_all:
            raise ValueError("Pass either cached_indices or cache_all=True, not both.")
        if cache_all:
            if not results:
                raise ValueError("cache_all=True but there are no tool results to cache.")
            indices: list[int] = list(range(len(results)))
        else:
            if not cached_indices:
                raise ValueError("Say which tool results to cache: cached_indices=[...] or cache_all=True.")
            indices = list(cached_indices)
            for i in indices:
                check_index(i, len(results), "tool results")
        return AnthropicFunctionExecutionResultMessage(
            content=results, cache_control_config=dict.fromkeys(indices, marker)
        )


class Guide:
    """The guide's API on a session: `rules` with its default lifetime, and `create`/`acreate`.

    Given the session's call pipeline (every request is checked and recorded there) and its
    settings (the default model, `max_tokens` and marker lifetime, read at each call).
    """

    def __init__(self, pipeline: CallPipeline, settings: Settings) -> None:
        self._pipeline = pipeline
        self._settings = settings

    @property
    def rules(self) -> GuideRules:
        """The helpers, with the settings' `default_ttl` as it is now."""
        return GuideRules(self._settings.default_ttl)

    def _params(
        self,
        messages: Sequence[GuideMessage],
        tools: Sequence[Mapping[str, Any] | Callable[..., Any]] | None,
        model: str | None,
        max_tokens: int | None,
        extra: Mapping[str, Any],
    ) -> tuple[dict[str, Any], dict[str, str]]:
        if not messages:
            raise ValueError("create() needs at least one message.")
        return to_params(
            messages,
            model=model or self._settings.model,
            max_tokens=self._settings.max_tokens if max_tokens is None else max_tokens,
            tools=tools,
            **extra,
        )

    def create(
        self,
        messages: Sequence[GuideMessage],
        *,
        tools: Sequence[Mapping[str, Any] | Callable[..., Any]] | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        **extra: Any,
    ) -> CreateResult:
        """Send `messages` as one request (checked, recorded in `calls`); the guide's `CreateResult`.

        `extra` passes request fields through (`tool_choice`, `temperature`, ...).
        """
        params, names = self._params(messages, tools, model, max_tokens, extra)
        return create_result(self._pipeline.send("create", params, names, stream=False, on_text=None))

    async def acreate(
        self,
        messages: Sequence[GuideMessage],
        *,
        tools: Sequence[Mapping[str, Any] | Callable[..., Any]] | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        **extra: Any,
    ) -> CreateResult:
        """`create` on the async client, as the guide's `await client.create(...)`."""
        params, names = self._params(messages, tools, model, max_tokens, extra)
        return create_result(await self._pipeline.asend("create", params, names))
