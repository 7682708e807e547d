"""store.py: versioned save/load (validated, atomic), JSON export and the replay script."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pcache_magic.session import store
from pcache_magic.session.session import Session
from pcache_magic.session.transport import connect

LONG = "You review code carefully and answer briefly. " * 250
KEY = "sk-ant-api03-secret-do-not-leak"


@pytest.fixture
def session() -> Session:
    """An offline session with two calls (a write, then a read), and a key in the environment."""
    s = Session(connection=connect(env={"ANTHROPIC_API_KEY": KEY}, offline=True), default_ttl="1h")
    s.tools([{"name": "lookup", "input_schema": {"type": "object", "properties": {}}}])
    s.system(LONG, cache=True, name="system")
    s.context("Some notes.", name="notes", source="notes.md")
    s.ask("First question?", stream=False)
    s.ask("Second question?", stream=True)
    return s


def fresh() -> Session:
    return Session(connection=connect(offline=True))


def state_of(s: Session) -> tuple[object, ...]:
    return (
        s.model,
        s.max_tokens,
        s.default_ttl,
        s.cache_mode,
        [b.model_dump() for b in s.conversation.blocks],
        len(s.calls),
    )


def test_round_trip_keeps_blocks_config_and_usage(session: Session, tmp_path: Path) -> None:
    session.max_tokens, session.cache_mode = 512, "last"
    path = store.save(session, tmp_path / "s.json")
    assert json.loads(path.read_text())["version"] == store.VERSION
    other = fresh()
    events: list[str] = []
    other.subscribe(lambda event, _: events.append(event))
    store.apply(store.load(path), other)
    assert [b.model_dump() for b in other.conversation.blocks] == [
        b.model_dump() for b in session.conversation.blocks
    ]
    assert (other.model, other.max_tokens, other.default_ttl, other.cache_mode) == (
        session.model,
        512,
        "1h",
        "last",
    )
    assert [c.tokens for c in other.calls] == [c.tokens for c in session.calls]
    assert other.calls[1].tokens.read > 0
    assert other.totals == session.totals
    assert [c.response.id for c in other.calls if c.response] == [
        c.response.id for c in session.calls if c.response
    ]
    assert events == ["reset"]
    other.ask("Third question?", stream=False)  # the loaded conversation is sendable as is
    assert other.calls[-1].index == 3 and other.calls[-1].ok


def test_save_is_atomic_and_leaves_no_temporary_files(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.json"
    path.write_text("previous contents")

    def fail(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        store.save(session, path)
    assert path.read_text() == "previous contents"
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


def test_save_refuses_a_directory_or_a_missing_folder(session: Session, tmp_path: Path) -> None:
    with pytest.raises(store.StoreError, match="is a directory"):
        store.save(session, tmp_path)
    with pytest.raises(store.StoreError, match="does not exist"):
        store.save(session, tmp_path / "nope" / "s.json")


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda text: text[: len(text) // 2], "not valid JSON .* truncated"),
        (lambda text: "\x00garbage", "not valid JSON"),
        (lambda text: json.dumps({"cells": [], "nbformat": 4}), "not a pcache_magic session file"),
        (lambda text: "[1, 2]", "not a pcache_magic session file"),
        (lambda text: text.replace('"version":1', '"version":99'), "newer pcache_magic .*format 99"),
        (lambda text: text.replace('"version":1', '"version":"1"'), "no valid format version"),
        (lambda text: text.replace('"role":"system"', '"role":"robot"'), r"damaged: blocks\.1\.role"),
        (lambda text: text.replace('"max_tokens":1024', '"max_tokens":-1'), r"damaged: config\.max_tokens"),
        (lambda text: text.replace('"blocks":', '"extra":1,"blocks":'), "damaged: extra"),
        (
            lambda text: text.replace('"name":"notes"', '"name":"system"'),
            r"damaged: blocks: the name 'system' is used twice\.$",
        ),
    ],
)
def test_bad_files_are_refused_and_change_nothing(
    session: Session, tmp_path: Path, mutate: object, words: str
) -> None:
    text = store.dumps(session).replace(" ", "").replace("\n", "")
    assert '"version":1' in text and '"role":"system"' in text and '"max_tokens":1024' in text
    path = tmp_path / "bad.json"
    path.write_text(mutate(text))  # type: ignore[operator]
    target = fresh()
    before = state_of(target)
    with pytest.raises(store.StoreError, match=words) as info:
        store.apply(store.load(path), target)
    assert "\n" not in str(info.value)
    assert state_of(target) == before


def test_unknown_model_in_a_valid_file_is_refused(session: Session) -> None:
    state = store.snapshot(session)
    state.config.model = "claude-nonexistent-9"
    target = fresh()
    before = state_of(target)
    with pytest.raises(store.StoreError, match="Unknown model"):
        store.apply(state, target)
    assert state_of(target) == before


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(store.StoreError, match="no such file"):
        store.load(tmp_path / "missing.json")


def test_export_json_has_the_next_request_and_usage(session: Session) -> None:
    exported = json.loads(store.export_json(session))
    nxt = exported["next_request"]
    assert nxt["system"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert nxt["tools"][0]["name"] == "lookup"
    assert [c["outcome"] for c in exported["calls"]] == ["write", "hit"]
    assert exported["calls"][1]["usage"]["cache_read_input_tokens"] > 0
    assert KEY not in json.dumps(exported)


def test_export_python_is_a_runnable_script_without_the_key(session: Session) -> None:
    script = store.export_python(session)
    compile(script, "replay.py", "exec")
    assert KEY not in script and "sk-ant" not in script
    assert "anthropic.Anthropic()" in script and "diagnostics" not in script
    namespace: dict[str, object] = {"__name__": "replay"}
    exec(compile(script, "replay.py", "exec"), namespace)
    requests = namespace["REQUESTS"]
    assert isinstance(requests, list) and len(requests) == 2
    assert requests == [{k: v for k, v in c.request.items() if k != "diagnostics"} for c in session.calls]


def test_export_python_before_any_call_sends_the_next_request() -> None:
    s = fresh()
    s.system(LONG, cache=True)
    namespace: dict[str, object] = {"__name__": "replay"}
    exec(compile(store.export_python(s), "replay.py", "exec"), namespace)
    (request,) = namespace["REQUESTS"]  # type: ignore[misc]
    assert request["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert request["messages"] == [{"role": "user", "content": "Hello"}]
