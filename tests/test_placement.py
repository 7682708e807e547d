"""Spending four slots: the lookback's read marker, 1h before 5m, fixed markers, kept entries."""

from __future__ import annotations

from pcache_magic.analysis.placement import Cut, Keep, place


def cut(index: int, tokens: int, five: float, hour: float, fixed: str | None = None) -> Cut:
    return Cut(index, tokens, {"5m": five, "1h": hour}, fixed)  # type: ignore[arg-type]


def test_one_cut_at_the_tail_when_nothing_is_cached() -> None:
    chosen = place(None, [], [cut(3, 5_000, 0.5, 0.2)])
    assert chosen is not None and [(c.index, t) for c, t in chosen.cuts] == [(3, "5m")] and not chosen.read
    assert place(None, [], [cut(3, 5_000, -0.1, -0.5)]) == place(None, [], [])  # no write that does not pay


def test_the_segments_take_their_own_lifetimes_one_hour_first() -> None:
    cuts = [cut(1, 10_000, 0.3, 0.6), cut(5, 10_300, 0.4, -0.2)]
    chosen = place(None, [], cuts)
    assert chosen is not None and [(c.index, t) for c, t in chosen.cuts] == [(1, "1h"), (5, "5m")]
    backwards = [cut(1, 10_000, 0.6, 0.3), cut(5, 10_300, -0.1, 2.0)]  # a 1h after a 5m is not allowed
    chosen = place(None, [], backwards)
    assert chosen is not None
    ttls = [t for _, t in chosen.cuts]
    assert ttls == sorted(ttls, key=lambda t: t != "1h")


def test_a_cut_beyond_the_lookback_needs_a_marker_to_read() -> None:
    hit = Keep(2, 8_000, 0.5)
    near = place(hit, [], [cut(10, 9_000, 0.5, 0.1)])
    far = place(hit, [], [cut(40, 9_000, 0.5, 0.1)])
    assert near is not None and not near.read and near.slots == 1
    assert far is not None and far.read and far.slots == 2
    alone = place(hit, [], [])
    assert alone is not None and alone.read and alone.slots == 1


def test_fixed_markers_are_always_placed_and_counted() -> None:
    fixed = [cut(1, 5_000, -1.0, -1.0, fixed="5m"), cut(3, 6_000, 0.5, 0.5)]
    chosen = place(None, [], fixed)
    assert chosen is not None and [(c.index, t) for c, t in chosen.cuts] == [(1, "5m"), (3, "5m")]
    too_many = [cut(i, 2_000 * (i + 1), 0.1, 0.1, fixed="5m") for i in range(5)]
    assert place(None, [], too_many) is None


def test_kept_entries_fill_the_free_slots_by_their_worth() -> None:
    hit = Keep(9, 12_000, 0.1)
    keeps = [Keep(1, 3_000, 0.2), Keep(4, 10_000, 0.9), Keep(6, 11_000, 0.05)]
    chosen = place(hit, keeps, [cut(12, 12_500, 0.5, 0.1)], slots=2)
    assert chosen is not None and [k.index for k in chosen.keeps] == [4]  # worth most, and one slot left


def test_a_1h_tail_after_a_5m_entry_read_lifts_the_tokens_below_it() -> None:
    """A 1h write bills only its segment past the entry read, yet keeps the whole prefix for an hour:
    the first cut's `lift` per token read counts only when it is written 1h, and only once."""
    hit = Keep(0, 20_000, 0.5)
    plain = [cut(2, 20_300, 0.4, 0.1)]  # on its own 300 tokens, 5m is worth more
    chosen = place(hit, [], plain)
    assert chosen is not None and [(c.index, t) for c, t in chosen.cuts] == [(2, "5m")]
    lifted = [Cut(2, 20_300, {"5m": 0.4, "1h": 0.1}, lift=0.01)]  # 20,000 x 0.01 beats 300 x 0.3
    chosen = place(hit, [], lifted)
    assert chosen is not None and [(c.index, t) for c, t in chosen.cuts] == [(2, "1h")]
    assert chosen.value == 300 * 0.1 + 20_000 * 0.01
    two = [
        Cut(2, 20_300, {"5m": 0.4, "1h": 0.1}, lift=0.01),
        Cut(4, 20_400, {"5m": 0.3, "1h": 0.2}, lift=0.01),
    ]
    chosen = place(hit, [], two)
    # the best is the deeper cut alone at 1h (400 x 0.2 + the lift); both at 1h would lift only once
    assert chosen is not None and [(c.index, t) for c, t in chosen.cuts] == [(4, "1h")]
    assert chosen.value == 400 * 0.2 + 20_000 * 0.01
