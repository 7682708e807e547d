"""The one formatter: every view shows money, tokens, durations and times through these."""

from __future__ import annotations

import pytest

from pcache_magic.core.fmt import (
    DOLLAR_HTML,
    LABELS,
    LEFT,
    TEXT_WIDTH,
    clock,
    cut,
    duration,
    entry_names,
    fit,
    html_cost,
    html_table,
    html_text,
    money,
    plural,
    share,
    status_cell,
    status_words,
    text_table,
    tokens,
    visible,
    visible_text,
)
from pcache_magic.view.html import attr


def test_tokens() -> None:
    assert tokens(12345) == "12,345"
    assert tokens(12345, estimated=True) == "~12,345"
    assert tokens(0, estimated=True) == "0"


@pytest.mark.parametrize(
    ("usd", "shown"),
    [
        (0.0123, "$0.0123"),
        (-0.0063, "-$0.0063"),
        (0.0, "$0.0000"),
        (0.00001, "$0.000010"),
        (0.99994, "$0.9999"),
        (1.5, "$1.50"),
        (1234.5, "$1,234.50"),
        (-12.345, "-$12.35"),
    ],
)
def test_money_is_fixed_point_with_more_digits_for_small_sums(usd: float, shown: str) -> None:
    assert money(usd) == shown
    assert "e" not in money(usd * 1e-4)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0s"),
        (-5, "0s"),
        (45, "45s"),
        (59.6, "1m 00s"),
        (250, "4m 10s"),
        (3_599.4, "59m 59s"),
        (3_600, "1h 00m"),
        (3_900, "1h 05m"),
        (90_000, "25h 00m"),
    ],
)
def test_duration(seconds: float, shown: str) -> None:
    assert duration(seconds) == shown


def test_a_countdown_rounds_up_but_ignores_float_noise() -> None:
    assert duration(0.2, ceil=True) == "1s"
    assert duration(252, ceil=True) == "4m 12s"
    assert duration(300 - 120.0000000001, ceil=True) == "3m 00s"
    assert duration(-3, ceil=True) == "0s"


def test_clock_is_utc() -> None:
    assert clock(0) == "00:00:00"
    assert clock(3_723) == "01:02:03"
    assert clock(86_400 + 59, date=True) == "1970-01-02 00:00:59 UTC"


def test_entry_names_add_the_model_only_when_entries_span_two() -> None:
    one = [{"block": "doc", "model": "m1"}, {"path": "system.0", "model": "m1"}]
    assert entry_names(one) == ["doc", "system.0"]
    two = [{"block": "doc", "model": "m1"}, {"block": "doc", "model": "m2"}]
    assert entry_names(two) == ["doc (m1)", "doc (m2)"]


def test_fit_wraps_long_lines_between_words_and_html_cost_names_the_class() -> None:
    line = "total " + " ".join(f"$0.{i:04d}" for i in range(30)) + " 12,345,678"
    wrapped = fit(line).splitlines()
    assert len(wrapped) > 1 and all(len(w) <= TEXT_WIDTH == 80 for w in wrapped)
    assert " ".join(w.strip() for w in wrapped) == line and fit("a\n  b") == "a\n  b"
    assert html_cost("pcache-cost-calls", "<table></table>") == (
        '<div class="pcache-panel pcache-cost pcache-cost-calls"><table></table></div>'
    )


def test_tables_escape_and_align() -> None:
    html = html_table(["a", "b"], [["<x>", "1"]], "cap & more")
    assert "<td>&lt;x&gt;</td>" in html and "<caption>cap &amp; more</caption>" in html
    assert text_table(["name", "n"], [["long name", "1"]]) == "name       n\nlong name  1"


def test_a_table_row_can_carry_a_note_row_and_a_cell_a_tooltip() -> None:
    """A cost table's note wrapped down a narrow column at 700 px: it is now a full-width row under
    its row; a dash says why in its tooltip.  Both escaped, a `$` still out of MathJax's reach."""
    html = html_table(
        ["a", "b"],
        [["1", "—"], ["2", "3"]],
        "cap",
        titles={(0, 1): 'not "counted" <here>'},
        notes=["read 10 tokens: $0.0001 saved", ""],
    )
    assert '<tr><td>1</td><td title="not &quot;counted&quot; &lt;here&gt;">—</td></tr>' in html
    note = (
        '<tr class="pcache-row-note"><td class="pcache-notes" colspan="2" style="text-align:left">'
        f"read 10 tokens: {DOLLAR_HTML}0.0001 saved</td></tr>"
    )
    assert (
        f"</tr>{note}<tr><td>2</td><td>3</td></tr></tbody>" in html
    )  # under its row; none for an empty note
    assert html.count("pcache-row-note") == 1


def test_cells_of_words_read_left_without_a_stylesheet() -> None:
    """An untrusted notebook's copy loses `<style>`, and JupyterLab right-aligns every cell: a column
    of words (by its header), a note and a breakpoint's status carry their alignment inline."""
    html = html_table(["call", "model", "outcome", "cost"], [["1", "claude-x", "hit", "$1"]], "cap")
    assert "<th>call</th><th" + LEFT + ">model</th><th" + LEFT + ">outcome</th><th>cost</th>" in html
    assert f"<tr><td>1</td><td{LEFT}>claude-x</td><td{LEFT}>hit</td><td>" in html
    assert status_cell("hit", "pcache-next") == f'<td class="pcache-next"{LEFT}>hit</td>'
    assert LEFT == ' style="text-align:left"'


def test_a_breakpoint_status_in_words_a_new_user_reads() -> None:
    assert (
        status_words("covered")[0] == "in a hit" and "neither reads nor writes" in status_words("covered")[1]
    )
    assert status_words("below-minimum") == (
        "below min",
        "below the model's minimum: this marker caches nothing",
    )
    assert status_words("hit+write") == ("hit+write", "")  # says it itself


@pytest.mark.parametrize(
    ("usd", "shown"),
    [
        (0.01915, "$0.0192"),  # half up, not to even
        (0.019149999999999997, "$0.0192"),  # the same sum reached another way: float noise
        (0.0042375 + 0.000284 + 0.000339 + 0.00184 - 0.0067005, "$0.0000"),
        (-1e-15, "$0.0000"),  # no "-$0.0000"
        (0.000284, "$0.0003"),
        (0.005, "$0.0050"),
        (2.675, "$2.68"),  # 2.675 is 2.67499999... in binary; a person reads 2.675
    ],
)
def test_money_rounds_half_up_whatever_the_float_noise(usd: float, shown: str) -> None:
    assert money(usd) == shown


def test_plural() -> None:
    assert plural(1, "live entry") == "1 live entry"
    assert plural(2, "live entry") == "2 live entries"
    assert plural(0, "call") == "0 calls"
    assert plural(1, "call") == "1 call"
    assert plural(3, "day") == "3 days"
    assert plural(1_200, "read") == "1,200 reads"
    assert plural(2, "child", "children") == "2 children"


def test_share_is_never_negative() -> None:
    assert share(0.724) == "72%"
    assert share(0.725) == "73%"
    assert share(1.0) == "100%"
    assert share(0.0) == "0%"
    assert share(-0.11) == "none"
    assert share(None) == ""


def test_html_text_puts_every_dollar_where_mathjax_does_not_look() -> None:
    """JupyterLab 4's MathJax 3 splits its search at every element and skips `mathjax_ignore`
    (`tex2jax_ignore` for MathJax 2): a lone `$` in such a span can never open or close math."""
    html = html_text("cost $0.0123 < saved $0.0456 & more")
    assert html == (f"cost {DOLLAR_HTML}0.0123 &lt; saved {DOLLAR_HTML}0.0456 &amp; more")
    assert DOLLAR_HTML == '<span class="pcache-dollar mathjax_ignore tex2jax_ignore">$</span>'
    assert html_text("no amounts") == "no amounts"
    assert html_text(12) == "12"
    table = html_table(["cost"], [[money(0.5)]], f"total {money(0.5)}")
    assert table.count(DOLLAR_HTML) == 2 and "$0.5000" not in table


def test_labels_name_the_apis_quantities_once() -> None:
    assert [LABELS[k] for k in ("read", "write", "write_5m", "write_1h", "uncached", "output")] == [
        "cache read",
        "cache write",
        "cache write 5m",
        "cache write 1h",
        "uncached input",
        "output",
    ]


def test_entry_names_mark_the_earlier_version_of_an_edited_block() -> None:
    entries = [
        {"block": "rules", "model": "m1", "ttl": "1h", "expires_at": 3_000.0},  # written at -600
        {"block": "doc", "model": "m1", "ttl": "5m", "expires_at": 3_100.0},
        {"block": "rules", "model": "m1", "ttl": "1h", "expires_at": 3_600.0},  # written at 0: the latest
    ]
    assert entry_names(entries) == ["rules (earlier entry)", "doc", "rules"]


def test_entry_names_tell_two_versions_written_at_the_same_instant_by_their_order() -> None:
    """The emulator's clock stands still until moved: an edit and a new ask write the new version at
    the very time of the old one, and the entries table showed two "review_guide.md" rows."""
    old = {"block": "review_guide.md", "model": "m1", "ttl": "1h", "expires_at": 3_600.0}
    assert entry_names([old, dict(old)]) == ["review_guide.md (earlier entry)", "review_guide.md"]


def test_several_earlier_entries_of_one_block_are_numbered() -> None:
    """A new user saw two identical "notes (earlier version)" rows (an image added, then an edit):
    several earlier entries are numbered by write order, and none is called a version."""
    old = {"block": "notes", "model": "m1", "ttl": "5m", "expires_at": 300.0}
    assert entry_names([old, dict(old), dict(old)]) == [
        "notes (earlier entry 1)",
        "notes (earlier entry 2)",
        "notes",
    ]


def test_the_entries_table_marks_the_old_prefix_after_an_edit_on_a_still_clock() -> None:
    from pcache_magic.emulator import Emulator
    from pcache_magic.session.session import Session
    from pcache_magic.session.transport import connect

    s = Session(model="claude-sonnet-4-5", connection=connect(emulator=Emulator()))
    s.system("You review code. " * 10, name="sys")
    s.context("Use type hints. " * 400, cache="1h", name="review_guide.md")
    s.ask("Hi?", stream=False)
    s.system("You review code carefully. " * 10, name="sys")  # the prefix before the guide changes
    s.ask("Hi?", stream=False)
    entries = s.book.ledger.entries(s.now())
    assert entry_names(entries) == ["review_guide.md (earlier entry)", "review_guide.md"]


def test_control_characters_show_as_their_pictures_in_html_and_text() -> None:
    # A block name or path from a hostile file: no raw NUL or ESC in HTML (not well-formed XML)
    # or in a terminal (an escape sequence would drive it).
    name = "a\x00b\x1b[31mred\x7f\tok\n"
    assert visible(name) == "a␀b␛[31mred␡\tok\n"
    assert html_text(name) == "a␀b␛[31mred␡\tok\n"
    assert "\x1b" not in attr(name) and "␛" in attr(name)
    table = text_table(["block", "tokens"], [[name.strip(), "12"]])
    assert "\x1b" not in table and "\x00" not in table and "␛[31m" in table
    assert visible("plain $5 text") == "plain $5 text"


def test_c1_and_bidirectional_controls_show_as_escapes() -> None:
    # A right-to-left override would show "exe.txt" for "txt.exe" after it; an 8-bit CSI (U+009B)
    # starts an escape sequence on some terminals.  Letters of right-to-left scripts stay as they are.
    name = "report\u202etxt.exe\x9b31m\u2067x\u2069"
    shown = visible(name)
    assert shown == "report\\u202etxt.exe\\x9b31m\\u2067x\\u2069"
    assert html_text(name) == shown and "\u202e" not in attr(name)
    assert "\x9b" not in text_table(["block"], [[name]])
    assert visible("שלום عربي café") == "שלום عربي café"
    # Separators and characters that hide text show too; joiners that scripts and emoji need stay.
    assert visible("a\u2028b\ufeffc\U000e0041d\u2060") == "a\\u2028b\\ufeffc\\U000e0041d\\u2060"
    assert visible("👩\u200d💻 می\u200cخواهم") == "👩\u200d💻 می\u200cخواهم"


def test_cut_keeps_a_short_text_and_ends_a_long_one_with_an_ellipsis() -> None:
    assert cut("rules") == "rules"
    assert cut("x" * 41) == "x" * 39 + "…" and len(cut("y" * 10_000, 12)) == 12


def test_a_models_text_keeps_what_languages_and_emoji_need() -> None:
    """`visible_text`: what drives a terminal or turns the text after it becomes a picture; the marks,
    joiners and tags of Hebrew, Thai or a flag stay as written (`visible` would show them as escapes)."""
    flag = "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"
    kept = f"שלום\u200f · ก\u200bข · {flag} · 👨\u200d👩\u200d👧"
    assert visible_text(kept) == kept
    assert visible(kept) != kept
    assert visible_text("a\x1b[31mb\x9bc\u202ed\u2067e\tf\n") == "a␛[31mb\\x9bc\\u202ed\\u2067e\tf\n"
