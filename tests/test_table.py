"""`emulator.table.CacheTable`: entries on an injected clock, lifetimes, refresh, the LRU cap, locking."""

from __future__ import annotations

import threading

import pytest

from pcache_magic.emulator.engine import ManualClock
from pcache_magic.emulator.table import CacheTable, Entry

T0 = 1_000.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def table(clock: ManualClock) -> CacheTable:
    return CacheTable(clock)


def test_a_written_entry_is_found_with_its_lifetime(table: CacheTable) -> None:
    table.write(b"k5", "claude-sonnet-4-5", 1_500, "5m")
    table.write(b"k1h", "claude-opus-5", 700, "1h")
    assert table.find(b"k5") == Entry("claude-sonnet-4-5", 1_500, "5m", T0, T0 + 300)
    assert table.find(b"k1h") == Entry("claude-opus-5", 700, "1h", T0, T0 + 3_600)
    assert table.find(b"missing") is None
    assert len(table) == 2


def test_an_entry_lives_until_just_before_it_expires(table: CacheTable, clock: ManualClock) -> None:
    table.write(b"k", "m", 10, "5m")
    clock.advance(299.999)
    assert table.find(b"k") is not None
    clock.advance(0.001)  # expires_at itself is already too late
    assert table.find(b"k") is None
    assert len(table) == 0  # dropped on sight, not kept as a ghost


def test_a_hit_restarts_the_lifetime(table: CacheTable, clock: ManualClock) -> None:
    table.write(b"k", "m", 10, "5m")
    clock.advance(200)
    table.refresh([b"k", b"unknown"])  # unknown keys are ignored
    entry = table.find(b"k")
    assert entry is not None
    assert (entry.written_at, entry.expires_at) == (T0, T0 + 200 + 300)
    clock.advance(299)
    assert table.find(b"k") is not None  # 499 s after the write, alive thanks to the refresh


def test_refresh_keeps_each_entrys_own_ttl(table: CacheTable, clock: ManualClock) -> None:
    table.write(b"short", "m", 10, "5m")
    table.write(b"long", "m", 10, "1h")
    clock.advance(60)
    table.refresh([b"short", b"long"])
    assert [e.expires_at for e in table.live()] == [T0 + 60 + 300, T0 + 60 + 3_600]


def test_an_expired_entry_is_not_revived_by_refresh(table: CacheTable, clock: ManualClock) -> None:
    table.write(b"k", "m", 10, "5m")
    clock.advance(301)
    table.refresh([b"k"])
    assert table.find(b"k") is None


def test_rewriting_a_key_replaces_its_entry(table: CacheTable, clock: ManualClock) -> None:
    table.write(b"k", "m", 10, "5m")
    clock.advance(100)
    table.write(b"k", "m", 12, "1h")
    assert len(table) == 1
    assert table.find(b"k") == Entry("m", 12, "1h", T0 + 100, T0 + 100 + 3_600)


def test_evict_drops_only_the_expired_and_counts_them(table: CacheTable, clock: ManualClock) -> None:
    table.write(b"a", "m", 1, "5m")
    table.write(b"b", "m", 2, "5m")
    table.write(b"c", "m", 3, "1h")
    clock.advance(300)
    assert table.evict() == 2
    assert table.evict() == 0
    assert [e.tokens for e in table.live()] == [3]


def test_live_lists_soonest_to_expire_first(table: CacheTable, clock: ManualClock) -> None:
    table.write(b"late", "m", 1, "1h")
    clock.advance(10)
    table.write(b"soon", "m", 2, "5m")
    clock.advance(10)
    table.write(b"sooner-written-later", "m", 3, "5m")
    assert [e.tokens for e in table.live()] == [2, 3, 1]
    clock.advance(295)  # the first 5m entry is gone, the second has 5 s left
    assert [e.tokens for e in table.live()] == [3, 1]


def test_past_the_cap_the_least_recently_used_goes(clock: ManualClock) -> None:
    table = CacheTable(clock, max_entries=2)
    table.write(b"a", "m", 1, "5m")
    table.write(b"b", "m", 2, "5m")
    table.refresh([b"a"])  # a is now the most recently used
    table.write(b"c", "m", 3, "5m")
    assert len(table) == 2
    assert table.find(b"b") is None
    assert table.find(b"a") is not None and table.find(b"c") is not None


def test_past_the_cap_expired_entries_go_before_live_ones(clock: ManualClock) -> None:
    table = CacheTable(clock, max_entries=2)
    table.write(b"old-but-long", "m", 1, "1h")
    table.write(b"short", "m", 2, "5m")
    clock.advance(301)  # short has expired; old-but-long is the least recently used live entry
    table.write(b"new", "m", 3, "5m")
    assert sorted(e.tokens for e in table.live()) == [1, 3]


def test_the_cap_must_allow_an_entry(clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        CacheTable(clock, max_entries=0)
    single = CacheTable(clock, max_entries=1)
    single.write(b"a", "m", 1, "5m")
    single.write(b"b", "m", 2, "5m")
    assert [e.tokens for e in single.live()] == [2]


def test_clear_forgets_everything(table: CacheTable) -> None:
    table.write(b"a", "m", 1, "1h")
    table.clear()
    assert len(table) == 0 and table.live() == [] and table.find(b"a") is None


def test_the_lock_is_reentrant_for_the_engines_read_then_write(table: CacheTable) -> None:
    """The engine holds `lock` across find/refresh/write: those must not block on it."""

    def request() -> None:
        with table.lock:
            table.find(b"k")
            table.write(b"k", "m", 1, "5m")
            table.refresh([b"k"])
            table.live()

    worker = threading.Thread(target=request, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "a request deadlocked on its own lock"
    assert table.find(b"k") is not None


def test_concurrent_writers_and_readers_keep_the_table_consistent(clock: ManualClock) -> None:
    table = CacheTable(clock, max_entries=50)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(200):
                key = f"{n}:{i}".encode()
                table.write(key, "m", i, "5m" if i % 2 else "1h")
                table.refresh([key, f"{n}:{i - 1}".encode()])
                table.find(f"{(n + 1) % 8}:{i}".encode())
                if i % 50 == 0:
                    table.evict()
                    table.live()
        except BaseException as error:  # reported below: a thread's exception is otherwise lost
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    live = table.live()
    assert len(table) == 50 == len(live)  # the cap held
    assert all(e.expires_at - e.written_at == {"5m": 300, "1h": 3_600}[e.ttl] for e in live)
