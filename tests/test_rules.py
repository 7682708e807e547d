"""Where breakpoints go and what a request reads, writes and is billed, as the API documents it."""

from __future__ import annotations

from typing import Any

import pytest

from pcache_magic.core.prefix import layout
from pcache_magic.core.rules import LOOKBACK, CacheRuleError, lookback_window, plan, resolve_breakpoints
from pcache_magic.core.tokens import TokenEstimator

from _helpers import sample_request

EPH: dict[str, Any] = {"type": "ephemeral"}
EPH_1H: dict[str, Any] = {"type": "ephemeral", "ttl": "1h"}


def test_breakpoint_limit_uses_the_api_wording() -> None:
    body = sample_request()
    body["tools"][0]["cache_control"] = EPH
    body["system"][0]["cache_control"] = EPH
    for block in body["messages"][0]["content"]:
        block["cache_control"] = EPH
    lay = layout(body, TokenEstimator())
    assert len(resolve_breakpoints(lay)) == 4
    with pytest.raises(
        CacheRuleError, match=r"A maximum of 4 blocks with cache_control may be provided\. Found 5\."
    ):
        resolve_breakpoints(lay, {"type": "ephemeral"})


def test_ttl_order() -> None:
    body = sample_request()
    body["system"][0]["cache_control"] = EPH
    body["messages"][0]["content"][0]["cache_control"] = {"type": "ephemeral", "ttl": "1h"}
    # The API's words, from the path of the 1h block on (as real 400s quote them)
    with pytest.raises(CacheRuleError, match=r"^messages\.0\.content\.0\.cache_control\.ttl: a ttl='1h' "):
        resolve_breakpoints(layout(body, TokenEstimator()))
    body["system"][0]["cache_control"] = {"type": "ephemeral", "ttl": "1h"}
    body["messages"][0]["content"][0]["cache_control"] = EPH
    assert [b.ttl for b in resolve_breakpoints(layout(body, TokenEstimator()))] == ["1h", "5m"]
    # automatic caching at 1h after a 5m marker: its field is the top-level one
    with pytest.raises(CacheRuleError, match=r"^cache_control\.ttl: a ttl='1h' "):
        resolve_breakpoints(layout(body, TokenEstimator()), {"type": "ephemeral", "ttl": "1h"})


def test_automatic_caching_goes_on_the_last_cacheable_block() -> None:
    body = sample_request()
    body["messages"].append(
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm", "signature": "s"}]}
    )
    lay = layout(body, TokenEstimator())
    (auto,) = resolve_breakpoints(lay, {"type": "ephemeral", "ttl": "1h"})
    assert auto.automatic and auto.ttl == "1h"
    assert lay.positions[auto.position].path == "messages.2.content.0"


def test_automatic_caching_same_ttl_is_a_noop_and_different_ttl_is_an_error() -> None:
    body = sample_request()
    body["messages"][2]["content"] = [{"type": "text", "text": "Bye", "cache_control": EPH}]
    lay = layout(body, TokenEstimator())
    assert len(resolve_breakpoints(lay, {"type": "ephemeral"})) == 1
    with pytest.raises(CacheRuleError, match="conflicts"):
        resolve_breakpoints(lay, {"type": "ephemeral", "ttl": "1h"})


def test_lookback_window_counts_the_breakpoint_itself() -> None:
    assert list(lookback_window(30)) == list(range(30, 30 - LOOKBACK, -1))
    assert len(lookback_window(30)) == 20
    assert list(lookback_window(2)) == [2, 1, 0]


def test_plan_bills_mixed_ttls_as_documented() -> None:
    # Read A (the highest live entry), write up to the last 1h breakpoint B at the 1h rate, then up
    # to the last breakpoint C at the 5m rate; input_tokens is what follows C.
    body = sample_request()
    body["tools"][0]["cache_control"] = EPH_1H  # position 0
    body["system"][0]["cache_control"] = EPH_1H  # position 1
    body["messages"][0]["content"][1]["cache_control"] = EPH  # position 3
    body["messages"][2]["content"] = [{"type": "text", "text": "Bye", "cache_control": EPH}]  # position 5
    lay = layout(body, TokenEstimator())
    points = resolve_breakpoints(lay)
    at = [p.cumulative for p in lay.positions]

    cold = plan(lay, points, 0, lambda key: False)
    assert (cold.hit, cold.read) == (-1, 0)
    assert [p.position for p in cold.writes] == [0, 1, 3, 5]
    assert (cold.write_1h, cold.write_5m, cold.uncached) == (at[1], at[5] - at[1], lay.total_tokens - at[5])

    warm = plan(lay, points, 0, {lay.positions[0].key}.__contains__)
    assert (warm.hit, warm.read) == (0, at[0])
    assert [p.position for p in warm.writes] == [1, 3, 5]  # never at or before what was read
    assert (warm.write_1h, warm.write_5m) == (at[1] - at[0], at[5] - at[1])
    assert warm.read + warm.written + warm.uncached == lay.total_tokens


@pytest.mark.parametrize(("live", "hit"), [(29 - LOOKBACK + 1, 29 - LOOKBACK + 1), (29 - LOOKBACK, -1)])
def test_plan_reads_only_within_the_lookback_window(live: int, hit: int) -> None:
    content: list[dict[str, Any]] = [{"type": "text", "text": f"block {i}"} for i in range(30)]
    content[-1]["cache_control"] = EPH
    lay = layout(
        {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": content}]}, TokenEstimator()
    )
    outcome = plan(lay, resolve_breakpoints(lay), 0, {lay.positions[live].key}.__contains__)
    assert outcome.hit == hit
    assert outcome.read == (lay.positions[hit].cumulative if hit >= 0 else 0)


def test_plan_writes_nothing_below_the_minimum() -> None:
    body = sample_request()
    body["system"][0]["cache_control"] = EPH
    lay = layout(body, TokenEstimator())
    points = resolve_breakpoints(lay)
    assert plan(lay, points, lay.positions[1].cumulative, lambda key: False).writes == tuple(points)
    below = plan(lay, points, lay.positions[1].cumulative + 1, lambda key: False)
    assert below.writes == () and below.uncached == lay.total_tokens  # processed uncached, no error
