"""Strict JSON (RFC 8259) both ways: what the emulator accepts, what a session file may hold.

Python's `json` takes `NaN` and `Infinity`, turns `1e400` into `inf`, keeps a lone UTF-16
surrogate (`"\\ud800"`) as a string that later fails to encode, reads integers of thousands of
digits (slowly: the conversion is quadratic) and recurses as deep as the document nests. Each of
those would surface far from the input as a raw error; here they are a `ValueError` with a
one-line reason at the door, and nothing non-standard goes out.  In core because two layers read
untrusted JSON: the emulator's wire (request bodies) and the session's store (saved files).
`check_fields` holds request fields given from Python (`ask(metadata=...)`) to the same rules,
before anything copies them recursively or encodes them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

__all__ = ["MAX_DEPTH", "MAX_INT_BITS", "MAX_INT_DIGITS", "SDK_OPTIONS", "check_fields", "dumps", "loads"]

#: Deepest nesting accepted: deep enough for any tool schema, shallow enough that every
#: recursive consumer (validation, digests, token counts) stays far from Python's recursion limit.
MAX_DEPTH = 100
#: The longest integer a session file holds (token counts have at most 13 digits; an id may have 20).
MAX_INT_DIGITS = 40

_SURROGATE = re.compile("[\ud800-\udfff]")


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a valid JSON value")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is out of range for a number")
    return value


def _check_text(text: str) -> None:
    if not text.isascii() and (found := _SURROGATE.search(text)):
        raise ValueError(f"lone surrogate \\u{ord(found.group()):04x} is not valid Unicode")


#: The largest whole number a field from Python may hold (a session file keeps at most 40 digits,
#: and Python refuses to print one of over 4,300 digits, so a record holding it could not be saved).
MAX_INT_BITS = 128


def _check_scalar(node: object) -> None:
    """What JSON can carry besides strings and containers: int (bool too), finite float, None.
    The message names types only, never the value (it may be anything, a key included)."""
    if isinstance(node, float):
        if not math.isfinite(node):
            raise ValueError("it holds a number that is not finite (NaN or infinity)")
    elif isinstance(node, int):
        if node.bit_length() > MAX_INT_BITS:
            raise ValueError(f"it holds a whole number of more than {MAX_INT_BITS} bits")
    elif node is not None:
        raise ValueError(f"it holds a value of type {type(node).__name__}")


def _check(data: Any, max_depth: int, *, plain: bool = False) -> None:
    """Depth, string keys and surrogates, walked with an explicit stack (never recursion).

    `plain`: `data` comes from Python, not from `json`, so each scalar's type is checked too.
    """
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            _check_text(node)
            continue
        if not isinstance(node, dict | list | tuple):
            if plain:
                _check_scalar(node)
            continue
        if depth > max_depth:
            raise ValueError(f"nesting deeper than {max_depth} levels")
        if isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(key, str):
                    raise ValueError(f"it holds a key of type {type(key).__name__}")
                _check_text(key)
                stack.append((value, depth + 1))
        else:
            stack.extend((value, depth + 1) for value in node)


#: Options of the SDK's own (how to send, not what): not request fields, not checked here.
SDK_OPTIONS = frozenset({"timeout", "extra_headers", "extra_query"})


def check_fields(fields: Mapping[str, Any], *, max_depth: int = MAX_DEPTH, hide: Sequence[str] = ()) -> None:
    """Each request field is plain JSON (dicts with str keys, lists or tuples, str, int, finite float,
    bool, None) no deeper than `max_depth`; else a ValueError naming the field (each of `hide`, the
    API keys, blotted out of its name).  The SDK's own options (`SDK_OPTIONS`) are left to the SDK.

    Walked before anything deep-copies, digests or encodes the fields, each of which would fail
    far from the call (a RecursionError, a TypeError from `json`) or send what JSON cannot say.
    """
    for name, value in fields.items():
        if name in SDK_OPTIONS:
            continue
        try:
            _check(value, max_depth, plain=True)
        except ValueError as error:
            shown = str(name)
            for secret in hide:  # before it is cut short: a key cut in two would not be found
                shown = shown.replace(secret, "[API key]")
            shown = shown[:60]
            raise ValueError(
                f"The request field {shown!r} is not JSON data ({error}); pass dicts with str keys, "
                f"lists, strings, finite numbers, booleans or None, at most {max_depth} levels deep."
            ) from None


def _int_parser(max_digits: int) -> Any:
    def parse(text: str) -> int:
        if len(text) - text.startswith("-") > max_digits:
            raise ValueError(f"an integer of {len(text)} digits is longer than {max_digits}")
        return int(text)

    return parse


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"the key {key[:40]!r} appears twice in one object")
            seen.add(key)
    return data


def loads(
    body: bytes | str,
    *,
    max_depth: int = MAX_DEPTH,
    max_int_digits: int | None = None,
    unique_keys: bool = False,
) -> Any:
    """Parse strict JSON; ValueError with a one-line reason for anything else.

    `max_int_digits` refuses longer integers before they are converted (None: Python's own limit).
    `unique_keys` refuses an object that names a key twice (plain JSON keeps the last silently).
    """
    try:  # UTF-8 only (json.loads would guess UTF-16 and pass encoded surrogates through)
        text = body.decode() if isinstance(body, bytes) else body
    except UnicodeDecodeError as exc:
        raise ValueError(f"the body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    hooks: dict[str, Any] = {"parse_constant": _no_constant, "parse_float": _finite}
    # The hook costs a Python call per integer: only when a run of digits that long exists at all.
    if max_int_digits is not None and re.search(rf"\d{{{max_int_digits + 1}}}", text):
        hooks["parse_int"] = _int_parser(max_int_digits)
    if unique_keys:
        hooks["object_pairs_hook"] = _unique
    try:
        data = json.loads(text, **hooks)
    except RecursionError:  # deeper than the C parser goes: certainly deeper than max_depth
        raise ValueError(f"nesting deeper than {max_depth} levels") from None
    _check(data, max_depth)
    return data


def dumps(data: Any) -> str:
    """Compact JSON as the API writes it; ValueError rather than a non-finite number."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
