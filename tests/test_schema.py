"""schema.py: the session file's models, and docs/session-schema.json generated from them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from anthropic._models import construct_type
from anthropic.types import Message
from pydantic import ValidationError

from pcache_magic.session import schema

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "docs" / "session-schema.json"


def test_the_published_schema_is_the_models_schema() -> None:
    """Fails when the models change without `python -m pcache_magic.session.store --schema
    docs/session-schema.json` (or when a new anthropic SDK changes its `Message`)."""
    assert json.loads(PUBLISHED.read_text(encoding="utf-8")) == schema.json_schema()


def test_the_command_writes_the_schema(tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    done = subprocess.run(
        [sys.executable, "-m", "pcache_magic.session.store", "--schema", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert out.read_text(encoding="utf-8") == PUBLISHED.read_text(encoding="utf-8")


def test_the_schema_names_the_version_and_forbids_unknown_fields() -> None:
    published = schema.json_schema()
    assert published["$id"] == "pcache_magic.session.session/v2"
    assert published["properties"]["version"]["const"] == 2
    assert published["additionalProperties"] is False
    assert set(published["required"]) == {"settings", "clock", "blocks"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("started_at", float("nan")),
        ("started_at", float("inf")),
        ("started_at", -1.0),
        ("latency_s", 1e300),
        ("index", -1),
        ("index", 10**13),
        ("model", "two words"),
        ("model", ""),
        ("kind", "other"),
    ],
)
def test_a_call_field_out_of_bounds_is_refused(field: str, value: object) -> None:
    call = {
        "index": 1,
        "kind": "ask",
        "model": "claude-sonnet-4-5",
        "started_at": 1.0,
        "request": {"keys": []},
    }
    schema.SavedCall.model_validate(call)
    with pytest.raises(ValidationError, match=field):
        schema.SavedCall.model_validate({**call, field: value})


def test_usage_counts_are_whole_non_negative_and_bounded() -> None:
    response = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [],
        "stop_reason": "end_turn",
        "usage": {
            "input_tokens": 1,
            "output_tokens": 2,
            "cache_creation": {"ephemeral_5m_input_tokens": 3, "ephemeral_1h_input_tokens": 0},
        },
    }
    call = {"index": 1, "kind": "ask", "model": "m", "started_at": 1.0, "request": {"keys": []}}
    assert schema.SavedCall.model_validate({**call, "response": response}).response is not None
    response["usage"]["cache_creation"]["ephemeral_5m_input_tokens"] = -3  # type: ignore[index]
    with pytest.raises(ValidationError, match=r"usage\.cache_creation\.ephemeral_5m_input_tokens"):
        schema.SavedCall.model_validate({**call, "response": response})


def test_a_store_error_never_repeats_the_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A path (or a block name) typed with the key in it is quoted back by a store error."""
    from pcache_magic.session.session import Session
    from pcache_magic.session.transport import connect

    key = "sk-ant-api03-" + "abcdefghij" * 4
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    assert str(schema.StoreError(f"{key}.json: no such file.")) == "[API key].json: no such file."
    session = Session(connection=connect(offline=True))
    for act in (lambda: session.load(tmp_path / key), lambda: session.save(tmp_path / key / "x.json")):
        with pytest.raises(schema.StoreError) as caught:
            act()
        assert key not in str(caught.value) and "[API key]" in str(caught.value)


def _nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


NEWER = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [{"type": "a_block_newer_than_the_sdk", "x": 1}, {"type": "text", "text": "hi"}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 1, "output_tokens": 2, "server_tool_use": {"web_search_requests": 1}},
}
CALL = {"index": 1, "kind": "ask", "model": "claude-sonnet-4-5", "started_at": 1.0, "request": {"keys": []}}


@pytest.mark.parametrize(
    "changes",
    [
        {},  # a block type newer than the SDK; a usage part without a field the SDK requires
        {"content": [{"type": "tool_use", "id": "toolu_1", "name": "ping", "input": {"n": 1.5}}], "model": 5},
        {"model": 5, "stop_sequence": 3},
        {"content": [{"type": "text", "text": "hi", "citations": [{"type": "x", "n": "?"}]}]},
    ],
    ids=["newer-block", "model-int", "stop-sequence", "citations"],
)
def test_a_reply_the_sdk_types_do_not_describe_is_read_as_the_sdk_reads_it(changes: dict[str, Any]) -> None:
    """What the session recorded from a server (the SDK reads a reply without validating it) loads
    back: the same `Message` the SDK built, not a file refused for a field the SDK's types reject."""
    reply = {**NEWER, **changes}
    with pytest.raises(ValidationError):
        Message.model_validate(reply, strict=True)  # the strict reading a file's reply had before
    loaded = schema.SavedCall.model_validate({**CALL, "response": reply}, strict=True).response
    built = construct_type(type_=Message, value=reply)
    assert isinstance(loaded, Message) and type(loaded.content[0]) is type(built.content[0])
    assert loaded.model_dump(warnings=False) == built.model_dump(warnings=False)


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"content": [{"type": "text"}]}, "a text block has no text"),
        ({"content": "text"}, "valid list"),
        ({"stop_reason": None}, "no stop_reason"),
        ({"usage": {"input_tokens": -1, "output_tokens": 2, "x": "y"}}, "usage.input_tokens"),
        ({"usage": {"input_tokens": "many", "output_tokens": 2}}, "usage.input_tokens"),
        ({"diagnostics": "x", "model": 5}, "diagnostics"),
        ({"_fields_set": 1, "model": 5}, "not a Messages API answer"),
        ({"type": "completion"}, "Input should be 'message'"),
        ({"content": [{"type": "tool_use", "id": "t", "name": "p", "input": "text"}]}, "no input of the API"),
        ({"content": [{"type": "thinking", "thinking": 5, "signature": "s"}]}, "no thinking of the API"),
        ({"content": [{"type": "text", "text": "hi", "citations": "x"}]}, "citations are not a list"),
        (
            {"content": [{"type": "tool_use", "id": "t", "name": "p", "input": {"x": float("nan")}}]},
            "not finite",
        ),
        ({"content": [{"type": "newer", "n": 10**40}]}, "more than 40 digits"),
        ({"content": [{"type": "newer", "deep": _nested(93)}]}, "nests deeper than 92 levels"),
    ],
)
def test_such_a_reply_is_checked_as_a_reply_is_before_it_is_recorded(
    changes: dict[str, Any], said: str
) -> None:
    """Only what the session would have recorded loads: a file is no way around the reply check."""
    with pytest.raises(ValidationError, match=said):
        schema.SavedCall.model_validate({**CALL, "response": {**NEWER, **changes}}, strict=True)


def test_a_whole_reply_reads_back_as_the_validated_message() -> None:
    """Every reply is read as the SDK reads one (no strict validation first, whose error per field
    of every block made a small file of many empty blocks cost gigabytes): a whole reply reads back
    equal to the validated `Message`."""
    reply = {
        **NEWER,
        "content": [{"type": "text", "text": "hi"}],
        "usage": {"input_tokens": 9, "output_tokens": 2},
    }
    loaded = schema.SavedCall.model_validate({**CALL, "response": reply}, strict=True).response
    assert loaded == Message.model_validate(reply)
    assert schema.json_schema()["$defs"]["SavedCall"]["properties"]["response"]["anyOf"][0] == {
        "$ref": "#/$defs/SavedReply"
    }


_MANY_EMPTY_BLOCKS = """
import resource, sys
from pydantic import ValidationError
from pcache_magic.session.schema import SavedCall
call = {"index": 1, "kind": "ask", "model": "m", "started_at": 1.0, "request": {"keys": []}}
reply = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [{}] * 30_000,
         "stop_reason": "end_turn", "usage": {"input_tokens": 1, "output_tokens": 2}}
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    SavedCall.model_validate({**call, "response": reply}, strict=True)
except ValidationError as error:
    assert "not a content block" in str(error), error
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def test_a_file_of_many_empty_blocks_costs_what_the_reply_from_a_server_does() -> None:
    """Validated strictly first, a reply of empty blocks made an error for a field of every block
    type, for every block: 1.65 GB for 100,000 blocks (a 320 KB file).  Read as the SDK reads it,
    it costs what the same reply from a server does (in a fresh process: its peak memory)."""
    done = subprocess.run(
        [sys.executable, "-c", _MANY_EMPTY_BLOCKS], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    grown_kb = int(done.stdout)
    assert grown_kb < 150 * 1024, grown_kb  # strictly first: ~500 MB for these 30,000
