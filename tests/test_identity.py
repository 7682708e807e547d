"""`common_prefix`: how many leading items two sequences share, by identity or equality."""

from __future__ import annotations

from pcache_magic.core.identity import common_prefix


def test_the_shared_prefix_of_the_same_objects() -> None:
    a = [object() for _ in range(5)]
    assert common_prefix(a, list(a)) == 5
    assert common_prefix(a, a[:3]) == 3 and common_prefix(a[:3], a) == 3
    assert common_prefix(a, [*a[:4], object()]) == 4  # the last one replaced
    assert common_prefix(a, [*a[:2], object(), *a[3:]]) == 2
    assert common_prefix(a, []) == 0 and common_prefix([], []) == 0
    assert common_prefix(a, tuple(a)) == 5  # a tuple and a list of the same items


def test_equal_items_count_unless_identity_is_asked_for() -> None:
    a = [{"n": i} for i in range(4)]
    copies = [dict(d) for d in a]
    assert common_prefix(a, copies) == 4
    assert common_prefix(a, copies, identical=True) == 0
    assert common_prefix(a, [*a[:2], *copies[2:]], identical=True) == 2
    assert common_prefix(a, [*a[:3], {"n": 99}]) == 3
    assert common_prefix(a, [{"n": 99}, *a[1:]]) == 0
