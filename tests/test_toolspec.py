"""Tool definitions from functions (JSON schema from the signature) and from dicts."""

from __future__ import annotations

import socket
from typing import Any, Literal, Optional

import pytest

from pcache_magic.core.toolspec import tool_param


def schema_of(spec: Any) -> dict[str, Any]:
    return dict(tool_param(spec)["input_schema"])


def get_weather(
    city: str,
    unit: Literal["celsius", "fahrenheit"] = "celsius",
    days: int = 1,
    detail: Optional[float] = None,  # noqa: UP045 - the spelling users still write
    tags: list[str] | None = None,
    strict: bool = False,
) -> str:
    """Current weather for a city.

    Returns a one-line summary.
    """
    return city


def test_a_function_becomes_a_tool_with_a_json_schema() -> None:
    assert tool_param(get_weather) == {
        "name": "get_weather",
        "description": "Current weather for a city.\n\nReturns a one-line summary.",
        "input_schema": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"enum": ["celsius", "fahrenheit"], "type": "string", "default": "celsius"},
                "days": {"type": "integer", "default": 1},
                "detail": {"anyOf": [{"type": "number"}, {"type": "null"}], "default": None},
                "tags": {
                    "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}],
                    "default": None,
                },
                "strict": {"type": "boolean", "default": False},
            },
            "required": ["city"],  # parameters with defaults are optional
        },
    }


def test_no_docstring_no_annotations_and_star_args() -> None:
    def lookup(key, *args: Any, limit: int = 5, **kwargs: Any) -> None:  # type: ignore[no-untyped-def]
        pass

    assert tool_param(lookup) == {
        "name": "lookup",
        "input_schema": {
            "type": "object",
            "properties": {"key": {}, "limit": {"type": "integer", "default": 5}},
            "required": ["key"],
        },
    }


def test_a_required_optional_is_still_required() -> None:
    def find(query: Optional[str]) -> None:  # noqa: UP045
        pass

    schema = schema_of(find)
    assert schema["required"] == ["query"]
    assert schema["properties"]["query"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}


def test_bound_methods_drop_self() -> None:
    class Notes:
        def search(self, query: str) -> str:
            """Search the notes."""
            return query

    tool = tool_param(Notes().search)
    assert tool["name"] == "search" and tool["description"] == "Search the notes."
    assert list(schema_of(Notes().search)["properties"]) == ["query"]


@pytest.mark.parametrize("name", ["<lambda>", "has space", "x" * 129, "dotted.name", "ünï"])
def test_invalid_function_names(name: str) -> None:
    def fn() -> None:
        pass

    fn.__name__ = name
    with pytest.raises(ValueError, match="cannot be a tool name"):
        tool_param(fn)


def test_a_lambda_is_rejected_by_name() -> None:
    with pytest.raises(ValueError, match="'<lambda>' cannot be a tool name"):
        tool_param(lambda x: x)


def test_longest_valid_name() -> None:
    def fn() -> None:
        pass

    fn.__name__ = "a-" + "b" * 126
    assert tool_param(fn)["name"] == fn.__name__


def test_a_required_underscore_parameter_is_an_error_not_silently_dropped() -> None:
    def secret(_token: str, query: str) -> None:
        pass

    with pytest.raises(ValueError, match="'_token'"):
        tool_param(secret)

    def hidden(query: str, _cache: dict[str, str] | None = None) -> None:
        pass

    # with a default, the function works without it: it is simply not offered to the model
    assert list(schema_of(hidden)["properties"]) == ["query"]


def test_parameter_types_without_a_schema_are_a_value_error() -> None:
    def connect_to(sock: socket.socket) -> None:
        pass

    with pytest.raises(ValueError, match="connect_to"):
        tool_param(connect_to)


def test_unresolvable_annotations_are_a_value_error() -> None:
    def later(thing: NotDefinedAnywhere) -> None:  # type: ignore[name-defined] # noqa: F821
        pass

    with pytest.raises(ValueError, match="later"):
        tool_param(later)


def test_a_valid_dict_is_returned_as_a_copy() -> None:
    spec = {"name": "lookup", "description": "Find.", "input_schema": {"type": "object", "properties": {}}}
    tool = tool_param(spec)
    assert tool == spec and tool is not spec
    custom = {**spec, "type": "custom"}
    assert tool_param(custom) == custom


def test_server_tools_need_no_input_schema() -> None:
    web = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}
    assert tool_param(web) == web


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"input_schema": {"type": "object"}}, "Tool name None is missing or invalid"),
        ({"name": "", "input_schema": {"type": "object"}}, "Tool name '' is missing or invalid"),
        ({"name": "a b", "input_schema": {"type": "object"}}, "Tool name 'a b' is missing or invalid"),
        ({"name": 7, "input_schema": {"type": "object"}}, "Tool name 7 is missing or invalid"),
        ({"name": "lookup"}, 'Tool \'lookup\' needs an input_schema with "type": "object"'),
        ({"name": "lookup", "input_schema": {"type": "array"}}, "needs an input_schema"),
        ({"name": "lookup", "input_schema": "object"}, "needs an input_schema"),
        ({"name": "lookup", "type": "custom", "input_schema": {}}, "needs an input_schema"),
    ],
)
def test_dict_validation_messages(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        tool_param(spec)
    assert message in str(info.value)


@pytest.mark.parametrize("spec", [3, "lookup", None, ["name"]])
def test_neither_dict_nor_function(spec: Any) -> None:
    with pytest.raises(ValueError, match="A tool is a dict or a function, not "):
        tool_param(spec)
