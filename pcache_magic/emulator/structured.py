"""The emulator's reply under structured outputs: a deterministic JSON instance of the schema.

The real API constrains the model's text to the schema (`output_config.format`); the emulator is
no model, so it answers with the plainest valid instance: `const`, else the first `enum` value,
else the first `anyOf` branch (merged with the keywords beside it; `allOf` branches all merged),
else a placeholder of the first declared type (a string in its `format`, such as a date or an
e-mail address).  A `pattern` is filled from Python's own parse of the regex (literals, classes,
repeats at their minimum, the first alternative) and the result checked with `re.search`; for
a pattern that builder cannot fill (none the docs' examples need) the placeholder is returned
and may not match.  `default` is an annotation and is ignored.  Objects list their required
properties first, then the optional ones, each in schema order (as the docs say the API orders
them); arrays hold one item (the schema may ask for `minItems` of 0 or 1 only).  Only the direct
output is constrained (docs, "Grammar scope"): a thinking block stays as it is, and a reply that
calls a tool is the call alone.  The format is checked before this runs (`core.output_format`),
so `$ref`s are local, never recursive, branches do not conflict, and `required` names exist.
A definition referred to many times is built once but written out each time, so the text is
written only as far as `max_tokens` could keep (`MAX_CHARS_PER_TOKEN` a token): a 2 KB schema
fanning out by `$ref` cannot make the emulator write gigabytes only to cut them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import suppress
from importlib import import_module
from typing import Any

from ..core.output_format import MAX_DEPTH, local_ref, merge_keywords, output_format
from .reply import MAX_CHARS_PER_TOKEN

__all__ = ["instance", "json_text", "structured_content"]

#: The stdlib's own regex parser (private, stable since 3.11): patterns are filled from its tree.
_PARSER: Any = import_module("re._parser")

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
#: Past the checker's `MAX_DEPTH` (ref hops, merges and nesting together): a guard, never met.
_MAX_DEPTH = 4 * MAX_DEPTH
#: The longest string a `pattern` is filled with (repeats take their minimum, at most 8 when open).
_MAX_PATTERN_TEXT = 200


def _resolve(root: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any]:
    """`node` with its `$ref`s followed until a schema without one (the checker refused cycles);
    keywords beside a `$ref` are merged over its target."""
    for _ in range(_MAX_DEPTH):
        ref = node.get("$ref")
        if not isinstance(ref, str):
            return node
        rest = {k: v for k, v in node.items() if k != "$ref"}
        merged = merge_keywords(local_ref(root, ref) or {}, rest)
        node = merged if isinstance(merged, dict) else rest
    return node


def _pattern_text(pattern: str, fallback: str) -> str:
    """A string `re.search(pattern, ...)` accepts, built from the regex's own parse tree; the
    `fallback` when no short one is found (a pattern the builder cannot fill)."""
    try:
        text = _fill(_PARSER.parse(pattern))
    except (ValueError, re.error, RecursionError, TypeError):
        return fallback
    if len(text) <= _MAX_PATTERN_TEXT and re.search(pattern, text) is not None:
        return text
    return fallback


def _fill(parsed: Any) -> str:
    out: list[str] = []
    for op, arg in parsed:
        name = str(op)
        if name == "LITERAL":
            out.append(chr(arg))
        elif name == "ANY":
            out.append("a")
        elif name == "IN":
            out.append(_one_of(arg))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, _high, sub = arg
            out.append(_fill(sub) * min(low, 8))
        elif name == "SUBPATTERN":
            out.append(_fill(arg[-1]))
        elif name == "ATOMIC_GROUP":
            out.append(_fill(arg))
        elif name == "BRANCH":
            out.append(_fill(arg[1][0]))
        elif name == "CATEGORY":
            out.append(_CATEGORY.get(str(arg), "a"))
        elif name != "AT":  # anchors match without text; anything else is left to the check
            raise ValueError(name)
    return "".join(out)


def _one_of(items: list[tuple[Any, Any]]) -> str:
    """A character inside a `[...]` set (for a negated set, the first candidate outside it)."""
    negate = bool(items) and str(items[0][0]) == "NEGATE"
    for char in "a0Z_- .~":
        if _in_set(char, items[1:] if negate else items) != negate:
            return char
    raise ValueError("set")


def _in_set(char: str, items: list[tuple[Any, Any]]) -> bool:
    for op, arg in items:
        kind = str(op)
        if kind == "LITERAL" and chr(arg) == char:
            return True
        if kind == "RANGE" and arg[0] <= ord(char) <= arg[1]:
            return True
        if kind == "CATEGORY" and re.fullmatch(_CLASSES.get(str(arg), "(?!)"), char):
            return True
        if kind not in ("LITERAL", "RANGE", "CATEGORY"):
            raise ValueError(kind)
    return False


_CLASSES = {
    "CATEGORY_DIGIT": r"\d",
    "CATEGORY_NOT_DIGIT": r"\D",
    "CATEGORY_WORD": r"\w",
    "CATEGORY_NOT_WORD": r"\W",
    "CATEGORY_SPACE": r"\s",
    "CATEGORY_NOT_SPACE": r"\S",
}
_CATEGORY = {
    "CATEGORY_DIGIT": "0",
    "CATEGORY_NOT_DIGIT": "a",
    "CATEGORY_WORD": "a",
    "CATEGORY_NOT_WORD": "-",
    "CATEGORY_SPACE": " ",
    "CATEGORY_NOT_SPACE": "a",
}


def instance(
    schema: Mapping[str, Any],
    root: Mapping[str, Any] | None = None,
    depth: int = 0,
    memo: dict[str, Any] | None = None,
) -> Any:
    """A value valid against `schema` (a schema the API takes), the same for the same schema.

    A definition referred to many times (`{"$ref": ...}` alone) is built once, and a pattern
    filled once (`memo`, per reply): a small schema cannot make the emulator build thousands.
    """
    root = schema if root is None else root
    memo = {} if memo is None else memo
    ref = schema.get("$ref") if len(schema) == 1 else None
    if isinstance(ref, str):
        if ref not in memo:
            memo[ref] = _instance(_resolve(root, schema), root, depth, memo)
        return memo[ref]
    return _instance(_resolve(root, schema), root, depth, memo)


def _instance(node: Mapping[str, Any], root: Mapping[str, Any], depth: int, memo: dict[str, Any]) -> Any:
    if depth > _MAX_DEPTH:
        return None
    for key in ("allOf", "anyOf"):  # the first branch merged with the keywords beside it
        branches = node.get(key)
        if isinstance(branches, list) and branches:
            merged: Any = {k: v for k, v in node.items() if k != key}
            for branch in branches if key == "allOf" else branches[:1]:
                merged = (
                    merge_keywords(merged, _resolve(root, branch)) if isinstance(merged, dict) else merged
                )
            return instance(merged if isinstance(merged, dict) else branches[0], root, depth + 1, memo)
    if "const" in node:
        return node["const"]
    if isinstance(node.get("enum"), list) and node["enum"]:
        return node["enum"][0]
    kind = node.get("type", "object" if "properties" in node else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = node.get("properties") or {}
        wanted = set(node.get("required") or ())
        required = [name for name in props if name in wanted]
        names = required + [name for name in props if name not in required]
        return {name: instance(props[name], root, depth + 1, memo) for name in names}
    if kind == "array":
        items = node.get("items")
        return [instance(items, root, depth + 1, memo)] if isinstance(items, Mapping) else []
    if kind == "string":
        text = _STRINGS.get(node.get("format"), "example")  # type: ignore[arg-type]
        pattern = node.get("pattern")
        if not isinstance(pattern, str):
            return text
        key = f"pattern {text} {pattern}"  # the same pattern is filled once per reply
        if key not in memo:
            memo[key] = _pattern_text(pattern, text)
        return memo[key]
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
    limit = params.get("max_tokens")
    most = None if isinstance(limit, bool) or not isinstance(limit, int) else limit * MAX_CHARS_PER_TOKEN
    return [*kept, {"type": "text", "text": json_text(instance(fmt["schema"]), most)}]


def json_text(value: Any, most: int | None = None) -> str:
    """`json.dumps(value, ensure_ascii=False)`, or its first `most` + 1 characters when longer
    (one more than `finish` keeps, so it still cuts there): what fits whole is written by
    `json.dumps`, and only the part that crosses the limit is written piece by piece."""
    if most is None:
        return json.dumps(value, ensure_ascii=False)
    sizes = _sizes(value)
    out: list[str] = []
    room = most + 1
    stack: list[Iterator[tuple[bool, Any]]] = [iter([(False, value)])]
    while stack and room > 0:
        step = next(stack[-1], None)
        if step is None:
            stack.pop()
            continue
        literal, item = step
        if not literal and sizes.get(id(item), 0) <= room:
            with suppress(RecursionError):  # nested past the encoder's depth: written piece by piece
                literal, item = True, json.dumps(item, ensure_ascii=False)
        if literal:
            out.append(item[:room])
            room -= len(out[-1])
        else:
            stack.append(_members(item) if isinstance(item, dict) else _elements(item))
    return "".join(out)


def _sizes(value: Any) -> dict[int, int]:
    """The JSON length of each list and dict in `value`, by `id` (a subtree shared by many
    `$ref`s is measured once), found without recursion."""
    sizes: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        item, ready = stack.pop()
        if not isinstance(item, dict | list) or id(item) in sizes:
            continue
        children = list(item.values()) if isinstance(item, dict) else item
        if not ready:
            stack.append((item, True))
            stack.extend((child, False) for child in children)
            continue
        size = 2 + 2 * max(len(children) - 1, 0)  # the brackets, the ", " between
        if isinstance(item, dict):
            size += sum(len(json.dumps(key, ensure_ascii=False)) + 2 for key in item)  # '"key": '
        for child in children:
            is_leaf = not isinstance(child, dict | list)
            size += len(json.dumps(child, ensure_ascii=False)) if is_leaf else sizes[id(child)]
        sizes[id(item)] = size
    return sizes


def _members(value: dict[str, Any]) -> Iterator[tuple[bool, Any]]:
    yield True, "{"
    for i, (key, item) in enumerate(value.items()):
        yield True, (", " if i else "") + json.dumps(key, ensure_ascii=False) + ": "
        yield False, item
    yield True, "}"


def _elements(value: list[Any]) -> Iterator[tuple[bool, Any]]:
    yield True, "["
    for i, item in enumerate(value):
        if i:
            yield True, ", "
        yield False, item
    yield True, "]"
