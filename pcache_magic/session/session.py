"""The Session: one conversation, the calls made with it, and what the cache did.

The magics and the panel are views of this object; it imports no IPython.
Every call goes through the real `anthropic` SDK client (live or emulated),
is checked before sending (`cache.preflight`), predicted (`cache.Ledger`),
recorded (`usage.CallRecord`) and announced to observers (`calls.CallPipeline`).
A call that fails or is interrupted leaves the conversation exactly as it was.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, cast

import anthropic
from anthropic.types import Message

from ..analysis.cachebook import CacheBook
from ..analysis.ledger import Ledger, Prediction
from ..analysis.planner import Planner
from ..core.conversation import Block, Conversation, cache_control
from ..core.models import ModelInfo, ModelTable, default_models
from ..core.prefix import Layout
from ..core.preflight import Finding
from ..core.record import CallRecord, Totals, totals
from ..core.tokens import TokenEstimator
from ..core.ttl import TTL
from ..core.turns import answer_unanswered_tool_uses, as_content, run_tools
from .blocks import BlocksAPI
from .calls import CallPipeline, PreflightError
from .guide import GuideAPI
from .transport import Connection, connect

__all__ = ["DEFAULT_MODEL", "CacheMode", "PreflightError", "Session", "SessionEvent"]

DEFAULT_MODEL = "claude-sonnet-5"
CacheMode = Literal["none", "last", "automatic", "auto"]
"""Markers added to a call beyond the blocks' own: none; one on the last turn (claudette's way);
the API's top-level automatic caching; or the planner's choice of up to four (`auto`)."""
SessionEvent = Literal["blocks", "call", "reset"]
Observer = Callable[[SessionEvent, Any], None]


class Session(BlocksAPI, GuideAPI, CallPipeline):
    """A notebook's conversation with Claude, with prompt caching made visible."""

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
        self.model = model or DEFAULT_MODEL
        self.models.get(self.model)  # fail early on an unknown model, with a suggestion
        if client is None and connection is None:
            connection = connect()
        self.connection = connection
        self.client = client or (connection.client if connection else None)
        self.async_client = async_client or (connection.async_client if connection and not client else None)
        self._clock = clock or (connection.clock if connection else time.time)
        self.max_tokens = max_tokens
        self.default_ttl = default_ttl
        self.cache_mode: CacheMode = "auto" if auto_cache else "none"
        self.diagnostics = diagnostics
        self.conversation = Conversation()
        self.calls: list[CallRecord] = []
        self.book = CacheBook(self.models)
        self._observers: list[Observer] = []
        self._planners: dict[str, Planner] = {}

    def __repr__(self) -> str:
        mode = self.connection.mode if self.connection else "custom client"
        blocks, calls = len(self.conversation.blocks), len(self.calls)
        return f"Session(model={self.model!r}, {mode}, {blocks} blocks, {calls} calls)"

    def _repr_html_(self) -> str:
        """The panel's tables, for nbconvert, GitHub and other static views."""
        from ..view.render import session_html

        return session_html(self)

    # -- observers ----------------------------------------------------------------------
    def subscribe(self, observer: Observer) -> Callable[[], None]:
        """Call `observer(event, payload)` on every change; returns the unsubscribe function."""
        self._observers.append(observer)
        return lambda: self._observers.remove(observer) if observer in self._observers else None

    def _emit(self, event: SessionEvent, payload: Any = None) -> None:
        for observer in list(self._observers):
            observer(event, payload)

    # -- time ---------------------------------------------------------------------------
    def now(self) -> float:
        return self._clock()

    @property
    def offline(self) -> bool:
        return self.connection is not None and self.connection.offline

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
        now = self.connection.advance(seconds)
        self._emit("blocks")
        return now

    # -- the conversation as a whole ----------------------------------------------------
    def reset(self) -> None:
        """Forget the conversation, the calls and the ledger (the API's cache entries live on)."""
        self.conversation = Conversation()
        self.calls.clear()
        self.ledger.clear()
        self._planners.clear()
        self._emit("reset")

    def restore(self, conversation: Conversation, calls: Sequence[CallRecord], **settings: Any) -> None:
        """Replace the whole state (loading a saved session); observers redraw from scratch."""
        for key, value in settings.items():
            if not hasattr(self, key):
                raise AttributeError(f"Session has no setting {key!r}")
            setattr(self, key, value)
        self.conversation = conversation
        self.calls[:] = calls
        self.ledger.clear()
        self._planners.clear()
        self._emit("reset")

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
        return copy.deepcopy(self._render(self.conversation, cache, model, max_tokens, extra)[0])

    def next_request(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The next call's params (no prompt yet) and request path -> block name; read-only, not a copy."""
        return self._render(self.conversation, None, None, None, {})

    def _render(
        self,
        conversation: Conversation,
        cache: CacheMode | None,
        model: str | None,
        max_tokens: int | None,
        extra: Mapping[str, Any],
    ) -> tuple[dict[str, Any], dict[str, str]]:
        mode = cache or self.cache_mode
        params, names = conversation.render(
            model=model or self.model,
            max_tokens=self.max_tokens if max_tokens is None else max_tokens,
            automatic=cache_control(self.default_ttl) if mode == "automatic" else None,
            last_turn=cache_control(self.default_ttl) if mode == "last" else None,
            **extra,
        )
        if mode == "auto":
            return self._planner(str(params["model"])).plan(params, self.now()), names
        return cast(dict[str, Any], params), names

    def _planner(self, model: str) -> Planner:
        """The model's planner, caught up on this session's calls (it learns from each new one)."""
        planner = self._planners.get(model)
        if planner is None:
            info = self.models.get(model)
            planner = Planner(info, estimator=self.estimator, memo=self.book.digests)
            for record in self.calls:
                if record.ok:
                    planner.observe(record.request, record.started_at)
            self._planners[model] = planner
        return planner

    def layout(self, params: Mapping[str, Any]) -> Layout:
        """The cache's view of `params` (see `CacheBook.layout`)."""
        return self.book.layout(params)

    def check(
        self, params: Mapping[str, Any] | None = None, names: Mapping[str, str] | None = None
    ) -> tuple[list[Finding], list[Prediction]]:
        """Pre-flight findings and per-breakpoint predictions for `params` (default: the next call)."""
        if params is None:
            params, names = self.next_request()
        return self.book.check(params, names, self.models.get(str(params["model"])), self.now())

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
        **extra: Any,
    ) -> Message:
        """Send the conversation plus `prompt` as the next user turn; keep the reply.

        With `run_tool`, tool calls are answered (`run_tool(name, input)`) and
        the loop continues until the turn ends or `max_tool_rounds` is reached.
        On any failure, including Ctrl-C mid-stream, the conversation is restored.
        """
        conversation = self.conversation
        saved = list(conversation.blocks)  # blocks are frozen: the list is the whole state
        try:
            answer_unanswered_tool_uses(self.conversation)
            content = as_content(prompt)
            turn = name or self.conversation.unique_name("prompt")
            self.conversation.add(Block(name=turn, role="user", kind="prompt", content=content))
            message = self._call("ask", cache, model, max_tokens, extra, stream, on_text)
            rounds = 0
            while run_tool is not None and message.stop_reason == "tool_use" and rounds < max_tool_rounds:
                rounds += 1
                self.conversation.add(
                    Block(
                        name=self.conversation.unique_name(f"{turn}-tool-result"),
                        role="user",
                        kind="tool_result",
                        content=run_tools(message, run_tool),
                    )
                )
                message = self._call("tool_loop", cache, model, max_tokens, extra, stream, on_text)
        except BaseException:
            conversation.blocks[:] = saved
            self.conversation = conversation
            self._emit("blocks")
            raise
        self._emit("blocks")
        return message

    def prewarm(self, *, model: str | None = None) -> Message:
        """Fill the cache for the conversation so far without generating (`max_tokens: 0`).

        A placeholder user turn goes last when the conversation has none there: a request needs
        one, and newer models refuse to continue an assistant turn.  It follows every block, so
        the cached prefix is the conversation's own.  Tool calls nobody answered get their error
        results in the request, as `ask` would send them, but the conversation keeps nothing."""
        conversation = self.conversation.copy_state()
        answer_unanswered_tool_uses(conversation)
        last = conversation.last_turn()
        if last is None or last.role != "user":
            conversation.add(
                Block(
                    name=conversation.unique_name("prewarm"),
                    role="user",
                    kind="prompt",
                    content=[{"type": "text", "text": "(pre-warming the cache)"}],
                )
            )
        params, names = self._render(conversation, "none", model, 0, {})
        return self._send("prewarm", params, names, stream=False, on_text=None)

    def _call(
        self,
        kind: Any,
        cache: CacheMode | None,
        model: str | None,
        max_tokens: int | None,
        extra: Mapping[str, Any],
        stream: bool,
        on_text: Callable[[str], None] | None,
    ) -> Message:
        params, names = self._render(self.conversation, cache, model, max_tokens, extra)
        message = self._send(kind, params, names, stream=stream, on_text=on_text)
        reply = [block.model_dump(exclude_none=True) for block in message.content]
        if reply:
            reply_name = self.conversation.unique_name("reply")
            self.conversation.add(Block(name=reply_name, role="assistant", kind="reply", content=reply))
        return message
