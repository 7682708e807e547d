"""What a map costs: the prediction before it is sent (`MapPlan`) and the results after (`MapResult`).

The prediction prices three ways of sending the same N requests over one prefix:

- planned (what `Session.map` does): the first call writes the prefix, the other N-1 read it;
- naive parallel: all N start before any entry exists, so each writes the prefix;
- no caching: every prompt token at the input price.

The first call's tokens come from its pre-flight predictions (the same rules the emulator
applies); each other item differs from it by its own prompt text.  Replies are counted at this
session's typical reply (the mean of its answered calls, at most `max_tokens`), or at
`max_tokens` when it has none; `bound` counts every reply at `max_tokens`, as the budget guard does.
Nothing here keeps a per-item list beyond the results themselves.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, overload

from anthropic.types import Message, Usage

from ..core.fmt import money, plural
from ..core.fmt import tokens as count
from ..core.models import Prices
from ..core.record import CallRecord
from ..core.usage import Cost, Tokens, batch_prices, cost_of, tokens_of
from .budget import predicted_tokens

if TYPE_CHECKING:
    from .protocol import SessionLike as Session

__all__ = ["ItemResult", "MapError", "MapInterrupted", "MapPlan", "MapResult", "predict_map"]


class MapError(ValueError):
    """A map that cannot be sent as asked (no items, a template an item cannot fill); nothing was sent."""


@dataclass(frozen=True)
class MapPlan:
    """The predicted cost of a map, planned, naive parallel and uncached (see the module's doc)."""

    items: int
    model: str
    prices: Prices
    shared: int
    """Prompt tokens every item shares and the cache holds after the first call."""
    cached_before: int
    """Of those, the tokens the cache held before the map (read by the first call too)."""
    warm: bool
    """The first call goes alone: it writes the prefix the others read."""
    output_each: int
    typical: bool
    """`output_each` is the session's typical reply (False: `max_tokens`)."""
    max_tokens: int
    planned: Tokens
    naive: Tokens
    bound: Cost
    """Planned, every reply at `max_tokens`: what the budget guard holds to its limits."""
    dearest: float
    """The dearest single call, its reply at `max_tokens` (held to `max_cost`)."""

    @property
    def cost(self) -> Cost:
        return cost_of(self.planned, self.prices)

    @property
    def naive_cost(self) -> Cost:
        return cost_of(self.naive, self.prices)

    def line(self) -> str:
        """One line: the planned cost beside naive parallel and no caching."""
        cost, naive = self.cost, self.naive_cost
        writes = "1 write" if self.warm else "no write (already cached)" if self.shared else "nothing cached"
        reply = f"replies ~{self.output_each:,} tokens" + ("" if self.typical else " (max_tokens)")
        return (
            f"Map of {plural(self.items, 'item')} on {self.model}: predicted ~{money(cost.total)} "
            f"({writes} of the {count(self.shared, True)}-token prefix, "
            f"{plural(self.items - self.warm, 'read')}; "
            f"{reply}; at most {money(self.bound.total)}) · naive parallel ~{money(naive.total)} "
            f"({plural(self.items if self.warm else 0, 'write')}) · no caching ~{money(cost.no_cache)}."
        )


def _typical_reply(session: Session, limit: int) -> tuple[int, bool]:
    outputs = [r.tokens.output for r in session.calls if r.ok and r.kind != "prewarm" and r.tokens.output]
    if not outputs:
        return limit, False
    return min(round(sum(outputs) / len(outputs)), limit), True


def _plus(a: Tokens, b: Tokens) -> Tokens:
    return Tokens(**{f: getattr(a, f) + getattr(b, f) for f in Tokens.model_fields})


def predict_map(
    session: Session,
    params: Mapping[str, Any],
    predictions: Sequence[Any],
    prompts: Sequence[str],
    max_tokens: int,
    *,
    batch: bool = False,
) -> MapPlan:
    """The plan for `prompts` over the prefix of `params` (the first item's request, predicted);
    `batch`: at the Message Batches discount, which stacks with the cache's rates."""
    model = str(params["model"])
    prices = session.models.get(model).prices
    if batch:
        prices = batch_prices(prices)
    estimate = session.estimator.text
    output, typical = _typical_reply(session, max_tokens)
    prompt = session.layout(params).total_tokens
    first = predicted_tokens(predictions, prompt, output)
    shared = first.read + first.written
    own = estimate(prompts[0])
    planned, naive, bound, dearest = first, first, Cost(), 0.0
    for i, text in enumerate(prompts):
        uncached = max(prompt - own + estimate(text) - shared, 0)
        if i:
            planned = _plus(planned, Tokens(uncached=uncached, read=shared, output=output))
            naive = _plus(naive, first.model_copy(update={"uncached": uncached}))
        worst = first if i == 0 else Tokens(uncached=uncached, read=shared)
        priced = cost_of(worst.model_copy(update={"output": max_tokens}), prices)
        bound, dearest = bound + priced, max(dearest, priced.total)
    return MapPlan(
        items=len(prompts),
        model=model,
        prices=prices,
        shared=shared,
        cached_before=first.read,
        warm=first.written > 0,
        output_each=output,
        typical=typical,
        max_tokens=max_tokens,
        planned=planned,
        naive=naive,
        bound=bound,
        dearest=dearest,
    )


@dataclass(frozen=True)
class ItemResult:
    """One item's call: its reply (`message`, `text`, `usage`) or its `error`, and its call record."""

    index: int
    item: Any
    prompt: str
    message: Message | None = None
    error: str | None = None
    record: CallRecord | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.message is not None and self.error is None

    @property
    def text(self) -> str | None:
        if self.message is None:
            return None
        return "".join(getattr(block, "text", "") for block in self.message.content if block.type == "text")

    @property
    def usage(self) -> Usage | None:
        return self.message.usage if self.message is not None else None

    @property
    def tokens(self) -> Tokens:
        return tokens_of(self.message.usage) if self.ok and self.message is not None else Tokens()


class MapInterrupted(KeyboardInterrupt):
    """Ctrl-C during a map: `.result` holds the items finished before it (the rest are 'not run')."""

    def __init__(self, result: MapResult) -> None:
        super().__init__(f"map interrupted: {result.ok} of {len(result)} items finished")
        self.result = result


@dataclass(frozen=True)
class MapResult(Sequence[ItemResult]):
    """A map's results in input order, failures included, with the prediction made before it."""

    results: tuple[ItemResult, ...]
    plan: MapPlan
    interrupted: bool = False

    @classmethod
    def of(
        cls,
        items: Sequence[Any],
        prompts: Sequence[str],
        results: Sequence[ItemResult | None],
        plan: MapPlan,
        *,
        interrupted: bool = False,
    ) -> MapResult:
        """The results, with an item that never finished marked 'not run'."""
        filled = tuple(
            r if r is not None else ItemResult(i, items[i], prompts[i], error="not run (interrupted)")
            for i, r in enumerate(results)
        )
        return cls(filled, plan, interrupted)

    @overload
    def __getitem__(self, index: int) -> ItemResult: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[ItemResult]: ...
    def __getitem__(self, index: int | slice) -> ItemResult | Sequence[ItemResult]:
        return self.results[index]

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[ItemResult]:
        return iter(self.results)

    @property
    def texts(self) -> list[str | None]:
        """Each item's reply text, None where it failed."""
        return [r.text for r in self.results]

    @property
    def messages(self) -> list[Message | None]:
        return [r.message for r in self.results]

    @property
    def errors(self) -> dict[int, str]:
        """Item index -> one line saying why it failed."""
        return {r.index: r.error or "no reply" for r in self.results if not r.ok}

    @property
    def ok(self) -> int:
        return sum(r.ok for r in self.results)

    @property
    def tokens(self) -> Tokens:
        total = Tokens()
        for r in self.results:
            total = _plus(total, r.tokens)
        return total

    @property
    def cost(self) -> Cost:
        """What the answered calls cost (cost.no_cache: the same calls with no caching)."""
        return cost_of(self.tokens, self.plan.prices)

    @property
    def naive_cost(self) -> Cost:
        """The same calls sent naively in parallel: what each read of the prefix beyond what was
        cached before the map would have been paid as a write instead."""
        first = self.plan.naive
        ttl = "write_1h" if first.write_1h and not first.write_5m else "write_5m"
        before = self.plan.cached_before
        total = Tokens()
        for r in self.results:
            t = r.tokens
            moved = max(t.read - before, 0) if r.ok else 0
            update = {"read": t.read - moved, ttl: getattr(t, ttl) + moved}
            total = _plus(total, t.model_copy(update=update))
        return cost_of(total, self.plan.prices)

    def __repr__(self) -> str:
        head = f"MapResult({self.ok} of {len(self)} ok, cost {money(self.cost.total)}"
        return head + (", interrupted)" if self.interrupted else ")")
