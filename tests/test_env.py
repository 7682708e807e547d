"""Reading the environment without the exception: the same answers as `os.environ.get`."""

from __future__ import annotations

import os
from typing import Any

import pytest

from pcache_magic.core.env import getenv, holds_piece, without_api_key, without_pieces

NAME = "PCACHE_TEST_ENV_VALUE"


def test_a_set_name_is_read_and_an_unset_one_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(NAME, raising=False)
    assert getenv(NAME) is None
    monkeypatch.setenv(NAME, "value")
    assert getenv(NAME) == "value"
    monkeypatch.setenv(NAME, "")
    assert getenv(NAME) == ""
    monkeypatch.delenv(NAME)
    assert getenv(NAME) is None


def test_a_value_that_is_not_utf8_reads_as_os_environ_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NAME, "caf\udce9")  # the byte 0xE9, as os.environ decodes it
    assert getenv(NAME) == os.environ.get(NAME) == "caf\udce9"


def test_an_environ_replaced_by_a_plain_mapping_is_read_through_its_get(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "environ", {NAME: "from a dict"})
    assert getenv(NAME) == "from a dict" and getenv("PCACHE_TEST_UNSET") is None


def test_an_environ_subclass_that_overrides_lookups_is_read_through_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Masked(os._Environ[str]):
        def __getitem__(self, key: str) -> str:
            if key == NAME:
                raise KeyError(key)
            return super().__getitem__(key)

    environ: Any = os.environ
    masked = Masked(
        environ._data, environ.encodekey, environ.decodekey, environ.encodevalue, environ.decodevalue
    )
    monkeypatch.setenv(NAME, "hidden by the subclass")
    monkeypatch.setattr(os, "environ", masked)
    assert getenv(NAME) is None


def test_the_api_key_is_blotted_out_of_a_message(monkeypatch: pytest.MonkeyPatch) -> None:
    key = "sk-ant-api03-" + "abcdefghij" * 4
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    assert without_api_key(f"/tmp/{key}/x: no such file") == "/tmp/[API key]/x: no such file"
    monkeypatch.setenv("ANTHROPIC_API_KEY", "a")  # too short to be a key: no word is garbled
    assert without_api_key("a path") == "a path"
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    assert without_api_key(f"model {key!r}") == "model '[API key]'"  # by its shape: never seen here
    assert without_api_key("mykey-12345678") == "mykey-12345678"


#: A key with no repeats (a repeating one shares its pieces with itself); `A B`: it split by a space.
KEY = "sk-ant-api03-u8jzPde0IgxLd6GncfBAepfJBd0Kh8oOOL8dKLzd"
RANDOM = KEY[13:]


def pieces_of_the_key(text: str) -> list[str]:
    return [KEY[i : i + 8] for i in range(13, len(KEY) - 7) if KEY[i : i + 8] in text]


@pytest.mark.parametrize(
    ("said", "shown"),
    [
        (f"invalid int value: '5{RANDOM}'", "invalid int value: '[part of the API key]'"),
        (f"Unknown model 'x{RANDOM}'.", "Unknown model '[part of the API key]'."),
        (f"/tmp/a{RANDOM}.png: no such file", "/tmp/[part of the API key].png: no such file"),
        (f"No block named '{RANDOM[:39]}Z'", "No block named '[part of the API key]'"),  # one typo
        (f"'{KEY[:26]} {KEY[26:]}'", "'[part of the API key] [part of the API key]'"),
        (f"{RANDOM[:9]}é{RANDOM[9:]}", "[part of the API key]é[part of the API key]"),
        (f"{RANDOM[:8]}.{RANDOM[8:15]}", f"[part of the API key].{RANDOM[8:15]}"),  # 7: too few
        ("sk-ant-api03- is how a key starts; claude-sonnet-4-5", None),  # its public start: no secret
    ],
)
def test_a_word_holding_a_piece_of_the_key_is_blotted_out_whole(said: str, shown: str | None) -> None:
    """Eight or more characters of the key in a row, glued to others or not, hide the whole word."""
    assert without_pieces(said, [KEY]) == (said if shown is None else shown)
    assert holds_piece(said, [KEY]) is (shown is not None)
    assert not pieces_of_the_key(without_pieces(said, [KEY]))
    assert without_pieces(said, []) == said


def test_a_piece_across_characters_no_word_holds_is_blotted_out_itself() -> None:
    odd = "sk-ant-api03-abc.defgh!ijklmnop"  # no real key holds "." or "!": still never shown
    said = without_pieces("name 'xyzabc.defgh!ijkl'", [odd])
    assert not any(odd[i : i + 8] in said for i in range(13, len(odd) - 7)) and said.startswith("name '")


def test_the_environment_key_is_blotted_out_in_pieces_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    split = f"Unknown model '{KEY[:26]} {KEY[26:]}'."
    assert pieces_of_the_key(without_api_key(split))  # by default only the key and its shape
    assert without_api_key(split, pieces=True) == "Unknown model '[API key] [part of the API key]'."
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    assert without_api_key(f"x{RANDOM}", pieces=True) == f"x{RANDOM}"  # no key known: nothing to find
