"""The emulator's structured replies: a JSON instance valid against the schema, streamed as text,
through the engine and the Session's Python API."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pcache_magic.core.output_format import format_problem
from pcache_magic.emulator import Emulator
from pcache_magic.emulator.engine import Engine
from pcache_magic.emulator.reply import MAX_CHARS_PER_TOKEN
from pcache_magic.emulator.structured import instance, json_text, structured_content
from pcache_magic.session.session import Session

MODEL = "claude-sonnet-4-5"


def obj(required: tuple[str, ...] | None = None, /, **props: Any) -> dict[str, Any]:
    names = list(props) if required is None else list(required)
    return {"type": "object", "properties": props, "required": names, "additionalProperties": False}


SCHEMAS = [
    obj(name={"type": "string"}, age={"type": "integer"}, ok={"type": "boolean"}, ratio={"type": "number"}),
    obj(kind={"enum": ["b", "a"]}, fixed={"const": "x"}, nothing={"type": "null"}),
    obj(
        at={"type": "string", "format": "date-time"},
        day={"type": "string", "format": "date"},
        clock={"type": "string", "format": "time"},
        mail={"type": "string", "format": "email"},
        host={"type": "string", "format": "hostname"},
        link={"type": "string", "format": "uri"},
        v4={"type": "string", "format": "ipv4"},
        v6={"type": "string", "format": "ipv6"},
        id={"type": "string", "format": "uuid"},
    ),
    obj(rows={"type": "array", "items": obj(x={"type": "integer"}), "minItems": 1}, empty={"type": "array"}),
    obj(either={"anyOf": [{"type": "integer"}, {"type": "string"}]}, maybe={"type": ["string", "null"]}),
    obj(both={"allOf": [obj(a={"type": "string"}), {"description": "a note on it"}]}),
    {
        **obj(p={"$ref": "#/$defs/P"}, q={"$ref": "#/definitions/Q"}),
        "$defs": {"P": obj(z={"type": "string"})},
        "definitions": {"Q": {"type": "integer"}},
    },
    obj(("name",), name={"type": "string"}, note={"type": "string", "default": "none"}),
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_the_instance_is_valid_and_deterministic(schema: dict[str, Any]) -> None:
    value = instance(schema)
    jsonschema.validate(value, schema, format_checker=jsonschema.FormatChecker())
    assert instance(schema) == value


def test_values_follow_the_schema() -> None:
    assert instance(SCHEMAS[1]) == {"kind": "b", "fixed": "x", "nothing": None}  # the first enum value
    assert instance(SCHEMAS[4]) == {
        "either": 1,
        "maybe": "example",
    }  # the first branch, the first non-null type
    assert instance(SCHEMAS[5]) == {"both": {"a": "example"}}  # what every allOf branch takes
    # `default` is an annotation (it may even break the type): the instance ignores it
    assert instance(SCHEMAS[7]) == {"name": "example", "note": "example"}


def test_required_properties_come_first() -> None:
    schema = obj(
        ("name", "email"), notes={"type": "string"}, name={"type": "string"}, email={"type": "string"}
    )
    assert list(instance(schema)) == ["name", "email", "notes"]  # as the docs say the API orders them


def test_structured_content_keeps_thinking_and_lets_a_tool_call_stand_alone() -> None:
    params = {"output_config": {"format": {"type": "json_schema", "schema": SCHEMAS[0]}}}
    thought = {"type": "thinking", "thinking": "t", "signature": "s"}
    text = {"type": "text", "text": "a report"}
    call = {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}
    out = structured_content([thought, text], params)
    assert out[0] == thought and json.loads(out[1]["text"]) == instance(SCHEMAS[0])
    assert structured_content([text, call], params) == [call]
    assert structured_content([text], {}) == [text]


def _body(**extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 300,
        "messages": [{"role": "user", "content": "Extract the contact."}],
        "output_config": {"format": {"type": "json_schema", "schema": SCHEMAS[2]}},
        **extra,
    }


def test_the_engine_answers_with_the_json() -> None:
    message = Engine().create_message("k", _body())
    (block,) = message["content"]
    jsonschema.validate(json.loads(block["text"]), SCHEMAS[2])
    assert message["stop_reason"] == "end_turn"


def test_streaming_delivers_the_same_json_through_text_deltas() -> None:
    whole = Engine().create_message("k", _body())["content"][0]["text"]
    events = Engine().stream_message("k", {**_body(), "stream": True})
    deltas = [d["delta"]["text"] for name, d in events if name == "content_block_delta"]
    assert len(deltas) > 1 and "".join(deltas) == whole
    assert all(d["delta"]["type"] == "text_delta" for name, d in events if name == "content_block_delta")


def test_max_tokens_cuts_the_json_as_the_api_does() -> None:
    message = Engine().create_message("k", _body(max_tokens=5))
    assert message["stop_reason"] == "max_tokens"
    with pytest.raises(json.JSONDecodeError):
        json.loads(message["content"][0]["text"])


def test_a_forced_tool_call_is_the_call_alone() -> None:
    tool = {"name": "save", "input_schema": {"type": "object", "properties": {}}}
    message = Engine().create_message("k", _body(tools=[tool], tool_choice={"type": "tool", "name": "save"}))
    assert [b["type"] for b in message["content"]] == ["tool_use"]


def test_thinking_comes_before_the_json() -> None:
    body = _body(max_tokens=4000, thinking={"type": "enabled", "budget_tokens": 1024})
    content = Engine().create_message("k", body)["content"]
    assert [b["type"] for b in content] == ["thinking", "text"]
    jsonschema.validate(json.loads(content[1]["text"]), SCHEMAS[2])


def test_session_ask_passes_output_config_through(session: Session, emu: Emulator) -> None:
    config = {"format": {"type": "json_schema", "schema": SCHEMAS[0]}}
    reply = session.ask("Who?", output_config=config, stream=False)
    assert reply.content[0].type == "text" and json.loads(reply.content[0].text) == instance(SCHEMAS[0])
    assert session.calls[-1].request["output_config"] == config
    streamed = session.ask("Again?", output_config=config)
    assert streamed.content[0].type == "text" and json.loads(streamed.content[0].text) == instance(SCHEMAS[0])


def _format(*names: str) -> dict[str, Any]:
    schema = obj(**{n: {"type": "string"} for n in names})
    return {"format": {"type": "json_schema", "schema": schema}}


def test_the_session_predicts_the_formats_tokens_and_explains_a_changed_format(session: Session) -> None:
    from pcache_magic.analysis.diagnose import explain

    session.system(" ".join(f"rule{i} applies." for i in range(1500)), cache=True)
    session.ask("One?", output_config=_format("a"), stream=False)
    request = session.calls[-1].request
    usage = session.calls[-1].usage
    assert usage is not None
    prompt = (
        usage.input_tokens + (usage.cache_creation_input_tokens or 0) + (usage.cache_read_input_tokens or 0)
    )
    assert session.layout(request).total_tokens == prompt  # the pre-flight counts the format too
    without = {k: v for k, v in request.items() if k != "output_config"}
    assert session.layout(without).total_tokens < prompt
    session.ask("Two?", output_config=_format("a"), stream=False)
    assert session.calls[-1].usage is not None and (session.calls[-1].usage.cache_read_input_tokens or 0) > 0
    session.ask("Three?", output_config=_format("a", "b"), stream=False)
    assert session.calls[-1].usage is not None and session.calls[-1].usage.cache_read_input_tokens == 0
    why = str(explain(session))
    assert "Since call 2, output_format changed: that invalidates the system and messages caches" in why


PATTERNS = ["^[0-9]+$", "^[A-Z]{3}-\\d+$", "^(ab|cd)+x?$", "[^a-z]", "^\\w+@\\w+\\.com$", "^.{2,}$", "a|b"]
LEAVES = st.one_of(
    st.sampled_from([{"type": t} for t in ("string", "integer", "number", "boolean", "null")]),
    st.sampled_from(PATTERNS).map(lambda p: {"type": "string", "pattern": p}),
    st.sampled_from(["date", "email", "uuid"]).map(lambda f: {"type": "string", "format": f}),
    st.lists(st.one_of(st.text(max_size=3), st.integers(), st.none()), min_size=0, max_size=3).map(
        lambda values: {"enum": values}
    ),
    st.sampled_from(
        [{"type": "integer", "default": "not an int"}, {"type": "integer", "const": "x"}, {"const": 2}]
    ),
)


def _compound(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    named = st.dictionaries(st.sampled_from("abcdef"), children, max_size=4)
    return st.one_of(
        st.tuples(named, st.sets(st.sampled_from("abcdefz"))).map(
            lambda t: {
                "type": "object",
                "properties": t[0],
                "required": sorted(t[1]),
                "additionalProperties": False,
            }
        ),
        st.tuples(children, st.sampled_from([0, 1])).map(
            lambda t: {"type": "array", "items": t[0], "minItems": t[1]}
        ),
        st.lists(children, min_size=0, max_size=3).map(lambda b: {"anyOf": b}),
        st.lists(children, min_size=1, max_size=2).map(lambda b: {"allOf": b}),
        children.map(lambda c: {"$ref": "#/$defs/X", "$defs": {"X": {"$ref": "#/$defs/Y"}, "Y": c}}),
        children.map(
            lambda c: {"type": ["null", "string"], **{k: v for k, v in c.items() if k == "pattern"}}
        ),
    )


SCHEMA_TREES = st.recursive(LEAVES, _compound, max_leaves=8)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SCHEMA_TREES)
def test_every_schema_the_checker_takes_gets_a_valid_instance(schema: dict[str, Any]) -> None:
    """Whatever `core.output_format` lets through, the emulator's reply validates against it."""
    if format_problem({"type": "json_schema", "schema": schema}) is not None:
        return  # refused: the API's 400, no reply to check
    jsonschema.validate(instance(schema), schema, format_checker=jsonschema.FormatChecker())


def test_patterns_are_filled_and_the_refused_cases_say_why() -> None:
    for pattern in PATTERNS:
        value = instance(obj(s={"type": "string", "pattern": pattern}))["s"]
        assert re.search(pattern, value), (pattern, value)
    # a pattern the builder cannot fill keeps the placeholder, which may not match (module docstring)
    assert instance({"type": "string", "pattern": "^(?:x)(?(1)a|b)$"}) == "example"
    chained = {
        **obj(n={"$ref": "#/$defs/A"}),
        "$defs": {"A": {"$ref": "#/$defs/B"}, "B": {"type": "integer"}},
    }
    assert instance(chained) == {"n": 1}  # a $ref to a $ref is followed to the end


def test_a_definition_referred_to_many_times_is_built_once() -> None:
    leaf = {
        "type": "object",
        "properties": {f"p{j}": {"type": "string", "pattern": "^[a-z]{3}\\d$"} for j in range(50)},
    }
    schema = {
        "type": "object",
        "properties": {f"q{i}": {"$ref": "#/$defs/L"} for i in range(60)},
        "$defs": {"L": leaf},
    }
    value = instance(schema)
    assert all(value[f"q{i}"] is value["q0"] for i in range(60))  # one build, shared, not 60
    assert re.fullmatch("[a-z]{3}\\d", value["q0"]["p0"])


def _fan_out(depth: int, leaf: dict[str, Any]) -> dict[str, Any]:
    """A small schema whose instance doubles at each of `depth` levels of `$ref`s."""
    defs: dict[str, Any] = {
        f"d{i}": obj(a={"$ref": f"#/$defs/d{i + 1}"}, b={"$ref": f"#/$defs/d{i + 1}"}) for i in range(depth)
    }
    return {**obj(x={"$ref": "#/$defs/d0"}), "$defs": {**defs, f"d{depth}": leaf}}


def test_a_fanning_out_schema_is_written_only_as_far_as_max_tokens_allows() -> None:
    """1,024 copies of a 1,000-space const: about 1 MB of JSON the estimator counts as a few
    thousand tokens; the reply keeps at most `MAX_CHARS_PER_TOKEN` characters a token."""
    schema = _fan_out(10, {"const": " " * 1_000})
    assert format_problem({"type": "json_schema", "schema": schema}) is None  # the API takes it
    message = Engine().create_message(
        "k",
        {**_body(max_tokens=1_000), "output_config": {"format": {"type": "json_schema", "schema": schema}}},
    )
    (block,) = message["content"]
    assert message["stop_reason"] == "max_tokens" and message["usage"]["output_tokens"] <= 1_000
    assert 0 < len(block["text"]) <= 1_000 * MAX_CHARS_PER_TOKEN
    assert json.dumps(instance(schema), ensure_ascii=False).startswith(block["text"])


def test_json_text_writes_the_json_as_far_as_asked_and_no_further() -> None:
    shared: dict[str, Any] = {"k": ["ab", {"z": None, "é": 1.5}], "e": {}, "l": []}
    value = [shared, True, {"q": shared}]
    whole = json.dumps(value, ensure_ascii=False)
    assert json_text(value) == json_text(value, len(whole)) == whole
    assert [json_text(value, n) for n in range(len(whole))] == [whole[: n + 1] for n in range(len(whole))]
    doubling: list[Any] = ["x"]
    for level in range(60):  # 2**60 leaves when written out: only the start is
        doubling = [doubling, doubling]
        if level == 9:
            small = json.dumps(doubling)  # 2**10 leaves: what follows 50 brackets
    assert json_text(doubling, 100) == ("[" * 50 + small)[:101]
    deep: list[Any] = []
    for _ in range(5_000):  # past the encoder's recursion: written piece by piece
        deep = [deep]
    assert json_text(deep, 9) == "[" * 10
