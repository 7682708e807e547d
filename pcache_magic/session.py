"""The Session: one conversation, the calls made with it, and what the cache did.

The magics and the panel are views of this object; it imports no IPython.
Every call goes through the real `anthropic` SDK client (live or emulated),
is checked before sending (`cache.preflight`), predicted (`cache.Ledger`),
recorded (`usage.CallRecord`) and announced to observers.  A call that fails
or is interrupted leaves the conversation exactly as it was.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

import anthropic
from anthropic.types import Message

from .cache import Finding, Ledger, Prediction, preflight
from .conversation import TTL, Block, CacheControl, Conversation
from .guide import GuideAPI
from .models import ModelInfo, ModelTable, default_models
from .planner import Planner
from .prefix import Breakpoint, CacheRuleError, Layout, layout, resolve_breakpoints
from .tokens import DigestMemo, TokenEstimator
from .toolspec import tool_param
from .transport import Connection, connect
from .usage import CallRecord, Totals, totals
from .volatile import volatile_findings

__all__ = ["DEFAULT_MODEL", "CacheMode", "PreflightError", "Session", "SessionEvent"]

DEFAULT_MODEL = "claude-sonnet-5"
CacheMode = Literal["none", "last", "automatic", "auto"]
"""Markers added to a call beyond the blocks' own: none; one on the last turn (claudette's way);
the API's top-level automatic caching; or the planner's choice of up to four (`auto`)."""
SessionEvent = Literal["blocks", "call", "reset"]
Observer = Callable[[SessionEvent, Any], None]


class PreflightError(ValueError):
    """The request would be rejected (or is wrong); nothing was sent. `.findings` says why."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = list(findings)
        super().__init__("; ".join(f"{f.message} {f.fix}" for f in self.findings))


def _marker(cache: TTL | bool | None, default: TTL | None) -> CacheControl | None:
    """`None`/False: no marker; True: the default lifetime; "5m"/"1h": that lifetime."""
    if cache is None or cache is False:
        return None
    if cache is True:
        return CacheControl(ttl=default)
    if cache not in ("5m", "1h"):
        raise ValueError(f"cache must be '5m' or '1h' (or None), not {cache!r}")
    return CacheControl(ttl=cache)


class Session(GuideAPI):
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
        self.ledger = Ledger()
        self.estimator = TokenEstimator()
        self._digests = DigestMemo()
        self._last_layout: tuple[Mapping[str, Any], Layout] | None = None
        self._observers: list[Observer] = []
        self._planners: dict[str, Planner] = {}

    def __repr__(self) -> str:
        mode = self.connection.mode if self.connection else "custom client"
        blocks, calls = len(self.conversation.blocks), len(self.calls)
        return f"Session(model={self.model!r}, {mode}, {blocks} blocks, {calls} calls)"

    def _repr_html_(self) -> str:
        """The panel's tables, for nbconvert, GitHub and other static views."""
        from .render import session_html  # lazy: a view of the session, loaded only when shown

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

    def advance(self, seconds: float) -> float:
        """Move the emulator's clock (offline only): expire entries without waiting."""
        if self.connection is None:
            raise RuntimeError("This session has no emulator clock to move.")
        now = self.connection.advance(seconds)
        self._emit("blocks")
        return now

    # -- building the conversation ------------------------------------------------------
    def _add(self, block: Block) -> Block:
        self.conversation.add(block)
        self._emit("blocks", block)
        return block

    def system(self, text: str, *, cache: TTL | bool | None = None, name: str | None = None) -> Block:
        """Add (or replace, by name) a system text block."""
        marker = _marker(cache, self.default_ttl)
        if marker and not text.strip():
            raise ValueError("A cached system block needs text: cache_control on an empty block is a 400.")
        block_name = name or self.conversation.unique_name("system")
        content = [{"type": "text", "text": text}] if text else []
        return self._add(Block(name=block_name, role="system", kind="system", content=content, cache=marker))

    def context(
        self,
        content: str | Sequence[Mapping[str, Any]],
        *,
        cache: TTL | bool | None = None,
        name: str | None = None,
        source: str | None = None,
    ) -> Block:
        """Add (or replace) a user context block: text, or SDK content blocks (documents, images)."""
        marker = _marker(cache, self.default_ttl)
        items = [i for i in _content(content) if not (i.get("type") == "text" and not i.get("text"))]
        if marker and not items:
            raise ValueError("A cached context block needs content: the cell is empty.")
        block_name = name or self.conversation.unique_name("context")
        return self._add(
            Block(name=block_name, role="user", kind="context", content=items, cache=marker, source=source)
        )

    def tools(
        self,
        defs: Iterable[Mapping[str, Any] | Callable[..., Any]],
        *,
        cache: TTL | bool | None = None,
        name: str | None = None,
    ) -> Block:
        """Add (or replace) a group of tool definitions (dicts, or functions described by their signature)."""
        marker = _marker(cache, self.default_ttl)
        params = [tool_param(d) for d in defs]
        if not params:
            raise ValueError("No tools given: pass tool definitions (dicts) or functions.")
        block_name = name or self.conversation.unique_name("tools")
        return self._add(
            Block(
                name=block_name, role="tools", kind="tools", content=[dict(p) for p in params], cache=marker
            )
        )

    def drop(self, name: str) -> Block:
        block = self.conversation.drop(name)
        self._emit("blocks", block)
        return block

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
        """The request the next call would send (without the new prompt)."""
        return dict(self._render(self.conversation, cache, model, max_tokens, extra)[0])

    def _render(
        self,
        conversation: Conversation,
        cache: CacheMode | None,
        model: str | None,
        max_tokens: int | None,
        extra: Mapping[str, Any],
    ) -> tuple[dict[str, Any], dict[str, str]]:
        mode = cache or self.cache_mode
        automatic = CacheControl(ttl=self.default_ttl) if mode == "automatic" else None
        working = conversation
        if mode == "last":
            blocks = list(conversation.blocks)
            turns = [i for i, b in enumerate(blocks) if b.role in ("user", "assistant")]
            if turns and blocks[turns[-1]].cache is None:
                blocks[turns[-1]] = blocks[turns[-1]].model_copy(
                    update={"cache": CacheControl(ttl=self.default_ttl)}
                )
                working = Conversation.model_construct(blocks=blocks)
        params, names = working.render(
            model=model or self.model,
            max_tokens=self.max_tokens if max_tokens is None else max_tokens,
            automatic=automatic,
            **extra,
        )
        if mode == "auto":
            return self._planner(str(params["model"])).plan(params, self.now()), names
        return dict(params), names

    def _planner(self, model: str) -> Planner:
        """The model's planner, caught up on this session's calls (it learns from each new one)."""
        planner = self._planners.get(model)
        if planner is None:
            info = self.models.get(model)
            planner = Planner(info, estimator=self.estimator, memo=self._digests)
            for record in self.calls:
                if record.ok:
                    planner.observe(record.request, record.started_at)
            self._planners[model] = planner
        return planner

    def layout(self, params: Mapping[str, Any]) -> Layout:
        """The cache's view of `params`; the last one is kept (checked, then learned from)."""
        last = self._last_layout
        if last is not None and last[0] is params:
            return last[1]
        previous = last[1] if last is not None else None
        lay = layout(params, self.estimator, memo=self._digests, previous=previous)
        self._last_layout = (params, lay)
        return lay

    def check(
        self, params: Mapping[str, Any] | None = None, names: Mapping[str, str] | None = None
    ) -> tuple[list[Finding], list[Prediction]]:
        """Pre-flight findings and per-breakpoint predictions for `params` (default: the next call)."""
        if params is None:
            params, names = self._render(self.conversation, None, None, None, {})
        info = self.models.get(str(params["model"]))
        lay = self.layout(params)
        findings = preflight(params, lay, info, names) + volatile_findings(params, lay, names)
        try:
            points = resolve_breakpoints(lay, params.get("cache_control"))
        except CacheRuleError:
            return findings, []
        predictions, extra = self.ledger.predict(lay, points, info, self.now(), names)
        return findings + extra, predictions

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
        saved = self.conversation.copy_state()
        try:
            self._answer_pending_tool_uses()
            content = _content(prompt)
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
                        content=_run_tools(message, run_tool),
                    )
                )
                message = self._call("tool_loop", cache, model, max_tokens, extra, stream, on_text)
        except BaseException:
            self.conversation = saved
            self._emit("blocks")
            raise
        self._emit("blocks")
        return message

    def _answer_pending_tool_uses(self) -> None:
        """A reply that asked for tools nobody ran gets error results, or the API answers 400."""
        turns = [b for b in self.conversation.blocks if b.role in ("user", "assistant")]
        if not turns or turns[-1].role != "assistant":
            return
        pending = [item for item in turns[-1].content if item.get("type") == "tool_use"]
        if pending:
            results = [
                {
                    "type": "tool_result",
                    "tool_use_id": item["id"],
                    "is_error": True,
                    "content": f"The tool {item.get('name')!r} was not run (no runner, or the round limit).",
                }
                for item in pending
            ]
            name = self.conversation.unique_name(f"{turns[-1].name}-not-run")
            self.conversation.add(Block(name=name, role="user", kind="tool_result", content=results))

    def prewarm(self, *, model: str | None = None) -> Message:
        """Fill the cache for the conversation so far without generating (`max_tokens: 0`)."""
        conversation = self.conversation
        if not any(b.role == "user" for b in conversation.blocks):
            conversation = conversation.copy_state()
            conversation.add(
                Block(
                    name="prewarm",
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

    def _send(
        self,
        kind: Any,
        params: dict[str, Any],
        names: Mapping[str, str],
        *,
        stream: bool,
        on_text: Callable[[str], None] | None,
    ) -> Message:
        """Check, predict, send through the SDK, record.  Raises PreflightError before sending."""
        if self.client is None:
            raise RuntimeError("This session has no synchronous client.")
        record = self.begin_call(kind, params, names)
        started = time.perf_counter()
        begun: Message | None = None
        try:
            if stream:
                with self.client.messages.stream(**sdk_kwargs(params)) as events:
                    for text in events.text_stream:
                        begun = events.current_message_snapshot
                        if on_text is not None:
                            on_text(text)
                    message = events.get_final_message()
            else:
                message = self.client.messages.create(**sdk_kwargs(params))
        except BaseException as error:
            if begun is not None:  # the answer had begun, so its cache writes happened: remember them
                self._learn(params, names, begun)
            self.end_call(record, params, names, started, error=error)
            raise
        return self.end_call(record, params, names, started, message=message)

    async def _asend(self, kind: Any, params: dict[str, Any], names: Mapping[str, str]) -> Message:
        """`_send` for the async client (no streaming): the same checks and records."""
        if self.async_client is None:
            raise RuntimeError("This session has no async client: pass async_client=...")
        record = self.begin_call(kind, params, names)
        started = time.perf_counter()
        try:
            message = await self.async_client.messages.create(**sdk_kwargs(params))
        except BaseException as error:
            self.end_call(record, params, names, started, error=error)
            raise
        return self.end_call(record, params, names, started, message=message)

    def begin_call(self, kind: Any, params: dict[str, Any], names: Mapping[str, str]) -> CallRecord:
        """Check and predict a call about to be sent; PreflightError if it must not go.

        Public so that other clients (e.g. `pcache_magic.autogen`) record into this session.
        """
        findings, predictions = self.check(params, names)
        errors = [f for f in findings if f.level == "error"]
        if errors:
            raise PreflightError(errors)
        if self.diagnostics:
            previous = next((c.response.id for c in reversed(self.calls) if c.response is not None), None)
            params["diagnostics"] = {"previous_message_id": previous}
        return self._start(kind, params, predictions)

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
        record.latency_s = time.perf_counter() - started
        if error is not None:
            record.error = _describe(error)
        else:
            record.response = message
            if message is not None:
                self._learn(params, names, message)
                for planner in self._planners.values():  # each ignores other models' calls
                    planner.observe(params, record.started_at)
        self._finish(record)
        return message

    def _start(self, kind: Any, params: dict[str, Any], predictions: list[Prediction]) -> CallRecord:
        model = str(params["model"])
        prices = self.models.get(model).prices if model in self.models else None
        return CallRecord(
            index=len(self.calls) + 1,
            kind=kind,
            model=model,
            started_at=self.now(),
            request=params,
            estimated=self.offline,
            prices=prices,
            prediction=[p.model_dump() for p in predictions],
        )

    def _learn(self, params: Mapping[str, Any], names: Mapping[str, str], message: Message) -> None:
        lay = self.layout(params)
        try:
            points: list[Breakpoint] = resolve_breakpoints(lay, params.get("cache_control"))
        except CacheRuleError:
            return
        info = self.models.get(str(params["model"]))
        read = message.usage.cache_read_input_tokens or 0
        self.ledger.record(lay, points, info, self.now(), read, names)

    def _finish(self, record: CallRecord) -> None:
        self.calls.append(record)
        self._emit("call", record)


@functools.cache
def _sdk_fields() -> frozenset[str]:
    return frozenset(inspect.signature(anthropic.resources.messages.Messages.create).parameters)


def sdk_kwargs(params: Mapping[str, Any]) -> dict[str, Any]:
    """`params` as keyword arguments for `messages.create`/`stream`.

    Request fields this SDK version has no keyword for (e.g. `temperature` in
    anthropic 2.14) travel in `extra_body`, so the request on the wire is the same.
    """
    known = _sdk_fields()
    kwargs = {k: v for k, v in params.items() if k in known}
    extra = {k: v for k, v in params.items() if k not in known}
    if extra:
        kwargs["extra_body"] = {**kwargs.get("extra_body", {}), **extra}
    return kwargs


def _content(content: str | Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A string as one text block; content-block params copied as given."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [dict(c) for c in content]


def _run_tools(message: Message, run_tool: Callable[[str, dict[str, Any]], Any]) -> list[dict[str, Any]]:
    """Answer every tool_use block of `message` with a tool_result (errors reported, not raised)."""
    results: list[dict[str, Any]] = []
    for block in message.content:
        if block.type != "tool_use":
            continue
        try:
            output = run_tool(block.name, dict(block.input) if isinstance(block.input, Mapping) else {})
            result: dict[str, Any] = {"type": "tool_result", "tool_use_id": block.id, "content": str(output)}
        except Exception as error:  # the model should see the failure and recover
            result = {
                "type": "tool_result",
                "tool_use_id": block.id,
                "is_error": True,
                "content": f"{type(error).__name__}: {error}",
            }
        results.append(result)
    return results


def _describe(error: BaseException) -> str:
    """A one-line account of a failure; SDK errors carry no key, and none is added here."""
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    if isinstance(error, anthropic.APIStatusError):
        return f"{error.status_code} {type(error).__name__}: {error.message}"
    return f"{type(error).__name__}: {error}"
