"""The emulator's reply under structured outputs: a deterministic JSON instance of the schema.

The real API constrains the model's text to the schema (`output_config.format`); the emulator is
no model, so it answers with the plainest valid instance: `const`, else the first `enum` value,
else the first `anyOf` branch (`allOf` branches merged), else a placeholder of the first declared
type (a string in its `format`, such as a date or an e-mail address).  Objects list their
required properties first, then the optional ones, each in schema order (as the docs say the
API orders them); arrays hold one item (the schema may ask for `minItems` of 0 or 1 only);
`default` wins where given.  Only the direct output is constrained (docs, "Grammar scope"):
a thinking block stays as it is, and a reply that calls a tool is the call alone.  The format is
checked before this runs (`core.output_format`), so `$ref`s are local and never recursive.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..core.output_format import local_ref, output_format

__all__ = ["instance", "structured_content"]

_STRINGS = {
    "date-time": "2026-01-01T09:00:00Z",
    "date": "2026-01-01",
    "time": "09:00:00",
    "duration": "PT1H",
    "email": "user@example.com",
    "hostname": "example.com",
    "uri": "https://example.com/",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uuid": "00000000-0000-4000-8000-000000000000",
}
_PLAIN: dict[str, Any] = {"string": "example", "integer": 1, "number": 1.5, "boolean": True, "null": None}
#: Deeper than any schema the checker lets through needs; a guard, not a limit users meet.
_MAX_DEPTH = 64


def _resolve(root: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = node.get("$ref")
    return (local_ref(root, ref) or {}) if isinstance(ref, str) else node


def instance(schema: Mapping[str, Any], root: Mapping[str, Any] | None = None, depth: int = 0) -> Any:
    """A value valid against `schema` (a schema the API takes), the same for the same schema."""
    root = schema if root is None else root
    node = _resolve(root, schema)
    if depth > _MAX_DEPTH:
        return None
    if "const" in node:
        return node["const"]
    if isinstance(node.get("enum"), list) and node["enum"]:
        return node["enum"][0]
    if "default" in node:
        return node["default"]
    if isinstance(node.get("anyOf"), list) and node["anyOf"]:
        return instance(node["anyOf"][0], root, depth + 1)
    if isinstance(node.get("allOf"), list) and node["allOf"]:
        parts = [instance(part, root, depth + 1) for part in node["allOf"]]
        if all(isinstance(p, dict) for p in parts):
            return {k: v for p in parts for k, v in p.items()}
        return parts[0]
    kind = node.get("type", "object" if "properties" in node else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = node.get("properties") or {}
        required = [name for name in props if name in (node.get("required") or ())]
        names = required + [name for name in props if name not in required]
        return {name: instance(props[name], root, depth + 1) for name in names}
    if kind == "array":
        items = node.get("items")
        return [instance(items, root, depth + 1)] if isinstance(items, Mapping) else []
    if kind == "string" and node.get("format") in _STRINGS:
        return _STRINGS[node["format"]]
    return _PLAIN.get(str(kind), "example")


def structured_content(content: list[dict[str, Any]], params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """`content` as the API shapes it under the request's format (unchanged without one): the
    text is the schema's instance as JSON; a tool call comes alone, thinking stays first."""
    fmt = output_format(params)
    if fmt is None or not isinstance(fmt.get("schema"), Mapping):
        return content
    kept = [b for b in content if b.get("type") != "text"]
    if any(b.get("type") == "tool_use" for b in kept):
        return kept
    text = json.dumps(instance(fmt["schema"]), ensure_ascii=False)
    return [*kept, {"type": "text", "text": text}]
