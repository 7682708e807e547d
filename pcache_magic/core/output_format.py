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

Bounds and shape (checked first, in one linear walk that checks each node once, so that a hostile
schema costs little): at most `MAX_DEPTH` (64) levels of properties, items, branches and `$ref`
hops on any path (a long `$ref` chain is refused at its 65th hop), and at most `MAX_NODES`
(100,000) nodes once `$ref`s are expanded.  A malformed node (`properties` not an object, a
subschema that is not one, `required` not a list of defined names, an empty `enum`, a `const`
of the wrong type, an invalid regex, `allOf` branches that conflict) is one line naming its path
(`core.schema_shape`).  Where the docs are silent the emulator refuses what it cannot answer
validly: `pattern` or `format` beside `enum`/`const`, `pattern` with `format`, and the subschema
keywords outside the documented subset (`not`, `if`/`then`/`else`, `prefixItems`, `contains`,
`patternProperties`, ...).  Each `anyOf` branch re-checks the keywords beside it, so that work is
counted against `MAX_NODES` too.

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
from .schema_shape import fits as _fits
from .schema_shape import merge_keywords, shape_problem, show
from .schema_shape import types as _types
from .tokens import TokenEstimator

__all__ = [
    "FORMAT_OVERHEAD",
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_OPTIONAL",
    "MAX_UNIONS",
    "STRING_FORMATS",
    "FormatError",
    "check_format",
    "format_conflict",
    "format_problem",
    "format_tokens",
    "local_ref",
    "merge_keywords",
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

#: Distinct schema nodes, and nodes once every `$ref` is expanded, a schema may have.
MAX_NODES = 100_000
_TOO_COMPLEX = (
    f"Schema is too complex for compilation (over {MAX_NODES:,} keywords and entries to check "
    "across its allOf/anyOf branches)"
)
#: Levels of properties, items, branches and `$ref` hops on any path from the root.
MAX_DEPTH = 64

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


class FormatError(ValueError):
    """A format the API refuses; the message is the API's 400 text."""


def output_format(params: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The request's `output_config.format`, or None when it asks for none."""
    config = params.get("output_config")
    fmt = config.get("format") if isinstance(config, Mapping) else None
    return fmt if isinstance(fmt, Mapping) else None


def local_ref(root: Mapping[str, Any], ref: str) -> Mapping[str, Any] | None:
    """The local definition `ref` names (`#/$defs/X`, `#/definitions/X`, `#`), or None."""
    if ref == "#":
        return root
    parts = ref[2:].split("/") if ref.startswith("#/") else []
    node: Any = root
    for part in parts:
        node = node.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(node, Mapping) else None
    return node if parts and isinstance(node, Mapping) else None


def _children(node: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """The subschemas of `node` with where they sit (`$defs` are checked where they are used)."""
    props = node.get("properties")
    if isinstance(props, Mapping):
        yield from ((f"properties/{name}", p) for name, p in props.items() if isinstance(p, Mapping))
    if isinstance(node.get("items"), Mapping):
        yield "items", node["items"]
    for key in ("anyOf", "allOf"):
        if isinstance(node.get(key), list):
            yield from ((f"{key}/{i}", s) for i, s in enumerate(node[key]) if isinstance(s, Mapping))


def _conflict(key: str, beside: Any, given: Any) -> str:
    """How a branch's `key` clashes with the schema beside it, naming the values (for `properties`,
    the first property the two describe differently), so the message says what to change."""
    if isinstance(beside, Mapping) and isinstance(given, Mapping):
        name = next((n for n in given if n in beside and beside[n] != given[n]), None)
        if name is not None:
            return (
                f"describes property '{show(name)}' as {show(given[name])} where the schema beside it "
                f"says {show(beside[name])}; make the two agree or keep the property in one place"
            )
    return (
        f"gives '{show(key)}' the value {show(given)} where the schema beside it has {show(beside)}; "
        "make the two agree"
    )


def _weight(node: Mapping[str, Any]) -> int:
    """What checking `node` once reads: its keywords and the entries of its lists and objects."""
    return len(node) + sum(len(v) for v in node.values() if isinstance(v, list | Mapping))


def _branch_problem(node: Mapping[str, Any], depth: int = 0, spent: int = 0) -> str | None:
    """`allOf`/`anyOf` whose branches cannot hold beside the node's own keywords.  The `allOf`
    branches are merged first, and every `anyOf` branch (the node's own, or one an `allOf` branch
    brings) must hold beside that merge: the reply builder picks a branch and fills it.  Each
    branch re-checks what stands beside it, so that work (`spent`) is counted against `MAX_NODES`
    and nested `allOf`s against `MAX_DEPTH`: a few hundred branches beside a wide `enum` or
    `$defs` must not cost minutes."""
    if depth > MAX_DEPTH:
        return f"Schema nests too deeply (over {MAX_DEPTH} levels of allOf)"
    all_of = node.get("allOf")
    if isinstance(all_of, list):
        flat: Mapping[str, Any] = {k: v for k, v in node.items() if k != "allOf"}
        for i, branch in enumerate(all_of):
            merged = merge_keywords(flat, branch)
            if isinstance(merged, str):
                return f"allOf[{i}] {_conflict(merged, flat[merged], branch[merged])}"
            flat = merged
        spent += _weight(flat)
        if spent > MAX_NODES:
            return _TOO_COMPLEX
        return shape_problem(flat) or _node_problem(flat) or _branch_problem(flat, depth + 1, spent)
    any_of = node.get("anyOf")
    if isinstance(any_of, list):
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if spent + len(any_of) * _weight(rest) > MAX_NODES:
            return _TOO_COMPLEX
        for i, branch in enumerate(any_of):
            merged = merge_keywords(rest, branch)
            if isinstance(merged, str):
                return f"anyOf[{i}] {_conflict(merged, rest[merged], branch[merged])}"
            if (problem := shape_problem(merged) or _node_problem(merged)) is not None:
                return problem
    return None


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
        return f"For 'array' type, 'minItems' values other than 0 or 1 are not supported (got: {show(got)})"
    if "object" in types and node.get("additionalProperties") is not False:
        return "For 'object' type, 'additionalProperties' must be explicitly set to false"
    if "string" in types and "format" in node and node["format"] not in STRING_FORMATS:
        return f"For 'string' type, format '{show(node['format'])}' is not supported"
    pattern = node.get("pattern")
    if isinstance(pattern, str) and _BAD_PATTERN.search(pattern):
        return (
            f"Pattern '{show(pattern)}' is not supported: "
            "backreferences, lookaround and word boundaries are not"
        )
    enum = node.get("enum")
    if isinstance(enum, list):
        for value in enum:
            if not isinstance(value, _PRIMITIVE):
                return (
                    "Enum values must be strings, numbers, booleans or null; complex types are not supported"
                )
            if types and not any(_fits(value, kind) for kind in types):
                shown = types[0] if len(types) == 1 else json.dumps(types, separators=(",", ":"))
                return (
                    f"Invalid schema: Enum value {show(repr(value))} does not match declared type '{shown}'"
                )
    return None


def _own_counts(node: Mapping[str, Any]) -> tuple[int, int]:
    """The optional and union-typed properties `node` itself declares."""
    props = node.get("properties")
    if not isinstance(props, Mapping):
        return 0, 0
    required = set(node.get("required") or ())  # a set: a list makes wide objects quadratic
    optional = sum(1 for name in props if name not in required)
    unions = sum(1 for p in props.values() if isinstance(p, Mapping) and ("anyOf" in p or len(_types(p)) > 1))
    return optional, unions


def _count_problem(optional: int, unions: int) -> str | None:
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


def _edges(
    root: Mapping[str, Any], node: Mapping[str, Any], path: str
) -> list[tuple[Mapping[str, Any], str]] | str:
    """The subschemas the walk goes on to (a `$ref`'s target among them), or a 400 message."""
    edges = [(child, f"{path}/{where}") for where, child in _children(node)]
    ref = node.get("$ref")
    if isinstance(ref, str):
        if not ref.startswith("#"):
            return f"External $ref '{show(ref)}' is not supported; define it in $defs"
        target = local_ref(root, ref)
        if target is None:
            return f"$ref '{show(ref)}' does not resolve to a definition in this schema"
        edges.append((target, ref))
    return edges


def _walk(schema: Mapping[str, Any]) -> str | None:
    """Check every node once, in linear time: a depth-first walk over properties, items, branches
    and `$ref` hops, with each node's totals (optional, union, expanded size) memoised, so that a
    definition used many times is checked once and a `$ref` met on its own path is a cycle."""
    on_path: set[int] = set()
    totals: dict[int, tuple[int, int, int]] = {}
    Frame = tuple[Mapping[str, Any], str, int, "list[tuple[Mapping[str, Any], str]] | None"]
    stack: list[Frame] = [(schema, "#", 0, None)]
    while stack:
        node, path, depth, done = stack.pop()
        key = id(node)
        if done is not None:  # leaving: every edge is totalled
            on_path.discard(key)
            own_optional, own_unions = _own_counts(node)
            sums = [totals[id(child)] for child, _ in done]
            total = (
                own_optional + sum(s[0] for s in sums),
                own_unions + sum(s[1] for s in sums),
                1 + sum(s[2] for s in sums),
            )
            if total[2] > MAX_NODES:
                return (
                    _WHERE
                    + "Schema is too complex for compilation"
                    + f" (over {MAX_NODES:,} nodes once $refs are expanded)"
                )
            totals[key] = total
            continue
        if key in on_path:
            return (
                _WHERE + f"Recursive schemas are not supported ($ref at {show(path)} refers back to itself)"
            )
        if key in totals:
            continue
        if depth > MAX_DEPTH:
            return (
                _WHERE
                + f"Schema nests too deeply (over {MAX_DEPTH} levels of properties, items, branches "
                + f"and $refs) at {show(path)}"
            )
        if len(totals) + len(on_path) >= MAX_NODES:
            return _WHERE + f"Schema is too complex for compilation (over {MAX_NODES:,} nodes)"
        problem = shape_problem(node)  # first: the rules below assume a well-formed node
        if problem is None and (recorded := _node_problem(node)) is not None:
            return _WHERE + recorded  # the API's recorded words, as they are
        edges = (
            _edges(schema, node, path)
            if problem is None and not (problem := _branch_problem(node))
            else problem
        )
        if isinstance(edges, str):  # ours: where it is, so that a big schema's fault can be found
            return _WHERE + f"{edges} (at {show(path)})"
        on_path.add(key)
        stack.append((node, path, depth, edges))
        stack.extend((child, where, depth + 1, None) for child, where in edges)
    optional, unions, _ = totals[id(schema)]
    return _count_problem(optional, unions)


def format_problem(fmt: Mapping[str, Any]) -> str | None:
    """The API's 400 message for an `output_config.format` it refuses, or None when it takes it.

    The shape (`type: "json_schema"`, `schema` an object) is the SDK's `JSONOutputFormatParam`,
    checked here too so that the magic can refuse a bad dict before it is sent.
    """
    if fmt.get("type") != "json_schema":
        return f"output_config.format.type: Input should be 'json_schema' (got {show(fmt.get('type'))})"
    schema = fmt.get("schema")
    if not isinstance(schema, Mapping):
        return "output_config.format.schema: Input should be a valid dictionary"
    return _walk(schema)


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
