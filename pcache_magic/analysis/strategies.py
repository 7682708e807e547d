"""The strategies a session's requests are replayed under: baselines, and the planner.

Each strategy rewrites every request of a replay, in call order: as sent, with no markers,
one marker on the last message, the API's automatic caching, the user's own markers forced
to 5m or to 1h, or the planner's (`--cache auto`).  `BASELINES` are the ones the planner must
never lose to.  The labels say what a strategy does, not whose it is (a peer is named in its
docstring).  Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..core.digest import DigestMemo
from ..core.models import ModelTable
from ..core.prefix import layout, message_blocks
from ..core.tokens import TokenEstimator
from .planner import Planner, Prior, with_markers

__all__ = ["BASELINES", "STRATEGIES", "Strategy", "Transform", "planner_strategy"]

#: Rewrites one request for a strategy; called in call order with the call's time.
Transform = Callable[[Mapping[str, Any], float], dict[str, Any]]
#: Makes a fresh Transform for one replay (strategies such as the planner keep state).
Strategy = Callable[[ModelTable], Transform]


def _as_sent(models: ModelTable) -> Transform:
    return lambda params, at: dict(params)


def _none(models: ModelTable) -> Transform:
    return lambda params, at: with_markers(params, {})


def _last(models: ModelTable) -> Transform:
    """One 5m marker on the last cacheable block of the last message: what the claudette library
    (Answer.AI's Claude client) does on every call."""

    def transform(params: Mapping[str, Any], at: float) -> dict[str, Any]:
        messages = params.get("messages") or []
        m = len(messages) - 1
        blocks = message_blocks(messages[-1]) if messages else []
        for j in range(len(blocks) - 1, -1, -1):
            b = blocks[j]
            if b.get("type") not in ("thinking", "redacted_thinking") and not (
                b.get("type") == "text" and not b.get("text")
            ):
                return with_markers(params, {f"messages.{m}.content.{j}": "5m"})
        return with_markers(params, {})

    return transform


def _automatic(models: ModelTable) -> Transform:
    return lambda params, at: {**with_markers(params, {}), "cache_control": {"type": "ephemeral"}}


def _forced(ttl: str) -> Strategy:
    """The request's own markers (and automatic caching, if used), every one with lifetime `ttl`."""

    def make(models: ModelTable) -> Transform:
        estimator = TokenEstimator()

        def transform(params: Mapping[str, Any], at: float) -> dict[str, Any]:
            marked = {p.path: ttl for p in layout(params, estimator).positions if p.marker}
            out = with_markers(params, marked)
            if params.get("cache_control") is not None:
                out["cache_control"] = {"type": "ephemeral", "ttl": ttl}
            return out

        return transform

    return make


def planner_strategy(prior: Prior | None = None, *, keep_explicit: bool = False) -> Strategy:
    """`--cache auto` as the session runs it: one planner per model, each told of every call.

    By default it ignores the markers already on the requests (`keep_explicit=False`): replayed
    this way it is judged on its own choices.  `prior` changes what it assumes before it has seen
    the session (the benchmark's floor tells it the session's rhythm in advance).
    """

    def make(models: ModelTable) -> Transform:
        planners: dict[str, Planner] = {}
        estimator, memo = TokenEstimator(), DigestMemo()
        history: list[tuple[Mapping[str, Any], float]] = []

        def transform(params: Mapping[str, Any], at: float) -> dict[str, Any]:
            info = models.get(str(params["model"]))
            planner = planners.get(info.id)
            if planner is None:  # a new model's planner catches up on the session, as the session's does
                planner = Planner(
                    info, estimator=estimator, memo=memo, keep_explicit=keep_explicit, prior=prior
                )
                for request, started in history:
                    planner.observe(request, started)
                planners[info.id] = planner
            planned = planner.plan(params, at)
            for each in planners.values():
                each.observe(planned, at)
            history.append((planned, at))
            return planned

        return transform

    return make


#: name -> (label, strategy), in the order the what-if table shows them.
STRATEGIES: dict[str, tuple[str, Strategy]] = {
    "as-sent": ("as sent", _as_sent),
    "none": ("no caching", _none),
    "last": ("one marker on the last message", _last),
    "automatic": ("the API's automatic caching", _automatic),
    "all-5m": ("your markers, all 5m", _forced("5m")),
    "all-1h": ("your markers, all 1h", _forced("1h")),
    "planner": ("the planner (--cache auto)", planner_strategy()),
}
#: The strategies the planner must never lose to: no caching, the two one-marker strategies, and the
#: user's own markers at either lifetime (the same as no caching when the requests carry none).
BASELINES = ("none", "last", "automatic", "all-5m", "all-1h")
