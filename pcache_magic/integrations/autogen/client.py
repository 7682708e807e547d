"""An AutoGen model client with the prompt-caching API that AutoGen's guide documents.

`autogen-ext` 0.7.5's `AnthropicChatCompletionClient` has none of the guide's
helpers, merges system messages into one string (so no marker survives) and
reports `input_tokens` alone as `prompt_tokens`, so cached tokens vanish from
its usage.  `CachingAnthropicChatCompletionClient` is that client with the
guide's code working, only the import changed:

    from pcache_magic.autogen import CachingAnthropicChatCompletionClient as AnthropicChatCompletionClient
    from pcache_magic.autogen import AnthropicUserMessage, CacheControl

    client = AnthropicChatCompletionClient(model="claude-sonnet-4-5", api_key=...)
    system_msg = client.cached_system_message(large_document)
    response = await client.create([system_msg, UserMessage(content="...", source="user")])
    if response.usage.cache_usage:
        print(response.usage.cache_usage.cache_read_tokens, response.cached)

The rules and errors are the Session's (`pcache_magic.session.guide`), so both APIs
behave alike, and differ from the reference implementation the guide was written with (an unmerged
AutoGen branch) where the guide is silent: `cached_tool_results` with neither `cached_indices`
nor `cache_all` is a `ValueError` (there: no markers), both together a `ValueError` (there:
`cache_all` wins), and `response.cached` is False on a call that only wrote the cache (there:
True); `pcache_magic.session.guide` gives the reasons.

Pass `anthropic_client=` (e.g. `Emulator().async_client()`) or `base_url=` to run offline, and
`session=` to record each call in a Session (checked before sending, predicted, and shown in the
panel).  Given none of these and no `api_key`, it connects as `Session` does
(`transport.connect`): without `ANTHROPIC_API_KEY`, or with `PCACHE_OFFLINE` or
`PCACHE_EMULATOR_URL` set, calls go to the emulator, and a warning says so once.
Needs `pip install 'pcache-magic[autogen]'`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from collections.abc import AsyncGenerator, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

try:
    from autogen_core import EVENT_LOGGER_NAME, CancellationToken, Image
    from autogen_core.logging import LLMCallEvent, LLMStreamEndEvent, LLMStreamStartEvent
    from autogen_core.models import CreateResult, FunctionExecutionResult, LLMMessage
    from autogen_core.tools import Tool, ToolSchema
    from autogen_ext.models.anthropic import AnthropicChatCompletionClient, AnthropicClientConfiguration
except ModuleNotFoundError as error:  # the extra is optional; say how to get it
    raise ModuleNotFoundError(
        f"pcache_magic.autogen needs AutoGen ({error.name} is missing): pip install 'pcache-magic[autogen]'",
        name=error.name,
    ) from error

from anthropic.types import Message
from pydantic import BaseModel
from typing_extensions import Unpack

from ...core.conversation import CacheControl
from ...core.models import default_models
from ...core.prefix import layout
from ...core.tokens import TokenEstimator
from ...core.ttl import TTL
from ...session.guide import GuideRules, create_result
from ...session.guide_messages import CacheUsage, cache_fields
from ...session.transport import connect, redact_error
from .convert import (
    AnthropicFunctionExecutionResultMessage,
    AnthropicSystemMessage,
    AnthropicUserMessage,
    CachingCreateResult,
    CachingRequestUsage,
    add_usage,
    autogen_result,
    guide_results,
)
from .request import automatic_cache_args, build_request, count_params, model_info_for

if TYPE_CHECKING:
    import anthropic

    from ...core.record import CallRecord
    from ...session.session import Session

__all__ = [
    "AnthropicFunctionExecutionResultMessage",
    "AnthropicSystemMessage",
    "AnthropicUserMessage",
    "CacheControl",
    "CacheUsage",
    "CachingAnthropicChatCompletionClient",
    "CachingCreateResult",
    "CachingRequestUsage",
]

logger = logging.getLogger(EVENT_LOGGER_NAME)

_POLICY = "ephemeral"
_NO_ARGS: Mapping[str, Any] = MappingProxyType({})
#: The configuration that says where calls go; with none of it, `connect` decides, as for Session.
_WHERE = {"base_url", "api_key"}
#: AutoGen's client options that `connect` passes on to the clients it builds.
_CLIENT_OPTIONS = ("timeout", "max_retries", "default_headers")


class CachingAnthropicChatCompletionClient(AnthropicChatCompletionClient):
    """`AnthropicChatCompletionClient` with the guide's prompt caching and honest usage.

    Results are `CachingCreateResult`s (still `CreateResult`s): `usage.prompt_tokens`
    is uncached + written + read, `usage.cache_usage` says what the cache did (None
    when nothing was written or read) and `cached` is True when tokens were read (not on a call
    that only wrote: a write is not "cached content used").
    Each system message is its own system block, so each can carry a marker.

    - `anthropic_client`: an `anthropic.AsyncAnthropic` to send through (not closed by `close()`).
    - `session`: record every call in this Session; without `anthropic_client`,
      `base_url` or `api_key`, calls also go through the session's async client.
    - `default_ttl`: the marker lifetime when a helper is given no `ttl` ("5m" or "1h").
    - `automatic_cache`: send the API's automatic caching (a top-level `cache_control`) on every
      request: True for 5 minutes, or "5m"/"1h".  For agents, whose requests the client does not
      build message by message: the growing conversation is then read back on each call.
    """

    component_provider_override = "pcache_magic.autogen.CachingAnthropicChatCompletionClient"
    _total_usage: CachingRequestUsage
    _actual_usage: CachingRequestUsage

    def __init__(
        self,
        *,
        anthropic_client: anthropic.AsyncAnthropic | None = None,
        session: Session | None = None,
        default_ttl: TTL | None = None,
        automatic_cache: TTL | bool = False,
        **kwargs: Unpack[AnthropicClientConfiguration],
    ) -> None:
        automatic = automatic_cache_args(automatic_cache)
        if "model_info" not in kwargs and (info := model_info_for(kwargs.get("model"))) is not None:
            kwargs["model_info"] = info
        super().__init__(**kwargs)
        if anthropic_client is None and session is not None and not _WHERE & kwargs.keys():
            anthropic_client = session.async_client
        self._unused_client: Any = None  # the one AutoGen built, when another was passed in
        if anthropic_client is None:  # nothing given says where calls go: as a Session would
            anthropic_client = self._fallback()
        if anthropic_client is not None:
            self._unused_client, self._client = self._client, anthropic_client
        self.session = session
        self._rules = GuideRules(default_ttl)  # the Session's checks and error wordings
        self._automatic = automatic
        self._estimator = TokenEstimator()
        self._last_tools: list[dict[str, Any]] = []
        self._total_usage = CachingRequestUsage(prompt_tokens=0, completion_tokens=0)
        self._actual_usage = CachingRequestUsage(prompt_tokens=0, completion_tokens=0)

    def __getstate__(self) -> dict[str, Any]:
        """Pickles like AutoGen's client: the client is rebuilt from the config; the session is dropped."""
        state = super().__getstate__()
        state.update(session=None, _unused_client=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """AutoGen's client rebuilt from the config, or a new emulator's where there was no key."""
        super().__setstate__(state)
        if (fallback := self._fallback()) is not None:
            self._unused_client, self._client = self._client, fallback

    def _fallback(self) -> anthropic.AsyncAnthropic | None:
        """The emulator's client where AutoGen's own has nowhere to go, and a warning that says so.

        With no `base_url` or `api_key` given, `transport.connect` chooses as it does for
        `Session`: offline (no key, `PCACHE_OFFLINE`, `PCACHE_EMULATOR_URL`) its client is used;
        live, AutoGen's own client is kept, as is one that has an auth token instead of a key.
        A bad environment is `connect`'s one-line `ConfigError`, never a traceback with the key.
        """
        config = self._raw_config
        if _WHERE & config.keys() or getattr(self._client, "auth_token", None):
            return None
        connection = connect(**{k: config[k] for k in _CLIENT_OPTIONS if config.get(k) is not None})
        if not connection.offline:
            return None
        warnings.warn(f"pcache_magic.autogen: {connection.notice}", UserWarning, stacklevel=3)
        return connection.async_client

    # -- the guide's helpers ----------------------------------------------------------------

    def cached_system_message(
        self, text: str, policy: str = _POLICY, *, ttl: TTL | None = None
    ) -> AnthropicSystemMessage:
        """A system message cached whole; ValueError for another policy or empty text."""
        checked = self._rules.cached_system_message(text, policy, ttl=ttl)
        return AnthropicSystemMessage(content=checked.content, **cache_fields(checked))

    def cached_user_message(
        self,
        content: str | list[str | Image],
        source: str = "user",
        policy: str = _POLICY,
        *,
        ttl: TTL | None = None,
        index: int | None = None,
    ) -> AnthropicUserMessage:
        """A cached user message: a string whole; multipart content on its last text block.

        `index` marks another block instead (e.g. an image); out of range is a ValueError.
        """
        checked = self._rules.cached_user_message(content, source, policy, ttl=ttl, index=index)
        return AnthropicUserMessage(content=content, source=source, **cache_fields(checked))

    def cached_tool_results(
        self,
        content: Sequence[FunctionExecutionResult],
        cached_indices: Sequence[int] | None = None,
        cache_all: bool = False,
        *,
        policy: str = _POLICY,
        ttl: TTL | None = None,
    ) -> AnthropicFunctionExecutionResultMessage:
        """Tool results with markers on `cached_indices`, or all with `cache_all=True`.

        An index out of range is a ValueError (`Cache index 10 out of range for 3 tool results ...`);
        so are neither argument and both (the reference implementation sends no markers, and lets
        `cache_all` win): a "cached" call that caches nothing, or one of two disagreeing arguments
        dropped, would only show as a silent cache miss.
        """
        checked = self._rules.cached_tool_results(
            guide_results(content), cached_indices, cache_all, policy=policy, ttl=ttl
        )
        return AnthropicFunctionExecutionResultMessage(content=list(content), **cache_fields(checked))

    # -- requests -----------------------------------------------------------------------

    def _request(
        self,
        messages: Sequence[LLMMessage],
        tools: Sequence[Tool | ToolSchema],
        tool_choice: Tool | Literal["auto", "required", "none"],
        json_output: bool | type[BaseModel] | None,
        extra_create_args: Mapping[str, Any],
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """The SDK params and request path -> message name (`build_request`); remembers the tools."""
        args = {**self._create_args, **self._automatic, **extra_create_args}
        params, names, self._last_tools = build_request(
            messages, tools, tool_choice, json_output, args, self.model_info, self._last_tools
        )
        return params, names

    def _begin(self, params: dict[str, Any], names: Mapping[str, str]) -> CallRecord | None:
        """The session's pre-flight check and prediction (PreflightError before anything is sent)."""
        return None if self.session is None else self.session.begin_call("create", params, names)

    def _end(
        self,
        record: CallRecord | None,
        params: dict[str, Any],
        names: Mapping[str, str],
        started: float,
        *,
        message: Message | None = None,
        error: BaseException | None = None,
    ) -> None:
        if self.session is not None and record is not None:
            self.session.end_call(record, params, names, started, message=message, error=error)

    def _result(self, message: Message) -> CachingCreateResult:
        result = autogen_result(create_result(message))
        self._total_usage = add_usage(self._total_usage, result.usage)
        self._actual_usage = add_usage(self._actual_usage, result.usage)
        return result

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = (),
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = _NO_ARGS,
        cancellation_token: CancellationToken | None = None,
    ) -> CachingCreateResult:
        """One request with the markers the messages carry; the result has the cache figures."""
        params, names = self._request(messages, tools, tool_choice, json_output, extra_create_args)
        record = self._begin(params, names)
        started = time.perf_counter()
        try:
            future = asyncio.ensure_future(self._client.messages.create(**params))
            if cancellation_token is not None:
                cancellation_token.link_future(future)
            message: Message = await future
        except BaseException as error:
            self._end(record, params, names, started, error=redact_error(error, self._client))
            raise
        self._end(record, params, names, started, message=message)
        result = self._result(message)
        logger.info(
            LLMCallEvent(
                messages=params["messages"],
                response=message.model_dump(warnings=False),
                prompt_tokens=result.usage.prompt_tokens,
                completion_tokens=result.usage.completion_tokens,
            )
        )
        return result

    async def create_stream(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = (),
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = _NO_ARGS,
        cancellation_token: CancellationToken | None = None,
        max_consecutive_empty_chunk_tolerance: int = 0,
    ) -> AsyncGenerator[str | CreateResult, None]:
        """Text (and thinking) deltas, then the result; the cache figures come from `message_start`."""
        params, names = self._request(messages, tools, tool_choice, json_output, extra_create_args)
        record = self._begin(params, names)
        started = time.perf_counter()
        try:
            manager = self._client.messages.stream(**params)
            opening = asyncio.ensure_future(manager.__aenter__())
            if cancellation_token is not None:
                cancellation_token.link_future(opening)
            stream = await opening
            try:
                logger.info(LLMStreamStartEvent(messages=params["messages"]))
                async for event in stream:
                    if cancellation_token is not None and cancellation_token.is_cancelled():
                        raise asyncio.CancelledError
                    if event.type == "text" and event.text:
                        yield event.text
                    elif event.type == "thinking" and event.thinking:
                        yield event.thinking
                message: Message = await stream.get_final_message()
            finally:
                await manager.__aexit__(None, None, None)
        except BaseException as error:
            self._end(record, params, names, started, error=redact_error(error, self._client))
            raise
        self._end(record, params, names, started, message=message)
        result = self._result(message)
        logger.info(
            LLMStreamEndEvent(
                response=result.model_dump(),
                prompt_tokens=result.usage.prompt_tokens,
                completion_tokens=result.usage.completion_tokens,
            )
        )
        yield result

    # -- tokens and lifetime --------------------------------------------------------------

    def count_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = ()) -> int:
        """pcache_magic's offline estimate of the request's input tokens.

        AutoGen's own count needs tiktoken to download an OpenAI vocabulary at run time.
        """
        params = count_params(messages, tools, str(self._create_args["model"]))
        return layout(params, self._estimator).total_tokens

    def remaining_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = ()
    ) -> int:
        """The context window (from the model table when it knows the model) less `count_tokens`."""
        models, model = default_models(), str(self._create_args["model"])
        if model not in models:
            return super().remaining_tokens(messages, tools=tools)
        return models.get(model).context_window - self.count_tokens(messages, tools=tools)

    def actual_usage(self) -> CachingRequestUsage:
        return self._actual_usage

    def total_usage(self) -> CachingRequestUsage:
        return self._total_usage

    async def close(self) -> None:
        """Close the client this object made; an `anthropic_client` passed in stays open for its owner."""
        if self._unused_client is not None:
            await self._unused_client.close()
        else:
            await super().close()
