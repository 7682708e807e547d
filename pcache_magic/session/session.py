"""The Session: one conversation, the calls made with it, and what the cache did.

The magics and the panel are views of it; it imports no IPython and no view (the extension
registers the panel's HTML for a Session with IPython).  It is built from parts, each given
what it needs and testable without a Session; its methods delegate to them:

- `settings`: what a call uses unless it says otherwise (`session.model` etc. are its fields);
- `conversation`, `calls`, `book` (`CacheBook`: the ledger, pre-flight checks, predictions);
- `Blocks` (system, context, tools, drop); `Requests` and `Planners` (the next request);
- `CallPipeline` (check, send, record); `Chat` (`ask`, `prewarm`); `Guide` (the AutoGen
  guide's API); `Observers` (whoever `subscribe`d).

A call that fails or is interrupted leaves the conversation as it was.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import anthropic
from anthropic.types import Message

from ..analysis.cachebook import CacheBook
from ..analysis.ledger import Ledger, Prediction
from ..core.conversation import Block, Conversation
from ..core.fmt import plural
from ..core.models import ModelInfo, ModelTable, default_models
from ..core.prefix import Layout
from ..core.preflight import Finding
from ..core.record import CallRecord, Totals, totals
from ..core.tokens import TokenEstimator
from ..core.ttl import TTL
from . import export, fanout, store
from .blocks import Blocks
from .calls import CallInProgress, CallPipeline, PreflightError
from .chat import Chat
from .guide import Guide, GuideRules
from .guide_messages import CreateResult, GuideMessage
from .keepwarm import KeepWarmer
from .observers import Observer, Observers, SessionEvent
from .requests import Planners, Requests
from .session_settings import DEFAULT_MODEL, CacheMode, Setting, Settings, TokenCounts
from .transport import Connection, connect, secrets

__all__ = ["DEFAULT_MODEL", "CacheMode", "CallInProgress", "PreflightError", "Session", "SessionEvent"]


class Session:
    """A notebook's conversation with Claude, with prompt caching made visible."""

    model = Setting[str]()
    max_tokens = Setting[int]()
    token_counts = Setting[TokenCounts]()
    default_ttl = Setting[TTL | None]()
    cache_mode = Setting[CacheMode]()
    diagnostics = Setting[bool]()
    max_cost = Setting[float | None]()
    budget = Setting[float | None]()
    save = store.save
    load = store.load_into
    export = export.export
    map = fanout.map_items

    def __init__(
        self,
        model: str | None = None,
        client: anthropic.Anthropic | None = None,
        *,
        max_tokens: int = 1024,
        async_client: anthropic.AsyncAnthropic | None = None,
        connection: Connection | None = None,
        models: ModelTable | None = None,
        clock: Callable[[], float] | None = None,
        default_ttl: TTL | None = None,
        auto_cache: bool = False,
        diagnostics: bool = True,
    ) -> None:
        self.models = models or default_models()
        self._settings = Settings(
            model=model or DEFAULT_MODEL,
            max_tokens=max_tokens,
            default_ttl=default_ttl,
            cache_mode="auto" if auto_cache else "none",
            diagnostics=diagnostics,
        )
        self.models.get(self.model)  # fail early on an unknown model, with a suggestion
        if client is None and connection is None:
            connection = connect()
        self.connection = connection
        self._clock = clock or (connection.clock if connection else time.time)
        self.conversation = Conversation()
        self._calls: list[CallRecord] = []
        self.book = CacheBook(self.models)
        self._observers = Observers()
        self._planners = Planners(self.models, self.book, self.calls)
        self._requests = Requests(self.settings, self._planners, self._clock, lambda: secrets(self.client))
        self._pipeline = CallPipeline(
            client=client or (connection.client if connection else None),
            async_client=async_client or (connection.async_client if connection and not client else None),
            models=self.models,
            book=self.book,
            calls=self.calls,
            planners=self._planners,
            settings=self.settings,
            clock=self._clock,
            emit=self._observers.emit,
            estimated=self.offline,
        )
        self._blocks = Blocks(self.settings, self._observers.emit, self._requests.check_name)
        self._chat = Chat(self._requests, self._pipeline, self._observers.emit)
        self._guide = Guide(self._pipeline, self.settings)
        self.keepwarm = KeepWarmer(
            self.book, self.calls, self._clock, self.prewarm, self._observers, live=not self.offline
        )
        """Opt-in refreshes of entries before they die (`session.keepwarm.start()`)."""

    def __repr__(self) -> str:
        mode = self.connection.mode if self.connection else "custom client"
        blocks, calls = plural(len(self.conversation.blocks), "block"), plural(len(self.calls), "call")
        return f"Session(model={self.model!r}, {mode}, {blocks}, {calls})"

    # -- parts that stay the same objects, clients, observers, time --------------------------
    @property
    def settings(self) -> Settings:
        """What a call uses unless it says otherwise; the parts share this one object."""
        return self._settings

    @property
    def calls(self) -> list[CallRecord]:
        """The calls made, failed ones included: the pipeline appends to this very list."""
        return self._calls

    @property
    def client(self) -> anthropic.Anthropic | None:
        """The SDK client calls go through; assign another (e.g. new retry options) to use it."""
        return self._pipeline.client

    @client.setter
    def client(self, client: anthropic.Anthropic | None) -> None:
        self._pipeline.client = client

    @property
    def async_client(self) -> anthropic.AsyncAnthropic | None:
        """The client `acreate` goes through (and `pcache_magic.autogen`, given this session)."""
        return self._pipeline.async_client

    @async_client.setter
    def async_client(self, client: anthropic.AsyncAnthropic | None) -> None:
        self._pipeline.async_client = client

    def subscribe(self, observer: Observer) -> Callable[[], None]:
        """Call `observer(event, payload)` on every change; returns the unsubscribe function."""
        return self._observers.subscribe(observer)

    def now(self) -> float:
        return self._clock()

    @property
    def offline(self) -> bool:
        return self.connection is not None and self.connection.offline

    @property
    def lock(self) -> AbstractContextManager[Any]:
        """Held for a whole turn (re-entrant): hold it to read the session between turns (`save` does)."""
        return self._pipeline.lock

    @property
    def ledger(self) -> Ledger:
        """The session's record of its cache writes (what the panel counts down)."""
        return self.book.ledger

    @property
    def estimator(self) -> TokenEstimator:
        return self.book.estimator

    def advance(self, seconds: float) -> float:
        """Move the emulator's clock (offline only): expire entries without waiting."""
        if self.connection is None:
            raise RuntimeError("This session has no emulator clock to move.")
        now = self.keepwarm.advance(seconds, self.connection.advance)  # refreshes due on the way go out
        self._observers.emit("blocks")
        return now

    # -- the conversation as a whole ----------------------------------------------------
    def reset(self) -> None:
        """Forget the conversation and the calls (and the names their blocks were sent under); the
        ledger keeps the cache entries, which live on."""
        self.restore(Conversation(), [], entries=self.ledger.dump(), block_names={})

    def restore(self, conversation: Conversation, calls: Sequence[CallRecord], **settings: Any) -> None:
        """Replace the whole state; `entries=`: the ledger's (`Ledger.dump`); `block_names=`: the
        book's names of the blocks sent (`CacheBook.names`, kept when not given); observers redraw."""
        entries = settings.pop("entries", ())
        block_names = settings.pop("block_names", None)
        with self._between_turns("A reset or a load"):
            for key, value in settings.items():
                if not hasattr(self, key):
                    raise AttributeError(f"Session has no setting {key!r}")
                setattr(self, key, value)
            self.conversation = conversation
            self.calls[:] = calls
            self.ledger.load(entries)
            if block_names is not None:
                self.book.names = dict(block_names)
            self._planners.clear()
            self._observers.emit("reset")

    # -- blocks -------------------------------------------------------------------------
    def system(self, text: str, *, cache: TTL | bool | None = None, name: str | None = None) -> Block:
        """Add (or replace, by name) a system text block."""
        with self._between_turns("A block change"):
            return self._blocks.system(self.conversation, text, cache=cache, name=name)

    def context(
        self,
        content: str | Sequence[Mapping[str, Any]],
        *,
        cache: TTL | bool | None = None,
        name: str | None = None,
        source: str | None = None,
    ) -> Block:
        """Add (or replace) a user context block: text, or SDK content blocks (documents, images)."""
        with self._between_turns("A block change"):
            return self._blocks.context(self.conversation, content, cache=cache, name=name, source=source)

    def tools(
        self,
        defs: Iterable[Mapping[str, Any] | Callable[..., Any]],
        *,
        cache: TTL | bool | None = None,
        name: str | None = None,
    ) -> Block:
        """Add (or replace) a group of tool definitions (dicts, or functions described by their signature)."""
        with self._between_turns("A block change"):
            return self._blocks.tools(self.conversation, defs, cache=cache, name=name)

    def drop(self, name: str) -> Block:
        """Remove a block; a reply's tool results go with it (alone they are a 400)."""
        with self._between_turns("A block change"):
            return self._blocks.drop(self.conversation, name)

    @contextlib.contextmanager
    def _between_turns(self, what: str) -> Iterator[None]:
        """The pipeline's lock (another thread's turn is waited for); from inside this thread's turn
        (`on_text`, `run_tool`, an observer) a `CallInProgress`, as a nested ask is: the turn's undo
        and its record would no longer match the conversation."""
        with self._pipeline.lock:
            if self._chat.turning:
                raise CallInProgress(
                    f"{what} is refused during ask() (from on_text, run_tool or an observer); "
                    "do it after that one returns."
                )
            yield

    # -- inspection ---------------------------------------------------------------------
    @property
    def info(self) -> ModelInfo:
        return self.models.get(self.model)

    def params(
        self,
        *,
        cache: CacheMode | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """The request the next call would send (without the new prompt): a copy, yours to edit."""
        rendered = self._requests.render(
            self.conversation, cache=cache, model=model, max_tokens=max_tokens, **extra
        )
        return copy.deepcopy(rendered[0])

    def next_request(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The next call's params (no prompt yet) and request path -> block name; read-only, not a copy."""
        return self._requests.render(self.conversation)

    def layout(self, params: Mapping[str, Any]) -> Layout:
        """The cache's view of `params` (see `CacheBook.layout`)."""
        return self.book.layout(params)

    def check(
        self, params: Mapping[str, Any] | None = None, names: Mapping[str, str] | None = None
    ) -> tuple[list[Finding], list[Prediction]]:
        """Pre-flight findings and per-breakpoint predictions for `params` (default: the next call)."""
        if params is None:
            params, names = self.next_request()
        return self._pipeline.check(params, names)

    @property
    def totals(self) -> Totals:
        return totals(self.calls)

    # -- calls --------------------------------------------------------------------------
    def ask(
        self,
        prompt: str | Sequence[Mapping[str, Any]],
        *,
        stream: bool = True,
        on_text: Callable[[str], None] | None = None,
        cache: CacheMode | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        name: str | None = None,
        run_tool: Callable[[str, dict[str, Any]], Any] | None = None,
        max_tool_rounds: int = 8,
        blocking: bool = True,
        **extra: Any,
    ) -> Message:
        """Send the conversation plus `prompt` as the next user turn; keep the reply.

        With `run_tool`, tool calls are answered (`run_tool(name, input)`) and
        the loop continues until the turn ends or `max_tool_rounds` is reached.
        On any failure, including Ctrl-C mid-stream, the conversation is restored.
        A call in another thread is waited for (`blocking=False`: `CallInProgress` at once).
        """
        with self._pipeline.exclusive(blocking=blocking):  # then read the conversation of now
            return self._chat.ask(
                self.conversation,
                prompt,
                stream=stream,
                on_text=on_text,
                cache=cache,
                model=model,
                max_tokens=max_tokens,
                name=name,
                run_tool=run_tool,
                max_tool_rounds=max_tool_rounds,
                **extra,
            )

    def prewarm(self, *, model: str | None = None) -> Message:
        """Fill the cache for the conversation so far without generating (`max_tokens: 0`).

        The conversation keeps nothing of it (see `Chat.prewarm`)."""
        return self._chat.prewarm(self.conversation, model=model)

    def begin_call(self, kind: Any, params: dict[str, Any], names: Mapping[str, str]) -> CallRecord:
        """Check and predict a call about to be sent; PreflightError if it must not go.

        Public so that other clients (e.g. `pcache_magic.autogen`) record into this session.
        """
        return self._pipeline.begin_call(kind, params, names)

    def end_call(
        self,
        record: CallRecord,
        params: Mapping[str, Any],
        names: Mapping[str, str],
        started: float,
        *,
        message: Message | None = None,
        error: BaseException | None = None,
    ) -> Any:
        """Record the outcome of a call begun with `begin_call`, and tell the observers."""
        return self._pipeline.end_call(record, params, names, started, message=message, error=error)

    # -- the AutoGen guide's API --------------------------------------------------------
    cached_system_message = GuideRules.cached_system_message  # `ttl` defaults to `default_ttl`
    cached_user_message = GuideRules.cached_user_message
    cached_tool_results = GuideRules.cached_tool_results

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

        Stateless, like AutoGen's client: the conversation is not touched.  `extra` passes
        request fields through (`tool_choice`, `temperature`, ...), if plain JSON (else ValueError).
        """
        self._requests.check(extra, max_tokens)
        return self._guide.create(messages, tools=tools, model=model, max_tokens=max_tokens, **extra)

    async def acreate(
        self,
        messages: Sequence[GuideMessage],
        *,
        tools: Sequence[Mapping[str, Any] | Callable[..., Any]] | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        **extra: Any,
    ) -> CreateResult:
        """`create` on the session's async client, as the guide's `await client.create(...)`."""
        self._requests.check(extra, max_tokens)
        return await self._guide.acreate(messages, tools=tools, model=model, max_tokens=max_tokens, **extra)
