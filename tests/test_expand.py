"""expand.py: `{name}` in a prompt, `{{name}}` for braces, every other brace as written."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from pcache_magic.ipython.expand import ExpandError, expand, out_name


class Broken:
    @property
    def value(self) -> str:
        raise RuntimeError("not loaded yet")


NS: dict[str, Any] = {
    "poet": "Walt Whitman",
    "n": 3,
    "doc": SimpleNamespace(title="Refunds", meta=SimpleNamespace(pages=12)),
    "broken": Broken(),
    "_private": "ok",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Write a poem in the style of {poet}.", "Write a poem in the style of Walt Whitman."),
        ("{n} times {n}", "3 times 3"),
        ("{doc.title} has {doc.meta.pages} pages", "Refunds has 12 pages"),
        ("{_private}", "ok"),
        ("Write {{poet}} literally", "Write {poet} literally"),
        ("{{doc.title}}", "{doc.title}"),
        ('JSON stays: {"a": {"b": 1}}', 'JSON stays: {"a": {"b": 1}}'),
        ("Code stays: if (x) { y(); }} {}", "Code stays: if (x) { y(); }} {}"),
        ("{ poet } and {n + 1} and {1}", "{ poet } and {n + 1} and {1}"),  # not a bare name: as written
        ("function f() {return}", "function f() {return}"),  # a keyword is never a variable
        ("no braces at all", "no braces at all"),
    ],
)
def test_names_and_attributes_are_expanded_and_the_rest_is_kept(text: str, expected: str) -> None:
    assert expand(text, NS) == expected


def test_an_unknown_name_is_one_clear_line() -> None:
    with pytest.raises(ExpandError) as caught:
        expand("Summarise {report} please", NS)
    assert str(caught.value) == (
        "no variable 'report' in the notebook; define it or write {{report}} for a literal brace."
    )


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{doc.author}", "{doc.author}: AttributeError: "),
        ("{broken.value}", "{broken.value}: RuntimeError: not loaded yet; write {{broken.value}}"),
        ("{doc.title()}", "only names and attributes"),
        ("{poet[0]}", "write {{poet[0]}} for literal braces"),
        ("{doc..title}", "only names and attributes"),
    ],
)
def test_calls_indexing_and_failing_attributes_are_refused(text: str, words: str) -> None:
    with pytest.raises(ExpandError) as caught:
        expand(text, NS)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_values_are_read_at_expansion_time() -> None:
    ns = {"q": "first"}
    assert expand("{q}", ns) == "first"
    ns["q"] = "second"
    assert expand("{q}", ns) == "second"


@pytest.mark.parametrize("name", ["answer", "reply2", "résumé"])
def test_out_takes_a_variable_name(name: str) -> None:
    assert out_name(name, NS) == name


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("1x", "--out takes a Python variable name such as answer, not '1x'"),
        ("my-answer", "not 'my-answer'"),
        ("class", "not 'class'"),
        ("doc.title", "not 'doc.title'"),
    ],
)
def test_out_refuses_what_cannot_be_a_variable(name: str, words: str) -> None:
    with pytest.raises(ExpandError, match=r"^--out") as caught:
        out_name(name, NS)
    assert words in str(caught.value)


def test_out_does_not_overwrite_a_function() -> None:
    with pytest.raises(ExpandError, match="is a function in the notebook; choose another name"):
        out_name("expand", {"expand": expand})


KEY = "sk-ant-api03-SENTINEL-never-in-a-prompt"


@pytest.mark.parametrize(
    "text",
    ["{env}", "{holder.key}", "Env: {settings}"],
)
def test_a_value_holding_the_api_key_is_never_put_into_a_prompt(text: str) -> None:
    namespace = {
        "env": {"ANTHROPIC_API_KEY": KEY},
        "holder": SimpleNamespace(key=KEY),
        "settings": f"key={KEY}",
    }
    with pytest.raises(ExpandError, match="holds the API key, which is never sent") as refused:
        expand(text, namespace, [KEY])
    assert KEY not in str(refused.value)
    assert expand(text, namespace, []) != text  # without the secret, the same text expands


@pytest.mark.parametrize("text", ["{f.__globals__}", "{os.__dict__}", "{obj._secret}", "{__builtins__}"])
def test_private_and_dunder_names_are_refused(text: str) -> None:
    namespace = {"f": len, "os": SimpleNamespace(), "obj": SimpleNamespace(_secret=1), "__builtins__": {}}
    with pytest.raises(ExpandError, match="private and dunder names are not put into a prompt"):
        expand(text, namespace)


@pytest.mark.parametrize("name", ["_", "_private", "__builtins__", "In", "Out", "get_ipython", "exit"])
def test_out_refuses_ipython_names_and_underscores(name: str) -> None:
    with pytest.raises(ExpandError, match="--out takes a Python variable name"):
        out_name(name, {})
