"""Pre-flight findings and Ledger predictions, on requests built the way the session builds them."""

from __future__ import annotations

from typing import Any

import pytest

from pcache_magic.analysis.ledger import Ledger
from pcache_magic.core.conversation import TTL, Block, CacheControl, Conversation
from pcache_magic.core.models import ModelInfo, default_models
from pcache_magic.core.prefix import Layout, layout
from pcache_magic.core.preflight import Finding, preflight
from pcache_magic.core.rules import LOOKBACK, CacheRuleError, resolve_breakpoints
from pcache_magic.core.tokens import TokenEstimator
from pcache_magic.emulator.errors import ApiError
from pcache_magic.emulator.validate import validate_request

SONNET = default_models().get("claude-sonnet-4-5")  # caches from 1,024 tokens
OPUS5 = default_models().get("claude-opus-5")  # from 512
HAIKU = default_models().get("claude-haiku-4-5")  # from 4,096
T0 = 1_000_000.0


def words(n: int, tag: str = "w") -> str:
    return " ".join(f"{tag}{i % 50}" for i in range(n))


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def marker(ttl: TTL | bool | None) -> CacheControl | None:
    if ttl is None or ttl is False:
        return None
    return CacheControl(ttl=None if ttl is True else ttl)


def conversation(*blocks: tuple[str, str, str, TTL | bool | None]) -> Conversation:
    """(name, role, text, marker) blocks; role "system" or "user" (kind context)."""
    conv = Conversation()
    for name, role, body, ttl in blocks:
        kind = "system" if role == "system" else "context"
        conv.add(Block(name=name, role=role, kind=kind, content=[text(body)], cache=marker(ttl)))  # type: ignore[arg-type]
    return conv


def findings(
    conv: Conversation, info: ModelInfo = SONNET, automatic: CacheControl | None = None
) -> list[Finding]:
    params, names = conv.render(model=info.id, max_tokens=10, automatic=automatic)
    lay = layout(params, TokenEstimator())
    found = preflight(params, lay, info, names)
    try:  # the breakpoints resolved by the caller (as the session does) give the same findings
        points = resolve_breakpoints(lay, params.get("cache_control"))
    except CacheRuleError:
        return found
    assert preflight(params, lay, info, names, points=points) == found
    return found


def codes(found: list[Finding]) -> list[str]:
    return [f.code for f in found]


# -- pre-flight ---------------------------------------------------------------------------------


def test_a_clean_request_has_no_findings() -> None:
    conv = conversation(("sys", "system", words(1_200), "1h"), ("q", "user", "Question?", True))
    assert findings(conv) == []


def test_five_markers_is_an_error_listing_the_marked_blocks_by_name() -> None:
    conv = conversation(
        ("style", "system", words(300), "1h"),
        ("rules", "system", words(300), "1h"),
        ("paper", "user", words(800), True),
        ("notes", "user", words(50), True),
        ("question", "user", "And?", True),
    )
    found = findings(conv)
    assert codes(found) == ["too-many-breakpoints"]
    error = found[0]
    assert error.level == "error" and error.block is None
    assert error.message.startswith("5 cache markers, at most 4: ")
    # by name alone: a request path says little to a notebook's user
    assert error.message.endswith(": style, rules, paper, notes, question.")
    assert "automatic" not in error.message
    assert "Take markers off the smaller blocks" in str(error) and str(error).startswith("error: ")
    # the markers whose prefixes are under the minimum come first: they cache nothing anyway
    assert error.fix.startswith("Start with style: under the 1,024-token minimum, it caches nothing.")


def test_automatic_caching_counts_as_a_fifth_marker() -> None:
    conv = conversation(
        ("style", "system", words(1_100), "1h"),
        ("rules", "system", words(300), "1h"),
        ("paper", "user", words(800), True),
        ("notes", "user", words(50), True),
        ("question", "user", "And?", None),
    )
    assert findings(conv) == []
    found = findings(conv, automatic=CacheControl())
    assert codes(found) == ["too-many-breakpoints"]
    assert found[0].message.startswith("5 cache markers, at most 4: ")
    assert found[0].message.endswith("notes, automatic caching.")


def test_automatic_caching_on_an_already_marked_last_block_takes_no_slot() -> None:
    conv = conversation(
        ("a", "system", words(1_100), "1h"),
        ("b", "system", "b", "1h"),
        ("c", "user", "c", True),
        ("d", "user", "d", True),
    )
    assert findings(conv, automatic=CacheControl()) == []  # the API treats it as a no-op
    conv.add(Block(name="e", role="user", kind="context", content=[text("e")], cache=CacheControl()))
    found = findings(conv, automatic=CacheControl())
    # the API answers "Found 5": the count and the list must say 5, without automatic caching
    assert codes(found) == ["too-many-breakpoints"]
    assert found[0].message.startswith("5 cache markers")
    assert "automatic" not in found[0].message


def test_automatic_ttl_conflicting_with_the_last_blocks_marker() -> None:
    conv = conversation(("sys", "system", words(1_100), None), ("q", "user", "Hi", "5m"))
    found = findings(conv, automatic=CacheControl(ttl="1h"))
    assert codes(found) == ["automatic-conflict"]
    assert "conflicts" in found[0].message


def test_one_hour_after_five_minutes_is_a_ttl_order_error() -> None:
    conv = conversation(("sys", "system", words(1_100), True), ("doc", "user", words(500), "1h"))
    found = findings(conv)
    assert codes(found) == ["ttl-order"]
    assert found[0].level == "error" and "1h marker comes after a 5m" in found[0].message
    assert found[0].fix == (
        "Drop the marker on sys, or mark it 1h too (a block's marker comes off when it is added again "
        "without one)."
    )
    # every 5m marker before the last 1h one is named: fixing the first alone still fails
    conv = conversation(
        ("sys", "system", words(1_100), True),
        ("style", "system", words(50), True),
        ("doc", "user", words(500), "1h"),
    )
    assert findings(conv)[0].fix == (
        "Drop the markers on sys, style, or mark them 1h too (a block's marker comes off when it is "
        "added again without one)."
    )
    # tools come first on the wire whatever the order they were added in
    conv = conversation(("sys", "system", words(1_100), True))
    tools = [{"name": "t", "description": words(1_100), "input_schema": {"type": "object"}}]
    conv.add(Block(name="tools", role="tools", kind="tools", content=tools, cache=CacheControl(ttl="1h")))
    assert findings(conv) == []


def test_marker_on_an_empty_text_block_names_the_block() -> None:
    conv = Conversation()
    conv.add(Block(name="sys", role="system", kind="system", content=[text(words(1_100))]))
    conv.add(
        Block(
            name="notes",
            role="user",
            kind="context",
            content=[text("filled"), text("")],
            cache=CacheControl(),
            cache_index=1,
        )
    )
    found = findings(conv)
    assert codes(found) == ["uncacheable"]
    assert found[0].block == "notes" and found[0].level == "error"
    assert "messages.0.content.1" in found[0].message and "empty text block" in found[0].message


def test_marker_on_a_thinking_block_is_an_error() -> None:
    params = {
        "model": SONNET.id,
        "max_tokens": 10,
        "system": words(1_100),
        "messages": [
            {"role": "user", "content": "Hi"},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "thinking",
                        "thinking": "x",
                        "signature": "s",
                        "cache_control": {"type": "ephemeral"},
                    }
                ],
            },
            {"role": "user", "content": "More"},
        ],
    }
    found = preflight(params, layout(params, TokenEstimator()), SONNET)
    assert codes(found) == ["uncacheable"]
    assert found[0].block == "messages.1.content.0"  # no names given: the path stands in
    assert "a thinking block" in found[0].message


@pytest.mark.parametrize(
    ("info", "words_", "warned"),
    [
        (SONNET, 400, True),  # "w12" is two pieces: ~2.2 estimated tokens a word
        (SONNET, 550, False),
        (OPUS5, 300, False),
        (OPUS5, 200, True),
        (HAIKU, 1_500, True),
        (HAIKU, 2_200, False),
    ],
)
def test_prefix_below_the_models_minimum_is_a_warning(info: ModelInfo, words_: int, warned: bool) -> None:
    conv = conversation(("sys", "system", words(words_), True), ("q", "user", "Hi", None))
    found = findings(conv, info)
    if not warned:
        assert found == []
        return
    assert codes(found) == ["below-minimum"]
    warning = found[0]
    assert warning.level == "warning" and warning.block == "sys"
    assert f"caches from {info.min_cache_tokens:,}" in warning.message and info.id in warning.message


SONNET46 = default_models().get("claude-sonnet-4-6")  # documented 1,024; reports say ~2,048


@pytest.mark.parametrize(
    ("words_", "expected"), [(400, ["below-minimum"]), (700, ["below-observed-minimum"]), (1_000, [])]
)
def test_a_prefix_between_the_documented_and_the_observed_minimum_is_a_warning(
    words_: int, expected: list[str]
) -> None:
    observed = SONNET46.observed_min_cache_tokens
    assert observed is not None and SONNET46.min_cache_tokens < observed.tokens
    found = findings(
        conversation(("sys", "system", words(words_), True), ("q", "user", "Hi", None)), SONNET46
    )
    assert codes(found) == expected
    if expected == ["below-observed-minimum"]:
        warning = found[0]
        assert warning.level == "warning" and warning.block == "sys"
        assert f"documented {SONNET46.min_cache_tokens:,}" in warning.message
        assert f"caching starts near {observed.tokens:,} on {SONNET46.id}" in warning.message
        assert observed.source in warning.message and "estimated" in warning.message
        assert f"{observed.tokens:,}" in warning.fix


def test_no_observed_minimum_no_band_warning() -> None:
    assert SONNET.observed_min_cache_tokens is None
    assert findings(conversation(("sys", "system", words(700), True), ("q", "user", "Hi", None))) == []


def test_prompt_over_the_context_window_is_an_error_and_errors_come_first() -> None:
    conv = conversation(
        ("small", "system", "tiny", True), ("huge", "user", words(SONNET.context_window), None)
    )
    found = findings(conv)
    assert codes(found) == ["context-window", "below-minimum"]
    assert f"{SONNET.context_window:,}" in found[0].message and found[0].level == "error"
    assert findings(conv, default_models().get("claude-sonnet-4-6"))[0].code == "below-minimum"  # 1M window


def tool(name: str) -> dict[str, Any]:
    return {"name": name, "description": f"The {name} tool.", "input_schema": {"type": "object"}}


def test_a_tool_name_in_two_blocks_is_an_error_naming_both() -> None:
    conv = conversation(("sys", "system", words(1_200), True), ("q", "user", "Find it.", None))
    conv.add(Block(name="web", role="tools", kind="tools", content=[tool("search"), tool("fetch")]))
    conv.add(Block(name="docs", role="tools", kind="tools", content=[tool("search")]))
    found = findings(conv)
    assert codes(found) == ["duplicate-tool"]
    error = found[0]
    assert error.level == "error" and error.block == "docs"  # the later block, where it was added
    assert error.message == "Tool names must be unique; 'search' is defined in blocks web, docs."
    assert "Rename one of the tools, or drop one block" in error.fix
    # the emulator refuses the same request, as the API does
    params, _ = conv.render(model=SONNET.id, max_tokens=10)
    with pytest.raises(ApiError, match="Tool names must be unique"):
        validate_request(params, known_model=lambda _: True)
    conv.drop("docs")
    assert findings(conv) == []


def test_each_repeated_tool_name_is_its_own_finding() -> None:
    params = {
        "model": SONNET.id,
        "max_tokens": 10,
        "tools": [tool("a"), tool("b"), tool("a"), tool("b"), tool("a")],
        "messages": [{"role": "user", "content": "Hi"}],
    }
    found = preflight(params, layout(params, TokenEstimator()), SONNET)
    assert codes(found) == ["duplicate-tool", "duplicate-tool"]
    assert found[0].block == "tools.4"  # no names given: the path stands in
    assert "'a' is defined in blocks tools.0, tools.2, tools.4." in found[0].message
    assert "'b' is defined in blocks tools.1, tools.3." in found[1].message


# -- the ledger ----------------------------------------------------------------------------------


class Call:
    """One request's layout and breakpoints, from a conversation."""

    def __init__(self, conv: Conversation, info: ModelInfo = SONNET) -> None:
        self.params, self.names = conv.render(model=info.id, max_tokens=10)
        self.lay: Layout = layout(self.params, TokenEstimator())
        self.points = resolve_breakpoints(self.lay)
        self.info = info

    def predict(self, ledger: Ledger, now: float) -> list[tuple[str | None, str]]:
        predictions, _ = ledger.predict(self.lay, self.points, self.info, now, self.names)
        return [(p.block, p.status) for p in predictions]

    def record(self, ledger: Ledger, now: float, read: int | None = None) -> None:
        if read is None:
            read = ledger.plan(self.lay, self.points, self.info, now).read
        ledger.record(self.lay, self.points, self.info, now, read, self.names)


def sys_and_question(ttl: TTL | bool = True) -> Call:
    return Call(conversation(("sys", "system", words(1_200), ttl), ("q", "user", "Hi", None)))


def test_write_then_hit_then_expiry_after_five_minutes() -> None:
    call, ledger = sys_and_question(), Ledger()
    assert call.predict(ledger, T0) == [("sys", "write")]
    call.record(ledger, T0)
    [entry] = ledger.entries(T0)
    assert entry["block"] == "sys" and entry["ttl"] == "5m" and entry["expires_at"] == T0 + 300
    assert entry["model"] == SONNET.id  # caches are per model
    assert call.predict(ledger, T0 + 299.9) == [("sys", "hit")]
    assert call.predict(ledger, T0 + 300) == [("sys", "write")]  # gone at the expiry instant
    assert ledger.entries(T0 + 300) == []


def test_one_hour_entries_live_an_hour() -> None:
    call, ledger = sys_and_question("1h"), Ledger()
    call.record(ledger, T0)
    assert call.predict(ledger, T0 + 3_599) == [("sys", "hit")]
    assert call.predict(ledger, T0 + 3_600) == [("sys", "write")]
    plan = ledger.plan(call.lay, call.points, call.info, T0 + 3_600)
    assert plan.write_1h == call.lay.positions[0].cumulative and plan.write_5m == 0


def test_a_hit_refreshes_the_entry() -> None:
    call, ledger = sys_and_question(), Ledger()
    call.record(ledger, T0)
    call.record(ledger, T0 + 200)  # a hit: the lifetime restarts
    assert ledger.entries(T0 + 200)[0]["expires_at"] == T0 + 500
    assert call.predict(ledger, T0 + 450) == [("sys", "hit")]
    assert call.predict(ledger, T0 + 500) == [("sys", "write")]


def test_expired_writes_are_dropped_at_the_first_record_after_they_expire_refreshes_counted() -> None:
    call, ledger = sys_and_question(), Ledger()
    other = Call(conversation(("other", "system", words(1_200, "x"), "1h"), ("q", "user", "Hi", None)))
    call.record(ledger, T0)
    call.record(ledger, T0 + 200)  # refreshed: now expires at T0 + 500, not T0 + 300
    other.record(ledger, T0 + 400)  # past the first expiry ever noted: a pass, which keeps it
    assert {row["ttl"] for row in ledger.dump()} == {"5m", "1h"}
    other.record(ledger, T0 + 500)  # now it has expired: dropped, so a save no longer keeps it
    assert [row["ttl"] for row in ledger.dump()] == ["1h"]


def test_below_minimum_is_predicted_and_nothing_is_recorded() -> None:
    call, ledger = (
        Call(conversation(("sys", "system", words(400), True), ("q", "user", "Hi", None))),
        Ledger(),
    )
    assert call.predict(ledger, T0) == [("sys", "below-minimum")]
    call.record(ledger, T0)
    assert ledger.entries(T0) == []
    opus = Call(conversation(("sys", "system", words(600), True), ("q", "user", "Hi", None)), OPUS5)
    assert opus.predict(ledger, T0) == [("sys", "write")]


def test_an_earlier_breakpoint_is_covered_by_a_later_hit_and_mixed_ttls_split_the_bill() -> None:
    conv = conversation(
        ("sys", "system", words(1_100), "1h"), ("doc", "user", words(700), True), ("q", "user", "Hi", None)
    )
    call, ledger = Call(conv), Ledger()
    first = ledger.plan(call.lay, call.points, call.info, T0)
    sys_tokens = call.lay.positions[0].cumulative
    doc_tokens = call.lay.positions[1].cumulative
    assert (first.read, first.write_1h, first.write_5m) == (0, sys_tokens, doc_tokens - sys_tokens)
    assert call.predict(ledger, T0) == [("sys", "write"), ("doc", "write")]
    call.record(ledger, T0)
    assert call.predict(ledger, T0 + 10) == [("sys", "covered"), ("doc", "hit")]
    # after 5 minutes only the 1h entry is left: read it, rewrite the 5m part
    assert call.predict(ledger, T0 + 300) == [("sys", "hit"), ("doc", "write")]
    later = ledger.plan(call.lay, call.points, call.info, T0 + 300)
    assert (later.read, later.write_1h, later.write_5m) == (sys_tokens, 0, doc_tokens - sys_tokens)


def test_the_hit_refreshes_covered_entries_too() -> None:
    conv = conversation(
        ("sys", "system", words(1_100), True), ("doc", "user", words(700), True), ("q", "user", "Hi", None)
    )
    call, ledger = Call(conv), Ledger()
    call.record(ledger, T0)
    call.record(ledger, T0 + 250)  # hit at doc; sys is refreshed as well
    assert [e["expires_at"] for e in ledger.entries(T0 + 250)] == [T0 + 550, T0 + 550]


def test_a_miss_the_ledger_did_not_expect_drops_its_stale_entries() -> None:
    call, ledger = sys_and_question(), Ledger()
    call.record(ledger, T0)
    call.record(ledger, T0 + 10, read=0)  # the API read nothing: our entry was not there
    [entry] = ledger.entries(T0 + 10)
    assert entry["expires_at"] == T0 + 310  # rewritten by this call, not refreshed
    ledger.clear()
    assert ledger.entries(T0) == []


def chat(turns: int, marked: set[int]) -> Call:
    """A long system prompt, then `turns` single-block messages; `marked` message indexes carry markers."""
    params: dict[str, Any] = {
        "model": SONNET.id,
        "max_tokens": 10,
        "system": [{"type": "text", "text": words(1_200)}],
        "messages": [],
    }
    names = {"system.0": "sys"}
    for i in range(turns):
        block: dict[str, Any] = text(f"turn {i}")
        if i in marked:
            block["cache_control"] = {"type": "ephemeral"}
        params["messages"].append({"role": "user" if i % 2 == 0 else "assistant", "content": [block]})
        names[f"messages.{i}.content.0"] = f"turn-{i}"
    call = Call(Conversation())
    call.params, call.names = params, names  # type: ignore[assignment]
    call.lay = layout(params, TokenEstimator())
    call.points = resolve_breakpoints(call.lay)
    return call


def test_a_write_beyond_the_lookback_window_is_a_warning() -> None:
    ledger = Ledger()
    chat(1, {0}).record(ledger, T0)  # writes the prefix up to message 0 (position 1)
    near = chat(LOOKBACK, {LOOKBACK - 1})  # the marker sits 19 positions later: still found
    predictions, extra = ledger.predict(near.lay, near.points, SONNET, T0 + 1, near.names)
    assert extra == []
    assert ledger.plan(near.lay, near.points, SONNET, T0 + 1).hit == 1
    far = chat(LOOKBACK + 1, {LOOKBACK})  # 20 positions later: out of reach
    predictions, extra = ledger.predict(far.lay, far.points, SONNET, T0 + 1, far.names)
    assert ledger.plan(far.lay, far.points, SONNET, T0 + 1).hit == -1
    assert [p.status for p in predictions] == ["write"]
    assert codes(extra) == ["beyond-lookback"]
    assert extra[0].level == "warning" and extra[0].block == "turn-0"
    assert "20 blocks before the next marker" in extra[0].message


def test_a_name_two_listed_blocks_share_comes_with_each_ones_path() -> None:
    """Two tools of one cell share its name: beside them, their places tell them apart."""
    from pcache_magic.core.preflight import _listed

    names = {"tools.0": "search", "tools.1": "search", "tools.2": "more"}
    assert _listed(names, ["tools.0", "tools.1", "tools.2", "tools.3"]) == (
        "search (tools.0), search (tools.1), more, tools.3"
    )


def test_a_finding_whose_message_names_its_blocks_has_no_tag_ahead() -> None:
    """`[block]` ahead of a message that lists the blocks itself said one of them twice."""
    from pcache_magic.core.preflight import Finding

    said = "in blocks a, more."
    listed = Finding(level="error", code="duplicate-tool", block="more", message=said, fix="x")
    assert str(listed) == "error: in blocks a, more. Fix: x"
    single = Finding(level="warning", code="volatile", block="notes", message="It holds a date.", fix="y")
    assert str(single) == "warning: [notes] It holds a date. Fix: y"


def test_a_finding_names_a_dozen_blocks_then_counts_the_rest() -> None:
    from pcache_magic.core.preflight import _listed

    paths = [f"tools.{i}" for i in range(100_000)]
    listed = _listed(dict.fromkeys(paths, "a"), paths)
    assert listed.startswith("a (tools.0), a (tools.1), ") and listed.endswith(", and 99,988 more")
