"""`Session.map`: one call per item over the session's cached prefix, written once and read N-1 times.

Sent naively in parallel, N requests over one prefix all start before the first one's cache entry
exists, so all N write it (1.25x the input price) instead of one writing and N-1 reading (0.1x).
`map_items` sends the first item alone, so its reply has written the prefix, then the rest with
bounded concurrency (threads over the session's sync client, each call checked and recorded by
the call pipeline, the SDK retrying as it is configured to).  When the prefix is already cached,
or too short to cache, nothing waits.  A separate `max_tokens: 0` pre-warm would cost one read more
than letting the first item write, so the first item is the warm-up.

The conversation is not changed: each item is its own request, the prefix plus one user turn.
The prefix is the conversation as it stands (unanswered tool calls answered, as `ask` would),
with a marker on its last block when `cache` asks for one and none is there.

The template: `{item}` is the item; `{item[key]}` a key of a mapping item (or an index of a
sequence); `{item.name}` an attribute; `{{item}}` the literal text.  Nothing else is read or run,
and every other brace is sent as written.  Or pass a function of the item that returns the prompt.

Results come back in input order (`MapResult`), failures per item; Ctrl-C raises `MapInterrupted`,
which holds the results finished so far.  `predict_map` (`fanout_plan`) prices it all beforehand.
"""

from __future__ import annotations

import concurrent.futures as futures
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..core.conversation import Block, Conversation, cache_control
from ..core.preflight import PreflightError
from ..core.ttl import TTL
from ..core.turns import answer_unanswered_tool_uses, sdk_kwargs
from . import batch
from .budget import check_limits
from .fanout_plan import ItemResult, MapError, MapInterrupted, MapPlan, MapResult, predict_map
from .replies import MalformedReply, reraise
from .session_settings import MAX_CONCURRENCY
from .transport import redact_error

if TYPE_CHECKING:
    from anthropic.types import Message

    from ..core.record import CallRecord
    from .protocol import SessionLike as Session

__all__ = [
    "ItemResult",
    "MapError",
    "MapInterrupted",
    "MapPlan",
    "MapResult",
    "map_items",
    "plan_map",
    "render_template",
]

_PATH = r"item(?:\[[^\[\]{}\n]+\]|\.[A-Za-z_]\w*)?"
_FIELD = re.compile(rf"\{{\{{(?P<literal>{_PATH})\}}\}}|\{{(?P<field>{_PATH})\}}")

Template = str | Callable[[Any], str]


def render_template(template: Template, item: Any, index: int = 0) -> str:
    """The prompt for `item` (see the module's doc); MapError naming the item when it cannot be made."""
    if callable(template):
        text = template(item)
        if not isinstance(text, str):
            raise MapError(f"item {index}: the template function returned {type(text).__name__}, not str.")
        return text

    def replace(match: re.Match[str]) -> str:
        literal = match.group("literal")
        return "{" + literal + "}" if literal is not None else _field(match.group("field"), item, index)

    return _FIELD.sub(replace, template)


def _field(path: str, item: Any, index: int) -> str:
    value = item
    if path.startswith("item["):
        key: Any = path[5:-1].strip()
        if len(key) > 1 and key[0] == key[-1] and key[0] in "'\"":
            key = key[1:-1]
        elif key.lstrip("-").isdigit() and not isinstance(item, Mapping):
            key = int(key)
        try:
            value = item[key]
        except (KeyError, IndexError, TypeError) as error:
            raise MapError(
                f"item {index} ({_short(item)}): {{{path}}} failed ({type(error).__name__}); "
                "give every item that key, or change the template."
            ) from None
    elif path.startswith("item."):
        name = path[5:]
        if name.startswith("_"):
            raise MapError(f"{{{path}}}: private and dunder attributes are not put into a prompt.")
        try:
            value = getattr(item, name)
        except Exception as error:  # a property may raise anything: one line, naming the item
            raise MapError(
                f"item {index} ({_short(item)}): {{{path}}} failed ({type(error).__name__}: {error})."
            ) from None
    try:
        return str(value)
    except Exception as error:
        raise MapError(
            f"item {index}: str() of {{{path}}} failed ({type(error).__name__}: {error})."
        ) from None


def _short(item: Any) -> str:
    try:
        text = repr(item)
    except Exception:  # a hostile or broken __repr__: the type is enough to find it
        text = f"<{type(item).__name__}>"
    return text if len(text) <= 40 else text[:37] + "..."


def _prefix(session: Session, cache: TTL | bool | None) -> Conversation:
    """The conversation as a request prefix, on its own renderings (the session's are not touched)."""
    prefix = Conversation(blocks=list(session.conversation.blocks))
    answer_unanswered_tool_uses(prefix)
    if cache is False or cache is None or not prefix.blocks:
        return prefix
    ordered = list(prefix.in_request_order())
    last, marked = ordered[-1], sum(1 for b in ordered if b.cache is not None)
    if last.cache is None and marked < 4:
        ttl = session.default_ttl if cache is True else cache
        prefix.add(last.model_copy(update={"cache": cache_control(ttl)}))
    return prefix


def _request(
    session: Session, prefix: Conversation, prompt: str, model: str, max_tokens: int
) -> tuple[dict[str, Any], dict[str, str]]:
    """The prefix plus `prompt` as one more user turn (the prefix's renderings are reused)."""
    conversation = prefix.copy_state()
    name = conversation.unique_name("map-item")
    conversation.add(Block(name=name, role="user", kind="prompt", content=[{"type": "text", "text": prompt}]))
    params, names = conversation.render(model=model, max_tokens=max_tokens)
    return dict(params), names


def plan_map(
    session: Session,
    items: Iterable[Any],
    template: Template,
    *,
    cache: TTL | bool | None = True,
    model: str | None = None,
    max_tokens: int | None = None,
    batch: bool = False,
) -> MapPlan:
    """What `map` would cost (and naive parallel, and no caching), sending nothing."""
    return _prepare(session, list(items), template, cache, model, max_tokens, batch)[1]


def _prepare(
    session: Session,
    items: list[Any],
    template: Template,
    cache: TTL | bool | None,
    model: str | None,
    max_tokens: int | None,
    batch: bool = False,
) -> tuple[list[str], MapPlan, Conversation, str, int]:
    if not items:
        raise MapError("There are no items to map over: pass a non-empty list.")
    if isinstance(template, str) and not _FIELD.search(template):
        raise MapError("The template has no {item}: every call would be the same; put {item} where it goes.")
    prompts = [render_template(template, item, i) for i, item in enumerate(items)]
    model = model or session.model
    limit = session.max_tokens if max_tokens is None else max_tokens
    if limit < 1:
        raise MapError(f"max_tokens must be at least 1 for a map, not {limit}.")
    prefix = _prefix(session, cache)
    params, names = _request(session, prefix, prompts[0], model, limit)
    findings, predictions = session.check(params, names)
    errors = [f for f in findings if f.level == "error"]
    if errors:
        raise PreflightError(errors)
    plan = predict_map(session, params, predictions, prompts, limit, batch=batch)
    return prompts, plan, prefix, model, limit


def map_items(
    session: Session,
    items: Iterable[Any],
    template: Template,
    *,
    concurrency: int = 8,
    cache: TTL | bool | None = True,
    batch: bool = False,
    model: str | None = None,
    max_tokens: int | None = None,
    on_plan: Callable[[MapPlan], None] | None = None,
    on_progress: Callable[[ItemResult], None] | None = None,
) -> MapResult:
    """One call per item: `template` rendered for it, after the conversation's cached prefix.

    `cache`: the marker put on the prefix's last block when it has none (True: the session's
    `default_ttl`, or "5m"/"1h"; False: the blocks' own markers only).  `on_plan` sees the
    prediction before anything is sent; `on_progress` each item as it finishes (in this thread).
    The session's `max_cost` and `budget` are checked against the prediction first (BudgetError).
    `batch=True` sends through the Message Batches API (`batch.run_batch`).
    """
    if (
        isinstance(concurrency, bool)
        or not isinstance(concurrency, int)
        or not 1 <= concurrency <= MAX_CONCURRENCY
    ):
        raise MapError(f"concurrency is a whole number from 1 to {MAX_CONCURRENCY}, not {concurrency!r}.")
    listed = list(items)
    prompts, plan, prefix, model, limit = _prepare(session, listed, template, cache, model, max_tokens, batch)
    if on_plan is not None:
        on_plan(plan)
    check_limits(
        f"this map of {len(listed)} calls",
        plan.bound.total,
        per_call=plan.dearest,
        max_cost=session.max_cost,
        budget=session.budget,
        spent=session.totals.cost.total,
    )
    results: list[ItemResult | None] = [None] * len(listed)
    run = _Run(session, prefix, model, limit, listed, prompts, results, on_progress)
    try:
        if batch:
            run.batch()
        else:
            run.fan_out(concurrency, warm=plan.warm)
    except KeyboardInterrupt:
        raise MapInterrupted(MapResult.of(listed, prompts, results, plan, interrupted=True)) from None
    return MapResult.of(listed, prompts, results, plan)


class _Run:
    """One map under way: its requests are rendered here, on the calling thread, one at a time."""

    def __init__(
        self,
        session: Session,
        prefix: Conversation,
        model: str,
        max_tokens: int,
        items: list[Any],
        prompts: list[str],
        results: list[ItemResult | None],
        on_progress: Callable[[ItemResult], None] | None,
    ) -> None:
        self.session, self.prefix, self.model, self.max_tokens = session, prefix, model, max_tokens
        self.items, self.prompts, self.results, self.on_progress = items, prompts, results, on_progress

    def request(self, i: int) -> tuple[dict[str, Any], dict[str, str]]:
        return _request(self.session, self.prefix, self.prompts[i], self.model, self.max_tokens)

    def done(self, i: int, record: CallRecord | None, message: Message | None, error: str | None) -> None:
        result = ItemResult(i, self.items[i], self.prompts[i], message=message, error=error, record=record)
        self.results[i] = result
        if self.on_progress is not None:
            self.on_progress(result)

    def fan_out(self, concurrency: int, *, warm: bool) -> None:
        """The first item alone until one has written the prefix (if it must be), then the rest."""
        order = iter(range(len(self.items)))
        if warm:
            for i in order:
                self.done(i, *_send(self.session, *self.request(i)))
                if self.results[i] is not None and self.results[i].ok:  # type: ignore[union-attr]
                    break
        pool = futures.ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="pcache-map")
        running: dict[futures.Future[tuple[Any, Any, Any]], int] = {}
        try:
            for i in order:
                if len(running) >= concurrency:
                    self._collect(running, futures.FIRST_COMPLETED)
                running[pool.submit(_send, self.session, *self.request(i))] = i
            while running:
                self._collect(running, futures.FIRST_COMPLETED)
        except BaseException:  # Ctrl-C: keep the calls that have finished meanwhile, wait for none
            for future, i in running.items():
                if future.done() and not future.cancelled() and future.exception() is None:
                    self.results[i] = ItemResult(
                        i, self.items[i], self.prompts[i], *_reordered(future.result())
                    )
            raise
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _collect(self, running: dict[futures.Future[Any], int], when: str) -> None:
        finished, _ = futures.wait(list(running), return_when=when)
        for future in sorted(finished, key=lambda f: running[f]):
            self.done(running.pop(future), *future.result())

    def batch(self) -> None:
        """Every item through the Message Batches API (half price; cache reads best effort)."""
        requests = [{"custom_id": f"item-{i}", "params": self.request(i)[0]} for i in range(len(self.items))]
        for answer in batch.run_batch(self.session, requests):
            i = int(str(answer.custom_id).rpartition("-")[2])
            error = getattr(answer, "error", None)
            self.done(i, None, getattr(answer, "message", None), None if error is None else str(error))


def _reordered(sent: tuple[CallRecord | None, Message | None, str | None]) -> tuple[Any, Any, Any]:
    """`_send`'s (record, message, error) in `ItemResult`'s order (message, error, record)."""
    record, message, error = sent
    return message, error, record


def _send(
    session: Session, params: dict[str, Any], names: Mapping[str, str]
) -> tuple[CallRecord | None, Message | None, str | None]:
    """One item's call, checked and recorded like any other; its failure is returned, not raised."""
    client = session.client
    if client is None:
        return None, None, "This session has no synchronous client to map with."
    try:
        record = session.begin_call("create", params, names)
    except ValueError as refused:  # a PreflightError or BudgetError: nothing was sent
        return None, None, str(refused)
    started = time.perf_counter()
    try:
        try:
            message = client.messages.create(**sdk_kwargs(params))
        except Exception:
            reraise(client)
    except Exception as error:
        session.end_call(record, params, names, started, error=redact_error(error, client))
        return record, None, record.error
    except BaseException as error:  # Ctrl-C on the calling thread: on record, then raised
        session.end_call(record, params, names, started, error=redact_error(error, client))
        raise
    try:
        session.end_call(record, params, names, started, message=message)
    except MalformedReply:  # on record as failed, with its line
        return record, None, record.error
    return record, message, None
