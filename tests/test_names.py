"""names.py: readable default block names from a cell's first words, its files or its tools."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from pcache_magic.ipython.names import check_given, derived, file_label, slug, tools_label, typed_back


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("You are a careful reviewer of the code below ...", "you-are-a-careful-reviewer"),
        ("\n\n# Ledgerline code review guide\n\n## 1. Purpose", "ledgerline-code-review-guide"),
        ("def add(a, b):\n    return a + b", "def-add-a-b"),
        ('{"rows": [1, 2]}', "rows-1-2"),
        ("Use lookup_section first", "use-lookup_section-first"),  # snake_case stays one word
        ("Été: café crème", "été-café-crème"),
        ("---\n***\nSecond line counts", "second-line-counts"),  # the first line with words
        ("Supercalifragilisticexpialidocious words follow here", "supercalifragilisticexpialidocio"),
        ("", ""),
        ("!!! ???", ""),
    ],
)
def test_slug_takes_the_first_words(text: str, expected: str) -> None:
    assert slug(text) == expected


def test_slug_is_short_and_cut_at_a_word() -> None:
    name = slug("Extraordinarily comprehensive instructions concerning everything")
    assert name == "extraordinarily-comprehensive" and len(name) <= 32


def test_slug_ignores_all_but_the_first_line() -> None:
    assert slug("Notes\nfirst version") == slug("Notes\nsecond version") == "notes"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("paper.md", "paper.md"),
        ("notebooks/data/review_guide.md", "review_guide.md"),
        ("src/*.py", "*.py"),
        ("dir/", "dir"),
        ("my notes (v2).txt", "my-notes-v2-.txt"),
        ("-odd.md", "odd.md"),  # never read as a flag when typed back
        ("C:\\docs\\spec.pdf", "spec.pdf"),
    ],
)
def test_file_label_is_the_name_as_written(path: str, expected: str) -> None:
    assert file_label(path) == expected


def test_tools_label_joins_the_names() -> None:
    assert tools_label(["search"]) == "search"
    assert tools_label(["lookup_section", "owners"]) == "lookup_section+owners"
    assert tools_label(["a", "b", "c"]) == "a+b+c"
    assert tools_label(["a", "b", "c", "d", "e"]) == "a+b+3-more"


def test_derived_prefers_what_names_each_kind_best() -> None:
    assert derived("system", "You are terse.", ["guide.md"]) == "you-are-terse"  # the persona
    assert derived("system", "", ["data/guide.md"]) == "guide.md"
    assert derived("context", "The project:", ["src/*.py"]) == "*.py"  # the bulk
    assert derived("context", "The project:") == "the-project"
    assert derived("tools", tools=["lookup_section", "owners"]) == "lookup_section+owners"
    assert derived("context", "...") == "context"  # nothing to read a name from: the kind
    assert derived("system", "") == "system"


def test_a_name_is_typed_back_as_it_is_or_as_the_views_show_it() -> None:
    names = ["rules", "notes\u202etxt", '"my notes"']
    assert typed_back("rules", names) == "rules"
    assert typed_back("notes\\u202etxt", names) == "notes\u202etxt"  # as the panel shows it
    assert typed_back("my notes", names) == '"my notes"'  # an older parser kept the quotes


def test_names_that_show_alike_are_never_guessed_between() -> None:
    # A real NEL and the four characters "\x85" show alike; so do a literal "\u202e" and a real RLO.
    cases = ((["\x00\x85", "\x00\\x85"], "␀\\x85"), (["n\\u202etxt", "n\u202etxt"], "n\\u202etxt"))
    for alike, typed in cases:
        with pytest.raises(UsageError, match=r"^2 blocks show as .*; drop the one you mean from Python"):
            typed_back(typed, alike)


def test_a_name_as_it_is_wins_over_one_an_older_parser_kept_in_quotes() -> None:
    assert typed_back("notes", ["notes", '"notes"']) == "notes"


def test_an_unknown_name_lists_the_names_visible_and_cut() -> None:
    names = ["n\u202e" + "x" * 5_000, "two\nlines", *(f"b{i}" for i in range(29))]
    with pytest.raises(UsageError) as refused:
        typed_back("nope", names)
    message = str(refused.value)
    assert "\u202e" not in message and "n\\u202exxx" in message and len(message) < 400
    assert "\n" not in message and ", two lines, " in message
    assert message.endswith("b17, and 11 more (%claude_session show).")


@pytest.mark.parametrize("given", ["", " ", "\t"])
def test_an_empty_name_is_refused(given: str) -> None:
    with pytest.raises(UsageError, match=r"^--name is empty: give the block a name, or leave --name out"):
        check_given(given)
    check_given(None)
    check_given("x")
