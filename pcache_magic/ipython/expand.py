"""`{name}` in a `%%claude` cell: notebook variables put into the prompt, as jupyter-ai does.

Only a plain name or a dotted attribute is expanded (`{question}`, `{df.shape}`): no calls, no
indexing, no arithmetic, so expanding a prompt never runs the notebook's code beyond an
attribute lookup.  `{{name}}` is the literal `{name}`.  Every other brace is sent as written,
so pasted code and JSON (`{"a": 1}`, `}}`) pass through untouched, unlike `str.format`.
A brace that looks like a call or an index (`{df.head()}`) is refused rather than sent as is, and
so is a private or dunder attribute (`{f.__globals__}`), an IPython internal (`{__builtins__}`)
and any value that holds one of the `secrets` (the API key): a prompt is sent, recorded, saved.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["ExpandError", "expand", "out_name"]

_NAME = r"[A-Za-z_]\w*"
_FIELD = re.compile(rf"{_NAME}(?:\.{_NAME})*")
# A field, or what starts like one and goes on into a call or an index (refused, not sent).
_BODY = rf"{_NAME}(?:\.{_NAME})*(?:[.(\[][^{{}}\n]*)?"
_BRACES = re.compile(rf"\{{\{{(?P<literal>{_BODY})\}}\}}|\{{(?P<field>{_BODY})\}}")


class ExpandError(ValueError):
    """A `{...}` the prompt cannot be sent with; the message says how to fix it."""


#: Names a reply is never stored under: IPython's own history and helpers.
_RESERVED = frozenset({"In", "Out", "get_ipython", "exit", "quit"})


def expand(text: str, namespace: Mapping[str, Any], secrets: Iterable[str] = ()) -> str:
    """`text` with each `{name}` / `{name.attr}` replaced by `str()` of its value in `namespace`."""
    hidden = [s for s in secrets if s and len(s) >= 8]

    def replace(match: re.Match[str]) -> str:
        literal = match.group("literal")
        if literal is not None:
            return "{" + literal + "}"
        field = match.group("field")
        value = _value(field, namespace)
        if any(secret in value for secret in hidden):
            raise ExpandError(
                f"{{{field}}} holds the API key, which is never sent; leave it out of the prompt."
            )
        return value

    return _BRACES.sub(replace, text)


def _value(field: str, namespace: Mapping[str, Any]) -> str:
    if not _FIELD.fullmatch(field):
        raise ExpandError(
            f"{{{field}}}: only names and attributes are put into a prompt, not calls or indexing; "
            f"store the value in a variable first, or write {{{{{field}}}}} for literal braces."
        )
    first, *attributes = field.split(".")
    private = [part for part in attributes if part.startswith("_")]
    if private or first.startswith("__"):
        raise ExpandError(
            f"{{{field}}}: private and dunder names are not put into a prompt; store the value in a "
            f"variable first, or write {{{{{field}}}}} for literal braces."
        )
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
    if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_") or name in _RESERVED:
        raise ExpandError(
            f"--out takes a Python variable name such as answer, not {name!r} (no leading underscore, "
            "not In, Out or IPython's helpers)."
        )
    if name in namespace and callable(namespace[name]) and not isinstance(namespace[name], str):
        raise ExpandError(f"--out {name}: {name!r} is a function in the notebook; choose another name.")
    return name
