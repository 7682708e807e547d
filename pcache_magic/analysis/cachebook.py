"""What a session knows about the cache: its requests laid out, checked, predicted and learned from.

The session sends; this object answers the cache's questions about what it sends.  `check`
runs the pre-flight rules and predicts each breakpoint from the `Ledger` of the session's
writes, and `learn` applies a finished call to that ledger.  A call's check and its learning
look at the same request, so its layout and breakpoints are worked out once, and the next
request reuses the layout of the prefix it shares with this one.  `calls_log` keeps each call's
explanation once for the session's views (`call_log.CallLog`).  Pure: no I/O.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..core.digest import DigestMemo
from ..core.identity import common_prefix
from ..core.models import ModelInfo, ModelTable
from ..core.prefix import Layout, layout
from ..core.preflight import Finding, preflight
from ..core.rules import Breakpoint, CacheRuleError, resolve_breakpoints
from ..core.tokens import TokenEstimator
from .advice import EditImpact, KeepWarm, edit_impact, keep_warm
from .ledger import Ledger, Prediction
from .volatile import ScanMemo, volatile_findings

if TYPE_CHECKING:
    from .call_log import CallLog

__all__ = ["CacheBook"]


class CacheBook:
    """The ledger of a session's cache writes, with the layouts and checks of its requests."""

    def __init__(self, models: ModelTable) -> None:
        self._models = models
        """To key a request by its model's id, whatever name (alias or id) it gives."""
        self.ledger = Ledger()
        self.estimator = TokenEstimator()
        self.digests = DigestMemo()
        """Block digests by identity: the session re-sends the same dicts call after call."""
        self._scans = ScanMemo()
        self._last_layout: tuple[Mapping[str, Any], Layout] | None = None
        self._last_points: tuple[Layout, Any, list[Breakpoint] | None] | None = None
        self._sent: Layout | None = None
        """The last request answered: an edit is measured against it."""
        self.names: dict[tuple[str, bytes], str] = {}
        """(request path, block digest) -> the name the block there was last sent under: an
        explanation of an older call names a block since edited or dropped (and a loaded session's,
        as the live one did)."""

    @functools.cached_property
    def calls_log(self) -> CallLog:
        """The calls explained once each, with running totals: what the panel opens on (made, and
        the explainer imported, when a view first asks: loading the extension does not pay for it)."""
        from .call_log import CallLog

        return CallLog()

    def layout(self, params: Mapping[str, Any]) -> Layout:
        """The cache's view of `params`; the last one is kept (checked, then learned from)."""
        last = self._last_layout
        if last is not None and last[0] is params:
            return last[1]
        previous = last[1] if last is not None else None
        name = str(params.get("model", ""))
        model = self._models.get(name).id if name in self._models else name
        lay = layout(params, self.estimator, memo=self.digests, previous=previous, model=model)
        self._last_layout = (params, lay)
        return lay

    def breakpoints(self, params: Mapping[str, Any], lay: Layout) -> list[Breakpoint] | None:
        """`resolve_breakpoints` for `params` laid out as `lay`, None if they break a cache rule."""
        automatic = params.get("cache_control")
        last = self._last_points
        if last is not None and last[0] is lay and last[1] is automatic:
            return last[2]
        try:
            points: list[Breakpoint] | None = resolve_breakpoints(lay, automatic)
        except CacheRuleError:
            points = None
        self._last_points = (lay, automatic, points)
        return points

    def check(
        self,
        params: Mapping[str, Any],
        names: Mapping[str, str] | None,
        info: ModelInfo,
        now: float,
        counts: Mapping[int, int] | None = None,
    ) -> tuple[list[Finding], list[Prediction]]:
        """Pre-flight findings and per-breakpoint predictions for `params`, sent at `now`
        (`counts`: the API's counted prefix tokens by position, see `preflight`)."""
        lay = self.layout(params)
        points = self.breakpoints(params, lay)
        findings = preflight(params, lay, info, names, points=points, counts=counts)
        # points=[] when they break a rule: scan up to the last explicit marker, without resolving again
        scanned = points if points is not None else []
        findings += volatile_findings(
            params, lay, names, points=scanned, memo=self._scans, minimum=info.min_cache_tokens
        )
        if points is None:
            return findings, []
        predictions, extra = self.ledger.predict(lay, points, info, now, names)
        return findings + extra, predictions

    def learn(
        self, params: Mapping[str, Any], names: Mapping[str, str], info: ModelInfo, now: float, read: int
    ) -> None:
        """Apply a call that was answered (`read`: its `cache_read_input_tokens`) to the ledger."""
        lay = self.layout(params)
        points = self.breakpoints(params, lay)
        if points is not None:
            self.ledger.record(lay, points, info, now, read, names)
        # The blocks past the very dicts of the last request: new, moved, or rendered again (a block
        # renamed, or its marker moved, is a new dict even where its content and position are not).
        sent = self._sent.blocks if self._sent is not None else ()
        for p in lay.positions[common_prefix(lay.blocks, sent, identical=True) :]:
            name = names.get(p.path)
            if name is not None:
                self.names[p.path, p.digest] = name
        self._sent = lay

    def edit_impact(
        self, params: Mapping[str, Any], names: Mapping[str, str] | None, info: ModelInfo, now: float
    ) -> EditImpact | None:
        """What `params` would pay, sent at `now`, for differing inside the prefix the cache holds."""
        lay = self.layout(params)
        points = self.breakpoints(params, lay)
        if not points:
            return None
        return edit_impact(self._sent, lay, points, self.ledger, info, now, names)

    def keep_warm(self, starts: list[float], now: float) -> list[KeepWarm]:
        """Advice for the live entries that die before the next likely call (`advice.keep_warm`)."""
        return keep_warm(self.ledger.entries(now), starts, now, self._models)
