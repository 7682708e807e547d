"""Reading the environment without the exception: the same answers as `os.environ.get`."""

from __future__ import annotations

import os
from typing import Any

import pytest

from pcache_magic.core.env import getenv, without_api_key

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
