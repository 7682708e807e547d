"""`%%claude --schema NAME`: the schema from a dict, a pydantic model or a .json file, refused before
sending where the API would refuse it, and `-o` holding the parsed reply (against the emulator)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Literal

import pydantic
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import pcache_magic
from pcache_magic.ipython.output_schema import OutputSchema, parse_reply, resolve_schema

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "rank": {"type": "integer"}},
    "required": ["city", "rank"],
    "additionalProperties": False,
}


class Place(pydantic.BaseModel):
    name: str
    kind: Literal["city", "village"]


class Answer(pydantic.BaseModel):
    title: str
    score: int = pydantic.Field(ge=1, description="How good")
    when: dt.date
    tags: list[str]
    place: Place
    note: str | None = None


def _calls() -> int:
    return len(pcache_magic.current_session().calls)


def _fails(ip: InteractiveShell, code: str) -> str:
    before = _calls()
    with capture_output():
        result = ip.run_cell(code)
    error = result.error_in_exec or result.error_before_exec
    assert isinstance(error, UsageError), result
    assert _calls() == before  # nothing was sent
    return str(error)


# -- resolving ------------------------------------------------------------------------------------
def test_a_dict_is_sent_as_written() -> None:
    found = resolve_schema("S", {"S": SCHEMA})
    assert found.format == {"type": "json_schema", "schema": SCHEMA}
    assert found.output_config == {"format": {"type": "json_schema", "schema": SCHEMA}}
    assert found.model is None


def test_a_pydantic_model_goes_through_anthropics_transform_schema() -> None:
    import anthropic

    found = resolve_schema("Answer", {"Answer": Answer})
    assert found.model is Answer
    assert found.format["schema"] == anthropic.transform_schema(Answer)
    schema: dict[str, Any] = dict(found.format["schema"])
    assert schema["additionalProperties"] is False
    assert '"minimum"' not in json.dumps(schema)  # moved into the description, which the API takes
    assert (
        "minimum" not in schema["properties"]["score"]
        and "minimum: 1" in schema["properties"]["score"]["description"]
    )


def test_a_json_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps(SCHEMA))
    assert resolve_schema(str(path), {}).format["schema"] == SCHEMA


@pytest.mark.parametrize(
    ("name", "namespace", "says"),
    [
        ("nothing", {}, "no such notebook variable"),
        ("n", {"n": 3}, "a int, not a schema"),
        ("S", {"S": {"type": "object", "properties": {}}}, "'additionalProperties' must be explicitly set"),
        (
            "S",
            {
                "S": {
                    **SCHEMA,
                    "properties": {"rank": {"type": "integer", "maximum": 9}},
                    "required": ["rank"],
                }
            },
            "property 'maximum' is not supported",
        ),
        ("S", {"S": {"type": "object", "additionalProperties": False, "x": {1, 2}}}, "not JSON"),
    ],
)
def test_bad_schemas_are_one_line(name: str, namespace: dict[str, Any], says: str) -> None:
    with pytest.raises(UsageError, match=says) as caught:
        resolve_schema(name, namespace)
    assert "\n" not in str(caught.value)


def test_a_bad_json_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"type": "object",')
    with pytest.raises(UsageError, match="not valid JSON"):
        resolve_schema(str(path), {})
    path.write_text("[1, 2]")
    with pytest.raises(UsageError, match="JSON list, not a schema"):
        resolve_schema(str(path), {})
    with pytest.raises(UsageError, match="does not exist"):
        resolve_schema(str(tmp_path / "missing.json"), {})


def test_a_schema_holding_the_key_is_never_sent() -> None:
    key = "sk-ant-api03-secret-value"
    with pytest.raises(UsageError, match="API key"):
        resolve_schema("S", {"S": {**SCHEMA, "description": key}}, [key])


def test_parse_reply_explains_a_cut_reply() -> None:
    schema = OutputSchema("Answer", {"type": "json_schema", "schema": {}}, Answer)
    with pytest.raises(ValueError, match="cut by max_tokens; raise --max-tokens"):
        parse_reply('{"title": "x", "sc', schema, "max_tokens")
    with pytest.raises(ValueError, match="ValidationError"):
        parse_reply('{"title": "x"}', schema, "end_turn")
    plain = OutputSchema("S", {"type": "json_schema", "schema": SCHEMA})
    assert parse_reply('{"city": "Oslo", "rank": 2}', plain, "end_turn") == {"city": "Oslo", "rank": 2}


# -- through the magic, against the emulator ------------------------------------------------------
def test_a_model_reply_is_stored_as_an_instance(ip: InteractiveShell) -> None:
    ip.user_ns["Answer"] = Answer
    with capture_output() as out:
        ip.run_cell("%%claude --schema Answer -o ans\nRate this library.").raise_error()
    ans = ip.user_ns["ans"]
    assert isinstance(ans, Answer) and isinstance(ans.place, Place)
    assert ans.when == dt.date(2026, 1, 1) and ans.place.kind == "city" and ans.score >= 1
    call = pcache_magic.current_session().calls[-1]
    assert call.request["output_config"] == {
        "format": {
            "type": "json_schema",
            "schema": resolve_schema("Answer", {"Answer": Answer}).format["schema"],
        }
    }
    assert '"title"' in out.stdout or any('"title"' in str(o.data) for o in out.outputs)


def test_a_dict_reply_is_stored_as_a_dict(ip: InteractiveShell) -> None:
    ip.user_ns["S"] = SCHEMA
    with capture_output():
        ip.run_cell("%%claude --schema S -o got --no-stream\nThe best city?").raise_error()
    assert ip.user_ns["got"] == {"city": "example", "rank": 1}


def test_refusals_come_before_sending(ip: InteractiveShell, tmp_path: Path) -> None:
    assert "no such notebook variable" in _fails(ip, "%%claude --schema Nope\nHi")
    ip.user_ns["Loose"] = {"type": "object", "properties": {"a": {"type": "string"}}}
    message = _fails(ip, "%%claude --schema Loose\nHi")
    assert message.startswith("Not sent: --schema Loose: the API refuses it: output_config.format.schema:")
    assert "transform_schema" in message
    # a mistake of structure: no word of pydantic, which would not mend it
    ip.user_ns["Twice"] = {**ip.user_ns["Loose"], "additionalProperties": False, "required": ["a", "a"]}
    message = _fails(ip, "%%claude --schema Twice\nHi")
    assert "'required' names 'a' twice" in message and "pydantic" not in message


def test_a_cut_reply_keeps_its_text_and_says_why(ip: InteractiveShell) -> None:
    ip.user_ns["Answer"] = Answer
    before = _calls()
    with capture_output():
        result = ip.run_cell("%%claude --schema Answer -o ans --max-tokens 5\nRate it.")
    assert isinstance(result.error_in_exec, UsageError)
    assert "cut by max_tokens; raise --max-tokens; its text is in ans" in str(result.error_in_exec)
    assert _calls() == before + 1  # the turn happened and is kept
    assert isinstance(ip.user_ns["ans"], str) and ip.user_ns["ans"].startswith("{")


class Tree(pydantic.BaseModel):
    label: str
    children: list[Tree]


def test_a_recursive_model_is_refused_with_the_apis_reason() -> None:
    with pytest.raises(UsageError, match=r"Not sent: --schema Tree: .*Recursive schemas are not supported"):
        resolve_schema("Tree", {"Tree": Tree})


class _KeysRaise(dict[str, Any]):
    def __iter__(self) -> Any:
        raise RuntimeError("iter boom")

    def keys(self) -> Any:
        raise RuntimeError("keys boom")


class _LoudModel(pydantic.BaseModel):
    x: int

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("boom\nsecond line\n" + "z" * 5000)


def test_odd_values_are_one_short_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(3000):
        deep = {"type": "object", "properties": {"a": deep}, "required": ["a"], "additionalProperties": False}
    pattern = {"type": "string", "pattern": "(?=" + "x" * 200_000}
    malformed = {"type": "object", "properties": {"a": 5}, "required": ["a"], "additionalProperties": False}
    cases = {
        "deep": "nests too deeply to be JSON",
        "keys": "the mapping cannot be read (RuntimeError: keys boom)",
        "Loud": "no JSON schema for this model (RuntimeError: boom)",
        "pat": "Pattern '(?=xxx",
        "bad": "property 'a' must be a schema object, not int (at #)",
    }
    namespace = {
        "deep": deep,
        "keys": _KeysRaise(type="string"),
        "Loud": _LoudModel,
        "pat": pattern,
        "bad": malformed,
    }
    for name, says in cases.items():
        with pytest.raises(UsageError) as caught:
            resolve_schema(name, namespace)
        message = str(caught.value)
        assert says in message and "\n" not in message and len(message) < 300, message
    monkeypatch.chdir(tmp_path)
    for stem in ("a1", "a2"):
        (tmp_path / f"{stem}.json").write_text('{"type": "string"}')
    with pytest.raises(UsageError, match=r"a\*\.json: matches 2 files; give one"):
        resolve_schema("a*.json", {})
    (tmp_path / "req.json").write_text(
        '{"type":"object","properties":{},"required":5,"additionalProperties":false}'
    )
    with pytest.raises(UsageError, match="'required' must be an array of property names"):
        resolve_schema("req.json", {})
