"""Structural validation of Messages API request bodies, answered as the real API answers.

The real API checks a body in two stages, and the emulator must fail the same way on the same
body. Stage one is a pydantic model: errors read ``<dotted path>: <problem>`` in pydantic's
words, and a union tagged by ``type`` puts the tag into the path
(``thinking.enabled.budget_tokens``, ``messages.0.content.1.image.source.base64.media_type``).
Stage two is semantic (empty text, blocks in the wrong turn, duplicate tool names, ...) and only
runs on a body that passed stage one. One walk does both: a structural problem raises at once,
the first semantic one is kept and raised after the walk.

Shapes follow the installed SDK's TypedDicts (anthropic 2.14). Cross-block cache rules
(breakpoint count, TTL order, automatic caching) are the engine's, not this module's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from .errors import ApiError

__all__ = ["validate_request"]

Check = Callable[[Any, str, "_Walk"], None]
Spec = dict[str, tuple[bool, Check]]  # field -> (required, check), in validation order

_EXTRA = "Extra inputs are not permitted"
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,128}")
_PREWARM = "max_tokens: 0 (cache pre-warming) cannot be combined with "
_BUDGET = (
    "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation"
    " at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
    "#max-tokens-and-context-window-size"
)
_NOT_EMPTY = ": all messages must have non-empty content except for the optional final assistant message"
_ASSISTANT_ONLY = frozenset({"tool_use", "thinking", "redacted_thinking"})
_USER_ONLY = frozenset({"tool_result", "image", "document"})


class _Walk:
    """One validation's state: the first semantic error, and the tool names for tool_choice."""

    __slots__ = ("first", "tools")

    def __init__(self) -> None:
        self.first: ApiError | None = None
        self.tools: set[str] = set()

    def later(self, message: str) -> None:
        if self.first is None:
            self.first = ApiError.invalid(message)


def _fail(path: str, problem: str) -> NoReturn:
    raise ApiError.invalid(f"{path}: {problem}")


# -- checks: each takes (value, path, walk) and raises on the first structural problem ----------


def _is(kind: type | tuple[type, ...], name: str, optional: bool = False) -> Check:
    """A JSON type check. JSON true is never an integer or a number here."""
    message = f"Input should be a valid {name}"

    def check(v: Any, p: str, w: _Walk) -> None:
        if not (v is None and optional) and (
            not isinstance(v, kind) or (isinstance(v, bool) and kind is not bool)
        ):
            _fail(p, message)

    return check


def _any(v: Any, p: str, w: _Walk) -> None:
    """No check: server tool payloads the emulator never reads, or values the caller checks."""


_str, _ostr, _bool = _is(str, "string"), _is(str, "string", True), _is(bool, "boolean")
_dict, _int, _num = _is(dict, "dictionary"), _is(int, "integer"), _is((int, float), "number")
_obool = _is(bool, "boolean", True)


def _range(low: int, high: int | None = None, number: bool = False) -> Check:
    def check(v: Any, p: str, w: _Walk) -> None:
        (_num if number else _int)(v, p, w)
        if v < low:
            _fail(p, f"Input should be greater than or equal to {low}")
        if high is not None and v > high:
            _fail(p, f"Input should be less than or equal to {high}")

    return check


def _lit(*choices: str, optional: bool = False) -> Check:
    quoted = [f"'{c}'" for c in choices]
    listed = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"

    def check(v: Any, p: str, w: _Walk) -> None:
        if not (v is None and optional) and (not isinstance(v, str) or v not in choices):
            _fail(p, f"Input should be {listed}")

    return check


def _list(item: Check, optional: bool = False, or_str: bool = False) -> Check:
    """A list of items; `or_str` for the content fields that also take a plain string."""
    message = "a valid string or a list of content blocks" if or_str else "a valid list"

    def check(v: Any, p: str, w: _Walk) -> None:
        if (v is None and optional) or (or_str and isinstance(v, str)):
            return
        if not isinstance(v, list):
            _fail(p, f"Input should be {message}")
        for i, x in enumerate(v):
            item(x, f"{p}.{i}", w)

    return check


def _spec(fields: Mapping[str, Check]) -> Spec:
    """Field table from ``{"name": check, "optional?": check}``."""
    return {k.rstrip("?"): (not k.endswith("?"), c) for k, c in fields.items()}


def _fields(d: dict[str, Any], prefix: str, spec: Spec, w: _Walk) -> None:
    """Declared fields in order (missing or wrong), then undeclared keys, as pydantic does."""
    for name, (required, check) in spec.items():
        if name in d:
            check(d[name], prefix + name, w)
        elif required:
            _fail(prefix + name, "Field required")
    for k in d:
        if k not in spec:
            _fail(prefix + str(k), _EXTRA)


def _obj(fields: Mapping[str, Check], optional: bool = False) -> Check:
    spec = _spec(fields)

    def check(v: Any, p: str, w: _Walk) -> None:
        if not (v is None and optional):
            _dict(v, p, w)
            _fields(v, p + ".", spec, w)

    return check


def _empty_text_cc(block: dict[str, Any], p: str) -> None:
    """The documented 400: a breakpoint on an empty text block marks no content."""
    if block.get("text") == "" and block.get("cache_control") is not None:
        _fail(p, "cache_control cannot be set for empty text blocks")


def _union(variants: Mapping[str, Mapping[str, Check]]) -> Check:
    """A union tagged by `type`; the tag becomes part of every nested path."""
    specs = {tag: _spec({"type": _any, **fields}) for tag, fields in variants.items()}
    unknown = "found using 'type' does not match any of the expected tags: "
    unknown += ", ".join(f"'{t}'" for t in specs)

    def check(v: Any, p: str, w: _Walk) -> None:
        if not isinstance(v, dict):
            _fail(p, "Input should be a valid dictionary or object to extract fields from")
        tag = v.get("type")
        spec = specs.get(tag) if isinstance(tag, str) else None
        if spec is None:
            if tag is None:
                _fail(p, "Unable to extract tag using discriminator 'type'")
            _fail(p, f"Input tag '{tag}' {unknown}")
        _fields(v, f"{p}.{tag}.", spec, w)
        if tag == "text":
            _empty_text_cc(v, f"{p}.text")

    return check


# -- the SDK's shapes ----------------------------------------------------------------------------

_cc = _obj({"type": _lit("ephemeral"), "ttl?": _lit("5m", "1h")}, optional=True)
_CITED = {"cited_text": _str, "document_index": _int, "document_title": _ostr}
_BLOCK_RANGE = {"end_block_index": _int, "start_block_index": _int}
_citation = _union(
    {
        "char_location": {**_CITED, "end_char_index": _int, "start_char_index": _int},
        "page_location": {**_CITED, "end_page_number": _int, "start_page_number": _int},
        "content_block_location": {**_CITED, **_BLOCK_RANGE},
        "web_search_result_location": {
            **{"cited_text": _str, "encrypted_index": _str, "title": _ostr, "url": _str}
        },
        "search_result_location": {
            **{"cited_text": _str, "search_result_index": _int, "source": _str, "title": _ostr},
            **_BLOCK_RANGE,
        },
    }
)
_citations_config = _obj({"enabled?": _bool}, optional=True)
_TEXT_OPT = {"cache_control?": _cc, "citations?": _list(_citation, optional=True)}
_TEXT = {"text": _str, **_TEXT_OPT}
_IMAGE_MEDIA = _lit("image/jpeg", "image/png", "image/gif", "image/webp")
_URL, _FILE = {"url": _str}, {"file_id": _str}
_IMAGE = {
    "source": _union({"base64": {"data": _str, "media_type": _IMAGE_MEDIA}, "url": _URL, "file": _FILE}),
    "cache_control?": _cc,
    "transformations?": _obj({"oversized_image?": _lit("downsize", "error")}, optional=True),
}
_DOCUMENT = {
    "source": _union(
        {
            "base64": {"data": _str, "media_type": _lit("application/pdf")},
            "text": {"data": _str, "media_type": _lit("text/plain")},
            "content": {"content": _list(_union({"text": _TEXT, "image": _IMAGE}), or_str=True)},
            "url": _URL,
            "file": _FILE,
        }
    ),
    **{"cache_control?": _cc, "citations?": _citations_config, "context?": _ostr, "title?": _ostr},
}
_SEARCH_RESULT = {
    **{"content": _list(_union({"text": _TEXT})), "source": _str, "title": _str},
    **{"cache_control?": _cc, "citations?": _citations_config},
}
_tool_result_item = _union(
    {
        **{"text": _TEXT, "image": _IMAGE, "search_result": _SEARCH_RESULT, "document": _DOCUMENT},
        "tool_reference": {"tool_name": _str, "cache_control?": _cc},
        "browser_state": {"tabs": _list(_any), "cache_control?": _cc, "state_changes?": _any},
    }
)
_USE = {"id": _str, "input": _dict, "name": _str, "cache_control?": _cc, "caller?": _dict}
_SERVER_RESULT = {"content": _any, "tool_use_id": _str, "cache_control?": _cc}
_SERVER_RESULTS = [
    f"{n}_tool_result"
    for n in ("code_execution", "bash_code_execution", "text_editor_code_execution", "tool_search")
]
_content_block = _union(
    {
        **{"text": _TEXT, "image": _IMAGE, "document": _DOCUMENT, "search_result": _SEARCH_RESULT},
        "thinking": {"signature": _str, "thinking": _str},  # no cache_control: it is extra
        "redacted_thinking": {"data": _str},
        "tool_use": {**_USE, "toolset_name?": _ostr},
        "tool_result": {
            **{"tool_use_id": _str, "cache_control?": _cc},
            **{"content?": _list(_tool_result_item, or_str=True), "is_error?": _bool},
            "toolset_name?": _ostr,
        },
        "server_tool_use": _USE,
        "web_search_tool_result": {**_SERVER_RESULT, "caller?": _dict},
        "web_fetch_tool_result": {**_SERVER_RESULT, "caller?": _dict},
        **dict.fromkeys(_SERVER_RESULTS, _SERVER_RESULT),
        "container_upload": {"file_id": _str, "cache_control?": _cc},
    }
)
_system_role_block = _union({"text": _TEXT})  # role "system" messages (SystemMessageParam)
_system_block = _obj({"text": _str, "type": _lit("text"), **_TEXT_OPT})  # not a union: no tag
_SCHEMA = _spec({"type": _lit("object"), "properties?": _is(dict, "dictionary", True), "required?": _any})


def _input_schema(v: Any, p: str, w: _Walk) -> None:
    """A JSON Schema: `type` "object" is required, any other keyword is allowed (extra="allow")."""
    _dict(v, p, w)
    _fields({k: v[k] for k in v if k in _SCHEMA}, p + ".", _SCHEMA, w)


_CUSTOM_TOOL = _spec(
    {
        "input_schema": _input_schema,
        **{"name": _str, "allowed_callers?": _list(_str), "cache_control?": _cc},
        **{"defer_loading?": _bool, "description?": _str, "eager_input_streaming?": _obool},
        **{"input_examples?": _list(_dict), "strict?": _bool, "type?": _lit("custom")},
    }
)
_SERVER_TOOL = _spec({"type": _str, "name": _str, "cache_control?": _cc})


_ANY_LIST, _DICT_LIST = _list(_any), _list(_dict)
_CONTENT = _list(_any, or_str=True)  # str, or a list whose items the caller checks


def _text_rules(text: str, where: str, final: bool, w: _Walk) -> None:
    """Empty or blank text is a semantic 400; a final assistant prefill must not end in blanks."""
    if final and text != text.rstrip():
        w.later("messages: final assistant content cannot end with trailing whitespace")
    elif text == "":
        w.later(f"{where}: text content blocks must be non-empty")
    elif text.isspace():
        w.later(f"{where}: text content blocks must contain non-whitespace text")


def _messages(v: Any, p: str, w: _Walk) -> None:
    _ANY_LIST(v, p, w)
    if not v:
        _fail(p, "at least one message is required")
    for i, m in enumerate(v):
        mp, final = f"messages.{i}", i == len(v) - 1
        _dict(m, mp, w)
        _fields(m, mp + ".", _MESSAGE, w)
        role, content = m["role"], m["content"]
        prefill = final and role == "assistant"
        if isinstance(content, str):
            if content:
                _text_rules(content, "messages", prefill, w)
            elif not prefill:
                w.later(mp + _NOT_EMPTY)
            continue
        _CONTENT(content, mp + ".content", w)
        if not content and not prefill:
            w.later(mp + _NOT_EMPTY)
        check = _system_role_block if role == "system" else _content_block
        for j, block in enumerate(content):
            bp = f"{mp}.content.{j}"
            check(block, bp, w)
            tag = block["type"]
            if tag == "text":
                _text_rules(block["text"], "messages", prefill and j == len(content) - 1, w)
            elif tag in _ASSISTANT_ONLY and role != "assistant":
                w.later(f"{bp}: `{tag}` blocks can only be in `assistant` messages")
            elif tag in _USER_ONLY and role != "user":
                w.later(f"{bp}: `{tag}` blocks can only be in `user` messages")


_MESSAGE = _spec({"role": _lit("user", "assistant", "system"), "content": _any})


def _system(v: Any, p: str, w: _Walk) -> None:
    _CONTENT(v, p, w)
    for j, block in enumerate(v if isinstance(v, list) else ()):
        _system_block(block, f"system.{j}", w)
        _empty_text_cc(block, f"system.{j}.text")
        _text_rules(block["text"], "system", False, w)


def _tools(v: Any, p: str, w: _Walk) -> None:
    _DICT_LIST(v, p, w)
    for i, tool in enumerate(v):
        tp = f"tools.{i}."
        if tool.get("type") in (None, "custom"):
            _fields(tool, tp, _CUSTOM_TOOL, w)
            if not _TOOL_NAME.fullmatch(tool["name"]):
                _fail(tp + "name", "String should match pattern '^[a-zA-Z0-9_-]{1,128}$'")
        else:  # a server tool: the emulator needs only its type and name
            _fields({k: tool[k] for k in _SERVER_TOOL if k in tool}, tp, _SERVER_TOOL, w)
        if tool["name"] in w.tools:
            w.later("tools: Tool names must be unique.")
        w.tools.add(tool["name"])


def _container(v: Any, p: str, w: _Walk) -> None:
    if v is not None and not isinstance(v, str | dict):
        _fail(p, "Input should be a valid string or a valid dictionary")


_DISPLAY = {"display?": _lit("summarized", "omitted", optional=True)}
_PARALLEL = {"disable_parallel_tool_use?": _bool}
_OUTPUT_FORMAT = _obj({"schema": _dict, "type": _lit("json_schema")}, optional=True)
_TOP: dict[str, Check] = {  # in validation order: the required fields, then the SDK's order
    **{"max_tokens": _range(0), "messages": _messages, "model": _str, "cache_control?": _cc},
    "container?": _container,
    "diagnostics?": _obj({"previous_message_id?": _ostr}, optional=True),
    **{"inference_geo?": _ostr, "metadata?": _obj({"user_id?": _ostr})},
    "output_config?": _obj(
        {
            "effort?": _lit("low", "medium", "high", "xhigh", "max", optional=True),
            "format?": _OUTPUT_FORMAT,
        }
    ),
    "service_tier?": _lit("auto", "standard_only"),
    "speed?": _lit("standard", "fast", optional=True),
    **{"stop_sequences?": _list(_str), "stream?": _bool, "system?": _system},
    "temperature?": _range(0, 1, number=True),
    "thinking?": _union(
        {
            **{"enabled": {"budget_tokens": _range(1024), **_DISPLAY}, "disabled": {}},
            **{"adaptive": _DISPLAY, "between_tools": {}},
        }
    ),
    "tool_choice?": _union(
        {"auto": _PARALLEL, "any": _PARALLEL, "tool": {"name": _str, **_PARALLEL}, "none": {}}
    ),
    **{"tools?": _tools, "top_k?": _range(0), "top_p?": _range(0, 1, number=True)},
    **{"user_profile_id?": _str, "workspace_id?": _str},
}
_CREATE = _spec(_TOP)
_COUNT_KEYS = "messages model cache_control output_config speed system thinking tool_choice tools"
_COUNT = {k: _CREATE[k] for k in (*_COUNT_KEYS.split(), "user_profile_id", "workspace_id")}


def validate_request(body: object, *, known_model: Callable[[str], bool], counting: bool = False) -> None:
    """Raise ApiError for the first problem, as the real API would; return None if the body is
    structurally valid.

    counting=True: the body of POST /v1/messages/count_tokens (max_tokens not required, stream
    not allowed).
    """
    if not isinstance(body, dict):
        _fail("body", "Input should be a valid dictionary")
    w = _Walk()
    _fields(body, "", _COUNT if counting else _CREATE, w)
    if not known_model(body["model"]):
        raise ApiError("not_found_error", f"model: {body['model']}")
    thinking = (body.get("thinking") or {}).get("type")
    choice = (body.get("tool_choice") or {}).get("type")
    if not counting and body["max_tokens"] == 0:
        for conflict, what in (
            (body.get("stream") is True, "stream: true"),
            (thinking == "enabled", "thinking enabled"),
            ((body.get("output_config") or {}).get("format") is not None, "output_config.format"),
            (choice in ("any", "tool"), f"tool_choice of type '{choice}'"),
        ):
            if conflict:
                raise ApiError.invalid(_PREWARM + what)
    if not counting and thinking == "enabled" and body["thinking"]["budget_tokens"] >= body["max_tokens"]:
        raise ApiError.invalid(_BUDGET)
    if choice in ("any", "tool") and not w.tools:
        raise ApiError.invalid("tool_choice: tool_choice may only be specified while providing tools.")
    if choice == "tool" and (name := body["tool_choice"]["name"]) not in w.tools:
        raise ApiError.invalid(f"tool_choice.tool.name: no tool named '{name}' in tools")
    if w.first is not None:
        raise w.first
    _tool_pairs(body["messages"])


def _ids(message: dict[str, Any], kind: str, field: str) -> list[tuple[int, str]]:
    content = message["content"]
    if isinstance(content, str):
        return []
    return [(j, b[field]) for j, b in enumerate(content) if b.get("type") == kind]


def _tool_pairs(messages: list[dict[str, Any]]) -> None:
    """Every tool_use is answered in the next message, and every tool_result answers one."""
    for i, message in enumerate(messages):
        if message["role"] == "assistant":
            uses = [tool_id for _, tool_id in _ids(message, "tool_use", "id")]
            if uses and i + 1 < len(messages):
                results = _ids(messages[i + 1], "tool_result", "tool_use_id")
                answered = {tool_id for _, tool_id in results}
                missing = [u for u in uses if u not in answered]
                if messages[i + 1]["role"] != "user" or missing:
                    raise ApiError.invalid(
                        f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately "
                        f"after: {', '.join(missing or uses)}. Each `tool_use` block must have a "
                        "corresponding `tool_result` block in the next message."
                    )
                if [j for j, _ in results[: len(uses)]] != list(range(len(uses))):  # results first, then text
                    raise ApiError.invalid(
                        f"messages.{i + 1}: Did not find {len(uses)} tool_result block(s) at the beginning "
                        "of this message. Messages following tool_use blocks must begin with a matching "
                        "number of tool_result blocks."
                    )
        elif message["role"] == "user":
            previous = messages[i - 1] if i > 0 and messages[i - 1]["role"] == "assistant" else None
            offered = {tool_id for _, tool_id in _ids(previous, "tool_use", "id")} if previous else set()
            for j, tool_id in _ids(message, "tool_result", "tool_use_id"):
                if tool_id not in offered:
                    raise ApiError.invalid(
                        f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` "
                        f"blocks: {tool_id}. Each `tool_result` block must have a corresponding "
                        "`tool_use` block in the previous message."
                    )
