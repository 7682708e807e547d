"""Tool definitions from dicts or plain Python functions.

A notebook user writes a function; the API wants a `ToolParam` with a JSON
schema.  The schema comes from the signature through pydantic (the same
machinery that validates everything else here), the description from the
docstring.  Dict definitions are checked for the fields the API requires.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any, get_type_hints

from anthropic.types import ToolParam
from pydantic import PydanticUserError, create_model

__all__ = ["tool_param"]

_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")


def _from_function(fn: Callable[..., Any]) -> ToolParam:
    name = getattr(fn, "__name__", "")
    if not _NAME.match(name):
        raise ValueError(f"{name!r} cannot be a tool name: use letters, digits, _ or - (at most 128).")
    try:
        hints = get_type_hints(fn)
    except Exception as error:  # an unresolvable annotation (NameError) and the like
        raise ValueError(f"Tool {name!r}: cannot read its type hints: {error}") from error
    fields: dict[str, Any] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.name.startswith("_"):  # pydantic would silently drop it from the schema
            if param.default is param.empty:
                raise ValueError(f"Tool {name!r}: required parameter {param.name!r} cannot start with _.")
            continue
        annotation = hints.get(param.name, Any)
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (annotation, default)
    try:
        schema = create_model(f"{name}_input", **fields).model_json_schema()
    except PydanticUserError as error:  # a parameter type with no JSON schema
        raise ValueError(f"Tool {name!r}: no JSON schema for its parameters: {error}") from error
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    tool: ToolParam = {"name": name, "input_schema": schema}
    doc = inspect.getdoc(fn)
    if doc:
        tool["description"] = doc
    return tool


def tool_param(spec: Mapping[str, Any] | Callable[..., Any]) -> ToolParam:
    """A tool definition for the API, from a dict or a function; ValueError says what is wrong."""
    if callable(spec) and not isinstance(spec, Mapping):
        return _from_function(spec)
    if not isinstance(spec, Mapping):
        raise ValueError(f"A tool is a dict or a function, not {type(spec).__name__}.")
    name = spec.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"Tool name {name!r} is missing or invalid: use letters, digits, _ or -.")
    if "type" not in spec or spec.get("type") == "custom":
        schema = spec.get("input_schema")
        if not isinstance(schema, Mapping) or schema.get("type") != "object":
            raise ValueError(f'Tool {name!r} needs an input_schema with "type": "object".')
    return dict(spec)  # type: ignore[return-value]
