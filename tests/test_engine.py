"""The emulator's caching rules, one test per rule, on the pure engine (wire JSON in and out)."""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from typing import Any

import pytest

from pcache_magic.emulator import Emulator
from pcache_magic.emulator import engine as engine_module
from pcache_magic.emulator.engine import MAX_ADVANCE_S, MAX_OFFSET_S, Engine, ManualClock
from pcache_magic.emulator.errors import ApiError

KEY = "sk-ant-test-key"
EPH: dict[str, Any] = {"type": "ephemeral"}
H1: dict[str, Any] = {"type": "ephemeral", "ttl": "1h"}
MODEL = "claude-sonnet-4-5"  # minimum 1,024 tokens


def words(n: int, seed: str = "w") -> str:
    return " ".join(f"{seed}{i}" for i in range(n))


def body(system: str | None = None, *, marker: dict[str, Any] | None = EPH, **extra: Any) -> dict[str, Any]:
    b: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 200,
        "system": [{"type": "text", "text": system or words(2000)}],
        "messages": [{"role": "user", "content": "Question?"}],
    }
    if marker is not None:
        b["system"][0]["cache_control"] = marker
    b.update(extra)
    return b


def usage(engine: Engine, b: dict[str, Any], key: str = KEY) -> dict[str, Any]:
    return engine.create_message(key, copy.deepcopy(b))["usage"]


@pytest.fixture
def engine() -> Engine:
    return Engine(ManualClock())


def test_write_then_read(engine: Engine) -> None:
    first = usage(engine, body())
    assert first["cache_read_input_tokens"] == 0
    assert first["cache_creation_input_tokens"] > 1024
    second = usage(engine, body())
    assert second["cache_read_input_tokens"] == first["cache_creation_input_tokens"]
    assert second["cache_creation_input_tokens"] == 0
    assert second["input_tokens"] == first["input_tokens"]


def test_a_request_in_before_a_response_began_does_not_read_its_write(engine: Engine) -> None:
    """The docs: an entry is readable once the response that wrote it has begun, so requests sent
    together each write; one sent after reads."""
    early = engine.ticket()  # came in, not yet answered
    first = usage(engine, body())
    written = first["cache_creation_input_tokens"]
    late = engine.create_message(KEY, copy.deepcopy(body()), arrived=early)["usage"]
    assert (late["cache_read_input_tokens"], late["cache_creation_input_tokens"]) == (0, written)
    assert usage(engine, body())["cache_read_input_tokens"] == written


def test_async_requests_sent_together_all_write_then_read() -> None:
    emu = Emulator()
    client = emu.async_client()

    async def together(n: int) -> list[tuple[int, int]]:
        replies = await asyncio.gather(*(client.messages.create(**body()) for _ in range(n)))
        return [(r.usage.cache_creation_input_tokens, r.usage.cache_read_input_tokens) for r in replies]

    first = asyncio.run(together(2))  # a new client's first requests (the SDK's platform lookup)
    written = first[0][0]
    assert written > 1024 and first == [(written, 0)] * 2  # in flight together: none saw another's
    assert asyncio.run(together(3)) == [(0, written)] * 3  # sent after: every one reads


def test_flows_run_together_read_after_their_own_first_reply() -> None:
    """Three agents, each awaiting its calls in turn: three writes, then reads (a rewrite of a live
    entry kept the newer ticket, and every later call missed)."""
    client = Emulator().async_client()

    async def flow(n: int) -> str:
        calls = [await client.messages.create(**body()) for _ in range(n)]
        return "".join("w" if c.usage.cache_creation_input_tokens else "r" for c in calls)

    async def together() -> list[str]:
        return await asyncio.gather(*(flow(3) for _ in range(3)))

    assert asyncio.run(together()) == ["wrr"] * 3


def test_usage_fields_are_consistent_with_count_tokens(engine: Engine) -> None:
    b = body()
    total = engine.count_tokens(KEY, {k: v for k, v in b.items() if k != "max_tokens"})["input_tokens"]
    for _ in range(2):
        u = usage(engine, b)
        assert u["input_tokens"] + u["cache_creation_input_tokens"] + u["cache_read_input_tokens"] == total
        split = u["cache_creation"]
        assert (
            split["ephemeral_5m_input_tokens"] + split["ephemeral_1h_input_tokens"]
            == u["cache_creation_input_tokens"]
        )


def test_below_minimum_is_processed_uncached_without_error(engine: Engine) -> None:
    small = body(words(100))
    for _ in range(2):
        u = usage(engine, small)
        assert u["cache_creation_input_tokens"] == u["cache_read_input_tokens"] == 0


def test_minimum_is_per_model(engine: Engine) -> None:
    text = words(350)  # an estimated ~760 tokens: above Opus 5's 512, below Sonnet 4.5's 1,024
    assert usage(engine, body(text, model="claude-opus-5"))["cache_creation_input_tokens"] > 0
    assert usage(engine, body(text, model=MODEL))["cache_creation_input_tokens"] == 0


def test_caches_are_per_model_and_per_workspace(engine: Engine) -> None:
    usage(engine, body())
    assert usage(engine, body(), key="sk-ant-other")["cache_read_input_tokens"] == 0
    assert usage(engine, body(model="claude-opus-4-5", system=words(5000)))["cache_read_input_tokens"] == 0
    assert usage(engine, body())["cache_read_input_tokens"] > 0


def test_a_model_alias_and_its_id_share_one_cache(engine: Engine) -> None:
    # Caches are per model, not per name: the dated id is the same model as its alias.
    opt_in = {"diagnostics": {"previous_message_id": None}}
    first = engine.create_message(KEY, body(model="claude-haiku-4-5", system=words(5000), **opt_in))
    dated = body(model="claude-haiku-4-5-20251001", system=words(5000))
    dated["diagnostics"] = {"previous_message_id": first["id"]}
    second = engine.create_message(KEY, dated)
    assert second["usage"]["cache_read_input_tokens"] == first["usage"]["cache_creation_input_tokens"] > 0
    assert second["diagnostics"] is None  # no divergence: not a model change


def test_five_minute_lifetime_refreshed_by_each_hit(engine: Engine) -> None:
    usage(engine, body())
    engine.advance(299)
    assert usage(engine, body())["cache_read_input_tokens"] > 0  # refreshed now
    engine.advance(299)
    assert usage(engine, body())["cache_read_input_tokens"] > 0
    engine.advance(301)
    expired = usage(engine, body())
    assert expired["cache_read_input_tokens"] == 0
    assert expired["cache_creation_input_tokens"] > 0


def test_one_hour_lifetime(engine: Engine) -> None:
    first = usage(engine, body(marker=H1))
    assert first["cache_creation"]["ephemeral_1h_input_tokens"] == first["cache_creation_input_tokens"]
    engine.advance(59 * 60)
    assert usage(engine, body(marker=H1))["cache_read_input_tokens"] > 0
    engine.advance(3601)
    assert usage(engine, body(marker=H1))["cache_read_input_tokens"] == 0


def test_mixed_ttl_billing_split(engine: Engine) -> None:
    b = body(marker=H1)
    b["messages"] = [
        {"role": "user", "content": [{"type": "text", "text": words(1500, "c"), "cache_control": EPH}]}
    ]
    first = usage(engine, b)
    w1h, w5m = (
        first["cache_creation"]["ephemeral_1h_input_tokens"],
        first["cache_creation"]["ephemeral_5m_input_tokens"],
    )
    assert w1h > 1024 and w5m > 1000
    engine.advance(6 * 60)  # the 5m entry is gone, the 1h one lives
    second = usage(engine, b)
    assert second["cache_read_input_tokens"] == w1h  # A: read up to the 1h breakpoint
    assert second["cache_creation"] == {"ephemeral_5m_input_tokens": w5m, "ephemeral_1h_input_tokens": 0}


def chat(n_turns: int) -> dict[str, Any]:
    """A growing chat with one marker on the last user block."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": words(1500)}]
    for i in range(n_turns):
        messages.append({"role": "assistant", "content": f"answer {i}"})
        messages.append({"role": "user", "content": f"question {i}"})
    last = messages[-1]
    last["content"] = [{"type": "text", "text": last["content"], "cache_control": EPH}]
    return {"model": MODEL, "max_tokens": 50, "messages": messages}


def test_lookback_finds_a_write_within_twenty_blocks(engine: Engine) -> None:
    usage(engine, chat(0))
    later = usage(engine, chat(9))  # breakpoint 18 blocks after the previous one
    assert later["cache_read_input_tokens"] > 0


def test_lookback_misses_a_write_beyond_twenty_blocks(engine: Engine) -> None:
    usage(engine, chat(0))
    later = usage(engine, chat(10))  # 20 blocks later: outside the window
    assert later["cache_read_input_tokens"] == 0


def test_writes_happen_only_at_breakpoints(engine: Engine) -> None:
    usage(engine, chat(3))  # wrote at the last block only
    earlier = chat(1)  # a breakpoint on a block that was never a breakpoint
    assert usage(engine, earlier)["cache_read_input_tokens"] == 0


def test_tools_change_invalidates_everything_tool_choice_only_messages(engine: Engine) -> None:
    tool = {"name": "lookup", "description": "d", "input_schema": {"type": "object"}}
    b = body(tools=[tool])
    b["messages"] = [
        {"role": "user", "content": [{"type": "text", "text": words(1500, "m"), "cache_control": EPH}]}
    ]
    first = usage(engine, b)
    sys_tokens = first["cache_creation_input_tokens"]
    choice = usage(engine, {**b, "tool_choice": {"type": "any"}})
    assert 0 < choice["cache_read_input_tokens"] < sys_tokens  # system level still read
    renamed = copy.deepcopy(b)
    renamed["tools"][0]["description"] = "changed"
    assert usage(engine, renamed)["cache_read_input_tokens"] == 0


def test_a_tool_input_with_its_keys_reordered_is_a_miss(engine: Engine) -> None:
    def turns(tool_input: dict[str, Any]) -> dict[str, Any]:
        b = body(marker=None)
        b["messages"] = [
            {"role": "user", "content": words(1500, "m")},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": tool_input}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]},
        ]
        b["messages"][2]["content"][0]["cache_control"] = EPH
        return b

    written = usage(engine, turns({"a": 1, "b": 2}))["cache_creation_input_tokens"]
    assert usage(engine, turns({"a": 1, "b": 2}))["cache_read_input_tokens"] == written
    assert usage(engine, turns({"b": 2, "a": 1}))["cache_read_input_tokens"] == 0


def test_an_image_added_inside_a_tool_result_invalidates_the_messages_cache(engine: Engine) -> None:
    b = body(marker=None)
    b["messages"] = [
        {"role": "user", "content": [{"type": "text", "text": words(1500), "cache_control": EPH}]}
    ]
    usage(engine, b)
    image = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    b["messages"] += [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "shot", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [image]}]},
    ]
    b["messages"][2]["content"].append({"type": "text", "text": "And?", "cache_control": EPH})
    assert usage(engine, b)["cache_read_input_tokens"] == 0


def test_fifth_breakpoint_is_a_400(engine: Engine) -> None:
    b = body()
    b["messages"] = [
        {
            "role": "user",
            "content": [{"type": "text", "text": f"b{i}", "cache_control": EPH} for i in range(4)],
        }
    ]
    with pytest.raises(ApiError) as error:
        engine.create_message(KEY, b)
    assert error.value.status == 400 and error.value.type == "invalid_request_error"
    assert error.value.message == "A maximum of 4 blocks with cache_control may be provided. Found 5."


def test_automatic_caching_takes_a_slot(engine: Engine) -> None:
    b = body()
    b["messages"] = [
        {
            "role": "user",
            "content": [{"type": "text", "text": f"b{i}", "cache_control": EPH} for i in range(3)],
        }
    ]
    b["messages"][0]["content"].append({"type": "text", "text": "unmarked last block"})
    engine.create_message(KEY, copy.deepcopy(b))
    with pytest.raises(ApiError, match="Found 5"):
        engine.create_message(KEY, {**b, "cache_control": EPH})


def test_automatic_caching_moves_forward_with_the_conversation(engine: Engine) -> None:
    def auto_chat(n: int) -> dict[str, Any]:
        b = chat(n)
        b["messages"][-1]["content"] = b["messages"][-1]["content"][0]["text"]
        return {**b, "cache_control": EPH}

    first = usage(engine, auto_chat(0))
    assert first["cache_creation_input_tokens"] > 1024
    second = usage(engine, auto_chat(1))
    assert second["cache_read_input_tokens"] == first["cache_creation_input_tokens"]
    assert second["cache_creation_input_tokens"] > 0


def test_ttl_order_is_a_400(engine: Engine) -> None:
    b = body()
    b["messages"] = [{"role": "user", "content": [{"type": "text", "text": "x", "cache_control": H1}]}]
    with pytest.raises(ApiError, match="must not come after"):
        engine.create_message(KEY, b)


def test_prewarm_fills_the_cache_without_output(engine: Engine) -> None:
    warm = engine.create_message(KEY, body(max_tokens=0))
    assert warm["content"] == [] and warm["stop_reason"] == "max_tokens"
    assert warm["usage"]["output_tokens"] == 0 and warm["usage"]["cache_creation_input_tokens"] > 0
    assert usage(engine, body())["cache_read_input_tokens"] > 0


def test_prompt_over_the_context_window(engine: Engine) -> None:
    with pytest.raises(ApiError, match="prompt is too long"):
        engine.create_message(KEY, body(words(210_000), model="claude-haiku-4-5"))


def test_a_prompt_of_too_many_blocks_is_refused_before_the_layout(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1M one-letter blocks cost ~6 s of layout before the old refusal; their count alone says no."""

    def no_layout(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the per-block layout ran")

    monkeypatch.setattr(engine_module, "layout", no_layout)
    window = engine.models.get("claude-haiku-4-5").context_window
    blocks = [{"type": "text", "text": "a"}] * (window // 2 + 1)
    b = body(model="claude-haiku-4-5", messages=[{"role": "user", "content": blocks}])
    with pytest.raises(
        ApiError, match=f"prompt is too long: at least {window + 2} tokens > {window} maximum"
    ):
        engine.create_message(KEY, b)


def test_diagnostics(engine: Engine) -> None:
    first = engine.create_message(KEY, body(diagnostics={"previous_message_id": None}))
    assert first["diagnostics"] is None
    prev = {"previous_message_id": first["id"]}
    same = engine.create_message(KEY, body(diagnostics=prev))
    assert same["diagnostics"] is None
    changed = engine.create_message(KEY, body(words(2000, "x"), diagnostics=prev))
    reason = changed["diagnostics"]["cache_miss_reason"]
    assert reason["type"] == "system_changed" and reason["cache_missed_input_tokens"] > 1024
    other_model = engine.create_message(KEY, body(model="claude-opus-5", diagnostics=prev))
    assert other_model["diagnostics"]["cache_miss_reason"]["type"] == "model_changed"
    tools = engine.create_message(
        KEY, body(tools=[{"name": "t", "input_schema": {"type": "object"}}], diagnostics=prev)
    )
    assert tools["diagnostics"]["cache_miss_reason"]["type"] == "tools_changed"
    lost = engine.create_message(KEY, body(diagnostics={"previous_message_id": "msg_nope"}))
    assert lost["diagnostics"] == {"cache_miss_reason": {"type": "previous_message_not_found"}}
    elsewhere = engine.create_message("sk-ant-other", body(diagnostics=prev))
    assert elsewhere["diagnostics"]["cache_miss_reason"]["type"] == "previous_message_not_found"


def test_diagnostics_messages_and_settings(engine: Engine) -> None:
    opt_in = {"diagnostics": {"previous_message_id": None}}
    first = engine.create_message(KEY, {**chat(1), **opt_in})
    prev = {"previous_message_id": first["id"]}
    assert engine.create_message(KEY, {**chat(2), "diagnostics": prev})["diagnostics"] is None
    edited = chat(2)
    edited["messages"][0]["content"] = "edited history"
    reason = engine.create_message(KEY, {**edited, "diagnostics": prev})["diagnostics"]["cache_miss_reason"]
    assert reason["type"] == "messages_changed"
    tools = [{"name": "t", "input_schema": {"type": "object"}}]
    base = engine.create_message(KEY, {**chat(1), "tools": tools, **opt_in})
    forced = {
        **chat(1),
        "tools": tools,
        "tool_choice": {"type": "any"},
        "diagnostics": {"previous_message_id": base["id"]},
    }
    assert engine.create_message(KEY, forced)["diagnostics"] == {"cache_miss_reason": {"type": "unavailable"}}


def test_a_turn_that_did_not_opt_in_to_diagnostics_is_not_found(engine: Engine) -> None:
    # The API keeps a fingerprint only for requests that carry `diagnostics` (cache-diagnostics docs).
    silent = engine.create_message(KEY, chat(1))
    assert "diagnostics" not in silent
    changed = {**chat(1), "system": "another system prompt"}
    answer = engine.create_message(KEY, {**changed, "diagnostics": {"previous_message_id": silent["id"]}})
    assert answer["diagnostics"] == {"cache_miss_reason": {"type": "previous_message_not_found"}}


def test_streaming_events_carry_usage_on_message_start(engine: Engine) -> None:
    events = engine.stream_message(KEY, body(stream=True))
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert {"content_block_start", "content_block_delta", "content_block_stop"} <= set(names)
    start_usage = events[0][1]["message"]["usage"]
    assert start_usage["cache_creation_input_tokens"] > 0
    final = events[-2][1]["usage"]
    assert final["cache_creation_input_tokens"] == start_usage["cache_creation_input_tokens"]
    text = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
    assert "offline emulator" in text


def test_reply_describes_the_request_and_names_the_hit(engine: Engine) -> None:
    usage(engine, body())
    text = engine.create_message(KEY, body())["content"][0]["text"]
    assert "offline emulator" in text and "hit at system.0" in text and "Question?" in text


def test_tool_use_when_the_user_names_a_tool(engine: Engine) -> None:
    tool = {
        "name": "get_weather",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
    b = body(tools=[tool])
    b["messages"] = [{"role": "user", "content": "Please use get_weather for Paris"}]
    reply = engine.create_message(KEY, b)
    assert reply["stop_reason"] == "tool_use"
    use = reply["content"][-1]
    assert use["type"] == "tool_use" and use["name"] == "get_weather" and use["input"] == {"city": "example"}
    b["messages"] += [
        {"role": "assistant", "content": reply["content"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use["id"], "content": "sunny"}]},
    ]
    done = engine.create_message(KEY, b)
    assert done["stop_reason"] == "end_turn" and "sunny" in done["content"][0]["text"]


def test_max_tokens_and_stop_sequences(engine: Engine) -> None:
    short = engine.create_message(KEY, body(max_tokens=5))
    assert short["stop_reason"] == "max_tokens" and short["usage"]["output_tokens"] <= 5
    stopped = engine.create_message(KEY, body(stop_sequences=["saw"]))
    assert stopped["stop_reason"] == "stop_sequence" and stopped["stop_sequence"] == "saw"
    assert "saw" not in stopped["content"][0]["text"]


def test_the_earliest_stop_sequence_in_the_text_stops_the_reply(engine: Engine) -> None:
    text = engine.create_message(KEY, body())["content"][0]["text"]
    early, late = "offline emulator", text.split()[-1]
    assert text.index(early) < text.rindex(late)
    stopped = engine.create_message(KEY, body(stop_sequences=[late, early]))  # the list's order is not it
    assert (stopped["stop_reason"], stopped["stop_sequence"]) == ("stop_sequence", early)
    assert stopped["content"][0]["text"] == text[: text.index(early)]


def test_max_tokens_runs_out_before_a_late_stop_sequence(engine: Engine) -> None:
    text = engine.create_message(KEY, body())["content"][0]["text"]
    cut = engine.create_message(KEY, body(max_tokens=5, stop_sequences=[text.split()[-1]]))
    assert (cut["stop_reason"], cut["stop_sequence"]) == ("max_tokens", None)
    assert 0 < cut["usage"]["output_tokens"] <= 5


def test_max_tokens_above_the_models_output_limit_is_a_400(engine: Engine) -> None:
    with pytest.raises(ApiError) as raised:
        engine.create_message(KEY, body(max_tokens=64_001))
    assert (raised.value.status, raised.value.message) == (
        400,
        "max_tokens: 64001 > 64000, which is the maximum allowed number of output tokens for "
        "claude-sonnet-4-5",
    )
    assert engine.create_message(KEY, body(max_tokens=64_000))["stop_reason"] == "end_turn"


def test_prefill_is_a_400_on_the_models_that_dropped_it(engine: Engine) -> None:
    # "Prefilling assistant messages returns a 400 error on Claude 4.6 models" (what's new in 4.6).
    prefill = [{"role": "user", "content": "Answer in JSON."}, {"role": "assistant", "content": "{"}]
    assert engine.create_message(KEY, body(messages=prefill))["stop_reason"] == "end_turn"  # Sonnet 4.5
    for model in ("claude-sonnet-4-6", "claude-opus-4-6", "claude-sonnet-5"):
        with pytest.raises(ApiError) as raised:
            engine.create_message(KEY, body(model=model, messages=prefill))
        assert raised.value.status == 400
        assert raised.value.message.startswith("This model does not support assistant message prefill.")


def test_state_lists_entries_without_keys(engine: Engine) -> None:
    usage(engine, body(marker=H1))
    state = engine.state()
    (entry,) = state["entries"]
    assert entry["ttl"] == "1h" and entry["expires_in"] == 3600 and entry["model"] == MODEL
    assert KEY not in repr(state)
    engine.reset()
    assert engine.state()["entries"] == []


def test_memory_is_bounded() -> None:
    engine = Engine(ManualClock(), max_entries=3)
    for i in range(6):
        usage(engine, body(words(1500, f"s{i}")))
    assert len(engine.state()["entries"]) == 3
    engine.advance(301)
    assert engine.state()["entries"] == []


def test_concurrent_clients_never_lose_or_mix_entries() -> None:
    engine = Engine(ManualClock())
    errors: list[str] = []

    def worker(n: int) -> None:
        b = body(words(1200, f"t{n}x"))
        for i in range(50):
            u = usage(engine, b, key=f"sk-ant-{n % 2}")
            if (i == 0) != (u["cache_read_input_tokens"] == 0):
                errors.append(f"thread {n} call {i}: {u}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(engine.state()["entries"]) == 8


def test_advance_rejects_negative(engine: Engine) -> None:
    with pytest.raises(ValueError, match="forward"):
        engine.advance(-1)


# -- the clock's bounds -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("seconds", "message"),
    [
        pytest.param(float("inf"), "seconds must be a finite number, not inf", id="infinity"),
        pytest.param(float("nan"), "seconds must be a finite number, not nan", id="nan"),
        pytest.param(1e20, "seconds must be at most 315,360,000 (10 years) per advance", id="1e20"),
        pytest.param(10**400, "seconds must be at most 315,360,000 (10 years) per advance", id="huge-int"),
        pytest.param(-1, "time only moves forward: seconds must be >= 0", id="negative"),
        pytest.param(True, "seconds must be a number, not bool", id="bool"),
        pytest.param("60", "seconds must be a number, not str", id="text"),
    ],
)
def test_advance_refuses_what_would_break_the_clock(engine: Engine, seconds: Any, message: str) -> None:
    now = engine.now()
    with pytest.raises(ValueError) as raised:
        engine.advance(seconds)
    assert str(raised.value) == message
    assert engine.now() == now  # unchanged, and caching still works: write, then read
    assert usage(engine, body())["cache_creation_input_tokens"]
    assert usage(engine, body())["cache_read_input_tokens"]


def test_ten_years_at_a_time_and_a_hundred_in_all_keep_five_minutes_meaningful(engine: Engine) -> None:
    start = engine.now()
    for _ in range(10):
        engine.advance(MAX_ADVANCE_S)
    assert engine.now() == start + MAX_OFFSET_S
    with pytest.raises(ValueError, match=r"at most 3,153,600,000 seconds \(100 years\) until reset"):
        engine.advance(1)
    assert engine.advance(0) == start + MAX_OFFSET_S
    assert usage(engine, body())["cache_creation_input_tokens"]
    assert usage(engine, body())["cache_read_input_tokens"]  # at +100 years, 5 minutes still last
    engine.reset()
    assert engine.now() == start  # reset undoes every advance
    engine.advance(299)
    usage(engine, body())
    engine.advance(299)
    assert usage(engine, body())["cache_read_input_tokens"]
    engine.advance(300)
    assert usage(engine, body())["cache_read_input_tokens"] == 0


def test_state_is_strict_json_after_any_advance(engine: Engine) -> None:
    engine.advance(MAX_ADVANCE_S)
    usage(engine, body())
    text = json.dumps(engine.state(), allow_nan=False)  # raises on NaN or Infinity
    assert json.loads(text)["entries"][0]["expires_in"] == 300


def test_the_diagnostics_history_is_capped_by_size_not_count() -> None:
    """A budget of about one fingerprint: the newest is compared, an older one is gone."""
    probe = Engine(ManualClock())
    first = probe.create_message(KEY, body(diagnostics={"previous_message_id": None}))
    engine = Engine(ManualClock(), history_bytes=int(probe._history.nbytes * 1.5))
    ids = [
        engine.create_message(KEY, body(diagnostics={"previous_message_id": None}))["id"] for _ in range(3)
    ]
    assert first["diagnostics"] is None
    latest = engine.create_message(KEY, body(diagnostics={"previous_message_id": ids[-1]}))
    assert latest["diagnostics"] is None  # found, and nothing diverged
    gone = engine.create_message(KEY, body(diagnostics={"previous_message_id": ids[0]}))
    assert gone["diagnostics"] == {"cache_miss_reason": {"type": "previous_message_not_found"}}


def test_a_refused_format_is_a_400_and_writes_nothing(engine: Engine) -> None:
    loose = {"type": "object", "properties": {"a": {"type": "string"}}}
    bad = body(output_config={"format": {"type": "json_schema", "schema": loose}})
    with pytest.raises(ApiError, match="'additionalProperties' must be explicitly set to false"):
        engine.create_message(KEY, bad)
    with pytest.raises(ApiError, match="'additionalProperties' must be explicitly set to false"):
        engine.count_tokens(KEY, {k: v for k, v in bad.items() if k != "max_tokens"})
    assert engine.state()["entries"] == []


def test_a_structured_reply_is_json_and_billed_as_output(engine: Engine) -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    message = engine.create_message(
        KEY, body(output_config={"format": {"type": "json_schema", "schema": schema}})
    )
    text = message["content"][0]["text"]
    assert json.loads(text) == {"a": "example"}
    assert message["usage"]["output_tokens"] == engine.estimator.text(text)


def test_the_engines_own_thinking_goes_back_and_a_forged_one_is_a_400(engine: Engine) -> None:
    first = body(max_tokens=2_000, thinking={"type": "enabled", "budget_tokens": 1_024})
    reply = engine.create_message(KEY, copy.deepcopy(first))["content"]
    assert reply[0]["type"] == "thinking" and reply[0]["signature"]
    again = {**first, "messages": [*first["messages"], {"role": "assistant", "content": reply}]}
    again["messages"].append({"role": "user", "content": "And then?"})
    engine.create_message(KEY, copy.deepcopy(again))  # its own signature: accepted
    engine.count_tokens(KEY, {k: v for k, v in again.items() if k != "max_tokens"})
    Engine(ManualClock()).create_message("another key", copy.deepcopy(again))  # a fresh engine too (loads)
    forged = copy.deepcopy(again)
    forged["messages"][1]["content"][0]["thinking"] += " Edited."
    wrong = "messages.1.content.0: Invalid `signature` in `thinking` block"
    for call in (
        lambda: engine.create_message(KEY, copy.deepcopy(forged)),
        lambda: engine.count_tokens(KEY, {k: v for k, v in forged.items() if k != "max_tokens"}),
    ):
        with pytest.raises(ApiError) as refused:
            call()
        assert (refused.value.status, refused.value.message) == (400, wrong)
    with pytest.raises(ApiError, match="Invalid `signature`"):  # another product's key
        Engine(ManualClock(), thinking_seed=b"another product").create_message(KEY, copy.deepcopy(again))
