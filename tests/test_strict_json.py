"""`emulator.strict_json`: RFC 8259 in and out, with one-line reasons for everything else."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from pcache_magic.emulator.strict_json import MAX_DEPTH, dumps, loads

from _helpers import deep_dict, deep_list


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param(b"[NaN]", "NaN is not a valid JSON value", id="nan"),
        pytest.param(b'{"x": -Infinity}', "-Infinity is not a valid JSON value", id="minus-infinity"),
        pytest.param(b"[1e400]", "1e400 is out of range for a number", id="overflow"),
        pytest.param(b"[-1e999]", "-1e999 is out of range for a number", id="negative-overflow"),
        pytest.param(b'["\\ud800"]', "lone surrogate \\ud800 is not valid Unicode", id="lone-high"),
        pytest.param(b'{"\\udc00": 1}', "lone surrogate \\udc00 is not valid Unicode", id="lone-in-a-key"),
        pytest.param(
            b'["\\ude00\\ud83d"]', "lone surrogate \\ude00 is not valid Unicode", id="pair-reversed"
        ),
        pytest.param(
            b'"\xed\xa0\x80"', "the body is not UTF-8 (invalid continuation byte at byte 1)", id="cesu"
        ),
        pytest.param(
            b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "nesting deeper than 100 levels", id="101"
        ),
        pytest.param(b"[" * 10**6 + b"]" * 10**6, "nesting deeper than 100 levels", id="a-million"),
    ],
)
def test_refusals_are_one_line(text: bytes, reason: str) -> None:
    with pytest.raises(ValueError) as raised:
        loads(text)
    assert str(raised.value) == reason


def test_what_is_json_is_taken() -> None:
    assert loads(b'["\\ud83d\\ude00", 1e308, -0.5, 12]') == ["\U0001f600", 1e308, -0.5, 12]
    deepest: Any = 1
    for _ in range(MAX_DEPTH):
        deepest = [deepest]
    assert loads(dumps(deepest)) == deepest
    assert loads("{}") == {} and loads(b" [] ") == []


def test_depth_is_walked_without_recursion() -> None:
    """The check holds however low the recursion limit, so it is no stack risk of its own."""
    wide = dumps([[[i] for i in range(1000)] for _ in range(50)])
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)
    try:
        assert len(loads(wide, max_depth=3)) == 50
    finally:
        sys.setrecursionlimit(limit)


def test_dumps_writes_only_json() -> None:
    assert dumps({"a": [1, "é"]}) == '{"a":[1,"é"]}'
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
            dumps({"now": bad})


def test_unique_keys_refuses_a_key_named_twice_at_any_depth() -> None:
    assert loads('{"a": {"b": 1, "b": 2}}') == {"a": {"b": 2}}  # plain JSON: the last wins
    with pytest.raises(ValueError, match="the key 'b' appears twice in one object"):
        loads('{"a": [{"b": 1, "b": 2}]}', unique_keys=True)
    assert loads('{"a": {"b": 1}, "b": 2}', unique_keys=True) == {"a": {"b": 1}, "b": 2}


# -- check_fields: request fields given from Python -----------------------------------------------
class _Thing:
    pass


_NOT_FINITE = "it holds a number that is not finite (NaN or infinity)"


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        pytest.param({"metadata": deep_dict(5000)}, "nesting deeper than 100 levels", id="deep-dict"),
        pytest.param({"stop_sequences": deep_list(5000)}, "nesting deeper than 100 levels", id="deep-list"),
        pytest.param({"metadata": {"tags": {"a", "b"}}}, "it holds a value of type set", id="set"),
        pytest.param({"metadata": {"user": _Thing()}}, "it holds a value of type _Thing", id="object"),
        pytest.param({"temperature": float("nan")}, _NOT_FINITE, id="nan"),
        pytest.param({"top_p": [float("-inf")]}, _NOT_FINITE, id="minus-inf"),
        pytest.param({"metadata": {1: "x"}}, "it holds a key of type int", id="int-key"),
        pytest.param(
            {"metadata": {"n": 10**5000}}, "it holds a whole number of more than 128 bits", id="huge-int"
        ),
        pytest.param(
            {"metadata": {"user_id": "\ud800"}}, "lone surrogate \\ud800 is not valid Unicode", id="surrogate"
        ),
    ],
)
def test_check_fields_names_the_field_and_what_to_pass(fields: dict[str, Any], reason: str) -> None:
    from pcache_magic.core.strict_json import check_fields

    (name,) = fields
    with pytest.raises(ValueError) as raised:
        check_fields(fields)
    assert str(raised.value) == (
        f"The request field {name!r} is not JSON data ({reason}); pass dicts with str keys, lists, "
        "strings, finite numbers, booleans or None, at most 100 levels deep."
    )


def test_check_fields_never_repeats_a_value_and_blots_the_key_out_of_a_field_name() -> None:
    from pcache_magic.core.strict_json import check_fields

    key = "sk-ant-api03-" + "x" * 40

    class Liar(float):
        def __repr__(self) -> str:
            return key

    fields_list = ({key: float("nan")}, {f"x{key}y": {1}}, {"m" * 40 + key: {1}}, {"t": Liar("nan")})
    for fields in (*fields_list, {"metadata": {(key,): "v"}}):
        with pytest.raises(ValueError) as raised:
            check_fields(fields, hide=[key])
        assert key[:12] not in str(raised.value)  # nor the start of one cut short
    with pytest.raises(ValueError, match=r"^The request field '\[API key\]' is not JSON data"):
        check_fields({key: float("nan")}, hide=[key])


def test_the_sdks_own_options_are_left_to_the_sdk() -> None:
    from pcache_magic.core.strict_json import check_fields

    check_fields({"timeout": object(), "extra_headers": {"x": "y"}, "extra_query": {"a": "b"}})
    with pytest.raises(ValueError, match="'extra_body'"):
        check_fields({"extra_body": {"x": {1, 2}}})


def test_check_fields_takes_plain_json_and_walks_without_recursion() -> None:
    from pcache_magic.core.strict_json import check_fields

    check_fields({})
    check_fields(
        {
            "metadata": {"user_id": "u1"},
            "temperature": 0.2,
            "top_k": 5,
            "stop_sequences": ("END", "STOP"),
            "thinking": {"type": "enabled", "budget_tokens": 1024, "display": None, "on": True},
            "nested": deep_dict(MAX_DEPTH - 1),
        }
    )
    cycle: dict[str, Any] = {}
    cycle["self"] = cycle  # a cycle is as deep as it goes: refused, not looped on
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)
    try:
        with pytest.raises(
            ValueError, match=r"^The request field 'metadata' is not JSON data \(nesting deeper"
        ):
            check_fields({"metadata": deep_dict(100_000)})
        with pytest.raises(ValueError, match="nesting deeper than 100 levels"):
            check_fields({"cycle": cycle})
    finally:
        sys.setrecursionlimit(limit)
