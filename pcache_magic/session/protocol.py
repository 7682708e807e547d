"""What the session's add-on parts (`fanout`, `batch`) use of a `Session`, as a Protocol.

They are bound on `Session` (`Session.map`) and take the session as their first argument, so
they cannot import `Session` itself, not even for type hints, without an import circle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import anthropic
from anthropic.types import Message

from ..analysis.ledger import Prediction
from ..core.conversation import Conversation
from ..core.models import ModelTable
from ..core.prefix import Layout
from ..core.preflight import Finding
from ..core.record import CallRecord, Totals
from ..core.tokens import TokenEstimator
from ..core.ttl import TTL

__all__ = ["SessionLike"]


class SessionLike(Protocol):
    """The settings, state and call bookkeeping of a `Session` that fan-outs and batches use."""

    models: ModelTable
    conversation: Conversation
    model: str
    max_tokens: int
    default_ttl: TTL | None
    max_cost: float | None
    budget: float | None

    @property
    def calls(self) -> list[CallRecord]: ...
    @property
    def client(self) -> anthropic.Anthropic | None: ...
    @property
    def offline(self) -> bool: ...
    @property
    def estimator(self) -> TokenEstimator: ...
    @property
    def totals(self) -> Totals: ...
    def now(self) -> float: ...
    def advance(self, seconds: float) -> float: ...
    def layout(self, params: Mapping[str, Any]) -> Layout: ...
    def check(
        self, params: Mapping[str, Any] | None = None, names: Mapping[str, str] | None = None
    ) -> tuple[list[Finding], list[Prediction]]: ...
    def begin_call(self, kind: Any, params: dict[str, Any], names: Mapping[str, str]) -> CallRecord: ...
    def end_call(
        self,
        record: CallRecord,
        params: Mapping[str, Any],
        names: Mapping[str, str],
        started: float,
        *,
        message: Message | None = None,
        error: BaseException | None = None,
    ) -> Any: ...
