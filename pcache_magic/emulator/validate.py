"""Validation of Messages API request bodies, answered as the real API answers.

The real API checks a body in two stages, and the emulator must fail the same way on the same
body. Stage one is structural, a pydantic model: errors read ``<dotted path>: <problem>`` in
pydantic's words, with the tag of a union discriminated by ``type`` in the path
(``messages.0.content.1.image.source.base64.media_type``). Here its schema is the installed SDK's
request TypedDicts, as pydantic's ``TypeAdapter`` compiles them, rewritten by ``_wire`` into what
the API applies to a JSON body (validated as they are, they would pass bad bodies):

- ``Iterable``/``Sequence`` become lists: pydantic checks an ``Iterable`` lazily, i.e. never;
- unknown keys are refused, not ignored, unless the SDK allows them (a tool's JSON Schema);
- union choices a JSON body cannot be (response models, file objects) are dropped, and so are
  literals beside ``str`` (model names) and a plain dict beside a TypedDict;
- unions of TypedDicts tagged by ``type`` are discriminated, as is every ``content`` list even of
  one block type; the other unions (messages by ``role``, tools whose ``type`` may be omitted, a
  string or a list) pick a variant without naming it, where pydantic would report every variant;
- ``_PATCHES`` adds what the API enforces that the SDK's types do not say.

Stage two (empty text, blocks in the wrong turn, duplicate tool names, pre-warming, thinking
budget and what thinking excludes: a forced tool choice, a temperature other than 1; tool pairs)
is the API's rules rather than a shape, and runs only on a body that passed stage one.  A
structured-output format (`output_config.format`) is checked first in stage two, by the checker
the magics share (`core.output_format`): the schema subset and what a format excludes.
Cross-block cache rules (breakpoint count, TTL order) are the engine's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

from anthropic.types import MessageCountTokensParams, TextBlockParam, ThinkingConfigEnabledParam, ToolParam
from anthropic.types.message_create_params import MessageCreateParamsBase
from pydantic import TypeAdapter
from pydantic_core import PydanticCustomError, SchemaValidator, ValidationError
from pydantic_core import core_schema as cs

from ..core.models import ModelTable, default_models, thinking_refusal
from ..core.output_format import format_conflict, format_problem, output_format
from ..core.tokens import MAX_MEDIA, MAX_MEDIA_LARGE_CONTEXT
from .errors import ApiError
from .image_check import check_images
from .thinking_check import check_thinking

__all__ = ["validate_request"]

Schema = dict[str, Any]  # a pydantic-core schema, rewritten as plain dicts; {} is "no JSON shape"
Patch = Callable[[Schema], Schema]

_EMPTY_CC = "empty_text_cache_control"
_JSON = {"str": "a valid string", "list": "a list of content blocks", "dict": "a valid dictionary"}
_JSON_OF_VALUE: dict[type, str] = {str: "str", list: "list", dict: "dict"}
_JSON_OF_SCHEMA = {"typed-dict": "dict", "generator": "list", "json-or-python": "list"}
_SHADOWED = {"literal": "str", "dict": "typed-dict"}  # a union choice that adds nothing beside the other
_LEAVES = frozenset({"str", "int", "float", "bool", "literal", "any", "dict"})
_PREWARM = "max_tokens: 0 (cache pre-warming) cannot be combined with "
_BUDGET = (
    "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation"
    " at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
    "#max-tokens-and-context-window-size"
)
_FORCED_WITH_THINKING = "Thinking may not be enabled when tool_choice forces tool use."
_TEMPERATURE = "`temperature` may only be set to 1 when thinking is enabled or in adaptive mode"
_NOT_EMPTY = ": all messages must have non-empty content except for the optional final assistant message"
_ASSISTANT_ONLY = frozenset({"tool_use", "thinking", "redacted_thinking"})
_USER_ONLY = frozenset({"tool_result", "image", "document"})


class _Create(MessageCreateParamsBase, total=False):
    """The SDK's create body as one TypedDict (the SDK has one per value of `stream`), plus the
    sampling fields the API takes and anthropic 2.x sends in `extra_body`."""

    stream: bool
    temperature: float
    top_k: int
    top_p: float


def _after(check: Callable[[Any], None]) -> Patch:
    def run(value: Any) -> Any:
        check(value)
        return value

    return lambda s: dict(cs.no_info_after_validator_function(run, s))


def _bounds(**limits: Any) -> Patch:
    return lambda s: {**s, **limits}


def _api_order(body: Schema) -> Schema:
    """Required fields first, then by name: the API's order, to which the SDK appends `stream`."""
    fields = sorted(body["fields"].items(), key=lambda f: (not f[1]["required"], f[0]))
    return {**body, "fields": dict(fields)}


def _some_messages(messages: list[Any]) -> None:
    if not messages:
        raise PydanticCustomError("too_short", "at least one message is required")


def _empty_text_cc(block: dict[str, Any]) -> None:
    """The documented 400: a breakpoint on an empty text block marks no content."""
    if block["text"] == "" and block.get("cache_control") is not None:
        raise PydanticCustomError(_EMPTY_CC, "cache_control cannot be set for empty text blocks")


_PATCHES: dict[tuple[type, str | None], Patch] = {  # (TypedDict, field, or None for all of it)
    (_Create, None): _api_order,
    (_Create, "max_tokens"): _bounds(ge=0),
    (_Create, "messages"): _after(_some_messages),
    (MessageCountTokensParams, "messages"): _after(_some_messages),
    (_Create, "temperature"): _bounds(ge=0, le=1),
    (_Create, "top_k"): _bounds(ge=0),
    (_Create, "top_p"): _bounds(ge=0, le=1),
    (ThinkingConfigEnabledParam, "budget_tokens"): _bounds(ge=1024),
    (ToolParam, "name"): _bounds(pattern="^[a-zA-Z0-9_-]{1,128}$"),
    (TextBlockParam, None): _after(_empty_text_cc),
}


def _patch(cls: type, field: str | None, schema: Schema) -> Schema:
    patch = _PATCHES.get((cls, field))
    return schema if patch is None else patch(schema)


def _unnamed(union: Schema, label: Callable[[Any], Any], refuse: Callable[[Any], None]) -> Schema:
    """`union`, with the variant that `label` picks kept out of error paths and the others' errors
    dropped (pydantic reports them all); `refuse` raises for a value that picks no variant."""

    def unnamed(value: Any, handler: cs.ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError as e:
            picked = [d for d in e.errors(include_url=False) if d["loc"][:1] == (label(value),)]
            if not picked:
                refuse(value)
                raise
            errors = [
                {"type": PydanticCustomError(d["type"], d["msg"]), "loc": d["loc"][1:], "input": d["input"]}
                for d in picked
            ]
            raise ValidationError.from_exception_data(e.title, errors) from None  # type: ignore[arg-type]

    return dict(cs.no_info_wrap_validator_function(unnamed, union))


def _by_field(key: str, choices: list[tuple[Any, bool, Schema]]) -> Schema:
    """TypedDicts told apart by the literal in `key`, given as (literal, required, schema):
    messages by role, tools by a type that a custom tool may omit."""
    default = next((tag for tag, required, _ in choices if not required), None)
    literal = cs.literal_schema([tag for tag, _, _ in choices])
    field = cs.typed_dict_field(cs.nullable_schema(literal) if default else literal, required=not default)
    check = SchemaValidator(cs.typed_dict_schema({key: field}))

    def tag_of(value: Any) -> Any:
        return (default if value.get(key) is None else value[key]) if isinstance(value, dict) else None

    union = cs.tagged_union_schema({tag: s for tag, _, s in choices}, tag_of if default else key)
    return _unnamed(dict(union), tag_of, lambda value: check.validate_python(value, strict=True))


def _by_kind(choices: dict[str, Schema]) -> Schema:
    """Variants of different JSON types: a string or a list of blocks, a string or an object."""
    problem = "Input should be " + " or ".join(name for kind, name in _JSON.items() if kind in choices)

    def refuse(value: Any) -> None:
        raise PydanticCustomError("union_type", problem)

    union = cs.union_schema([(s, kind) for kind, s in choices.items()])
    return _unnamed(dict(union), lambda value: _JSON_OF_VALUE.get(type(value)), refuse)


def _wire(root: Schema) -> Schema:
    """The SDK's core schema rewritten into the one the API applies to a JSON body (module doc)."""
    defs = {d["ref"]: d for d in root["definitions"]}

    def real(s: Schema) -> Schema:
        while s["type"] in ("definition-ref", "nullable"):
            s = defs[s["schema_ref"]] if s["type"] == "definition-ref" else s["schema"]
        return s

    def literals(s: Schema) -> dict[str, tuple[Any, bool]]:  # field -> (its literal, required)
        fields = [(name, real(f["schema"]), f["required"]) for name, f in s["fields"].items()]
        return {name: (f["expected"][0], required) for name, f, required in fields if f["type"] == "literal"}

    def tag(s: Schema) -> Any:  # the `type` a block TypedDict requires, or None
        if s["type"] != "typed-dict":
            return None
        value, required = literals(s).get("type", (None, False))
        return value if required else None

    def union(options: list[Schema], content: bool) -> Schema:
        kept = [(real(o), f) for o in options if (f := fix(o, content))]
        kinds = {o["type"] for o, _ in kept}
        kept = [(o, f) for o, f in kept if _SHADOWED.get(o["type"]) not in kinds]
        if len(kept) < 2:
            return kept[0][1] if kept else {}
        if all(tag(o) for o, _ in kept):
            return dict(cs.tagged_union_schema({tag(o): f for o, f in kept}, "type"))
        if all(o["type"] == "typed-dict" for o, _ in kept):
            fields = [literals(o) for o, _ in kept]
            key = min(set.intersection(*map(set, fields)), key=lambda k: k != "type")
            return _by_field(key, [(*f[key], s) for f, (_, s) in zip(fields, kept, strict=True)])
        return _by_kind({_JSON_OF_SCHEMA.get(o["type"]) or o["type"]: f for o, f in kept})

    def fix(s: Schema, content: bool = False) -> Schema:
        kind = s["type"]
        if kind in _LEAVES:
            return s
        if kind == "definition-ref":
            return s if real(s)["type"] != "model" else {}
        if kind == "nullable":
            inner = fix(s["schema"], content)
            return inner and {**s, "schema": inner}
        if kind == "json-or-python":
            return fix(s["json_schema"], content)
        if kind in ("list", "generator"):
            item = fix(s["items_schema"])
            if content and (block := tag(real(s["items_schema"]))):
                item = dict(cs.tagged_union_schema({block: item}, "type"))
            return dict(cs.list_schema(item))
        if kind == "union":
            return union([c[0] if isinstance(c, tuple) else c for c in s["choices"]], content)
        if kind == "typed-dict":
            out = {k: v for k, v in s.items() if k != "ref"}  # a patch may wrap it: the ref goes outside
            out["extra_behavior"] = "allow" if s["extra_behavior"] == "allow" else "forbid"
            out["fields"] = {
                n: {**f, "schema": _patch(s["cls"], n, fix(f["schema"], n == "content"))}
                for n, f in s["fields"].items()
            }
            return _patch(s["cls"], None, out) | ({"ref": s["ref"]} if "ref" in s else {})
        if kind == "definitions":
            definitions = [d for d in map(fix, s["definitions"]) if d]
            return {**s, "schema": fix(s["schema"]), "definitions": definitions}
        return {}  # a response model, a file object: nothing a JSON body holds

    return fix(root)


@functools.cache
def _validator(counting: bool) -> SchemaValidator:
    """Built once per endpoint, on first use (a tenth of a second)."""
    sdk_type = MessageCountTokensParams if counting else _Create
    return SchemaValidator(_wire(dict(TypeAdapter(sdk_type).core_schema)))


def _structure(body: object, counting: bool) -> None:
    """Stage one: the first pydantic error, as the API words it."""
    try:
        _validator(counting).validate_python(body, strict=True)
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        loc = first["loc"]
        if first["type"] == _EMPTY_CC and loc[-1] != "text":  # a system block's, named by its field
            loc = (*loc, "text")
        raise ApiError.invalid(f"{'.'.join(map(str, loc)) or 'body'}: {first['msg']}") from None


def validate_request(
    body: object,
    *,
    known_model: Callable[[str], bool],
    counting: bool = False,
    models: ModelTable | None = None,
    thinking_key: bytes | None = None,
) -> None:
    """Raise ApiError for the first problem, as the real API would; return None if the body is valid.

    counting=True: the body of POST /v1/messages/count_tokens (max_tokens not required, stream
    not allowed).  `models` says which thinking modes a model takes (the packaged table by default).
    `thinking_key`: the engine's (`reply.thinking_key`); thinking blocks sent back must carry its
    signature of their text, and `redacted_thinking` (which the emulator never writes) is refused.
    """
    _structure(body, counting)
    assert isinstance(body, dict)
    if not known_model(body["model"]):
        raise ApiError("not_found_error", f"model: {body['model']}")
    if (fmt := output_format(body)) is not None and (bad := format_problem(fmt) or format_conflict(body)):
        raise ApiError.invalid(bad)
    thinking = body.get("thinking", {}).get("type")
    choice = body.get("tool_choice", {}).get("type")
    table = models if models is not None else default_models()
    if thinking in ("enabled", "adaptive") and body["model"] in table:
        refusal = thinking_refusal(table.get(body["model"]), thinking)
        if refusal is not None:
            raise ApiError.invalid(refusal)
    if not counting and body["max_tokens"] == 0:
        for conflict, what in (
            (body.get("stream") is True, "stream: true"),
            (thinking == "enabled", "thinking enabled"),
            (body.get("output_config", {}).get("format") is not None, "output_config.format"),
            (choice in ("any", "tool"), f"tool_choice of type '{choice}'"),
        ):
            if conflict:
                raise ApiError.invalid(_PREWARM + what)
    if not counting and thinking == "enabled" and body["thinking"]["budget_tokens"] >= body["max_tokens"]:
        raise ApiError.invalid(_BUDGET)
    if not counting and thinking == "enabled" and choice in ("any", "tool"):
        raise ApiError.invalid(_FORCED_WITH_THINKING)
    if not counting and thinking in ("enabled", "adaptive") and body.get("temperature", 1) != 1:
        raise ApiError.invalid(_TEMPERATURE)
    tools = [tool["name"] for tool in body.get("tools", ())]
    if choice in ("any", "tool") and not tools:
        raise ApiError.invalid("tool_choice: tool_choice may only be specified while providing tools.")
    if choice == "tool" and (name := body["tool_choice"]["name"]) not in tools:
        raise ApiError.invalid(f"tool_choice.tool.name: no tool named '{name}' in tools")
    problem = next(_semantics(body["messages"], body.get("system"), tools), None)
    if problem is not None:
        raise ApiError.invalid(problem)
    check_thinking(body["messages"], thinking, thinking_key)
    _tool_pairs(body["messages"])
    # after the rules (where the API checks them is not documented); 600 images past a 200k context
    large = body["model"] in table and table.get(body["model"]).context_window > 200_000
    check_images(body["messages"], MAX_MEDIA_LARGE_CONTEXT if large else MAX_MEDIA)


def _text(text: str, where: str, final: bool) -> Iterator[str]:
    """Empty or blank text is a 400; a final assistant prefill must not end in blanks."""
    if final and text != text.rstrip():
        yield "messages: final assistant content cannot end with trailing whitespace"
    elif text == "":
        yield f"{where}: text content blocks must be non-empty"
    elif text.isspace():
        yield f"{where}: text content blocks must contain non-whitespace text"


def _semantics(messages: list[dict[str, Any]], system: object, tools: list[str]) -> Iterator[str]:
    """Stage two's problems, in the body's order: messages, then system, then tools."""
    for i, message in enumerate(messages):
        role, content = message["role"], message["content"]
        prefill = i == len(messages) - 1 and role == "assistant"
        if not content and not prefill:
            yield f"messages.{i}" + _NOT_EMPTY
        if isinstance(content, str):
            if content:
                yield from _text(content, "messages", prefill)
            continue
        for j, block in enumerate(content):
            tag = block["type"]
            if tag == "text":
                yield from _text(block["text"], "messages", prefill and j == len(content) - 1)
            elif tag in _ASSISTANT_ONLY and role != "assistant":
                yield f"messages.{i}.content.{j}: `{tag}` blocks can only be in `assistant` messages"
            elif tag in _USER_ONLY and role != "user":
                yield f"messages.{i}.content.{j}: `{tag}` blocks can only be in `user` messages"
            if tag == "tool_result" and isinstance(inner := block.get("content"), list):
                yield from _nested_markers(inner, f"messages.{i}.content.{j}.tool_result.content")
    for block in system if isinstance(system, list) else ():
        yield from _text(block["text"], "system", False)
    if len(set(tools)) < len(tools):
        yield "tools: Tool names must be unique."


def _nested_markers(inner: list[dict[str, Any]], where: str) -> Iterator[str]:
    """A marker goes on the tool_result itself, never on a block inside it (the API's 400, quoted in
    caozhiyuan/copilot-api#241 and langchain-ai/langchain#34920)."""
    for k, block in enumerate(inner):
        if block.get("cache_control") is not None:
            yield (
                f"{where}.{k}.cache_control: cache_control may not be specified within "
                "`tool_result.content`. Instead, place it directly on `tool_result`"
            )


def _tool_pairs(messages: list[dict[str, Any]]) -> None:
    """Every tool_use is answered at the start of the next message, and every tool_result answers
    one in the message before (other rules put tool_use in assistant turns, results in user turns)."""
    uses: list[str] = []  # the previous message's tool_use ids
    for i, message in enumerate(messages):
        blocks = [] if isinstance(message["content"], str) else message["content"]
        results = [(j, b["tool_use_id"]) for j, b in enumerate(blocks) if b["type"] == "tool_result"]
        answered = {tool_id for _, tool_id in results}
        if uses and (message["role"] != "user" or not answered.issuperset(uses)):
            raise ApiError.invalid(
                f"messages.{i - 1}: `tool_use` ids were found without `tool_result` blocks immediately after:"
                f" {', '.join([u for u in uses if u not in answered] or uses)}. Each `tool_use` block must"
                " have a corresponding `tool_result` block in the next message."
            )
        if uses and [j for j, _ in results[: len(uses)]] != list(range(len(uses))):  # results, then text
            raise ApiError.invalid(
                f"messages.{i}: Did not find {len(uses)} tool_result block(s) at the beginning of this"
                " message. Messages following tool_use blocks must begin with a matching number of"
                " tool_result blocks."
            )
        for j, tool_id in results:
            if tool_id not in uses:
                raise ApiError.invalid(
                    f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks:"
                    f" {tool_id}. Each `tool_result` block must have a corresponding `tool_use` block in"
                    " the previous message."
                )
        uses = [b["id"] for b in blocks if b["type"] == "tool_use"]
