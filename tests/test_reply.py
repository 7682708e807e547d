"""`emulator.reply`: the emulator's deterministic answer, a report of the request or a tool call."""

from __future__ import annotations

from typing import Any

import pytest

from pcache_magic.core.prefix import layout
from pcache_magic.core.tokens import TokenEstimator
from pcache_magic.emulator.engine import Engine
from pcache_magic.emulator.reply import (
    MAX_CHARS_PER_TOKEN,
    Outcome,
    finish,
    reply_content,
    sign_thought,
    signed,
    thinking_key,
)

ESTIMATOR = TokenEstimator()
MISS = Outcome(read=0, write_5m=0, write_1h=0, uncached=40, hit_path=None)


def tool(name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "input_schema": schema or {"type": "object"}}


def params(text: str | list[dict[str, Any]] = "Hello", **extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": text}],
    } | extra


def reply(p: dict[str, Any], outcome: Outcome = MISS) -> list[dict[str, Any]]:
    return reply_content(p, layout(p, ESTIMATOR), outcome, "toolu_emu_7")


def report(p: dict[str, Any], outcome: Outcome = MISS) -> str:
    (block,) = reply(p, outcome)
    assert block["type"] == "text"
    return str(block["text"])


def called(p: dict[str, Any]) -> str | None:
    content = reply(p)
    return str(content[-1]["name"]) if content[-1]["type"] == "tool_use" else None


# -- the report -----------------------------------------------------------------------------------
def test_the_report_counts_blocks_per_level_and_markers() -> None:
    p = params(
        [
            {"type": "text", "text": "Part one."},
            {"type": "text", "text": "Two", "cache_control": {"type": "ephemeral"}},
        ],
        tools=[tool("a"), tool("b")],
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    )
    text = report(p)
    total = layout(p, ESTIMATOR).total_tokens
    assert text.startswith("[pcache_magic offline emulator, claude-sonnet-4-5; not a real model]\n\n")
    assert (
        f"I saw 5 blocks (tools 2, system 1, messages 2), an estimated {total:,} input tokens, "
        "2 cache markers." in text
    )


def test_the_report_says_one_block_and_one_marker_in_the_singular() -> None:
    text = report(params([{"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral"}}]))
    assert "I saw 1 block (tools 0, system 0, messages 1)" in text
    assert ", 1 cache marker. Cache:" in text
    assert ", 0 cache markers. Cache:" in report(params())
    thinking = reply(params("Think.", max_tokens=2_000, thinking={"type": "adaptive"}))[0]["thinking"]
    assert "The request has 1 block and an estimated" in thinking


def test_the_report_states_the_cache_outcome_as_billed() -> None:
    hit = Outcome(read=12_345, write_5m=100, write_1h=2_000, uncached=7, hit_path="system.0")
    read = "Cache: read 12,345 tokens from cache (hit at system.0)"
    assert f"{read}, wrote 2,100 (5m: 100, 1h: 2,000); 7 uncached." in report(params(), hit)
    assert "Cache: no cache read; 40 uncached." in report(params(), MISS)
    write_only = Outcome(read=0, write_5m=1_500, write_1h=0, uncached=3, hit_path=None)
    assert "Cache: no cache read, wrote 1,500 (5m: 1,500, 1h: 0); 3 uncached." in report(params(), write_only)


def test_the_last_message_is_quoted_on_one_line_and_cut_at_80() -> None:
    assert report(params("Which\n  functions\thave   no tests?")).endswith(
        'Your last message: "Which functions have no tests?"'
    )
    exactly = "x" * 80
    assert report(params(exactly)).endswith(f'"{exactly}"')
    assert report(params("y" * 81)).endswith(f'"{"y" * 77}..."')


def test_the_quote_is_the_last_text_of_the_last_user_turn() -> None:
    # Context added before a prompt shares its user turn: the prompt is the turn's last text.
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    context = {"type": "text", "text": "File: src/cache.py\n" + "def lookup(key): ...\n" * 50}
    p = params([context, image, {"type": "text", "text": "Which functions have no tests?"}])
    p["messages"].append({"role": "assistant", "content": "It is"})  # a prefill is not the user's turn
    assert report(p).endswith('Your last message: "Which functions have no tests?"')


def test_no_user_turn_quotes_nothing() -> None:
    assert report(params(messages=[])).endswith('Your last message: ""')


def test_tool_results_are_answered_with_their_content() -> None:
    p = params(tools=[tool("lookup")])
    p["messages"] += [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "lookup", "input": {}}]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "42"},
                {"type": "text", "text": "Use lookup again?"},  # named, but a results turn is answered
            ],
        },
    ]
    assert report(p).endswith('Your last message: "tool results: ["42"]"')


# -- the tool rule --------------------------------------------------------------------------------
def test_a_named_tool_is_called_with_a_note_before_it() -> None:
    content = reply(params("Please run lookup now.", tools=[tool("lookup")]))
    assert content == [
        {"type": "text", "text": "Calling `lookup` (offline emulator)."},
        {"type": "tool_use", "id": "toolu_emu_7", "name": "lookup", "input": {}},
    ]


def test_the_first_tool_in_the_tools_order_wins() -> None:
    assert called(params("use beta, then alpha", tools=[tool("alpha"), tool("beta")])) == "alpha"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call `lookup`.", "lookup"),
        ("lookup", "lookup"),
        ("lookup_all the things", None),
        ("do a quick-lookup", None),
        ("lookups are slow", None),
        ("LOOKUP please", None),
    ],
)
def test_a_tool_is_named_only_as_a_whole_word(text: str, expected: str | None) -> None:
    assert called(params(text, tools=[tool("lookup")])) == expected


@pytest.mark.parametrize(
    ("choice", "text", "expected"),
    [
        ({"type": "none"}, "use lookup", None),
        ({"type": "auto"}, "nothing named", None),
        ({"type": "any"}, "nothing named", "lookup"),
        ({"type": "any"}, "use search", "search"),
        ({"type": "tool", "name": "search"}, "use lookup", "search"),
        ({"type": "tool", "name": "missing"}, "use lookup", None),
    ],
)
def test_tool_choice_is_followed(choice: dict[str, Any], text: str, expected: str | None) -> None:
    p = params(text, tools=[tool("lookup"), tool("search")], tool_choice=choice)
    assert called(p) == expected


def test_no_tools_or_nameless_tools_mean_text() -> None:
    assert called(params("use lookup")) is None
    assert called(params("use lookup", tools=[{"type": "custom"}], tool_choice={"type": "any"})) is None


def test_a_forced_tool_is_called_even_after_results() -> None:
    p = params(tools=[tool("lookup")], tool_choice={"type": "any"})
    p["messages"] += [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "lookup", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "42"}]},
    ]
    assert called(p) == "lookup"


def test_the_input_fills_required_properties_only() -> None:
    schema = {
        "type": "object",
        "properties": {
            "s": {"type": "string"},
            "i": {"type": "integer"},
            "n": {"type": "number"},
            "b": {"type": "boolean"},
            "a": {"type": "array"},
            "o": {"type": "object"},
            "z": {"type": "null"},
            "e": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "d": {"type": "integer", "default": 7},
            "u": {"type": ["integer", "null"]},
            "w": {},
            "optional": {"type": "string"},
        },
        "required": ["s", "i", "n", "b", "a", "o", "z", "e", "d", "u", "w", "undeclared"],
    }
    (_, use) = reply(params("run f", tools=[tool("f", schema)]))
    assert use["input"] == {
        "s": "example",
        "i": 1,
        "n": 1.0,
        "b": True,
        "a": [],
        "o": {},
        "z": None,
        "e": "celsius",
        "d": 7,
        "u": 1,
        "w": "example",
        "undeclared": "example",
    }


# -- forced tool choice and max_tokens ----------------------------------------------------------------
@pytest.mark.parametrize("choice", [{"type": "any"}, {"type": "tool", "name": "search"}])
def test_a_forced_tool_choice_answers_with_the_call_alone(choice: dict[str, Any]) -> None:
    """The API prefills the assistant turn with the call: no text before the tool_use."""
    content = reply(params("use search", tools=[tool("lookup"), tool("search")], tool_choice=choice))
    assert [(b["type"], b.get("name")) for b in content] == [("tool_use", "search")]
    _, tokens, stop, _ = finish(content, {"max_tokens": 50}, ESTIMATOR)
    assert stop == "tool_use" and tokens > 0


def test_under_auto_a_short_text_comes_before_the_call() -> None:
    content = reply(params("use search", tools=[tool("search")], tool_choice={"type": "auto"}))
    assert [b["type"] for b in content] == ["text", "tool_use"]


def test_max_tokens_one_gives_one_token_of_text_end_to_end() -> None:
    """A common warm-up: the real API answers one output token and a non-empty text."""
    message = Engine().create_message("sk-test", params("Warm the cache.", max_tokens=1))
    (block,) = message["content"]
    assert block["type"] == "text" and block["text"] and ESTIMATOR.text(block["text"]) == 1
    assert (message["usage"]["output_tokens"], message["stop_reason"]) == (1, "max_tokens")


def test_max_tokens_cuts_a_forced_call_short_and_zero_gives_nothing() -> None:
    call = {"type": "tool_use", "id": "toolu_1", "name": "search", "input": {"q": "a long query " * 20}}
    cut, tokens, stop, sequence = finish([call], {"max_tokens": 3}, ESTIMATOR)
    assert (cut, tokens, stop, sequence) == ([{**call, "input": {}}], 3, "max_tokens", None)
    assert finish([call], {"max_tokens": 0}, ESTIMATOR) == ([], 0, "max_tokens", None)


# -- extended thinking ----------------------------------------------------------------------------
ENABLED = {"type": "enabled", "budget_tokens": 1_024}


@pytest.mark.parametrize("config", [ENABLED, {"type": "adaptive"}])
def test_thinking_comes_first_signed_and_the_same_each_time(config: dict[str, Any]) -> None:
    p = params("Think first.", max_tokens=2_000, thinking=config)
    first, second = reply(p), reply(p)
    assert [b["type"] for b in first] == ["thinking", "text"] and first == second
    thought = signed(first, thinking_key())[0]  # signed by the engine once cut
    assert thought["signature"] == sign_thought(thinking_key(), thought["thinking"])
    assert "nothing thinks here" in thought["thinking"]
    assert ESTIMATOR.text(thought["thinking"]) < 1_024  # within any budget
    assert [b["type"] for b in reply(params("No thinking.", thinking={"type": "disabled"}))] == ["text"]


def test_thinking_tokens_are_output_tokens_and_the_answer_gets_what_is_left() -> None:
    content = reply(params("Think first.", max_tokens=2_000, thinking=ENABLED))
    thinking, text = (ESTIMATOR.text(content[0]["thinking"]), ESTIMATOR.text(content[1]["text"]))
    assert finish(content, {"max_tokens": 2_000}, ESTIMATOR) == (content, thinking + text, "end_turn", None)
    cut, tokens, stop, _ = finish(content, {"max_tokens": thinking + 3}, ESTIMATOR)
    assert (cut[0], tokens, stop) == (content[0], thinking + 3, "max_tokens")
    assert ESTIMATOR.text(cut[1]["text"]) == 3
    short, tokens, stop, _ = finish(content, {"max_tokens": 2}, ESTIMATOR)  # runs out while thinking
    assert [b["type"] for b in short] == ["thinking"] and stop == "max_tokens"
    assert 1 <= tokens == ESTIMATOR.text(short[0]["thinking"]) <= 2


def test_thinking_in_a_response_from_the_engine() -> None:
    body = params("Think first.", max_tokens=2_000, thinking=ENABLED)
    message = Engine().create_message("sk-test", body)
    (thought, text) = message["content"]
    output = ESTIMATOR.text(thought["thinking"]) + ESTIMATOR.text(text["text"])
    assert (thought["type"], message["usage"]["output_tokens"]) == ("thinking", output)


def test_a_signature_is_an_hmac_of_the_final_text_under_the_engines_key() -> None:
    key = thinking_key()
    assert key == thinking_key() and key != thinking_key(b"another product")  # made, not random
    content = reply(params("Think first.", max_tokens=2_000, thinking=ENABLED))
    short, _, _, _ = finish(content, {"max_tokens": 2}, ESTIMATOR)  # cut while thinking
    (cut,) = signed(short, key)
    assert cut["signature"] == sign_thought(key, cut["thinking"]) != sign_thought(key, content[0]["thinking"])
    assert (
        sign_thought(key, "a") != sign_thought(thinking_key(b"x"), "a") and len(sign_thought(key, "a")) == 44
    )
    assert signed([{"type": "text", "text": "t"}], key) == [{"type": "text", "text": "t"}]


def test_a_reply_of_spaces_still_counts_a_token_per_eight_characters() -> None:
    """The estimator counts a run of spaces as nothing; a reply stays within what max_tokens allows."""
    text = "start" + " " * 10_000 + "end"
    assert ESTIMATOR.text(text) <= 3  # why the floor is needed
    (block,), tokens, stop, _ = finish([{"type": "text", "text": text}], {"max_tokens": 10}, ESTIMATOR)
    assert stop == "max_tokens" and tokens == 10 and 0 < len(block["text"]) <= 10 * MAX_CHARS_PER_TOKEN
    call = {"type": "tool_use", "id": "toolu_1", "name": "save", "input": {"note": " " * 1_000}}
    assert finish([call], {"max_tokens": 100}, ESTIMATOR)[1:3] == (100, "max_tokens")
