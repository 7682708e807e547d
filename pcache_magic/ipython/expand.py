"""`{name}` in a `%%claude` cell: notebook variables put into the prompt, as jupyter-ai does.

Only a plain name or a dotted attribute is expanded (`{question}`, `{df.shape}`): no calls, no
indexing, no arithmetic, so expanding a prompt never runs the notebook's code beyond an
attribute lookup.  `{{name}}` is the literal `{name}`.  Every other brace is sent as written,
so pasted code and JSON (`{"a": 1}`, `}}`) pass through untouched, unlike `str.format`.
A brace that looks like a call or an index (`{df.head()}`) is refused rather than sent as is.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["ExpandError", "expand", "out_name"]

_NAME = r"[A-Za-z_]\w*"
_FIELD = re.compile(rf"{_NAME}(?:\.{_NAME})*")
# A field, or what starts like one and goes on into a call or an index (refused, not sent).
_BODY = rf"{_NAME}(?:\.{_NAME})*(?:[.(\[][^{{}}\n]*)?"
_BRACES = re.compile(rf"\{{\{{(?P<literal>{_BODY})\}}\}}|\{{(?P<field>{_BODY})\}}")


class ExpandError(ValueError):
    """A `{...}` the prompt cannot be sent with; the message says how to fix it."""


def expand(text: str, namespace: Mapping[str, Any]) -> str:
    """`text` with each `{name}` / `{name.attr}` replaced by `str()` of its value in `namespace`."""

    def replace(match: re.Match[str]) -> str:
        literal = match.group("literal")
        if literal is not None:
            return "{" + literal + "}"
        return _value(match.group("field"), namespace)

    return _BRACES.sub(replace, text)


def _value(field: str, namespace: Mapping[str, Any]) -> str:
    if not _FIELD.fullmatch(field):
        raise ExpandError(
            f"{{{field}}}: only names and attributes are put into a prompt, not calls or indexing; "
            f"store the value in a variable first, or write {{{{{field}}}}} for literal braces."
        )
    first, *attributes = field.split(".")
    if keyword.iskeyword(first):  # `{return}` in pasted code: no variable can have that name
        return "{" + field + "}"
    if first not in namespace:
        raise ExpandError(
            f"no variable {first!r} in the notebook; define it or write {{{{{first}}}}} for a literal brace."
        )
    value = namespace[first]
    for i, attribute in enumerate(attributes, 1):
        try:
            value = getattr(value, attribute)
        except Exception as error:  # a property may raise anything; it is one line either way
            where = ".".join([first, *attributes[:i]])
            raise ExpandError(
                f"{{{where}}}: {type(error).__name__}: {error}; write {{{{{field}}}}} for literal braces."
            ) from None
    try:
        return str(value)
    except Exception as error:
        raise ExpandError(f"{{{field}}}: str() failed ({type(error).__name__}: {error}).") from None


def out_name(name: str, namespace: Mapping[str, Any]) -> str:
    """`name` if a reply may be stored under it in the notebook; ExpandError otherwise."""
    if not name.isidentifier() or keyword.iskeyword(name):
        raise ExpandError(f"--out takes a Python variable name such as answer, not {name!r}.")
    if name in namespace and callable(namespace[name]) and not isinstance(namespace[name], str):
        raise ExpandError(f"--out {name}: {name!r} is a function in the notebook; choose another name.")
    return name
