"""The shape of one JSON Schema node: what makes it malformed, and how branches merge.

Split from `core.output_format` (which walks the whole schema): these rules look at one node on
its own.  A malformed node is refused with one line rather than left for the emulator's reply
builder to trip on (a 500) or the magic to show as a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .fmt import cut

__all__ = ["fits", "merge_keywords", "shape_problem", "show", "types"]

_ECHO = 60
_TYPES = frozenset({"object", "array", "string", "integer", "number", "boolean", "null"})
#: Keywords that say nothing about validity: a merge of branches ignores them.
_ANNOTATIONS = frozenset({"title", "description", "default", "examples", "$comment", "$defs", "definitions"})
_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "null": type(None),
}


def types(node: Mapping[str, Any]) -> list[str]:
    kind = node.get("type")
    if isinstance(kind, str):
        return [kind]
    return [k for k in kind if isinstance(k, str)] if isinstance(kind, list) else []


def fits(value: Any, kind: str) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    if kind == "integer" and isinstance(value, float):
        return value.is_integer()
    python = _JSON_TYPES.get(kind)
    return python is not None and isinstance(value, python)


def show(value: Any) -> str:
    """`value` as the refusal echoes it: at most `_ECHO` characters, so a huge value stays one line."""
    try:
        text = value if isinstance(value, str) else repr(value)
    except ValueError:  # an int past Python's digit limit
        text = type(value).__name__
    return cut(text, _ECHO)


def merge_keywords(base: Mapping[str, Any], part: Mapping[str, Any]) -> dict[str, Any] | str:
    """`base` and `part` as one schema (how an `allOf` branch or the chosen `anyOf` branch combines
    with the keywords beside it), or the name of a keyword the two give different values."""
    merged = dict(base)
    for key, value in part.items():
        if key in _ANNOTATIONS:
            continue
        if key in merged and merged[key] != value:
            return key
        merged[key] = value
    return merged


#: Subschema keywords outside the API's documented subset that the reply builder cannot honour:
#: refused (the emulator's limit, as `pattern` with `format`), so no reply breaks its schema.
_UNANSWERED = (
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "prefixItems",
    "additionalItems",
    "unevaluatedItems",
    "unevaluatedProperties",
    "patternProperties",
    "dependentSchemas",
)
_SCHEMA_MAPS = ("$defs", "definitions")


def _subschema_problem(node: Mapping[str, Any]) -> str | None:
    """A keyword of `_UNANSWERED`, or `$defs`/`definitions` that do not map names to schemas."""
    for key in _UNANSWERED:
        if key in node:
            return f"'{key}' is not supported; say it with type, properties, items, enum, const or anyOf"
    for key in _SCHEMA_MAPS:
        value = node.get(key, {})
        if not isinstance(value, Mapping):
            return f"'{key}' must be an object mapping names to schemas, not {type(value).__name__}"
        bad = next((name for name, sub in value.items() if not isinstance(sub, Mapping | bool)), None)
        if bad is not None:
            return f"'{key}' entry '{show(bad)}' must be a schema object, not {type(value[bad]).__name__}"
    return None


def shape_problem(node: Mapping[str, Any]) -> str | None:
    """What makes `node` malformed JSON Schema (the API's request validation refuses these)."""
    props = node.get("properties", {})
    if not isinstance(props, Mapping):
        return "'properties' must be an object mapping names to schemas"
    for name, sub in props.items():
        if not isinstance(sub, Mapping):
            return f"property '{show(name)}' must be a schema object, not {type(sub).__name__}"
    if "items" in node and not isinstance(node["items"], Mapping):
        return "'items' must be a schema object"
    for key in ("anyOf", "allOf"):
        if key in node and not (
            isinstance(node[key], list) and node[key] and all(isinstance(s, Mapping) for s in node[key])
        ):
            return f"'{key}' must be a non-empty array of schema objects"
    required = node.get("required", [])
    if not isinstance(required, list) or not all(isinstance(n, str) for n in required):
        return "'required' must be an array of property names"
    seen: set[str] = set()
    for name in required:
        if name not in props:
            return f"required property '{show(name)}' is not defined in 'properties'"
        if name in seen:
            return f"'required' names '{show(name)}' twice; list each property once"
        seen.add(name)
    if (problem := _subschema_problem(node)) is not None:
        return problem
    kind = node.get("type", "string")
    kinds = kind if isinstance(kind, list) and kind else [kind]
    for k in kinds:
        if not isinstance(k, str) or k not in _TYPES:
            return f"'type' must be one of {', '.join(sorted(_TYPES))} or an array of them (got {show(k)})"
    if "enum" in node and not (isinstance(node["enum"], list) and node["enum"]):
        return "'enum' must be a non-empty array"
    for key in ("$ref", "pattern", "format"):
        if key in node and not isinstance(node[key], str):
            return f"'{key}' must be a string"
    if isinstance(node.get("pattern"), str):
        try:
            re.compile(node["pattern"])
        except (re.error, RecursionError, OverflowError):
            return f"Pattern '{show(node['pattern'])}' is not a valid regular expression"
    if "pattern" in node and "format" in node:  # the emulator's limit: it cannot fill both at once
        return "'pattern' and 'format' together are not supported; use one"
    for key in ("pattern", "format"):  # the emulator's limit too: values are not matched (no ReDoS)
        if key in node and ("enum" in node or "const" in node):
            return f"'{key}' beside 'enum' or 'const' is not supported; the values already fix the string"
    declared = types(node)
    if "const" in node and declared and not any(fits(node["const"], k) for k in declared):
        return f"'const' value {show(node['const'])} does not match the declared type"
    if "const" in node and "enum" in node and node["const"] not in node["enum"]:
        return "'const' value is not one of the 'enum' values"
    return None
