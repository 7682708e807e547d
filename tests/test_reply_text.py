"""reply_text.py: a reply's Markdown kept literal and inert, its thinking folded, its transcript."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from pcache_magic.core.record import CallRecord
from pcache_magic.ipython.reply_text import (
    MarkdownText,
    ReplyText,
    held_back,
    inert,
    literal_amounts,
    shown,
    thinking_part,
    transcript,
)

from _helpers import reply_record


def record(*content: dict[str, Any], index: int = 1) -> CallRecord:
    return cast(CallRecord, reply_record(*content, index=index))


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def thought(value: str) -> dict[str, Any]:
    return {"type": "thinking", "thinking": value, "signature": "c2ln"}


def tool_use(name: str) -> dict[str, Any]:
    return {"type": "tool_use", "id": f"toolu_{name}", "name": name, "input": {}}


def test_markdown_text_is_never_read_as_a_file_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "README.md").write_text("the file's content")
    shown = MarkdownText("README.md")
    assert shown._repr_markdown_() == "README.md" and repr(shown) == "README.md"


def test_amounts_in_a_reply_stay_literal_and_math_and_code_stay_as_written() -> None:
    guarded = '<span class="pcache-dollar mathjax_ignore tex2jax_ignore">&#36;</span>'
    text = "It costs $5 and a fee of $10.50; is $x^2$ fine? `$5` stays, \\$3 too.\n```\nprint('$5')\n```"
    shown = literal_amounts(text)
    assert shown.count(guarded) == 2 and "$" not in shown.split("; is")[0]  # no typesetter sees them
    assert "$x^2$" in shown and "`$5`" in shown and "print('$5')" in shown and "\\$3" in shown
    reply = ReplyText(text)
    assert reply._repr_markdown_() == shown and repr(reply) == text  # a terminal gets it as written


def test_html_in_a_reply_is_shown_not_run() -> None:
    """A freshly run cell's Markdown is trusted: a reply's `<img onerror>` or `<script>` (a prompt
    injection, or the emulator echoing a prompt) ran in JupyterLab. Code keeps it as written."""
    hostile = "Done <img src=x onerror=alert(1)> <script>alert(2)</script> and `<b>` stays."
    rich = transcript([record(thought("I <b>think</b>"), text(hostile))], [], True)
    assert "&lt;img src=x onerror" in rich and "&lt;script>" in rich and "`<b>`" in rich
    assert rich.startswith("<details><summary>thinking") and "I &lt;b>think&lt;/b>" in rich  # our fold stays
    assert "<img" not in rich and "<script" not in rich
    streamed = ReplyText(hostile)._repr_markdown_()  # while it streams: the model's text alone
    assert "<img" not in streamed and "<script" not in streamed and "`<b>`" in streamed
    assert transcript([record(text(hostile))], [], False).count("<img") == 1  # a terminal: as written


def test_thinking_is_folded_above_each_calls_answer() -> None:
    first = record(thought("Step one.\nStep two."), tool_use("lookup"))
    second = record(thought("Now answer."), text("The answer."), index=2)
    rich = transcript([first, second], ["> tool `lookup({})` → 42"], True)
    assert rich.index("<details><summary>thinking · ~") < rich.index("> tool `lookup")
    assert "\n\n> Step one.\n> Step two.\n\n</details>" in rich
    assert rich.rindex("</details>") < rich.index("The answer.")
    plain = transcript([second], [], False)
    assert plain.splitlines()[0].startswith("[thinking · ~") and "  │ Now answer." in plain
    assert transcript([second], []) == "The answer."  # None: the thinking left out (as before)


def test_plain_thinking_shows_its_first_lines_and_counts_the_rest() -> None:
    lines = "\n".join(f"line {i}" for i in range(12))
    shown = thinking_part(lines, 30, False)
    assert shown.splitlines() == [
        "[thinking · ~30 tokens (estimate)]",
        *[f"  │ line {i}" for i in range(8)],
        "  │ … 4 more lines (the call record keeps them all)",
    ]


@pytest.mark.parametrize(
    ("reply", "shown"),
    [
        ("a ~~~ <i> ~~~ b", "a ~~~ &lt;i> ~~~ b"),  # tildes make no inline code
        ("````<i>```", "````&lt;i>```"),  # runs of other lengths close nothing
        ("\\`<i>\\`", "\\`&lt;i>\\`"),  # escaped backticks open nothing
        ("``` a`b\n<i>\nx", "``` a`b\n&lt;i>\nx"),  # an info string with a backtick: no fence
        ("`a\\`<i>`", "`a\\`&lt;i>`"),  # a code span ends at its first closing run
        ("~~~<i>~~~", "~~~<i>~~~"),  # a tilde fence whose info string holds it: code to the end
    ],
)
def test_what_looks_like_code_but_is_not_stays_inert(reply: str, shown: str) -> None:
    """Each passed a live tag through a pattern that took it for code (a review); CommonMark's rules."""
    assert inert(reply) == shown


def test_code_keeps_what_it_holds_and_an_image_is_its_text() -> None:
    fenced = "````python\nif a < b:\n    ```\n````\n<i>"
    assert inert(fenced) == fenced.replace("<i>", "&lt;i>")  # a fence closes on its own length or more
    assert inert("```\nif a < b:") == "```\nif a < b:"  # left open (a stream): code to the end
    assert inert("`` a ` < b ``") == "`` a ` < b ``"
    assert inert("![x](https://evil.example/?q=1)") == "!\\[x](https://evil.example/?q=1)"


def test_a_replys_key_and_controls_are_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that knows the key may echo it; ESC would drive a terminal, RLO turn the text."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "my-test-key-0123456789")
    said = "Key: my-test-key-0123456789, sk-ant-api03-ABCDEFGHIJ \x1b[2J\u202e$5"
    for reply in (ReplyText(said), ReplyText(said, ours=True), MarkdownText(said)):
        for data in (reply._repr_markdown_(), repr(reply)):
            assert "0123456789" not in data and "ABCDEFGHIJ" not in data and "\x1b" not in data
            assert "\u202e" not in data and "␛[2J\\u202e" in data and data.count("[API key]") == 2
    assert shown("a 'my-test-key-01234' b", pieces=True) == "a '[part of the API key]' b"


@pytest.mark.parametrize(
    ("text", "held"),
    [
        ("Hello", "Hello"),  # a word is whole once white space (or the end) follows it
        ("Hello ", ""),
        ("Hello s", "s"),
        ("x sk-ant-api03-abc", "sk-ant-api03-abc"),
        ("sk-ant-abc def", "def"),
        ("key my-test", "my-test"),  # the start of the environment's key
        ("x sk-ant-api03-abc\u00ad", "sk-ant-api03-abc\u00ad"),  # a key going on past a soft hyphen
        ("line\n", ""),
    ],
)
def test_a_streams_last_word_is_held_back_until_it_is_whole(text: str, held: str) -> None:
    """A key split between two pieces, plainly or by characters that render as nothing, was
    printed in two halves: the rest of it, in the next piece, unblotted."""
    assert text[held_back(text) :] == held


def test_a_reply_in_hebrew_or_with_a_flag_is_shown_as_written() -> None:
    """Only what drives a terminal or turns the text is shown as a picture: a right-to-left mark, a
    zero width space and a flag's tags are the language's and the emoji's."""
    text = "שלום\u200f עולם, ก\u200bข 🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"
    assert ReplyText(text)._repr_markdown_() == text
    assert repr(MarkdownText(text)) == text
    assert repr(MarkdownText("a\u202eb\x1b")) == "a\\u202eb␛"


def test_a_key_hidden_by_what_renders_as_nothing_is_blotted(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that knows the key may break it up so that a blotter misses it and the notebook still
    renders it whole: emphasis inside the word, a soft hyphen, a zero width space, character
    references."""
    key = "sk-ant-api03-" + "Zq7" * 14
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    for hidden in (
        f"sk-ant-*a*{key[8:]}",
        f"sk-ant-\u00ad{key[7:]}",
        f"sk-ant-\u200b{key[7:]}",
        f"{key[:9]}_{key[9:]}",
        f"sk-ant-[{key[7:]}]()",  # a link's brackets
        f"sk-an[t-{key[7:]}](#)",
        f"sk-ant-\u2061{key[7:]}",  # an invisible operator
        f"sk-ant-\ufe0f{key[7:]}",  # a variation selector
    ):
        markdown = ReplyText(f"Your key is {hidden}.")._repr_markdown_()
        assert "[API key]" in markdown and key[12:30] not in markdown, hidden
    kept = ReplyText(f"日本語の説明 (**太字**): sk-ant-\u200b{key[7:]} です。")._repr_markdown_()
    assert kept == "日本語の説明 (**太字**): [API key] です。"  # only the key goes
    encoded = "".join(f"&#{ord(c)};" for c in key)
    markdown = ReplyText(f"Your key is {encoded}.")._repr_markdown_()
    assert "&amp;#115;" in markdown  # shown as written: the entity is not rendered into the key
    assert ReplyText("AT&T and `a && b`")._repr_markdown_() == "AT&amp;T and `a && b`"


def test_a_key_hidden_inside_is_blotted_whole_even_with_underscores(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plain blotting ran first and cut the key at the hidden character: the search for a hidden
    key then found only "[API key]" and the rest, 78 characters of the key, showed in the clear.
    A key holding `_` was never found once `_` (an emphasis mark) was taken out of the text."""
    key = "sk-ant-api03-" + "aB3_x-9Qz" * 10
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    for hidden in (key[:24] + "\u00ad" + key[24:], key[:24] + "*" + key[24:]):
        said = repr(MarkdownText(f"Your key: {hidden}"))
        assert said == "Your key: [API key]" and key[30:40] not in said
    other = "my_secret_key_0123456789"  # no key shape: found only as the environment's key
    monkeypatch.setenv("ANTHROPIC_API_KEY", other)
    assert repr(MarkdownText("k: my_secret\u200b_key_0123456789.")) == "k: [API key]."
