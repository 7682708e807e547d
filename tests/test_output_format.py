"""The structured-outputs checker: what the API takes and refuses, in its words, and the tokens."""

from __future__ import annotations

import re
from typing import Any

import pytest
from anthropic.lib._parse._transform import SupportedStringFormats

from pcache_magic.core import output_format as checker
from pcache_magic.core.output_format import (
    FORMAT_OVERHEAD,
    MAX_DEPTH,
    MAX_NODES,
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


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({**obj(), "properties": ["a"]}, "'properties' must be an object mapping names to schemas (at #)"),
        (
            {**obj(), "properties": {"a": 5}, "required": ["a"]},
            "property 'a' must be a schema object, not int",
        ),
        (obj(a={"anyOf": [5]}), "'anyOf' must be a non-empty array of schema objects (at #/properties/a)"),
        (obj(a={"allOf": []}), "'allOf' must be a non-empty array"),
        ({**obj(a={"type": "string"}), "required": 5}, "'required' must be an array of property names"),
        ({**obj(), "required": ["zz"]}, "required property 'zz' is not defined in 'properties'"),
        (obj(a={"type": "strnig"}), "'type' must be one of"),
        (obj(a={"type": "string", "enum": []}), "'enum' must be a non-empty array"),
        (obj(a={"type": "integer", "const": "x"}), "'const' value x does not match the declared type"),
        (obj(a={"type": "array", "items": True}), "'items' must be a schema object"),
        (obj(a={"type": "string", "pattern": "(["}), "Pattern '([' is not a valid regular expression"),
        (
            obj(a={"allOf": [obj(x={"type": "string"}), obj(y={"type": "string"})]}),
            "allOf[1] gives 'properties' the value {'y': {'type': 'string'}} where the schema beside it has",
        ),
        (obj(a={"type": "integer", "allOf": [{"enum": ["s"]}]}), "does not match declared type 'integer'"),
        (  # found by the property test: an anyOf an allOf branch brings must hold beside the merge
            {
                "$ref": "#/$defs/Y",
                "$defs": {"Y": {"allOf": [{"type": "integer"}, {"anyOf": [{"type": "string"}]}]}},
            },
            "anyOf[0] gives 'type' the value string where the schema beside it has integer; "
            "make the two agree (at #/$defs/Y)",
        ),
        ({**obj(a={"type": "string"}), "required": ["a", "a"]}, "'required' names 'a' twice"),
        (obj(a={"type": "string", "not": 5}), "'not' is not supported; say it with type, properties"),
        (obj(a={"type": "string", "not": {"enum": ["x"]}}), "'not' is not supported"),  # well-formed too
        (obj(a={"type": "array", "prefixItems": [{"type": "string"}]}), "'prefixItems' is not supported"),
        (
            obj(a={"type": "object", "additionalProperties": False, "patternProperties": {}}),
            "is not supported",
        ),
        ({**obj(), "$defs": ["x"]}, "'$defs' must be an object mapping names to schemas, not list (at #)"),
        ({**obj(), "definitions": {"x": 3}}, "'definitions' entry 'x' must be a schema object, not int"),
    ],
)
def test_malformed_schemas_are_one_line_naming_the_path(schema: dict[str, Any], message: str) -> None:
    problem = format_problem(fmt(schema)) or ""
    assert message in problem and "\n" not in problem
    assert problem.startswith("output_config.format.schema: ")


def chain(n: int) -> dict[str, Any]:
    defs: dict[str, Any] = {f"d{i}": {"$ref": f"#/$defs/d{i + 1}"} for i in range(n)}
    defs[f"d{n}"] = {"type": "string"}
    return {**obj(a={"$ref": "#/$defs/d0"}), "$defs": defs}


def test_ref_chains_are_bounded_and_checked_in_linear_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # The work is counted, not timed: every node's shape is checked once, whatever refers to it.
    checked: list[object] = []
    shape = checker.shape_problem
    monkeypatch.setattr(checker, "shape_problem", lambda node: checked.append(node) or shape(node))
    assert format_problem(fmt(chain(MAX_DEPTH - 2))) is None
    checked.clear()
    problem = format_problem(fmt(chain(100_000))) or ""  # the most a 32 MB body can hold
    assert len(checked) <= MAX_DEPTH + 2  # was a walk of the whole chain: refused at its limit
    assert f"Schema nests too deeply (over {MAX_DEPTH} levels" in problem and "#/$defs/d63" in problem
    # many distinct definitions, each checked once: linear, not one walk per use
    wide = {**obj(**{f"p{i}": {"$ref": f"#/$defs/D{i}"} for i in range(20_000)}), "$defs": {}}
    wide["$defs"] = {f"D{i}": {"$ref": "#/$defs/S"} for i in range(20_000)} | {"S": {"type": "string"}}
    checked.clear()
    assert format_problem(fmt(wide)) is None
    assert len(checked) <= 2 * 20_000 + 3  # each property and each definition once, S once


def test_branches_beside_wide_keywords_are_bounded_work(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each anyOf branch re-checks the keywords beside it: 1,000 branches beside a 10,000-value
    # enum was minutes of work for a 0.1 MB body; it is refused before any branch is checked.
    checked: list[object] = []
    shape = checker.shape_problem
    monkeypatch.setattr(checker, "shape_problem", lambda node: checked.append(node) or shape(node))
    wide = {"enum": [f"v{i}" for i in range(10_000)], "anyOf": [{"type": "string"}] * 1_000}
    problem = format_problem(fmt(obj(a=wide))) or ""
    assert "too complex for compilation" in problem and "(at #/properties/a)" in problem
    assert len(checked) <= 3
    # allOf inside allOf 5,000 deep (a Python dict: no JSON nesting limit) is refused, no RecursionError
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(5_000):
        deep = {"allOf": [deep]}
    assert "nests too deeply" in (format_problem(fmt(obj(a=deep))) or "")
    # an ordinary union beside a few keywords still passes
    assert (
        format_problem(fmt(obj(a={"anyOf": [{"type": "string"}, {"type": "null"}], "description": "x"})))
        is None
    )


def test_a_shared_definition_counts_every_use_and_a_dag_is_capped() -> None:
    defs: dict[str, Any] = {
        f"L{i}": obj(**{f"p{j}": {"$ref": f"#/$defs/L{i + 1}"} for j in range(4)}) for i in range(9)
    }
    defs["L9"] = {"type": "string"}
    problem = format_problem(fmt({"$ref": "#/$defs/L0", "$defs": defs})) or ""
    assert f"too complex for compilation (over {MAX_NODES:,} nodes once $refs are expanded)" in problem
    optional = {**obj(), "properties": {f"p{i}": {"type": "string"} for i in range(5)}, "required": []}
    twice = {
        **obj(a={"$ref": "#/$defs/O"}, b={"$ref": "#/$defs/O"}, c={"$ref": "#/$defs/O"}),
        "$defs": {"O": optional},
    }
    assert "too many optional parameters (15)" not in (format_problem(fmt(twice)) or "")
    five = {**twice, "properties": {k: {"$ref": "#/$defs/O"} for k in "abcde"}, "required": list("abcde")}
    assert "too many optional parameters (25)" in (format_problem(fmt(five)) or "")


def test_huge_values_are_echoed_short() -> None:
    for schema in (
        obj(s={"type": "string", "pattern": "(?=" + "x" * 200_000}),
        obj(s={"type": "string", "format": "y" * 10**6}),
    ):
        problem = format_problem(fmt(schema)) or ""
        assert problem and len(problem) < 300
