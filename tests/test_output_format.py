"""The structured-outputs checker: what the API takes and refuses, in its words, and the tokens."""

from __future__ import annotations

import re
from typing import Any

import pytest
from anthropic.lib._parse._transform import SupportedStringFormats

from pcache_magic.core.output_format import (
    FORMAT_OVERHEAD,
    MAX_OPTIONAL,
    STRING_FORMATS,
    FormatError,
    check_format,
    format_conflict,
    format_problem,
    format_tokens,
    output_format,
)
from pcache_magic.core.tokens import TokenEstimator


def obj(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def fmt(schema: Any) -> dict[str, Any]:
    return {"type": "json_schema", "schema": schema}


GOOD = obj(
    name={"type": "string"},
    when={"type": "string", "format": "date-time"},
    kind={"enum": ["a", "b", None]},
    tags={"type": "array", "items": {"type": "string"}, "minItems": 1},
    code={"type": "string", "pattern": "^[A-Z]{3}-\\d+$"},
    nested={"$ref": "#/$defs/Inner"},
    either={"anyOf": [{"type": "string"}, {"type": "null"}]},
    fixed={"const": 3},
)
GOOD["$defs"] = {"Inner": obj(x={"type": "number"})}


def test_the_documented_subset_is_taken() -> None:
    assert format_problem(fmt(GOOD)) is None
    check_format(fmt(GOOD))


def test_the_string_formats_are_the_sdks() -> None:
    assert set(SupportedStringFormats) == STRING_FORMATS


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (
            {"type": "object", "properties": {}},
            "For 'object' type, 'additionalProperties' must be explicitly set to false",
        ),
        (
            {**obj(), "additionalProperties": True},
            "For 'object' type, 'additionalProperties' must be explicitly set to false",
        ),
        (obj(n={"type": "integer", "minimum": 0}), "For 'integer' type, property 'minimum' is not supported"),
        (
            obj(n={"type": "number", "multipleOf": 2}),
            "For 'number' type, property 'multipleOf' is not supported",
        ),
        (
            obj(s={"type": "string", "maxLength": 5}),
            "For 'string' type, property 'maxLength' is not supported",
        ),
        (
            obj(a={"type": "array", "items": {"type": "string"}, "maxItems": 3}),
            "For 'array' type, property 'maxItems' is not supported",
        ),
        (
            obj(a={"type": "array", "minItems": 2}),
            "For 'array' type, 'minItems' values other than 0 or 1 are not supported (got: 2)",
        ),
        (obj(u={"oneOf": [{"type": "string"}, {"type": "integer"}]}), "Schema type 'oneOf' is not supported"),
        (obj(s={"type": "string", "format": "color"}), "For 'string' type, format 'color' is not supported"),
        (obj(s={"type": "string", "pattern": "(a)\\1"}), "Pattern '(a)\\1' is not supported"),
        (obj(s={"type": "string", "pattern": "\\bword"}), "is not supported: backreferences, lookaround"),
        (obj(e={"enum": [{"a": 1}]}), "complex types are not supported"),
        (
            obj(e={"type": ["string", "null"], "enum": ["face", 3]}),
            'Enum value 3 does not match declared type \'["string","null"]\'',
        ),
        (
            obj(r={"$ref": "https://example.com/s.json"}),
            "External $ref 'https://example.com/s.json' is not supported",
        ),
        (obj(r={"$ref": "#/$defs/Missing"}), "does not resolve"),
        (obj(m={"allOf": [{"$ref": "#/$defs/M"}]}), "allOf with $ref is not supported"),
        (
            obj(a={"type": "array", "uniqueItems": True}),
            "For 'array' type, property 'uniqueItems' is not supported",
        ),
        ({**obj(), "maxProperties": 3}, "For 'object' type, property 'maxProperties' is not supported"),
    ],
)
def test_refusals_in_the_apis_words(schema: dict[str, Any], message: str) -> None:
    problem = format_problem(fmt(schema))
    assert problem is not None and message in problem
    assert problem.startswith("output_config.format.schema: ")
    with pytest.raises(FormatError, match=re.escape(problem)):
        check_format(fmt(schema))


def test_nested_objects_are_checked_too() -> None:
    loose = obj(inner={"type": "object", "properties": {"a": {"type": "string"}}})
    assert "additionalProperties" in (format_problem(fmt(loose)) or "")
    in_items = obj(rows={"type": "array", "items": {"type": "integer", "maximum": 3}})
    assert "'maximum'" in (format_problem(fmt(in_items)) or "")
    in_defs = {**obj(x={"$ref": "#/$defs/D"}), "$defs": {"D": {"type": "string", "minLength": 1}}}
    assert "'minLength'" in (format_problem(fmt(in_defs)) or "")


def test_recursive_schemas_are_refused_but_a_shared_definition_is_not() -> None:
    node = obj(children={"type": "array", "items": {"$ref": "#/$defs/Node"}})
    recursive = {**obj(root={"$ref": "#/$defs/Node"}), "$defs": {"Node": node}}
    assert "Recursive schemas are not supported" in (format_problem(fmt(recursive)) or "")
    self_root = obj(again={"$ref": "#"})
    assert "Recursive schemas are not supported" in (format_problem(fmt(self_root)) or "")
    shared = {
        **obj(a={"$ref": "#/$defs/P"}, b={"$ref": "#/$defs/P"}),
        "$defs": {"P": obj(x={"type": "string"})},
    }
    assert format_problem(fmt(shared)) is None


def test_complexity_limits() -> None:
    many = {f"p{i}": {"type": "string"} for i in range(MAX_OPTIONAL + 1)}
    optional = {"type": "object", "properties": many, "required": [], "additionalProperties": False}
    problem = format_problem(fmt(optional)) or ""
    assert (
        problem.startswith("Schemas contains too many optional parameters (25)") and "(limit: 24)" in problem
    )
    assert format_problem(fmt({**optional, "required": ["p0"]})) is None
    unions = obj(**{f"u{i}": {"type": ["string", "null"]} for i in range(17)})
    assert "too many parameters with union types (17" in (format_problem(fmt(unions)) or "")


def test_the_shape_of_the_format() -> None:
    assert "Input should be 'json_schema'" in (format_problem({"type": "json", "schema": {}}) or "")
    assert "valid dictionary" in (format_problem({"type": "json_schema", "schema": []}) or "")


def test_output_format_reads_the_request() -> None:
    assert output_format({}) is None
    assert output_format({"output_config": {"effort": "low"}}) is None
    assert output_format({"output_config": {"format": fmt(GOOD)}}) == fmt(GOOD)


def test_incompatible_features() -> None:
    doc = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}}
    cited = {
        "role": "user",
        "content": [{**doc, "citations": {"enabled": True}}, {"type": "text", "text": "q"}],
    }
    body = {"output_config": {"format": fmt(GOOD)}, "messages": [cited]}
    assert "Citations cannot be enabled" in (format_conflict(body) or "")
    prefill = {**body, "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "{"}]}
    assert "Prefilling the assistant message is not supported" in (format_conflict(prefill) or "")
    assert format_conflict({"messages": [cited]}) is None
    assert format_conflict({**body, "messages": [{"role": "user", "content": "q"}]}) is None


def test_format_tokens_are_the_schema_plus_the_overhead() -> None:
    estimator = TokenEstimator()
    assert format_tokens({}, estimator) == 0
    small = format_tokens({"output_config": {"format": fmt(obj(a={"type": "string"}))}}, estimator)
    large = format_tokens({"output_config": {"format": fmt(GOOD)}}, estimator)
    assert FORMAT_OVERHEAD < small < large
    assert large == format_tokens({"output_config": {"format": fmt(GOOD)}}, estimator)  # deterministic
