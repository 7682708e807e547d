"""The key guard: a request that holds the API key is refused before it is sent, and nothing changes."""

from __future__ import annotations

from typing import Any

import pytest

from pcache_magic.core.conversation import Block, Conversation
from pcache_magic.emulator import Emulator
from pcache_magic.session.calls import PreflightError
from pcache_magic.session.keyguard import KeyGuard, refuse_key_in_name
from pcache_magic.session.session import Session
from pcache_magic.session.transport import connect

from _helpers import MODEL

KEY = "sk-ant-api03-SENTINEL-guard-0042"


def request(text: str) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 10,
        "system": [{"type": "text", "text": "Be brief."}],
        "tools": [{"name": "lookup", "input_schema": {"type": "object"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": text}]},
            {"role": "user", "content": "ok"},
        ],
    }


@pytest.mark.parametrize(
    ("where", "path"),
    [
        (lambda r: r["messages"][0]["content"][0].update(text=f"my key {KEY}"), "messages.0.content.0"),
        (lambda r: r["messages"].__setitem__(1, {"role": "user", "content": KEY}), "messages.1"),
        (lambda r: r["system"][0].update(text=KEY), "system.0"),
        (lambda r: r["tools"][0].update(description=KEY), "tools.0"),
        (lambda r: r.update(stop_sequences=[KEY]), "stop_sequences"),
    ],
)
def test_the_key_is_found_wherever_it_sits(where: Any, path: str) -> None:
    params = request("hello")
    where(params)
    finding = KeyGuard().check(params, [KEY], {"system.0": "rules"})
    assert finding is not None and finding.level == "error" and path in finding.message
    assert KEY not in finding.message + finding.fix
    assert KeyGuard().check(params, [], {}) is None  # no key known: nothing to find


def test_a_clean_block_is_scanned_once() -> None:
    guard, params = KeyGuard(), request("hello")
    assert guard.check(params, [KEY], {}) is None
    block = params["messages"][0]["content"][0]
    block["text"] = KEY  # the same object changed in place is not scanned again (the session never does this)
    assert guard.check(params, [KEY], {}) is None
    params["messages"][0]["content"][0] = {**block}  # a new block object is scanned
    assert guard.check(params, [KEY], {}) is not None


def test_a_prompt_holding_the_key_is_refused_and_the_session_keeps_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    emu = Emulator()
    session = Session(model=MODEL, connection=connect(emulator=emu))
    session.system("Be brief.", name="rules")
    before = [b.model_dump() for b in session.conversation.blocks]
    with pytest.raises(PreflightError, match="holds the API key") as refused:
        session.ask(f"Here is my key: {KEY}", stream=False)
    assert KEY not in str(refused.value)
    assert [b.model_dump() for b in session.conversation.blocks] == before
    assert session.calls == [] and emu.state()["entries"] == []
    session.ask("Hello without it", stream=False)
    assert session.calls[-1].ok


def test_a_rendered_conversation_is_scanned_from_its_new_messages_only() -> None:
    conv = Conversation()
    for i in range(2):
        conv.add(
            Block(name=f"q{i}", role="user", kind="prompt", content=[{"type": "text", "text": f"turn {i}"}])
        )
        conv.add(
            Block(name=f"a{i}", role="assistant", kind="reply", content=[{"type": "text", "text": "ok"}])
        )
    guard = KeyGuard()
    params, names = conv.render(model=MODEL, max_tokens=5)
    assert guard.check(params, [KEY], names) is None
    conv.add(Block(name="leak", role="user", kind="prompt", content=[{"type": "text", "text": f"key {KEY}"}]))
    params, names = conv.render(model=MODEL, max_tokens=5)
    found = guard.check(params, [KEY], names)
    assert found is not None and found.block == "leak"
    conv.drop("leak")
    params, names = conv.render(model=MODEL, max_tokens=5)
    assert guard.check(params, [KEY], names) is None
    found = guard.check(params, ["turn 1"], names)  # other keys: every block is scanned again
    assert found is not None and found.block == "q1"


def test_the_key_is_found_in_any_string_of_a_block() -> None:
    tool = {"name": "lookup", "input_schema": {"type": "object", "properties": {KEY: {"type": "string"}}}}
    params: dict[str, Any] = {"model": MODEL, "max_tokens": 5, "tools": [tool], "messages": []}
    found = KeyGuard().check(params, [KEY], {})
    assert found is not None and "tools.0" in found.message
    params = request("hello")
    params["metadata"] = {"user_id": ("a", KEY)}
    assert KeyGuard().check(params, [KEY], {}) is not None
    params = request("hello")
    params["metadata"] = {"user_id": 12, "flag": None}
    assert KeyGuard().check(params, [KEY], {}) is None


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("thinking", {"type": "enabled", "budget_tokens": 1024, "note": KEY}, "thinking"),
        ("service_tier", KEY, "service_tier"),
        ("container", KEY, "container"),
        ("betas", ["a", {"deep": [[{"deeper": f"x{KEY}y"}]]}], "betas"),
        ("anything_else", {"k": (1, 2.5, None, {KEY: True})}, "anything_else"),  # in a nested key
        (KEY, 1, "<key>"),  # the field's own name: the path shows it as <key>
        ("system", {"odd": KEY}, "system"),  # not a str or list: scanned whole
        ("tools", {"name": KEY}, "tools"),
        ("messages", {"role": "user", "content": KEY}, "messages"),
    ],
)
def test_the_key_is_found_in_every_field_of_the_body(field: str, value: Any, path: str) -> None:
    guard, params = KeyGuard(), request("hello")
    assert guard.check(params, [KEY], {}) is None  # the blocks are now remembered clean
    params[field] = value
    found = guard.check(params, [KEY], {})
    assert found is not None and f"(at {path})" in found.message
    assert KEY not in found.message + found.fix + found.block
    del params[field]
    if field not in ("system", "tools", "messages"):
        assert guard.check(params, [KEY], {}) is None


def test_a_small_field_changed_in_place_is_scanned_again() -> None:
    guard, params = KeyGuard(), request("hello")
    params["thinking"] = thinking = {"type": "enabled", "budget_tokens": 1024}
    params["messages"][0]["cache_hint"] = "x"
    assert guard.check(params, [KEY], {}) is None
    thinking["note"] = KEY  # the same dict: not remembered, so found
    assert guard.check(params, [KEY], {}) is not None
    del thinking["note"]
    params["messages"][0]["cache_hint"] = KEY  # a message's own field, beside its content
    found = guard.check(params, [KEY], {})
    assert found is not None and "messages.0.cache_hint" in found.message


def test_an_extra_keyword_holding_the_key_is_never_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    emu = Emulator()
    session = Session(model=MODEL, connection=connect(emulator=emu))
    for extra in ({"container": KEY}, {"service_tier": KEY}, {"thinking": {"type": "disabled", "n": KEY}}):
        with pytest.raises(PreflightError, match="holds the API key"):
            session.ask("Hello", stream=False, **extra)
    assert session.calls == [] and emu.state()["entries"] == []


def test_a_field_nested_deeper_than_python_recurses_is_still_searched() -> None:
    deep: dict[str, Any] = {"key": "sk-ant-secret"}
    for _ in range(5_000):
        deep = {"a": deep}
    found = KeyGuard().check({"model": MODEL, "messages": [], "metadata": deep}, ["sk-ant-secret"], {})
    assert found is not None and found.code == "api-key-in-request"
    assert KeyGuard().check({"model": MODEL, "messages": [], "metadata": deep}, ["sk-ant-other"], {}) is None


API_KEY = "sk-ant-api03-" + "abcdefghij" * 4


def test_a_block_name_holding_the_key_is_refused_when_added(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name is never sent, but every view shows it and the file keeps it: refused at once."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    session = Session(model=MODEL, connection=connect(emulator=Emulator()))
    session.system("Be brief.", name="rules")
    before = [b.model_dump() for b in session.conversation.blocks]
    for add in (
        lambda: session.system("x", name=API_KEY),
        lambda: session.context("x", name=f"notes-{API_KEY}"),
        lambda: session.tools([{"name": "t", "input_schema": {"type": "object"}}], name=API_KEY),
        lambda: session.ask("hi", name=API_KEY, stream=False),
    ):
        with pytest.raises(ValueError) as refused:
            add()
        assert (
            str(refused.value) == "That block name holds the API key; give the block another name (--name)."
        )
    assert [b.model_dump() for b in session.conversation.blocks] == before and session.calls == []
    session.context("x", name="notes")  # any other name goes
    refuse_key_in_name("notes", [API_KEY])


#: A key with no repeats; `RANDOM`: its secret part.
RANDOM_KEY = "sk-ant-api03-u8jzPde0IgxLd6GncfBAepfJBd0Kh8oOOL8dKLzd"
RANDOM = RANDOM_KEY[13:]


def test_a_block_name_holding_a_piece_of_the_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A key split by a space, "=" or ".", or with a character added, is still the key: every view
    and the saved file would show it."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", RANDOM_KEY)
    session = Session(model=MODEL, connection=connect(emulator=Emulator()))
    a, b = RANDOM_KEY[:26], RANDOM_KEY[26:]
    for name in (f"{a} {b}", f"{a}={b}", f"{a}.{b}", RANDOM, f"x{RANDOM}", f"{RANDOM[:39]}Z", RANDOM[5:13]):
        for add, text in ((session.system, "x"), (session.context, "x"), (session.ask, "hi")):
            with pytest.raises(ValueError) as refused:
                add(text, name=name)
            assert str(refused.value) == (
                "That block name holds the API key; give the block another name (--name)."
            )
    assert session.conversation.blocks == [] and session.calls == []
    session.context("x", name=f"{RANDOM[:7]} notes")  # seven characters in a row: any name
    session.context("x", name="sk-ant-api03-notes")  # a key's public start holds no secret


def test_a_name_sharing_the_stand_in_key_is_no_key() -> None:
    stand_in = "sk-ant-emulator-0123456789abcdef"  # public: the key an emulator's client holds
    refuse_key_in_name("notes-0123456789abcdef", [stand_in, RANDOM_KEY])
    with pytest.raises(ValueError):
        refuse_key_in_name(f"notes-{RANDOM[3:12]}", [stand_in, RANDOM_KEY])
