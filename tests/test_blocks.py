"""Building the conversation (`blocks.Blocks`, alone and on a Session): named blocks, markers, replacement."""

from __future__ import annotations

from typing import Any

import pytest

from pcache_magic.core.conversation import Block, CacheControl, Conversation
from pcache_magic.emulator import Emulator
from pcache_magic.session.blocks import Blocks, marker, named_turn, take_place
from pcache_magic.session.session import Session
from pcache_magic.session.session_settings import Settings
from pcache_magic.session.transport import connect

MODEL = "claude-sonnet-4-5"
EPH: dict[str, Any] = {"type": "ephemeral"}
EPH_1H: dict[str, Any] = {"type": "ephemeral", "ttl": "1h"}
#: About 1,500 tokens: above Sonnet 4.5's 1,024-token minimum.
LONG = " ".join(f"line{i % 40}" for i in range(1_500))


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def make(emu: Emulator, **kwargs: Any) -> Session:
    return Session(model=MODEL, connection=connect(emulator=emu, max_retries=0), **kwargs)


@pytest.fixture
def session(emu: Emulator) -> Session:
    return make(emu)


# -- the part alone ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cache", "default", "expected"),
    [
        (None, "1h", None),
        (False, "1h", None),
        (True, None, CacheControl()),
        (True, "1h", CacheControl(ttl="1h")),
        ("5m", "1h", CacheControl(ttl="5m")),
    ],
)
def test_marker_reads_cache_with_the_default_lifetime(
    cache: Any, default: Any, expected: CacheControl | None
) -> None:
    assert marker(cache, default) == expected


def test_blocks_change_the_conversation_given_and_announce_each_change() -> None:
    settings = Settings(default_ttl="1h")
    events: list[tuple[str, Any]] = []
    blocks = Blocks(settings, lambda event, payload: events.append((event, payload)))
    conversation = Conversation()
    system = blocks.system(conversation, "Be terse.", cache=True)
    settings.default_ttl = None  # read when a block is made, not when the part was
    doc = blocks.context(conversation, "Doc", cache=True, name="doc")
    assert (system.cache, doc.cache) == (CacheControl(ttl="1h"), CacheControl())
    assert conversation.names() == ["system", "doc"]
    assert events == [("blocks", system), ("blocks", doc)]
    with pytest.raises(ValueError, match="empty"):
        blocks.system(conversation, "  ", cache=True)
    assert len(events) == 2 and conversation.names() == ["system", "doc"]  # refused: nothing changed


def test_dropping_a_reply_takes_its_tool_results_and_announces_the_reply() -> None:
    events: list[tuple[str, Any]] = []
    blocks = Blocks(Settings(), lambda event, payload: events.append((event, payload)))
    use = {"type": "tool_use", "id": "t1", "name": "lookup", "input": {}}
    conversation = Conversation()
    conversation.add(Block(name="prompt", role="user", kind="prompt", content=[text("Look it up")]))
    conversation.add(Block(name="reply", role="assistant", kind="reply", content=[use]))
    answer = {"type": "tool_result", "tool_use_id": "t1", "content": "found"}
    conversation.add(Block(name="result", role="user", kind="tool_result", content=[answer]))
    reply = blocks.drop(conversation, "reply")
    assert reply.name == "reply" and conversation.names() == ["prompt"]
    assert events == [("blocks", reply)]
    with pytest.raises(KeyError, match="no block named 'reply'"):
        blocks.drop(conversation, "reply")


# -- on a Session --------------------------------------------------------------------------------


def test_system_context_and_tools_build_named_blocks(session: Session) -> None:
    def get_weather(city: str) -> str:
        """Weather for a city."""
        return city

    session.system("Be terse.", name="style")
    session.system(LONG, cache="1h")
    session.context([text("Doc A"), text(""), text("Doc B")], cache=True, source="a.txt")
    session.tools([get_weather], cache="1h")
    assert session.conversation.names() == ["style", "system", "context", "tools"]
    ctx = session.conversation.get("context")
    assert ctx is not None and ctx.content == [text("Doc A"), text("Doc B")]  # empty text dropped
    assert ctx.source == "a.txt" and ctx.cache is not None and ctx.cache.ttl is None
    params = session.params()
    assert params["tools"] == [
        {
            "name": "get_weather",
            "input_schema": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
            "description": "Weather for a city.",
            "cache_control": EPH_1H,
        }
    ]
    assert params["system"] == [text("Be terse."), {**text(LONG), "cache_control": EPH_1H}]
    assert params["messages"] == [
        {"role": "user", "content": [text("Doc A"), {**text("Doc B"), "cache_control": EPH}]}
    ]


def test_rerunning_a_cell_replaces_its_block_in_place(session: Session) -> None:
    session.system("One", name="sys")
    session.context("Doc", name="doc")
    session.system("Two", cache="5m", name="sys")
    assert session.conversation.names() == ["sys", "doc"]
    assert session.params()["system"] == [
        {**text("Two"), "cache_control": {"type": "ephemeral", "ttl": "5m"}}
    ]


def test_default_ttl_and_invalid_cache_values(emu: Emulator) -> None:
    session = make(emu, default_ttl="1h")
    session.system(LONG, cache=True)
    assert session.params()["system"][0]["cache_control"] == EPH_1H
    with pytest.raises(ValueError, match="cache must be"):
        session.system("x", cache="2h")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        session.system("  ", cache=True)
    with pytest.raises(ValueError, match="empty"):
        session.context([text("")], cache=True)
    with pytest.raises(ValueError, match="No tools"):
        session.tools([])
    assert session.conversation.names() == ["system"]


@pytest.mark.parametrize(
    ("add", "problem"),
    [
        (lambda s: s.tools([{"name": "f", "input_schema": {"type": "object", "enum": {1, 2}}}]), "set"),
        (
            lambda s: s.tools([{"name": "f", "description": object(), "input_schema": {"type": "object"}}]),
            "object",
        ),
        (
            lambda s: s.context([{"type": "text", "text": "x", "citations": float("nan")}]),
            "Out of range float",
        ),
    ],
    ids=["a set in a tool schema", "an object in a tool", "NaN in context"],
)
def test_content_that_is_not_json_is_refused_at_the_door(session: Session, add: Any, problem: str) -> None:
    """Admitted, it would make every later call fail with a raw TypeError: the session poisoned."""
    before = list(session.conversation.blocks)
    with pytest.raises(ValueError, match="must be plain JSON") as caught:
        add(session)
    assert problem in str(caught.value) and "\n" not in str(caught.value)
    assert session.conversation.blocks == before
    session.ask("still fine?", stream=False)  # the next call goes through
    assert session.calls[-1].ok


def test_content_nested_too_deeply_is_refused_at_the_door(session: Session) -> None:
    deep: Any = "leaf"
    for _ in range(5_000):
        deep = [deep]
    with pytest.raises(ValueError, match="nested too deeply"):
        session.tools([{"name": "f", "input_schema": {"type": "object", "default": deep}}])


# -- helpers the magics use ----------------------------------------------------------------------


def _conversation(*blocks: tuple[str, str, str]) -> Conversation:
    roles = {"system": "system", "context": "user", "prompt": "user", "reply": "assistant", "tools": "tools"}
    return Conversation(
        blocks=[Block(name=n, role=roles[k], kind=k, content=[text(t)]) for n, k, t in blocks]  # type: ignore[arg-type]
    )


def test_take_place_moves_a_renamed_block_where_the_old_one_stands() -> None:
    conversation = _conversation(
        ("alpha", "context", "a"), ("beta", "context", "b"), ("q", "prompt", "?"), ("gamma", "context", "g")
    )
    assert take_place(conversation, "gamma", "alpha")
    assert conversation.names() == ["gamma", "alpha", "beta", "q"]
    conversation.drop("alpha")
    assert conversation.names() == ["gamma", "beta", "q"]


def test_take_place_keeps_roles_apart_and_ignores_missing_names() -> None:
    conversation = _conversation(("style", "system", "s"), ("notes", "context", "n"))
    assert not take_place(conversation, "notes", "style")  # a context block does not go into system's place
    assert not take_place(conversation, "nothing", "style")
    assert not take_place(conversation, "notes", "notes")
    assert conversation.names() == ["style", "notes"]


def test_named_turn_is_the_prompt_with_its_replies() -> None:
    conversation = _conversation(
        ("guide", "context", "g"),
        ("q", "prompt", "?"),
        ("reply", "reply", "!"),
        ("later", "context", "l"),
        ("q2", "prompt", "??"),
        ("reply-2", "reply", "!!"),
    )
    assert [b.name for b in named_turn(conversation, "q")] == ["q", "reply"]  # not the context after it
    assert [b.name for b in named_turn(conversation, "q2")] == ["q2", "reply-2"]
    assert named_turn(conversation, "new") == []
    with pytest.raises(ValueError, match=r"^'guide' names a context block; give the turn another --name\.$"):
        named_turn(conversation, "guide")
