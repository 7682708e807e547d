"""Conversation -> the SDK's request params, compared with params written by hand."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pcache_magic.core.conversation import (
    Block,
    CacheControl,
    Conversation,
    RenderedMessages,
    cache_control,
    marker_target,
)

MODEL = "claude-sonnet-4-5"
EPH: dict[str, Any] = {"type": "ephemeral"}
EPH_1H: dict[str, Any] = {"type": "ephemeral", "ttl": "1h"}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool(name: str) -> dict[str, Any]:
    return {"name": name, "description": f"{name} tool", "input_schema": {"type": "object"}}


def notebook() -> Conversation:
    """Blocks in the order a notebook might create them (not request order)."""
    conv = Conversation()
    conv.add(Block(name="system", role="system", kind="system", content=[text("Be terse.")]))
    conv.add(
        Block(
            name="tools",
            role="tools",
            kind="tools",
            content=[tool("lookup"), tool("search")],
            cache=CacheControl(ttl="1h"),
        )
    )
    conv.add(
        Block(
            name="rules",
            role="system",
            kind="system",
            content=[text("Rule one."), text("Rule two.")],
            cache=CacheControl(ttl="1h"),
        )
    )
    conv.add(
        Block(
            name="paper",
            role="user",
            kind="context",
            content=[
                text("Section 1"),
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "S2"}},
            ],
            cache=CacheControl(),
            source="paper.txt",
        )
    )
    conv.add(Block(name="prompt", role="user", kind="prompt", content=[text("Summarise it.")]))
    conv.add(
        Block(
            name="reply",
            role="assistant",
            kind="reply",
            content=[text("A summary."), {"type": "thinking", "thinking": "hm", "signature": "sig"}],
            cache=CacheControl(ttl="5m"),
        )
    )
    conv.add(
        Block(
            name="prompt-2",
            role="user",
            kind="prompt",
            content=[text("First"), text("Second")],
            cache=CacheControl(),
            cache_index=0,
        )
    )
    return conv


def test_to_params_matches_hand_written_sdk_params() -> None:
    params = notebook().to_params(model=MODEL, max_tokens=512)
    expected = {
        "model": MODEL,
        "max_tokens": 512,
        "tools": [tool("lookup"), {**tool("search"), "cache_control": EPH_1H}],
        "system": [text("Be terse."), text("Rule one."), {**text("Rule two."), "cache_control": EPH_1H}],
        "messages": [
            {
                "role": "user",  # the context and the prompt merge into one user message
                "content": [
                    text("Section 1"),
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": "S2"},
                        "cache_control": EPH,  # default TTL: no "ttl" key at all
                    },
                    text("Summarise it."),
                ],
            },
            {
                "role": "assistant",
                "content": [
                    # the marker skips the thinking block for the last item that can carry it
                    {**text("A summary."), "cache_control": {"type": "ephemeral", "ttl": "5m"}},
                    {"type": "thinking", "thinking": "hm", "signature": "sig"},
                ],
            },
            {"role": "user", "content": [{**text("First"), "cache_control": EPH}, text("Second")]},
        ],
    }
    assert params == expected
    assert list(params) == ["model", "max_tokens", "tools", "system", "messages"]


def test_automatic_caching_and_extra_fields() -> None:
    conv = Conversation()
    conv.add(Block(name="prompt", role="user", kind="prompt", content=[text("Hi")]))
    choice = {"type": "auto"}
    params = conv.to_params(model=MODEL, max_tokens=10, automatic=CacheControl(), tool_choice=choice)
    assert params == {
        "model": MODEL,
        "max_tokens": 10,
        "messages": [{"role": "user", "content": [text("Hi")]}],
        "cache_control": EPH,
        "tool_choice": {"type": "auto"},
    }
    assert params["tool_choice"] is not choice  # extras are copied, not shared
    one_hour = conv.to_params(model=MODEL, max_tokens=10, automatic=CacheControl(ttl="1h"))
    assert one_hour["cache_control"] == EPH_1H
    assert "cache_control" not in conv.to_params(model=MODEL, max_tokens=10)


def test_no_tools_no_system_keys_when_empty_and_empty_blocks_skipped() -> None:
    conv = Conversation()
    conv.add(Block(name="system", role="system", kind="system", content=[]))
    conv.add(Block(name="ctx", role="user", kind="context", content=[]))
    conv.add(Block(name="prompt", role="user", kind="prompt", content=[text("Hi")]))
    params = conv.to_params(model=MODEL, max_tokens=10)
    assert params == {
        "model": MODEL,
        "max_tokens": 10,
        "messages": [{"role": "user", "content": [text("Hi")]}],
    }


def test_markers_in_content_are_replaced_by_the_blocks_own() -> None:
    stale = {**text("old marker"), "cache_control": EPH_1H}
    block = Block(name="ctx", role="user", kind="context", content=[stale, text("tail")])
    assert block.rendered() == [text("old marker"), text("tail")]
    block = block.model_copy(update={"cache": CacheControl()})  # blocks are frozen: a change is a copy
    assert block.rendered() == [text("old marker"), {**text("tail"), "cache_control": EPH}]
    assert block.content[0]["cache_control"] == EPH_1H  # rendering never edits the block
    assert "cache_control" not in block.content[1]


def test_blocks_are_frozen_and_renderings_follow_the_marker() -> None:
    block = Block(name="ctx", role="user", kind="context", content=[text("a")], cache=CacheControl())
    with pytest.raises(ValueError, match="frozen"):
        block.cache = None
    hour = block.model_copy(update={"cache": CacheControl(ttl="1h")})
    assert hour.rendered()[0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert block.rendered()[0]["cache_control"] == {"type": "ephemeral"}


def test_rendering_does_not_mutate_the_conversation() -> None:
    conv = notebook()
    before = conv.model_dump()
    conv.to_params(model=MODEL, max_tokens=1, automatic=CacheControl())
    assert conv.model_dump() == before


def test_replacing_a_block_by_name_keeps_its_position() -> None:
    conv = notebook()
    names = conv.names()
    replacement = Block(name="rules", role="system", kind="system", content=[text("New rules.")])
    assert conv.add(replacement) is replacement
    assert conv.names() == names
    assert conv.get("rules") is replacement
    params = conv.to_params(model=MODEL, max_tokens=1)
    assert params["system"] == [text("Be terse."), text("New rules.")]


def test_last_turn_is_the_last_user_or_assistant_block() -> None:
    conv = Conversation()
    conv.add(Block(name="rules", role="system", kind="system", content=[text("Be terse.")]))
    assert conv.last_turn() is None  # system and tools blocks are not turns
    question = conv.add(Block(name="q", role="user", kind="prompt", content=[text("Hi")]))
    assert conv.last_turn() is question
    reply = conv.add(Block(name="a", role="assistant", kind="reply", content=[text("Hello")]))
    conv.add(Block(name="more", role="system", kind="system", content=[text("Later rules.")]))
    assert conv.last_turn() is reply


def test_drop_removes_and_unknown_name_lists_the_blocks() -> None:
    conv = notebook()
    dropped = conv.drop("prompt")
    assert dropped.name == "prompt" and "prompt" not in conv.names()
    with pytest.raises(KeyError) as info:
        conv.drop("nope")
    message = str(info.value)
    assert "'nope'" in message
    assert "system, tools, rules, paper, reply, prompt-2" in message
    with pytest.raises(KeyError, match="none"):
        Conversation().drop("x")


def test_unique_name() -> None:
    conv = Conversation()
    assert conv.unique_name("prompt") == "prompt"
    conv.add(Block(name="prompt", role="user", kind="prompt"))
    conv.add(Block(name="prompt-2", role="user", kind="prompt"))
    assert conv.unique_name("prompt") == "prompt-3"


def test_render_names_every_path_after_the_user_blocks_merge() -> None:
    params, names = notebook().render(model=MODEL, max_tokens=1)
    assert names == {
        "tools.0": "tools",
        "tools.1": "tools",
        "system.0": "system",
        "system.1": "rules",
        "system.2": "rules",
        "messages.0.content.0": "paper",
        "messages.0.content.1": "paper",
        "messages.0.content.2": "prompt",
        "messages.1.content.0": "reply",
        "messages.1.content.1": "reply",
        "messages.2.content.0": "prompt-2",
        "messages.2.content.1": "prompt-2",
    }
    assert params == notebook().to_params(model=MODEL, max_tokens=1)


def test_in_request_order() -> None:
    order = [b.name for b in notebook().in_request_order()]
    assert order == ["tools", "system", "rules", "paper", "prompt", "reply", "prompt-2"]


def test_copy_state_is_a_snapshot() -> None:
    conv = notebook()
    before = conv.model_dump()
    copied = conv.copy_state()
    assert copied.model_dump() == before
    copied.blocks[1] = copied.blocks[1].model_copy(update={"cache": None})
    copied.add(copied.blocks[0].model_copy(update={"content": [text("replaced")]}))
    copied.add(Block(name="extra", role="user", kind="prompt", content=[text("x")]))
    copied.drop("system")
    assert conv.model_dump() == before


def test_equal_conversations_compare_equal_whatever_they_rendered() -> None:
    # The renderings a conversation keeps are a cache, not part of its value.
    rendered, fresh = notebook(), notebook()
    rendered.render(model=MODEL, max_tokens=1)
    assert rendered == fresh and rendered.copy_state() == rendered
    assert rendered.model_dump_json() == fresh.model_dump_json() and repr(rendered) == repr(fresh)
    assert rendered.model_copy() == fresh
    fresh.drop("prompt-2")
    assert rendered != fresh


def test_cache_control_param_and_lifetime() -> None:
    assert CacheControl().param() == {"type": "ephemeral"}
    assert CacheControl().lifetime == "5m"
    assert CacheControl(ttl="5m").param() == {"type": "ephemeral", "ttl": "5m"}
    assert CacheControl(ttl="1h").param() == EPH_1H and CacheControl(ttl="1h").lifetime == "1h"
    with pytest.raises(ValueError):
        CacheControl(ttl="2h")  # type: ignore[arg-type]


def test_marker_target() -> None:
    thinking = {"type": "thinking", "thinking": "x", "signature": "s"}
    assert marker_target([text("a"), text("")]) == 0  # empty text cannot carry a marker
    assert marker_target([text("a"), thinking]) == 0
    assert marker_target([thinking, {"type": "redacted_thinking", "data": "d"}]) is None
    assert marker_target([]) is None
    assert marker_target([tool("t")]) == 0  # tool definitions have no "type"
    assert marker_target([text("a"), text("b")], 0) == 0
    assert marker_target([text("a")], 3) is None
    block = Block(
        name="b", role="user", kind="prompt", content=[text("a")], cache=CacheControl(), cache_index=5
    )
    assert block.rendered() == [text("a")]  # an out-of-range index places no marker


def mark_last_turn(conversation: Conversation, ttl: Any) -> Conversation:
    """The oracle for `render(last_turn=...)`: a copy with a marker on its last turn.

    A turn that carries its own marker keeps it; the copy shares every other block.
    """
    blocks = list(conversation.blocks)
    turns = [i for i, b in enumerate(blocks) if b.role in ("user", "assistant")]
    if not turns or blocks[turns[-1]].cache is not None:
        return conversation
    blocks[turns[-1]] = blocks[turns[-1]].model_copy(update={"cache": CacheControl(ttl=ttl)})
    return Conversation.model_construct(blocks=blocks)


@pytest.mark.parametrize("ttl", [None, "5m", "1h"])
def test_a_last_turn_marker_renders_as_the_marked_copy_would(ttl: Any) -> None:
    conv = notebook()
    conv.add(Block(name="prompt-3", role="user", kind="prompt", content=[text("Third")]))
    conv.add(Block(name="late-system", role="system", kind="system", content=[text("Later.")]))
    marked = mark_last_turn(conv, ttl)
    assert marked is not conv  # prompt-3 has no marker of its own
    expected = marked.render(model=MODEL, max_tokens=1)
    rendered = conv.render(model=MODEL, max_tokens=1, last_turn=cache_control(ttl))
    assert rendered == expected
    assert list(rendered[1]) == list(expected[1])  # the names in the same order too
    assert conv.blocks[-2].rendered() == [text("Third")]  # the block itself is left unmarked
    # A last turn with its own marker keeps it (prompt-2 is the last turn here).
    conv.drop("prompt-3")
    assert mark_last_turn(conv, ttl) is conv
    assert conv.render(model=MODEL, max_tokens=1, last_turn=cache_control(ttl)) == conv.render(
        model=MODEL, max_tokens=1
    )


def test_a_rendering_with_a_marker_follows_the_block() -> None:
    block = Block(name="q", role="user", kind="prompt", content=[text("a")])
    hour = cache_control("1h")
    assert cache_control("1h") is hour  # one shared marker per lifetime
    assert block.rendered(hour) == [{**text("a"), "cache_control": EPH_1H}]
    assert block.rendered() == [text("a")]  # the block itself is left unmarked
    assert block.rendered(cache_control()) == [{**text("a"), "cache_control": EPH}]
    changed = block.model_copy(update={"content": [text("b")]})
    assert changed.rendered(hour) == [{**text("b"), "cache_control": EPH_1H}]
    assert changed.rendered() == [text("b")]


def _items(params: Any) -> list[Any]:
    return [*params.get("system", []), *(i for m in params["messages"] for i in m["content"])]


def test_renderings_are_the_same_dicts_call_after_call() -> None:
    """The session's digest memo recognises blocks by identity: unchanged blocks re-send their dicts,
    marked or not, also after an earlier block changed (the rendering from there is rebuilt)."""
    conv = notebook()
    conv.add(Block(name="follow-up", role="user", kind="prompt", content=[text("Third")]))  # unmarked
    hour = cache_control("1h")
    first, _ = conv.render(model=MODEL, max_tokens=1, last_turn=hour)
    again, _ = conv.render(model=MODEL, max_tokens=1, last_turn=hour)
    assert all(a is b for a, b in zip(_items(first), _items(again), strict=True))
    plain, _ = conv.render(model=MODEL, max_tokens=1)  # the last turn unmarked, then marked again
    marked, _ = conv.render(model=MODEL, max_tokens=1, last_turn=hour)
    assert _items(plain)[-1] == text("Third") and _items(marked)[-1]["cache_control"] == EPH_1H
    assert all(a is b for a, b in zip(_items(first), _items(marked), strict=True))
    conv.add(conv.blocks[0].model_copy(update={"content": [text("Other system")]}))  # replaced in place
    edited, _ = conv.render(model=MODEL, max_tokens=1, last_turn=hour)
    assert _items(edited)[0] is not _items(first)[0]
    assert all(a is b for a, b in zip(_items(first)[1:], _items(edited)[1:], strict=True))
    fresh, _ = Conversation(blocks=list(conv.blocks)).render(model=MODEL, max_tokens=1, last_turn=hour)
    assert edited == fresh  # kept renderings change nothing but identity
    snapshot, _ = conv.copy_state().render(model=MODEL, max_tokens=1, last_turn=hour)
    assert all(a is b for a, b in zip(_items(edited), _items(snapshot), strict=True))


def test_kept_renderings_are_bounded_and_outlive_the_blocks_that_come_and_go() -> None:
    conv = notebook()
    first, _ = conv.render(model=MODEL, max_tokens=1)
    for n in range(200):  # a prompt per call, taken out again (as the overhead benchmark does)
        conv.add(Block(name="q", role="user", kind="prompt", content=[text(f"q{n}")]))
        conv.render(model=MODEL, max_tokens=1, last_turn=cache_control())
        conv.drop("q")
    assert len(conv._memo.items) <= 2 * len(conv.blocks) + 17
    conv._memo.last = None  # forget the last request too: every block is looked up again
    again, _ = conv.render(model=MODEL, max_tokens=1)
    assert again == first
    assert all(a is b for a, b in zip(_items(first), _items(again), strict=True))


def test_names_are_found_after_the_list_is_changed_from_outside() -> None:
    conv = Conversation()
    for i in range(5):
        conv.add(Block(name=f"b{i}", role="user", kind="prompt", content=[{"type": "text", "text": str(i)}]))
    before = list(conv.blocks)
    conv.add(Block(name="extra", role="user", kind="prompt"))
    del conv.blocks[1]  # the list is public: the index follows it
    assert conv.get("b1") is None and conv.get("b2") is before[2] and conv.get("extra") is not None
    assert conv.unique_name("b2") == "b2-2"
    conv.blocks[:] = before
    assert conv.get("extra") is None and conv.get("b1") is before[1] and conv.unique_name("extra") == "extra"
    replacement = before[3].model_copy(update={"content": [{"type": "text", "text": "new"}]})
    conv.add(replacement)
    assert conv.blocks[3] is replacement and len(conv.blocks) == 5
    assert conv.drop("b0") is before[0] and conv.names() == ["b1", "b2", "b3", "b4"]
    assert conv.get("b4") is before[4]


def test_calls_tools_follows_the_replies() -> None:
    conv = Conversation()
    conv.add(Block(name="q", role="user", kind="prompt", content=[{"type": "text", "text": "Hi"}]))
    assert not conv.calls_tools()
    use = {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}
    conv.add(Block(name="reply", role="assistant", kind="reply", content=[use]))
    assert conv.calls_tools()
    conv.add(Block(name="reply", role="assistant", kind="reply", content=[{"type": "text", "text": "No."}]))
    assert not conv.calls_tools()


def test_rendered_messages_are_marked_and_a_copy_of_them_is_a_plain_list() -> None:
    conv = Conversation()
    conv.add(Block(name="q", role="user", kind="prompt", content=[{"type": "text", "text": "Hi"}]))
    params = conv.render(model="m", max_tokens=5)[0]
    assert type(params["messages"]) is RenderedMessages
    assert type(copy.deepcopy(params)["messages"]) is list and type(copy.copy(params["messages"])) is list
    assert copy.deepcopy(params)["messages"] == params["messages"]
    assert type(conv.to_params(model="m", max_tokens=5)["messages"]) is list


def test_a_rendering_after_blocks_come_and_go_is_a_fresh_rendering() -> None:
    conv = Conversation()
    for i in range(6):
        role = "user" if i % 2 == 0 else "assistant"
        kind = "prompt" if role == "user" else "reply"
        conv.add(Block(name=f"b{i}", role=role, kind=kind, content=[{"type": "text", "text": f"t{i}"}]))  # type: ignore[arg-type]
    before = list(conv.blocks)
    last = cache_control("1h")
    for change in range(4):
        if change == 1:
            conv.add(Block(name="q", role="user", kind="prompt", content=[{"type": "text", "text": "q"}]))
        elif change == 2:
            conv.blocks[:] = before
        elif change == 3:
            conv.blocks[2] = before[2].model_copy(update={"cache": cache_control("5m")})
        got = conv.render(model="m", max_tokens=5, last_turn=last)
        fresh = Conversation(blocks=list(conv.blocks)).render(model="m", max_tokens=5, last_turn=last)
        assert got == fresh


def test_a_rendering_holds_copies_of_nested_values_so_an_edit_of_the_block_cannot_reach_it() -> None:
    nested = {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "ok"}]}
    block = Block(name="r", role="user", kind="tool_result", content=[nested])
    sent = block.rendered()
    block.content[0]["content"].append({"type": "text", "text": "added later"})
    assert sent[0]["content"] == [{"type": "text", "text": "ok"}]


def test_dropping_a_key_typed_as_a_name_does_not_repeat_it(monkeypatch: pytest.MonkeyPatch) -> None:
    key = "sk-ant-api03-" + "abcdefghij" * 4
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    with pytest.raises(KeyError) as caught:
        Conversation().drop(key)
    assert str(caught.value) == "\"no block named '[API key]' (blocks: none)\""
