"""Magic flags are written in full: a prefix is refused, and the error names the flag meant."""

from __future__ import annotations

from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument

from pcache_magic.ipython.args import magic_arguments, no_arguments, parse_argstring, without_comment


@magic_arguments("%demo")
@argument("--cache", default=None)
@argument("--name", default=None)
@argument("--no-stream", action="store_true")
def demo(line: str) -> Any:
    return parse_argstring(demo, line)


def test_full_flags_parse_in_both_forms() -> None:
    assert demo("--cache last --name q").cache == "last"
    assert demo("--cache=1h").cache == "1h"
    assert demo("--no-stream").no_stream is True


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ('--name "my notes"', "my notes"),
        ("--name 'my notes'", "my notes"),
        ('--name "it\'s"', "it's"),
        ("--name C:\\data\\a.md", "C:\\data\\a.md"),  # backslashes stay (not a POSIX shell's split)
        ('--name "C:\\my data\\a.md"', "C:\\my data\\a.md"),
        ('--name a"b', 'a"b'),  # quotes inside a word stay
        ('--name="x"', "x"),  # a flag's value written with `=`
        ("--name='it'", "it"),
        ('--name="my notes"', "my notes"),  # a space inside: the value stands apart before the split
        ('--name="-x"', "-x"),  # a value like a flag stays one word
    ],
)
def test_a_word_in_quotes_loses_them_and_keeps_its_backslashes(line: str, name: str) -> None:
    assert demo(line).name == name


def test_a_quote_left_open_is_one_line_not_a_traceback() -> None:
    closed = r'^A quote on the line is not closed; close it \(--name "my notes"\)\.$'
    with pytest.raises(UsageError, match=closed):
        demo('--name "my notes')


@pytest.mark.parametrize(
    ("line", "hint"),
    [
        ("--cach last", "write --cache in full"),
        ("--cach=1h", "write --cache in full"),
        ("--n x", "write --name or --no-stream in full"),
    ],
)
def test_a_prefix_is_refused_with_the_full_flag(line: str, hint: str) -> None:
    with pytest.raises(UsageError) as caught:
        demo(line)
    message = str(caught.value)
    assert message.startswith("unrecognized arguments:") and message.endswith(
        f"(flags are not abbreviated: {hint})"
    )
    assert "\n" not in message


def test_a_misspelt_flag_gets_the_nearest_one() -> None:
    with pytest.raises(
        UsageError, match=r"^unrecognized arguments: --cahce \(did you mean --cache\? flags: %demo\?\)$"
    ):
        demo("--cahce")


@pytest.mark.parametrize("line", ["--stream", "--no-cache", "--nocache", "--uncached", "--cache-none"])
def test_a_flag_that_says_the_opposite_is_never_suggested(line: str) -> None:
    """`--stream` is not `--no-stream`, nor `--no-cache` `--cache`: following such advice does the
    opposite."""
    with pytest.raises(UsageError) as caught:
        demo(line)
    assert "did you mean" not in str(caught.value)


def test_an_unknown_flag_keeps_argparse_s_line_and_says_where_the_flags_are() -> None:
    with pytest.raises(UsageError, match=r"^unrecognized arguments: --bogus \(flags: %demo\?\)$"):
        demo("--bogus")  # not among magics with %claude_help: IPython's `?` alone
    with pytest.raises(UsageError, match=r"^unrecognized arguments: now \(flags: %demo\?\)$"):
        demo("now")


def test_the_parser_takes_no_abbreviations() -> None:
    assert demo.parser.allow_abbrev is False  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("line", "kept"),
    [
        ("# a comment only", ""),
        ("--cache 1h  # one marker caches the prefix", "--cache 1h"),
        ("--name a#b", "--name a#b"),  # a `#` inside a word is the word's
        ('--name "a # b"', '--name "a # b"'),  # and inside quotes, the value's
        ("--name 'x#' # then a comment", "--name 'x#'"),
        ("", ""),
    ],
)
def test_a_comment_ends_the_line(line: str, kept: str) -> None:
    assert without_comment(line) == kept


def test_flags_before_a_comment_parse() -> None:
    args = demo("--cache last --no-stream  # stream off for the log")
    assert (args.cache, args.no_stream, args.name) == ("last", True, None)
    assert demo('--name "q # 1"').name == "q # 1"  # nothing is cut inside the quotes


def test_no_arguments_but_a_comment() -> None:
    no_arguments("demo", "")
    no_arguments("demo", "   # shows the panel")
    with pytest.raises(UsageError, match=r"^%demo takes no arguments\.$"):
        no_arguments("demo", "now  # or later")


@magic_arguments("%verbs")
@argument("command", nargs="?", choices=["show", "load"])
@argument("path", nargs="?")
@argument("--mode", choices=["a", "b"])
def verbs(line: str) -> Any:
    return parse_argstring(verbs, line, words=("show", "load"))


def test_an_invalid_command_word_says_where_the_forms_are_listed() -> None:
    with pytest.raises(UsageError) as caught:
        verbs("bogus")
    assert str(caught.value) == (
        "argument command: invalid choice: 'bogus' (choose from 'show', 'load') (flags: %verbs?)"
    )
    with pytest.raises(UsageError) as caught:  # a flag's choices are its whole story: as argparse says
        verbs("--mode c")
    assert str(caught.value) == "argument --mode: invalid choice: 'c' (choose from 'a', 'b')"


@pytest.mark.parametrize(
    ("line", "fixed"),
    [
        ("--load x.json", "%verbs load x.json"),
        ("--load=x.json", "%verbs load x.json"),
        ("-show  # the session", "%verbs show"),
    ],
)
def test_a_command_word_written_as_a_flag_gets_the_line_as_it_should_read(line: str, fixed: str) -> None:
    with pytest.raises(UsageError) as caught:
        verbs(line)
    message = str(caught.value)
    assert message == f"{line.split()[0].split('=')[0]} is not a flag: write {fixed}"
    assert "\n" not in message
