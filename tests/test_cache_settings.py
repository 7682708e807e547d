"""`core.cache_settings`: the docs' invalidation table, row by row, through the emulator; and the tail.

Each row of data/cache_settings.json gets a fidelity test: a request with a breakpoint on the tool,
on the system prompt and on the last message is sent, then sent again with only that setting
changed; which breakpoint still reads says which levels the change kept, and the response's
cache diagnostics say what the docs say they report.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable
from importlib import resources
from typing import Any

import pytest

from pcache_magic.core.cache_settings import count_citations, default_settings
from pcache_magic.core.output_format import FORMAT_OVERHEAD
from pcache_magic.core.prefix import layout
from pcache_magic.core.tokens import TokenEstimator
from pcache_magic.emulator.engine import Engine

MODEL = "claude-sonnet-4-5"  # documented minimum 1,024 tokens
KEY = "sk-ant-test-settings"
EPH = {"type": "ephemeral"}
TABLE = default_settings()
PNG_1X1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}


FORMAT = {
    "type": "json_schema",
    "schema": {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
        "additionalProperties": False,
    },
}


def words(n: int, tag: str) -> str:
    return " ".join(f"{tag}{i % 89}" for i in range(n))


def tool(name: str = "lookup", **extra: Any) -> dict[str, Any]:
    schema = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    return {"name": name, "description": words(1_200, "t"), "input_schema": schema, **extra}


def document(cited: bool) -> dict[str, Any]:
    source = {"type": "text", "media_type": "text/plain", "data": words(300, "d")}
    return {"type": "document", "source": source, "citations": {"enabled": cited}}


def body(**extra: Any) -> dict[str, Any]:
    """Breakpoints on the tool, the system prompt and the last message, each past the minimum."""
    question = {"type": "text", "text": words(400, "m"), "cache_control": dict(EPH)}
    params: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 2_000,
        "tools": [tool(cache_control=dict(EPH))],
        "system": [{"type": "text", "text": words(600, "s"), "cache_control": dict(EPH)}],
        "messages": [{"role": "user", "content": [document(False), question]}],
    }
    return params | extra


Change = Callable[[dict[str, Any]], None]


def _add_web_search(params: dict[str, Any]) -> None:
    params["tools"].insert(0, dict(WEB_SEARCH))  # before the marked tool: still not a tools change


def _cite(params: dict[str, Any]) -> None:
    params["messages"][0]["content"][0] = document(True)


def _add_image(params: dict[str, Any]) -> None:  # after the last marker: only the rule can miss it
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_1X1}}
    params["messages"][0]["content"].append(image)


def _add_deferred(params: dict[str, Any]) -> None:
    params["tools"].insert(0, tool("rarely_used", defer_loading=True))


def _set(key: str, value: Any) -> Change:
    def change(params: dict[str, Any]) -> None:
        params[key] = value

    return change


#: Per row: the change, the deepest level still read afterwards (None: nothing), and the reason the
#: response's diagnostics give (the docs' table: PC; the diagnostics page: CD).
ROWS: dict[str, tuple[Change, str | None, str | None]] = {
    "web_search": (_add_web_search, "tools", "unavailable"),
    "citations": (_cite, "tools", "unavailable"),
    "speed": (_set("speed", "fast"), "tools", "unavailable"),
    "tool_choice": (_set("tool_choice", {"type": "any"}), "system", "unavailable"),
    "thinking": (_set("thinking", {"type": "enabled", "budget_tokens": 1_024}), "system", "unavailable"),
    "effort": (_set("output_config", {"effort": "low"}), "system", "unavailable"),
    "output_format": (_set("output_config", {"format": FORMAT}), "tools", "unavailable"),
    "images": (_add_image, "system", "messages_changed"),
    "deferred_tools": (_add_deferred, "messages", None),
}


def send_twice(change: Change) -> tuple[str | None, dict[str, Any], dict[str, Any]]:
    """The deepest level the changed request still read, and the two responses."""
    engine = Engine()
    before = body(diagnostics={"previous_message_id": None})
    first = engine.create_message(KEY, before)
    after = copy.deepcopy(before)
    change(after)
    after["diagnostics"] = {"previous_message_id": first["id"]}
    second = engine.create_message(KEY, after)
    read = second["usage"]["cache_read_input_tokens"]
    marked = [p for p in layout(after, engine.estimator, model=MODEL).positions if p.marker]
    level = next((p.level for p in reversed(marked) if p.cumulative == read), None)
    assert read == 0 or level is not None, "the read must end at one of the breakpoints"
    return level, first, second


def test_every_row_of_the_table_has_a_fidelity_test() -> None:
    assert {r.name for r in TABLE.rows} == set(ROWS)


@pytest.mark.parametrize("name", sorted(ROWS))
def test_a_changed_setting_invalidates_the_levels_the_docs_say(name: str) -> None:
    change, kept, reason = ROWS[name]
    level, first, second = send_twice(change)
    assert first["usage"]["cache_creation_input_tokens"] > 0
    assert level == kept
    # The table agrees: a row invalidating from `system` keeps the tools, from `messages` the system.
    invalidates = TABLE.row(name).level
    assert kept == {"system": "tools", "messages": "system", None: "messages"}[invalidates]
    found = second["diagnostics"]
    assert (found and found["cache_miss_reason"]["type"]) == reason


def test_a_changed_tool_definition_invalidates_everything_and_is_reported() -> None:
    level, _, second = send_twice(lambda p: p["tools"][0].update(description="Another tool."))
    assert level is None and second["usage"]["cache_read_input_tokens"] == 0
    assert second["diagnostics"]["cache_miss_reason"]["type"] == "tools_changed"


@pytest.mark.parametrize(
    ("key", "default"),
    [
        ("speed", "standard"),
        ("output_config", {"effort": "high"}),
        ("tool_choice", {"type": "auto"}),
        ("thinking", {"type": "disabled"}),
    ],
)
def test_a_default_value_is_the_same_as_omitting_it(key: str, default: Any) -> None:
    level, _, second = send_twice(_set(key, default))
    assert level == "messages" and second["diagnostics"] is None


def test_web_search_and_deferred_tools_change_no_tools_level_key() -> None:
    plain = layout(body(), TokenEstimator())
    changed = body()
    _add_web_search(changed)
    _add_deferred(changed)
    lay = layout(changed, TokenEstimator())
    deferred, web, marked = lay.positions[:3]
    assert (deferred.tokens, deferred.cacheable, web.cacheable) == (0, False, True)
    assert marked.key == plain.positions[0].key  # the marked tool: the same tools-level entry
    assert lay.positions[3].key != plain.positions[1].key  # web search is a system salt
    assert [TABLE.tool_role(t) for t in changed["tools"]] == ["deferred", "setting", "prefix"]


def test_values_read_each_row_and_defaults_read_as_omitted() -> None:
    counts = {"images": 2, "citations": 1}
    params = body(speed="fast", output_config={"effort": "high"}, thinking={"type": "disabled"})
    values = TABLE.values(params, counts)
    assert values == {
        "web_search": None,
        "citations": True,
        "speed": "fast",
        "output_format": None,
        "tool_choice": None,
        "thinking": None,
        "effort": None,
        "images": 2,
    }
    assert TABLE.values(params, counts, "system").keys() == {
        "web_search",
        "citations",
        "speed",
        "output_format",
    }
    assert "images" not in TABLE.diagnosed(params, counts)  # an image is content: messages_changed
    changed = TABLE.changed(params, body(output_config={"effort": "max"}), (counts, counts))
    assert [r.name for r in changed] == ["speed", "effort"]


def test_citations_are_counted_in_documents_search_results_and_tool_results() -> None:
    result = {"type": "tool_result", "tool_use_id": "t", "content": [document(True), document(False)]}
    message = {"role": "user", "content": [document(True), document(False), result, {"type": "text"}]}
    assert count_citations(message) == 2
    assert count_citations({"role": "user", "content": "plain"}) == 0


def test_the_data_file_names_a_source_for_every_row_and_for_the_tail() -> None:
    raw = resources.files("pcache_magic.core") / "data" / "cache_settings.json"
    data = json.loads(raw.read_text(encoding="utf-8"))
    for row in data["settings"]:
        cited = {s.strip() for s in row["source"].split(",")}
        assert cited <= data["sources"].keys(), row["name"]
    tail = data["uncached_tail"]
    assert tail["source"] in data["sources"] and tail["tokens"] == TABLE.tail_tokens == 3
    assert {o["source"] for o in tail["observed"]} <= data["sources"].keys()


# -- the uncached tail ----------------------------------------------------------------------------
def test_the_cookbooks_conversation_bills_a_tail_of_three_and_reads_each_write() -> None:
    """The prompt-caching cookbook's multi-turn example: the book in a marked system prompt, the
    marker moved to the last user turn; the real API (claude-sonnet-4-5) showed 3 input tokens on
    every turn, and each turn read what the one before had read and written."""
    engine = Engine()
    system = [{"type": "text", "text": words(3_000, "b"), "cache_control": dict(EPH)}]
    messages: list[dict[str, Any]] = []
    seen: list[dict[str, Any]] = []
    for question in ("What is the title?", "Who are the Bennets?", "What is Netherfield?", "Theme?"):
        for m in messages:
            if m["role"] == "user":
                m["content"][0].pop("cache_control", None)
        messages.append(
            {"role": "user", "content": [{"type": "text", "text": question, "cache_control": EPH}]}
        )
        params = {"model": MODEL, "max_tokens": 300, "system": system, "messages": copy.deepcopy(messages)}
        reply = engine.create_message(KEY, params)
        seen.append(reply["usage"])
        counted = engine.count_tokens(KEY, {k: v for k, v in params.items() if k != "max_tokens"})
        usage = reply["usage"]
        prompt = (
            usage["input_tokens"] + usage["cache_read_input_tokens"] + usage["cache_creation_input_tokens"]
        )
        assert prompt == counted["input_tokens"]
        messages.append(
            {"role": "assistant", "content": [{"type": "text", "text": reply["content"][0]["text"]}]}
        )
    assert [u["input_tokens"] for u in seen] == [3, 3, 3, 3]
    assert seen[0]["cache_read_input_tokens"] == 0
    for before, after in itertools.pairwise(seen):
        assert (
            after["cache_read_input_tokens"]
            == before["cache_read_input_tokens"] + before["cache_creation_input_tokens"]
        )


def test_the_tail_follows_the_blocks_after_the_last_breakpoint() -> None:
    """The cookbook's single turn: the book marked, a question after it; input = question + tail."""
    engine = Engine()
    question = {"type": "text", "text": "What is the title of this book? Only output the title."}
    book = {"type": "text", "text": words(3_000, "b"), "cache_control": dict(EPH)}
    params = {"model": MODEL, "max_tokens": 300, "messages": [{"role": "user", "content": [book, question]}]}
    first, second = (engine.create_message(KEY, params)["usage"] for _ in range(2))
    positions = layout(params, engine.estimator).positions
    assert first["input_tokens"] == second["input_tokens"] == positions[1].tokens + 3
    assert (
        second["cache_read_input_tokens"] == first["cache_creation_input_tokens"] == positions[0].cumulative
    )


def _prompt(usage: dict[str, Any]) -> int:
    return int(
        usage["input_tokens"] + usage["cache_creation_input_tokens"] + usage["cache_read_input_tokens"]
    )


def test_the_same_format_reads_and_its_tokens_are_part_of_the_system_level() -> None:
    """Structured outputs: the format's prompt is counted once, at the first block past the tools,
    so the tools breakpoint reads as before, and the same format sent again reads everything."""
    engine = Engine()
    plain = engine.create_message(KEY, body())["usage"]
    with_format = body(output_config={"format": FORMAT})
    first = engine.create_message(KEY, copy.deepcopy(with_format))["usage"]
    again = engine.create_message(KEY, copy.deepcopy(with_format))["usage"]
    grown = _prompt(first) - _prompt(plain)
    assert grown > FORMAT_OVERHEAD and _prompt(again) == _prompt(first)
    assert first["cache_read_input_tokens"] > 0  # the tools level, kept
    assert again["cache_creation_input_tokens"] == 0
    assert again["cache_read_input_tokens"] == _prompt(again) - TABLE.tail_tokens
    system = layout(with_format, engine.estimator, model=MODEL).positions[1]
    bare = layout(body(), engine.estimator, model=MODEL).positions[1]
    assert system.level == "system" and system.tokens - bare.tokens == grown
    counting = {k: v for k, v in with_format.items() if k != "max_tokens"}
    assert engine.count_tokens(KEY, counting) == {"input_tokens": _prompt(first)}
