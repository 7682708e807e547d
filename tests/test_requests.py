"""`requests`: the next request rendered from a conversation as the settings say, and the planners.

Both parts alone: `Requests` is given settings, planners and a clock; `Planners` a model table,
a book and the list of calls it catches up on.
"""

from __future__ import annotations

from typing import Any

import pytest

from pcache_magic.analysis.cachebook import CacheBook
from pcache_magic.analysis.planner import plan_breakpoints
from pcache_magic.core.conversation import Block, Conversation, RenderedMessages
from pcache_magic.core.models import default_models
from pcache_magic.core.record import CallRecord
from pcache_magic.emulator import Emulator
from pcache_magic.session.requests import Planners, Requests
from pcache_magic.session.session_settings import Settings

from _helpers import MODEL

#: About 1,500 tokens: above Sonnet 4.5's 1,024-token minimum.
LONG = " ".join(f"line{i % 40}" for i in range(1_500))
EPH_1H: dict[str, Any] = {"type": "ephemeral", "ttl": "1h"}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def conversation(*prompts: str) -> Conversation:
    """A long system block, then `prompts` as user turns answered by short replies."""
    conv = Conversation()
    conv.add(Block(name="sys", role="system", kind="system", content=[text(LONG)]))
    for i, prompt in enumerate(prompts):
        if i:
            conv.add(Block(name=f"reply-{i}", role="assistant", kind="reply", content=[text("Noted.")]))
        conv.add(Block(name=f"prompt-{i}", role="user", kind="prompt", content=[text(prompt)]))
    return conv


def planners(calls: list[CallRecord]) -> Planners:
    models = default_models()
    return Planners(models, CacheBook(models), calls)


def markers(params: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = [*params.get("system", []), *(b for m in params["messages"] for b in m["content"])]
    return [b["cache_control"] for b in blocks if "cache_control" in b]


# -- Requests -------------------------------------------------------------------------------------


def test_render_reads_the_settings_at_each_call_and_a_call_may_override_them() -> None:
    settings = Settings(model=MODEL, max_tokens=100)
    requests = Requests(settings, planners([]), clock=lambda: 0.0)
    conv = conversation("One?")
    params, names = requests.render(conv)
    assert (params["model"], params["max_tokens"]) == (MODEL, 100)
    assert names == {"system.0": "sys", "messages.0.content.0": "prompt-0"}
    settings.model, settings.max_tokens = "claude-haiku-4-5", 200
    assert requests.render(conv)[0]["max_tokens"] == 200
    params, _ = requests.render(conv, model=MODEL, max_tokens=0, temperature=0.5)
    assert (params["model"], params["max_tokens"], params["temperature"]) == (MODEL, 0, 0.5)
    assert markers(params) == [] and "cache_control" not in params


def test_the_cache_mode_places_markers_on_the_request_not_the_conversation() -> None:
    settings = Settings(model=MODEL, default_ttl="1h", cache_mode="last")
    requests = Requests(settings, planners([]), clock=lambda: 0.0)
    conv = conversation("One?", "Two?")
    params, _ = requests.render(conv)
    assert params["messages"][-1]["content"][-1]["cache_control"] == EPH_1H
    assert markers(params) == [EPH_1H] and all(b.cache is None for b in conv.blocks)
    params, _ = requests.render(conv, cache="automatic")
    assert params["cache_control"] == EPH_1H and markers(params) == []
    assert markers(requests.render(conv, cache="none")[0]) == []


def test_auto_asks_the_models_planner_at_the_clocks_time() -> None:
    settings = Settings(model=MODEL, cache_mode="auto")
    requests = Requests(settings, planners([]), clock=lambda: 1_000.0)
    conv = conversation("One?")
    params, _ = requests.render(conv)
    unplanned, _ = requests.render(conv, cache="none")
    assert params == plan_breakpoints(unplanned, [], default_models().get(MODEL), now=1_000.0)
    assert 1 <= len(markers(params)) <= 4


def test_auto_hands_back_last_calls_marked_copies_while_they_are_marked_alike() -> None:
    settings = Settings(model=MODEL, cache_mode="auto")
    requests = Requests(settings, planners([]), clock=lambda: 1_000.0)
    conv = conversation("One?")
    first, _ = requests.render(conv)
    again, _ = requests.render(conv)
    unplanned, _ = requests.render(conv, cache="none")
    assert again == first == plan_breakpoints(unplanned, [], default_models().get(MODEL), now=1_000.0)
    assert type(again["messages"]) is RenderedMessages  # never changed: the key guard skips them
    # Every marked block and message is last call's own object, as are the unmarked ones.
    assert all(a is b for a, b in zip(again["system"], first["system"], strict=True))
    assert all(a is b for a, b in zip(again["messages"], first["messages"], strict=True))
    assert any("cache_control" in block for block in again["system"] + again["messages"][-1]["content"])
    # A block marked otherwise (a new prompt moves the last marker) is a new copy, with its marker.
    conv.add(Block(name="reply-1", role="assistant", kind="reply", content=[text("Noted.")]))
    conv.add(Block(name="prompt-1", role="user", kind="prompt", content=[text("Two?")]))
    grown, _ = requests.render(conv)
    unplanned, _ = requests.render(conv, cache="none")
    assert grown == plan_breakpoints(unplanned, [], default_models().get(MODEL), now=1_000.0)
    for field in ("system", "messages"):  # what is equal to last call's is last call's own
        assert all(a is b for a, b in zip(grown[field], first[field], strict=False) if a == b)
    assert first == again  # what was handed out before is unchanged


# -- Planners -------------------------------------------------------------------------------------


def sent(emu: Emulator, calls: list[CallRecord], params: dict[str, Any], *, error: str | None = None) -> None:
    """Send `params` to the emulator as the session would, and record the call (failed: no response)."""
    response = None if error else emu.client().messages.create(**params)
    record = CallRecord(
        index=len(calls) + 1,
        model=MODEL,
        started_at=emu.now(),
        request=params,
        response=response,
        error=error,
    )
    calls.append(record)


def test_a_planner_catches_up_on_the_calls_made_before_it(emu: Emulator) -> None:
    calls: list[CallRecord] = []
    parts = planners(calls)
    render = Requests(Settings(model=MODEL), parts, clock=emu.now).render
    info = default_models().get(MODEL)
    first, _ = render(conversation("One?"))
    sent(emu, calls, plan_breakpoints(first, [], info, now=emu.now()))  # before any planner exists
    sent(emu, calls, render(conversation("One?", "Two?"))[0], error="500 InternalServerError")
    emu.advance(60)
    second, _ = render(conversation("One?", "Two?"))
    assert parts.plan(second, emu.now()) == plan_breakpoints(second, calls, info, now=emu.now())
    assert parts.plan(second, emu.now()) != plan_breakpoints(second, [], info, now=emu.now())


def test_planners_learn_from_each_call_sent_until_cleared(emu: Emulator) -> None:
    """Told of each call (20 minutes apart), a planner plans as one that replayed them all."""
    calls: list[CallRecord] = []
    parts = planners(calls)
    render = Requests(Settings(model=MODEL), parts, clock=emu.now).render
    prompts = [f"Question {i}?" for i in range(4)]
    for i in range(3):
        sent(emu, calls, parts.plan(render(conversation(*prompts[: i + 1]))[0], emu.now()))
        parts.observe(calls[-1].request, calls[-1].started_at)  # as the call pipeline does after a call
        emu.advance(1_200)
    last, _ = render(conversation(*prompts))
    info, now = default_models().get(MODEL), emu.now()
    learned = parts.plan(last, now)
    assert learned == plan_breakpoints(last, calls, info, now=now)
    assert learned != plan_breakpoints(last, [], info, now=now)  # the calls told made a difference
    parts.clear()
    calls.clear()
    assert parts.plan(last, now) == plan_breakpoints(last, [], info, now=now)


def test_render_refuses_extra_fields_that_are_not_plain_json_before_copying_them() -> None:
    requests = Requests(Settings(model=MODEL), planners([]), clock=lambda: 0.0)
    conv = conversation("One?")
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(5_000):  # deep enough that a recursive copy would raise RecursionError
        node = node.setdefault("a", {})
    with pytest.raises(
        ValueError, match=r"^The request field 'metadata' is not JSON data \(nesting deeper than 100 levels\)"
    ):
        requests.render(conv, metadata=deep)
    with pytest.raises(
        ValueError,
        match=r"^The request field 'temperature' is not JSON data \(it holds a number that is not finite",
    ):
        requests.render(conv, cache="auto", temperature=float("nan"))
    params, _ = requests.render(conv, metadata={"user_id": "u1"}, temperature=0.2)
    assert params["metadata"] == {"user_id": "u1"} and params["temperature"] == 0.2


@pytest.mark.parametrize(
    "bad", [float("nan"), pytest.param(10**5000, id="huge"), -1, 2.5, True, "64", 10_000_001]
)
def test_max_tokens_from_python_must_be_a_whole_number_of_tokens(bad: object) -> None:
    requests = Requests(Settings(model=MODEL), planners([]), clock=lambda: 0.0)
    with pytest.raises(
        ValueError, match=r"^max_tokens must be a whole number of tokens from 0 to 10,000,000"
    ):
        requests.render(conversation("One?"), max_tokens=bad)  # type: ignore[arg-type]
    params, _ = requests.render(conversation("One?"), max_tokens=0)
    assert params["max_tokens"] == 0
