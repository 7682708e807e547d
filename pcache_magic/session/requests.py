"""The next request, rendered from a conversation as the settings shape it; the planners for `auto`.

`Requests.render` is what `ask`, `prewarm`, `Session.params` and the panel's view of the next
call share: the conversation's blocks with the model, `max_tokens` and the cache mode's markers
(`last`: one on the last turn; `automatic`: the API's top-level marker; `auto`: up to four, where
the model's `Planner` expects them to pay).  `Planners` keeps one planner per model, and the call
pipeline tells it of every call sent, so the plan learns from the session's own history.
`Planners` has its own lock: the panel may render the next request on one thread while a call
made on another is being learned from.

The planner puts its markers on copies of the blocks it marks (`markers.with_markers`), new
dicts at every call.  `Requests` hands back last call's copy when a block is marked alike again
(`_Copies`): then every request of the session shares its unchanged dicts with the one before,
as `last` does, so the layout, the digests and the key guard know them by identity.
"""

from __future__ import annotations

import itertools
import operator
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from ..analysis.cachebook import CacheBook
from ..analysis.planner import Planner
from ..core.conversation import Conversation, RenderedMessages, cache_control
from ..core.models import ModelTable
from ..core.record import CallRecord
from ..core.strict_json import check_fields
from .keyguard import refuse_key_in_name
from .session_settings import CacheMode, Settings
from .transport import MIN_KEY

__all__ = ["MAX_TOKENS_ARGUMENT", "Planners", "Requests"]

#: The largest `max_tokens` taken from Python: far above any model's output limit (the API answers
#: a value above the model's own with its 400); what it stops is NaN, a float or a 5,000-digit int.
MAX_TOKENS_ARGUMENT = 10_000_000


class Planners:
    """One `Planner` per model, caught up on the calls so far when first asked for, then told of each."""

    def __init__(self, models: ModelTable, book: CacheBook, calls: Sequence[CallRecord]) -> None:
        self._models = models
        self._book = book
        self._calls = calls
        self._planners: dict[str, Planner] = {}
        self._lock = threading.RLock()  # taken inside the call pipeline's, never around it

    def plan(self, params: Mapping[str, Any], now: float) -> dict[str, Any]:
        """`params` with the markers the model's planner chooses at time `now`."""
        with self._lock:
            return self._planner(str(params["model"])).plan(params, now)

    def observe(self, params: Mapping[str, Any], at: float) -> None:
        """A call was sent at `at`: every planner learns from it (each ignores other models' calls)."""
        with self._lock:
            for planner in self._planners.values():
                planner.observe(params, at)

    def clear(self) -> None:
        """Forget what was learned: the calls were reset or replaced."""
        with self._lock:
            self._planners.clear()

    def _planner(self, model: str) -> Planner:
        planner = self._planners.get(model)
        if planner is None:
            info = self._models.get(model)
            planner = Planner(info, estimator=self._book.estimator, memo=self._book.digests)
            for record in self._calls:
                if record.ok:
                    planner.observe(record.request, record.started_at)
            self._planners[model] = planner
        return planner


class _Copies:
    """The items a planned request holds in place of its rendering's (the marked copies), by the
    identity of the item each replaces: an equal copy of the same item is last call's own object.

    Only the last request's copies are kept (a copy no longer planned is forgotten), so the memory
    is the handful of marked blocks and their messages, whatever the conversation's length.
    """

    def __init__(self) -> None:
        self._kept: dict[int, tuple[object, object]] = {}  # id(item) -> (the item, its copy)

    def settle(self, params: Mapping[str, Any], planned: dict[str, Any]) -> dict[str, Any]:
        """`planned` (made from `params`, which it may share items with) with each copy equal to
        last time's replaced by that one; its messages a `RenderedMessages` (never changed)."""
        old, new = self._kept, {}
        for field in ("tools", "system", "messages"):
            items, made = params.get(field), planned.get(field)
            if not isinstance(made, list) or made is items:
                continue
            if isinstance(items, str):  # a string system prompt, marked: one text block
                items = [items]
            if not isinstance(items, list) or len(items) != len(made):
                continue
            settled = list(made)
            for i in itertools.compress(range(len(made)), map(operator.is_not, made, items)):  # the copies
                item, copy = items[i], made[i]
                kept = old.get(id(item))
                if kept is not None and kept[0] is item and kept[1] == copy:
                    settled[i] = kept[1]
                new[id(item)] = (item, settled[i])
            planned[field] = RenderedMessages(settled) if field == "messages" else settled
        self._kept = new
        return planned


class Requests:
    """Requests from conversations: `render` with the settings' model, `max_tokens` and cache mode."""

    def __init__(
        self,
        settings: Settings,
        planners: Planners,
        clock: Callable[[], float],
        secrets: Callable[[], Sequence[str]] = tuple,
    ) -> None:
        self._settings = settings
        self._planners = planners
        self._clock = clock
        self._secrets = secrets
        """The API keys a refusal must not repeat (a field may be named by one)."""
        self._copies = _Copies()

    def check(self, extra: Mapping[str, Any], max_tokens: object = None) -> None:
        """Request fields given from Python: plain JSON (`check_fields`), and `max_tokens` a count of
        tokens; ValueError before anything is copied or sent (a record holding what JSON cannot
        carry could not be saved)."""
        if extra:
            check_fields(extra, hide=self._secrets())
        if max_tokens is not None and (
            type(max_tokens) is not int or not 0 <= max_tokens <= MAX_TOKENS_ARGUMENT
        ):
            raise ValueError(
                f"max_tokens must be a whole number of tokens from 0 to {MAX_TOKENS_ARGUMENT:,}."
            )

    def check_name(self, name: str) -> None:
        """ValueError for a block name that holds an API key (`keyguard.refuse_key_in_name`)."""
        if len(name) >= MIN_KEY:  # a shorter name holds no key (`transport.secrets`)
            refuse_key_in_name(name, self._secrets())

    def render(
        self,
        conversation: Conversation,
        *,
        cache: CacheMode | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        **extra: Any,
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """The params (no new prompt) and request path -> block name; read-only: they are re-sent.

        Each argument left out is the settings' own; `extra` passes request fields through, once
        `check_fields` finds them plain JSON (ValueError, before anything copies them, if not).
        """
        self.check(extra, max_tokens)
        settings = self._settings
        mode = cache or settings.cache_mode
        params, names = conversation.render(
            model=model or settings.model,
            max_tokens=settings.max_tokens if max_tokens is None else max_tokens,
            automatic=cache_control(settings.default_ttl) if mode == "automatic" else None,
            last_turn=cache_control(settings.default_ttl) if mode == "last" else None,
            **extra,
        )
        if mode == "auto":
            return self._copies.settle(params, self._planners.plan(params, self._clock())), names
        return cast(dict[str, Any], params), names
