"""A notebook session as pcache_magic sends it, for generating workloads: blocks in, requests out.

`Notebook` keeps what a `Session` keeps (tools, system blocks, context blocks, turns) and
renders each call the way the session does: `tools`, `system`, then the messages, the context
merged into the first user message, the same block and message objects re-sent while they do
not change.  Blocks the family calls stable and large carry the sensible user's 5m marker
(`marked=True`); the user-marker baselines change only the lifetime of those markers.
Think times come from `think()`, by regime.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pcache_magic.analysis.whatif import Replay

from .text import prose

__all__ = ["MODELS", "Notebook", "Turn", "text", "think", "tool_def"]

#: Models a workload may run on: minimums of 512-4,096 tokens, reads at 0.05x-0.1x of input.
MODELS = (
    "claude-sonnet-4-5",
    "claude-sonnet-4-6",
    "claude-sonnet-5",
    "claude-sonnet-5-5",
    "claude-opus-4-5",
    "claude-opus-4-8",
    "claude-opus-5",
    "claude-haiku-4-5",
)
_MARK = {"type": "ephemeral"}


def text(value: str, marked: bool = False) -> dict[str, Any]:
    """A text block, with the sensible user's 5m marker when `marked`."""
    block: dict[str, Any] = {"type": "text", "text": value}
    if marked:
        block["cache_control"] = dict(_MARK)
    return block


def tool_def(rng: random.Random, name: str, words: int, marked: bool = False) -> dict[str, Any]:
    tool: dict[str, Any] = {
        "name": name,
        "description": prose(rng, words),
        "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}},
    }
    if marked:
        tool["cache_control"] = dict(_MARK)
    return tool


def think(rng: random.Random, regime: str) -> float:
    """Seconds between two calls: quick (< 5 min), pause (5-60 min), sparse (> 1 h), mixed, agent."""
    if regime == "agent":
        return rng.uniform(2, 20)
    if regime == "quick":
        return rng.uniform(15, 240)
    if regime == "pause":
        return rng.uniform(330, 3_300)
    if regime == "sparse":
        return rng.uniform(3_700, 9_000)
    if regime == "mixed":
        roll = rng.random()
        return think(rng, "quick" if roll < 0.6 else "pause" if roll < 0.92 else "sparse")
    raise ValueError(f"unknown think regime {regime!r}")


@dataclass(frozen=True)
class Turn:
    """One exchange: what the user sent (a question, tool results, notes) and the reply."""

    user: tuple[dict[str, Any], ...]
    reply: tuple[dict[str, Any], ...]


@dataclass
class Notebook:
    """The state of one notebook session; `call()` records the request it would send now."""

    rng: random.Random
    model: str
    tools: list[dict[str, Any]] = field(default_factory=list)
    system: list[dict[str, Any]] = field(default_factory=list)
    context: tuple[dict[str, Any], ...] = ()
    turns: list[Turn] = field(default_factory=list)
    at: float = 0.0
    calls: list[Replay] = field(default_factory=list)
    _messages: dict[tuple[int, int, bool], tuple[Any, Any, dict[str, Any]]] = field(default_factory=dict)

    def wait(self, seconds: float) -> None:
        self.at += seconds

    def _message(self, role: str, blocks: tuple[dict[str, Any], ...], first: bool) -> dict[str, Any]:
        """The message for `blocks` (the same dict while they and the context are unchanged)."""
        key = (id(blocks), id(self.context), first)
        kept = self._messages.get(key)
        if kept is None or kept[0] is not blocks or kept[1] is not self.context:
            content = [*self.context, *blocks] if first else list(blocks)
            kept = (blocks, self.context, {"role": role, "content": content})
            self._messages[key] = kept
        return kept[2]

    def messages(self, user: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for i, turn in enumerate(self.turns):
            out.append(self._message("user", turn.user, i == 0))
            out.append(self._message("assistant", turn.reply, False))
        out.append(self._message("user", user, not self.turns))
        return out

    def call(
        self,
        user: Sequence[dict[str, Any]],
        reply_words: int,
        *,
        keep: bool = True,
        reply: Sequence[dict[str, Any]] = (),
        model: str | None = None,
    ) -> None:
        """Send `user` after the turns so far; keep the exchange as a turn unless `keep` is false.

        The reply is `reply_words` of prose, followed by `reply` blocks (tool calls).
        """
        user_blocks = tuple(user)
        params: dict[str, Any] = {"model": model or self.model, "max_tokens": 1024}
        if self.tools:
            params["tools"] = list(self.tools)
        if self.system:
            params["system"] = list(self.system)
        params["messages"] = self.messages(user_blocks)
        answer = (text(prose(self.rng, reply_words)), *reply) if reply_words else tuple(reply)
        self.calls.append(Replay(self.at, params, max(1, reply_words * 4 // 3)))
        if keep:
            self.turns.append(Turn(user_blocks, answer))

    def question(self, words: tuple[int, int] = (12, 60)) -> dict[str, Any]:
        return text("Question: " + prose(self.rng, self.rng.randint(*words)))
