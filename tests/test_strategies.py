"""The replay strategies: each baseline puts its markers where it says, the planner replays cleanly."""

from __future__ import annotations

from typing import Any

from pcache_magic.analysis.strategies import BASELINES, STRATEGIES, planner_strategy
from pcache_magic.core.models import default_models
from pcache_magic.core.prefix import layout
from pcache_magic.core.rules import resolve_breakpoints
from pcache_magic.core.tokens import TokenEstimator

MODELS = default_models()


def params() -> dict[str, Any]:
    doc = {"type": "text", "text": "doc " * 2_000, "cache_control": {"type": "ephemeral"}}
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 10,
        "system": [{"type": "text", "text": "rules"}],
        "messages": [{"role": "user", "content": [doc, {"type": "text", "text": "question"}]}],
    }


def markers(body: dict[str, Any]) -> list[tuple[str, str]]:
    lay = layout(body, TokenEstimator())
    return [
        (lay.positions[b.position].path, b.ttl) for b in resolve_breakpoints(lay, body.get("cache_control"))
    ]


def test_each_baseline_marks_what_it_says() -> None:
    def out(name: str) -> dict[str, Any]:
        return STRATEGIES[name][1](MODELS)(params(), 0.0)

    assert markers(out("none")) == []
    assert markers(out("last")) == [("messages.0.content.1", "5m")]
    assert markers(out("automatic")) == [("messages.0.content.1", "5m")]
    assert markers(out("all-5m")) == [("messages.0.content.0", "5m")]  # the user's own marker
    assert markers(out("all-1h")) == [("messages.0.content.0", "1h")]
    assert set(BASELINES) <= set(STRATEGIES) and "planner" not in BASELINES


def test_the_planner_ignores_the_users_markers_unless_told_to_keep_them() -> None:
    blind = planner_strategy()(MODELS)(params(), 0.0)
    kept = planner_strategy(keep_explicit=True)(MODELS)(params(), 0.0)
    assert ("messages.0.content.0", "5m") in markers(kept)
    assert ("messages.0.content.0", "1h") in markers(blind)  # its own hedge for a large stable block
