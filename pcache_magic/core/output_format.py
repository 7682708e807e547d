"""Structured outputs (`output_config.format`): the JSON Schema subset the API takes, and its tokens.

One pure checker, used by the emulator (to answer the API's 400) and by `%%claude --schema` (to
refuse before anything is sent), so that the two cannot disagree.  The limits are the docs'
(https://platform.claude.com/docs/en/build-with-claude/structured-outputs, "JSON Schema
limitations" and "Schema complexity limits"):

- supported: the basic types, `enum` of primitives, `const`, `anyOf`, `allOf`, local `$ref`
  into `$defs`/`definitions`, `default`, `required`, `additionalProperties: false`, string
  `format`s from a fixed list, `pattern` without backreferences, lookaround or word
  boundaries, and `minItems` of 0 or 1;
- refused: recursive schemas, external `$ref`, numeric constraints, `minLength`/`maxLength`,
  other array and object size constraints, `additionalProperties` that is not explicitly false
  on an object, complex `enum` values, `oneOf`; over 24 optional properties or over 16 with a
  union type (`anyOf` or a type array); `allOf` over a `$ref`.

The messages follow 400s recorded from the live API in public repositories (`output_config.
format.schema: For 'object' type, 'additionalProperties' must be explicitly set to false`,
`For 'integer' type, property 'minimum' is not supported`, `For 'array' type, 'minItems' values
other than 0 or 1 are not supported`, `Schema type 'oneOf' is not supported`, `Schemas contains
too many optional parameters (28) ...`); where no recording was found (recursion, external refs,
a pattern) the wording is in the same style.

Tokens: the API gives the model an extra system prompt that explains the format ("your input
token count will be slightly higher").  No figure is published, so `format_tokens` is an
**estimate**: the schema's JSON as text plus `FORMAT_OVERHEAD`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from .cache_settings import count_citations
from .tokens import TokenEstimator

__all__ = [
    "FORMAT_OVERHEAD",
    "MAX_OPTIONAL",
    "MAX_UNIONS",
    "STRING_FORMATS",
    "FormatError",
    "check_format",
    "format_conflict",
    "format_problem",
    "format_tokens",
    "local_ref",
    "output_format",
]

#: Tokens of the format instructions the API adds beside the schema itself: an estimate (the
#: docs publish none; the tool-use system prompt, which is documented, is a few hundred).
FORMAT_OVERHEAD = 50
#: Optional properties (not in their object's `required`) across a request's strict schemas.
MAX_OPTIONAL = 24
#: Properties with a union type (`anyOf` or a type array) across a request's strict schemas.
MAX_UNIONS = 16
#: The string `format`s the docs list (the same set as anthropic's `transform_schema` keeps).
STRING_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6", "uuid"}
)

_WHERE = "output_config.format.schema: "
_UNSUPPORTED = {
    "integer": ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"),
    "number": ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"),
    "string": ("minLength", "maxLength"),
    "array": ("maxItems", "uniqueItems"),
    "object": ("minProperties", "maxProperties"),
}
#: Refused outright (recorded: "Schema type 'oneOf' is not supported"); other keywords the docs
#: do not list either way are let through rather than refused on a guess.
_SCHEMA_KEYWORDS = ("oneOf",)
_BAD_PATTERN = re.compile(r"\\[1-9]|\\k<|\(\?<?[=!]|\\[bB]")
_PRIMITIVE = (str, int, float, bool, type(None))
_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "null": type(None),
}


class FormatError(ValueError):
    """A format the API refuses; the message is the API's 400 text."""


def output_format(params: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The request's `output_config.format`, or None when it asks for none."""
    config = params.get("output_config")
    fmt = config.get("format") if isinstance(config, Mapping) else None
    return fmt if isinstance(fmt, Mapping) else None


def _types(node: Mapping[str, Any]) -> list[str]:
    kind = node.get("type")
    if isinstance(kind, str):
        return [kind]
    return [k for k in kind if isinstance(k, str)] if isinstance(kind, list) else []


def local_ref(root: Mapping[str, Any], ref: str) -> Mapping[str, Any] | None:
    """The local definition `ref` names (`#/$defs/X`, `#/definitions/X`, `#`), or None."""
    if ref == "#":
        return root
    parts = ref[2:].split("/") if ref.startswith("#/") else []
    node: Any = root
    for part in parts:
        node = node.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(node, Mapping) else None
    return node if parts and isinstance(node, Mapping) else None


def _children(node: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The subschemas of `node` that the walk checks (`$defs` are checked where they are used)."""
    props = node.get("properties")
    if isinstance(props, Mapping):
        yield from (p for p in props.values() if isinstance(p, Mapping))
    if isinstance(node.get("items"), Mapping):
        yield node["items"]
    for key in ("anyOf", "allOf"):
        if isinstance(node.get(key), list):
            yield from (s for s in node[key] if isinstance(s, Mapping))


def _node_problem(node: Mapping[str, Any]) -> str | None:
    """A problem of one schema node on its own (not of its children)."""
    for key in _SCHEMA_KEYWORDS:
        if key in node:
            return f"Schema type '{key}' is not supported"
    all_of = node.get("allOf")
    if isinstance(all_of, list) and any(isinstance(s, Mapping) and "$ref" in s for s in all_of):
        return "allOf with $ref is not supported"
    types = _types(node)
    for kind in types:
        for key in _UNSUPPORTED.get(kind, ()):
            if key in node:
                return f"For '{kind}' type, property '{key}' is not supported"
    if "array" in types and node.get("minItems", 0) not in (0, 1):
        got = node["minItems"]
        return f"For 'array' type, 'minItems' values other than 0 or 1 are not supported (got: {got})"
    if "object" in types and node.get("additionalProperties") is not False:
        return "For 'object' type, 'additionalProperties' must be explicitly set to false"
    if "string" in types and "format" in node and node["format"] not in STRING_FORMATS:
        return f"For 'string' type, format '{node['format']}' is not supported"
    pattern = node.get("pattern")
    if isinstance(pattern, str) and _BAD_PATTERN.search(pattern):
        return f"Pattern '{pattern}' is not supported: backreferences, lookaround and word boundaries are not"
    enum = node.get("enum")
    if isinstance(enum, list):
        for value in enum:
            if not isinstance(value, _PRIMITIVE):
                return (
                    "Enum values must be strings, numbers, booleans or null; complex types are not supported"
                )
            if types and not any(_fits(value, kind) for kind in types):
                shown = types[0] if len(types) == 1 else json.dumps(types, separators=(",", ":"))
                return f"Invalid schema: Enum value {value!r} does not match declared type '{shown}'"
    return None


def _fits(value: Any, kind: str) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    if kind == "integer" and isinstance(value, float):
        return value.is_integer()
    python = _JSON_TYPES.get(kind)
    return python is not None and isinstance(value, python)


def format_problem(fmt: Mapping[str, Any]) -> str | None:
    """The API's 400 message for an `output_config.format` it refuses, or None when it takes it.

    The shape (`type: "json_schema"`, `schema` an object) is the SDK's `JSONOutputFormatParam`,
    checked here too so that the magic can refuse a bad dict before it is sent.
    """
    if fmt.get("type") != "json_schema":
        return f"output_config.format.type: Input should be 'json_schema' (got {fmt.get('type')!r})"
    schema = fmt.get("schema")
    if not isinstance(schema, Mapping):
        return "output_config.format.schema: Input should be a valid dictionary"
    optional = unions = 0
    # (node, the $ref targets being expanded on the way to it): a target met again is a cycle.
    stack: list[tuple[Mapping[str, Any], tuple[int, ...]]] = [(schema, ())]
    seen = 0
    while stack:
        node, expanding = stack.pop()
        seen += 1
        if seen > 100_000:
            return _WHERE + "Schema is too complex for compilation"
        ref = node.get("$ref")
        if isinstance(ref, str):
            if not ref.startswith("#"):
                return _WHERE + f"External $ref '{ref}' is not supported; define it in $defs"
            target = local_ref(schema, ref)
            if target is None:
                return _WHERE + f"$ref '{ref}' does not resolve to a definition in this schema"
            if id(target) in expanding:
                return _WHERE + f"Recursive schemas are not supported ($ref '{ref}' refers back to itself)"
            stack.append((target, (*expanding, id(target))))
        problem = _node_problem(node)
        if problem is not None:
            return _WHERE + problem
        props = node.get("properties")
        if isinstance(props, Mapping):
            required = node.get("required") or ()
            optional += sum(1 for name in props if name not in required)
            unions += sum(
                1 for p in props.values() if isinstance(p, Mapping) and ("anyOf" in p or len(_types(p)) > 1)
            )
        stack.extend((child, expanding) for child in _children(node))
    if optional > MAX_OPTIONAL:
        return (
            f"Schemas contains too many optional parameters ({optional}), which would make grammar "
            f"compilation inefficient. Reduce the number of optional parameters in your tool schemas "
            f"(limit: {MAX_OPTIONAL})."
        )
    if unions > MAX_UNIONS:
        return (
            f"Schemas contains too many parameters with union types ({unions} parameters with type "
            f"arrays or anyOf), which would make grammar compilation inefficient. Reduce the number of "
            f"parameters with union types (limit: {MAX_UNIONS} parameters with unions)."
        )
    return None


def format_conflict(params: Mapping[str, Any]) -> str | None:
    """What the request combines with a format that the docs call incompatible ("Incompatible
    with: citations, message prefilling"), as a 400 message; None when nothing does."""
    if output_format(params) is None:
        return None
    messages = params.get("messages") or ()
    if any(isinstance(m, Mapping) and count_citations(m) for m in messages):
        return "Citations cannot be enabled when using structured outputs (output_config.format)."
    if messages and isinstance(messages[-1], Mapping) and messages[-1].get("role") == "assistant":
        return (
            "Prefilling the assistant message is not supported when using structured outputs "
            "(output_config.format)."
        )
    return None


def check_format(fmt: Mapping[str, Any]) -> None:
    """Raise `FormatError` (the API's message) for a format the API refuses."""
    problem = format_problem(fmt)
    if problem is not None:
        raise FormatError(problem)


def format_tokens(params: Mapping[str, Any], estimator: TokenEstimator) -> int:
    """Estimated prompt tokens the request's format adds (0 without one): its schema plus the
    instructions around it (`FORMAT_OVERHEAD`).  Deterministic: the schema is dumped compactly
    with its keys in their order, as sent."""
    fmt = output_format(params)
    if fmt is None:
        return 0
    text = json.dumps(fmt.get("schema"), separators=(",", ":"), ensure_ascii=False, default=str)
    return FORMAT_OVERHEAD + estimator.text(text)
