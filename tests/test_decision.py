"""One call's choice: candidates, worth, placement and reasons, on a cache state set up by hand."""

from __future__ import annotations

from typing import Any

from pcache_magic.analysis.breakeven import Rates
from pcache_magic.analysis.decision import Cache, choose
from pcache_magic.analysis.rhythm import Rhythm
from pcache_magic.core.models import default_models
from pcache_magic.core.prefix import Layout, layout
from pcache_magic.core.tokens import TokenEstimator

INFO = default_models().get("claude-sonnet-4-5")
ESTIMATOR = TokenEstimator()


def words(n: int, tag: str) -> str:
    return " ".join(f"{tag}{i % 97}" for i in range(n))


def lay(*user: str) -> Layout:
    content = [{"type": "text", "text": t} for t in user]
    params: dict[str, Any] = {"model": INFO.id, "messages": [{"role": "user", "content": content}]}
    return layout(params, ESTIMATOR, model=INFO.id)


def cache(entries: dict[bytes, tuple[str, float]], rhythm: Rhythm | None = None) -> Cache:
    return Cache(rhythm or Rhythm(), Rates.of(INFO.prices), entries, INFO.min_cache_tokens)  # type: ignore[arg-type]


def test_a_live_entry_far_before_the_tail_is_read_through_the_lookback_or_a_marker() -> None:
    notes = [f"note {i}" for i in range(30)]
    request = lay(words(2_000, "d"), *notes)
    doc = request.positions[0]
    chosen = choose(cache({doc.key: ("1h", 600.0)}), request, {}, 0.0)
    assert any(0 <= i < 20 for i, _ in chosen)  # within the 20 blocks the API looks back from a marker
    for i, marker in chosen:
        if i == 0:
            assert marker.role == "read" and marker.reason.startswith("read: the 1h entry")


def test_a_users_marker_is_kept_as_written() -> None:
    request = lay(words(2_000, "d"), "question")
    chosen = choose(cache({}), request, {0: "5m"}, 0.0)
    assert chosen[0][1].role == "yours" and chosen[0][1].ttl == "5m"
    assert all(m.ttl == "5m" for _, m in chosen)  # nothing 1h after the user's 5m


def test_a_live_entry_before_the_one_read_is_kept_alive() -> None:
    request = lay(words(2_000, "d"), words(800, "e"), "question")
    first, second = request.positions[0], request.positions[1]
    chosen = choose(cache({first.key: ("5m", 200.0), second.key: ("5m", 250.0)}), request, {}, 100.0)
    roles = {i: m.role for i, m in chosen}
    assert roles.get(0) == "keep" and chosen[0][1].reason.startswith("keep: refreshes the 5m entry")


def test_a_prefix_that_lost_a_5m_entry_to_a_short_pause_is_written_for_an_hour() -> None:
    """Quick gaps alone say 5m; once a 5m entry of the prefix died of a gap a 1h one would have lived
    through (`Cache.outlived`), the same write is 1h, and its reason says why."""
    rhythm = Rhythm()
    for i in range(6):
        rhythm.observe(lay(words(2_000, "d"), f"q{i}"), 30.0 * i, True)
    request = lay(words(2_000, "d"), "next")
    doc = request.positions[0]
    rates = Rates.of(INFO.prices)
    renting = choose(Cache(rhythm, rates, {}, INFO.min_cache_tokens), request, {}, 180.0)
    assert next((i, m.ttl, m.role) for i, m in renting) == (0, "5m", "write")
    bought = choose(Cache(rhythm, rates, {}, INFO.min_cache_tokens, {doc.key: 100.0}), request, {}, 180.0)
    (i, marker), *_ = bought
    assert (i, marker.ttl, marker.role) == (0, "1h", "write")
    assert "1h since its 5m entry died of a gap a 1h one would have lived through" in marker.reason


def test_a_tail_after_a_5m_entry_read_is_written_for_an_hour_to_keep_the_prefix() -> None:
    """A chat read from a 5m entry, with pauses that outlive 5m but not 1h: the new tail is written 1h
    (billed only past the entry read) so the whole prefix lives an hour, and its reason says so.
    With the same entry at 1h already, nothing is left to lift and the reason does not say it."""
    rhythm = Rhythm()
    for i in range(6):  # a chat, questions kept, half the gaps outlive 5m
        rhythm.observe(
            lay(words(4_000, "d"), *[f"q{j} " + words(60, "q") for j in range(i + 1)]), 600.0 * i, True
        )
    request = lay(words(4_000, "d"), *[f"q{j} " + words(60, "q") for j in range(7)])
    read = request.positions[5]
    rates = Rates.of(INFO.prices)
    lifted = choose(
        Cache(rhythm, rates, {read.key: ("5m", 3_200.0)}, INFO.min_cache_tokens), request, {}, 3_100.0
    )
    writes = [(i, m) for i, m in lifted if m.role == "write"]
    assert writes and writes[0][1].ttl == "1h"
    assert (
        "1h also keeps the" in writes[0][1].reason
        and "tokens read from a 5m entry for an hour" in writes[0][1].reason
    )
    held = choose(
        Cache(rhythm, rates, {read.key: ("1h", 6_000.0)}, INFO.min_cache_tokens), request, {}, 3_100.0
    )
    assert not any("tokens read from a 5m entry" in m.reason for _, m in held)


def test_prefixes_that_come_back_are_offered_as_a_few_cuts_not_all() -> None:
    """Thirty blocks sent once, then another request: each of the thirty prefixes "comes back" when
    they are sent again.  The deepest and most used few are offered as cuts, not all thirty (the
    placement is quadratic in its cuts: a chat whose every prefix came back took 17 ms a call)."""
    from pcache_magic.analysis.decision import _RECURRING, _Call

    blocks = lay(*(words(1_100, f"b{i}-") for i in range(30)))
    rhythm = Rhythm()
    rhythm.observe(blocks, 0.0, True)
    rhythm.observe(lay(words(1_100, "other")), 60.0, True)
    call = _Call(cache({}, rhythm), blocks, {}, 120.0)
    cuts = [c.index for c in call.cuts(-1)]
    assert len(cuts) <= _RECURRING + 1 + 5  # the recurring few, the tail, the drops
    assert cuts[-1] == 29 and 28 in cuts  # the tail and the deepest that comes back


def test_on_a_first_call_the_end_of_each_system_block_is_a_cut() -> None:
    """Before any history, the rhythm cannot tell which block will change: a marker at the end of
    the rules before a notes block keeps the rules readable when the notes change (a fresh workload
    rewrote 2.6k tokens of rules on its second call without it)."""
    from pcache_magic.analysis.decision import _Call

    params: dict[str, Any] = {
        "model": INFO.id,
        "system": [{"type": "text", "text": words(2_000, "r")}, {"type": "text", "text": words(300, "n")}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": words(50, "q")}]}],
    }
    first = layout(params, ESTIMATOR, model=INFO.id)
    cuts = [c.index for c in _Call(cache({}), first, {}, 0.0).cuts(-1)]
    assert 0 in cuts and 1 in cuts  # the rules' end, and the system's end before the messages
