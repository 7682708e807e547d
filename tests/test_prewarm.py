"""`ipython/prewarm.py` and `%claude_prewarm`: nothing is sent when there is nothing to warm, and
keep-warm, once on, says what it does in lines that fit a notebook's text output."""

from __future__ import annotations

import re
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import pcache_magic
from pcache_magic.core.fmt import TEXT_WIDTH, fit
from pcache_magic.ipython.prewarm import NOTHING_TO_WARM, marked

LONG = " ".join(f"Rule {i}: review the code carefully and explain each finding." for i in range(160))
MARK = {"type": "ephemeral"}


def said(ip: InteractiveShell, code: str) -> str:
    with capture_output() as out:
        ip.run_cell(code).raise_error()
    return out.stdout


@pytest.mark.parametrize("mode", ["none", "last", "automatic", "auto"])
def test_nothing_to_warm_is_said_and_nothing_is_sent(ip: InteractiveShell, mode: str) -> None:
    said(ip, f'%config ClaudeMagics.cache_mode = "{mode}"')
    said(ip, f"%%claude_context --name notes\n{LONG}")  # no --cache: a pre-warm would write nothing
    session = pcache_magic.current_session()
    assert said(ip, "%claude_prewarm") == fit(NOTHING_TO_WARM) + "\n"
    assert session.calls == []
    said(ip, f"%%claude_context --name notes --cache\n{LONG}")
    said(ip, "%claude_prewarm")
    assert [(c.kind, c.tokens.written > 0) for c in session.calls] == [("prewarm", True)]


def test_an_empty_conversation_has_nothing_to_warm(ip: InteractiveShell) -> None:
    assert "Nothing to warm, nothing sent" in said(ip, "%claude_prewarm")
    assert pcache_magic.current_session().calls == []


@pytest.mark.parametrize(
    ("params", "found"),
    [
        ({"messages": [{"role": "user", "content": "hi"}]}, False),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}, False),
        ({"cache_control": MARK, "messages": [{"role": "user", "content": "hi"}]}, True),  # automatic
        ({"tools": [{"name": "t", "cache_control": MARK}], "messages": []}, True),
        ({"system": [{"type": "text", "text": "s", "cache_control": MARK}], "messages": []}, True),
        ({"system": "a plain string", "messages": []}, False),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "x", "cache_control": MARK}]}
                ]
            },
            True,
        ),
    ],
)
def test_marked_finds_any_cache_control_in_a_request(params: dict[str, Any], found: bool) -> None:
    session = pcache_magic.Session(model="claude-sonnet-4-5")
    assert marked(session, {"model": "claude-sonnet-4-5", "max_tokens": 0, **params}) is found


def _three_calls_six_minutes_apart(ip: InteractiveShell) -> None:
    """A rhythm keep-warm can read: each 5m entry would die a minute before the next call."""
    said(ip, f"%%claude_system --cache --name a-rather-long-block-name-for-the-rules\n{LONG}")
    for question in ("One?", "Two?", "Three?"):
        said(ip, "%claude_clock advance 6m")
        said(ip, f"%%claude\n{question}")
    said(ip, "%claude_clock advance 4m")


def _fits(text: str) -> None:
    """Every line within the text width, every amount whole on its line."""
    assert all(len(line) <= TEXT_WIDTH for line in text.splitlines()), text
    assert text.count("$") == len(re.findall(r"\$\d+\.\d{4}\b", text)), text


def test_keep_warm_on_says_what_it_will_do_not_to_turn_it_on(ip: InteractiveShell) -> None:
    _three_calls_six_minutes_apart(ip)
    before = said(ip, "%claude_clock")
    assert "refreshing pays: %claude_prewarm (or --keep-warm on)." in " ".join(before.split())  # off: advice
    on = said(ip, "%claude_prewarm --keep-warm on")
    flat = " ".join(on.split())
    assert flat.startswith("Keep-warm on. a-rather-long-block-name-for-the-rules expires in 1m 00s;")
    assert "refreshing pays: keep-warm refreshes it before it expires. The first refresh goes out in" in flat
    assert "--keep-warm on" not in on
    _fits(on)
    clock = said(ip, "%claude_clock")
    assert "--keep-warm on" not in clock and "keep-warm refreshes it before it expires" in " ".join(
        clock.split()
    )
    _fits(clock)
    assert said(ip, "%claude_prewarm --keep-warm off") == "Keep-warm off.\n"
    assert "(or --keep-warm on)" in " ".join(said(ip, "%claude_clock").split())  # off again: the advice
