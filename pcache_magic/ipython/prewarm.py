"""`%claude_prewarm`: fill the cache without generating, or turn keep-warm on or off.

A pre-warm sends the blocks' own markers and no cache mode's (`Chat.prewarm` renders with
`cache="none"`), so with no marked block there is nothing to warm: that is said, and nothing
is sent (the call would be billed for a cache it does not fill).  The check reads the request
as the pre-warm renders it, so a top-level marker (automatic caching) would count too.
Keep-warm, just turned on, says what it will do; its advice then tells no one to turn it on.
Every line is wrapped to fit a notebook's plain-text output (`say`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from IPython.display import display

from ..core.fmt import duration
from .output import Summary, say, usage_errors

if TYPE_CHECKING:
    from ..session.keepwarm import KeepWarmer
    from ..session.session import Session

__all__ = ["NOTHING_TO_WARM", "keepwarm_plan", "marked", "prewarm"]

NOTHING_TO_WARM = (
    "Nothing to warm, nothing sent: no block has --cache. Add --cache to a block, "
    "or let each call cache with %%claude --cache auto."
)


def marked(session: Session, params: Mapping[str, Any]) -> bool:
    """Whether a request asks for a cache write: a top-level `cache_control` (automatic caching),
    or a marker on one of its blocks (as the session lays the request out)."""
    return params.get("cache_control") is not None or bool(session.layout(params).markers())


def prewarm(session: Session, keep_warm: str | None) -> None:
    """`%claude_prewarm [--keep-warm on|off]`: keep-warm on or off, or one pre-warm and its usage line."""
    keeper = session.keepwarm
    if keep_warm == "off":
        keeper.stop()
        say("Keep-warm off.")
        return
    if keep_warm == "on":
        keeper.start()
        say("\n".join(["Keep-warm on.", *(f"  {line}" for line in keepwarm_plan(keeper, session.now()))]))
        return
    with usage_errors(session):
        if not marked(session, session.params(cache="none", max_tokens=0)):  # as `Chat.prewarm` renders it
            say(NOTHING_TO_WARM)
            return
        session.prewarm()
    display(Summary(session.calls[-1]))


def keepwarm_plan(keeper: KeepWarmer, now: float) -> list[str]:
    """What keep-warm will do, just turned on: the refreshes that pay and when the first goes out,
    or why there is nothing to refresh (so "on" is never silently idle)."""
    advice, due = keeper.advice(now), keeper.due(now)
    if due is not None:
        first = f"The first refresh goes out in {duration(due - now, ceil=True)}."
        return [*(a.text(keeper.on) for a in advice if a.worth), first]
    if advice:
        return [
            *(a.text(keeper.on) for a in advice),
            "No refresh pays for itself now; keep-warm waits for one that does.",
        ]
    return [
        "Nothing to refresh now: no live entry dies before the next likely call (one typical gap after "
        "the last; it takes two calls some time apart to know the gap). Keep-warm acts when one does."
    ]
