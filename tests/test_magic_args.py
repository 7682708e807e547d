"""Magic flags are written in full: a prefix is refused, and the error names the flag meant."""

from __future__ import annotations

from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument

from pcache_magic._magic_args import magic_arguments, parse_argstring


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


def test_an_unknown_flag_keeps_argparse_s_line() -> None:
    with pytest.raises(UsageError, match=r"^unrecognized arguments: --bogus$"):
        demo("--bogus")


def test_the_parser_takes_no_abbreviations() -> None:
    assert demo.parser.allow_abbrev is False  # type: ignore[attr-defined]
