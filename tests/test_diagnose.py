"""Every miss cause reproduced against the emulator, and explained the way a user can act on.

Each test builds a real Session on the in-process emulator (claude-sonnet-4-5: 1,024-token
minimum), provokes one cause, and checks the local explanation (cause code, block, offset,
excerpt) and that it agrees with the `diagnostics.cache_miss_reason` the emulator returned.
Time moves only through `Session.advance`, never by sleeping.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from _images import PNG_1X1_B64
from anthropic.types import CacheMissToolsChanged, Diagnostics

from pcache_magic.analysis.diagnose import Explainer, Explanation, explain, explain_all
from pcache_magic.core.fmt import quoted
from pcache_magic.emulator import Emulator
from pcache_magic.session.session import Session

from _helpers import gathered_then_one


def words(n: int, tag: str = "w") -> str:
    return " ".join(f"{tag}{i % 97}" for i in range(n))


def tool(name: str, n: int = 700) -> dict[str, Any]:
    return {"name": name, "description": words(n, name[:2]), "input_schema": {"type": "object"}}


def test_timestamp_in_the_system_prompt(session: Session) -> None:
    stem = "You review code. Current time: 2026-01-01 "
    session.system(stem + "09:00:00. " + words(1_500), cache="5m", name="rules")
    session.ask("First question", stream=False)
    session.advance(30)
    session.system(stem + "09:00:30. " + words(1_500), cache="5m", name="rules")
    session.ask("Second question", stream=False)

    why = explain(session)
    cause = why.causes[0]
    assert cause.code == "system_changed"
    assert (cause.path, cause.block) == ("system.0", "rules")
    assert cause.offset == len(stem) + 6  # the first character that differs: "09:00:0" -> "09:00:3"
    assert cause.before is not None and "09:00:00" in cause.before
    assert cause.after is not None and "09:00:30" in cause.after
    assert cause.missed > 1_024
    assert "looks like a time of day" in cause.message
    assert why.summary.startswith("wrote ")
    # in words, with the user's block name: not "system changed at system.0 @48"
    n = len(stem) + 6
    assert f"system changed in 'rules', character {n}: '09:00:00.' → '09:00:30.'" in why.summary
    assert "@" not in why.summary and "system.0" not in why.summary
    assert f"system changed in 'rules' (system.0), character {n}: " in cause.message
    assert (why.api, why.agrees) == ("system_changed", True)


def test_reordered_tools(session: Session) -> None:
    first, second = tool("search"), tool("fetch")
    session.tools([first, second], cache="5m", name="tools")
    session.ask("Go", stream=False)
    session.tools([second, first], cache="5m", name="tools")
    session.ask("Again", stream=False)

    why = explain(session)
    assert why.causes[0].code == "tools_changed"
    assert why.causes[0].short == "tools reordered"
    assert (why.causes[0].before, why.causes[0].after) == ("search, fetch", "fetch, search")
    assert "tools reordered" in why.summary
    assert (why.api, why.agrees) == ("tools_changed", True)


def test_expired_entry_that_one_hour_would_have_kept(session: Session) -> None:
    session.context(words(1_500), cache="5m", name="paper")
    session.ask("Summarise", stream=False)
    started = session.calls[0].started_at
    session.advance(301)
    session.ask("And the method?", stream=False)

    why = explain(session)
    assert why.codes == ("expired",)
    cause = why.causes[0]
    assert cause.block == "paper"
    assert "expired at 09:05:00" in cause.message  # the emulator's clock starts at 09:00:00 UTC
    assert "a 1h lifetime would have kept it" in cause.message
    assert why.summary.endswith("expired 5m entry at 'paper' (1h would have kept it)")
    assert session.calls[1].started_at - started == 301
    assert (why.api, why.agrees) == ("none", True)  # nothing diverged: the API reports no reason


def test_expired_beyond_an_hour_says_no_lifetime_helps(session: Session) -> None:
    session.context(words(1_500), cache="1h", name="paper")
    session.ask("Summarise", stream=False)
    session.advance(3_700)
    session.ask("Again", stream=False)
    assert "no lifetime would have kept it" in explain(session).causes[0].message


def test_a_1h_entry_that_expired_under_a_5m_one_is_named_too(session: Session) -> None:
    """After 65 minutes both entries are gone: the why names the 5m one (the deepest) and the 1h one
    under it, whose tokens are most of what was paid again."""
    session.context(words(3_000), cache="1h", name="handbook")
    session.context(words(1_500), cache="5m", name="guide")
    session.ask("Summarise", stream=False)
    session.advance(65 * 60)
    session.ask("Again", stream=False)
    cause = explain(session).causes[0]
    assert cause.code == "expired" and cause.block == "guide"
    assert cause.short == "expired 5m entry at 'guide' (and the 1h at 'handbook')"
    assert "The 1h entry at 'handbook'" in cause.message and "had expired too, at 10:00:00" in cause.message


def test_below_minimum(session: Session) -> None:
    session.system("Be brief. " + words(200), cache="5m", name="short")
    session.ask("Hi", stream=False)

    why = explain(session)
    assert why.codes == ("below_minimum",)
    assert why.causes[0].block == "short"
    assert why.summary.startswith("uncached: below claude-sonnet-4-5's minimum (")
    assert "< 1,024 tokens" in why.summary
    assert [m.status for m in why.marks] == ["below-minimum"]


def test_a_marker_below_the_minimum_does_not_head_a_call_that_hit(session: Session) -> None:
    # A small marked tool block before a long marked system prompt: the first marker does nothing,
    # but the call read 2,000+ tokens, and its headline says that, with the marker in the details.
    session.tools([tool("search", 40)], cache="5m", name="tools")
    session.system(words(1_500), cache="5m", name="rules")
    session.ask("One", stream=False)
    session.ask("Two", stream=False)

    why = explain(session)
    assert why.summary == f"hit {session.calls[-1].tokens.read:,}"
    assert why.codes == ("below_minimum",) and why.causes[0].block == "tools"
    assert [m.status for m in why.marks] == ["below-minimum", "hit"]


def test_the_breakpoints_part_is_said_in_the_blocks_tables_words(session: Session) -> None:
    """`%claude_explain` showed the literals "covered" and "below-minimum": now the blocks
    table's "next call" words ("in a hit", "below min"), each with its meaning in a tooltip."""
    session.tools([tool("search", 40)], cache="5m", name="tools")  # below the minimum
    session.system(words(1_500), cache="5m", name="rules")  # read by the second call: "in a hit"
    session.context(words(20, "c"), cache="5m", name="notes")
    session.ask("One", stream=False)
    session.ask("Two", stream=False)
    why = explain(session)
    assert [m.status for m in why.marks] == ["below-minimum", "covered", "hit"]
    cells = {tr[0].text: tr[-1] for tr in ET.fromstring(why.to_html()).iter("tr") if tr[0].tag == "td"}
    assert [c.text for c in cells.values()] == ["below min", "in a hit", "hit"]
    assert "minimum" in (cells["tools"].get("title") or "")
    assert "longer prefix" in (cells["rules"].get("title") or "") and cells["notes"].get("title") is None
    assert "covered" not in "".join(c.text or "" for c in cells.values())
    # each cell of words reads left in an untrusted notebook too (JupyterLab right-aligns cells)
    rows = [tr for tr in ET.fromstring(why.to_html()).iter("tr") if tr[0].tag == "td"]
    left = [[td.get("style") == "text-align:left" for td in tr] for tr in rows]
    assert left and all(flags == [True, True, True, False, True] for flags in left)


def test_beyond_the_twenty_block_lookback(session: Session) -> None:
    session.context(words(1_500), name="doc")
    session.ask("Question one", stream=False, cache="last")
    session.context([{"type": "text", "text": f"note {i}"} for i in range(25)], name="notes")
    session.ask("Question two", stream=False, cache="last")

    why = explain(session)
    assert "beyond_lookback" in why.codes
    cause = next(c for c in why.causes if c.code == "beyond_lookback")
    assert cause.path == "messages.0.content.1"
    assert "27 blocks before the nearest marker" in cause.message
    assert why.summary.startswith("wrote ") and "lookback 20" in why.summary
    assert why.agrees is True  # messages were only appended: the API reports nothing


def test_marker_moved_to_an_earlier_block(session: Session) -> None:
    session.tools([tool("lookup", 1_200)], name="tools")
    session.context(words(800), cache="5m", name="doc")
    session.ask("Q1", stream=False)
    session.tools([tool("lookup", 1_200)], cache="5m", name="tools")
    session.context(words(800), name="doc")
    session.ask("Q2", stream=False)

    why = explain(session)
    assert "marker_moved" in why.codes
    assert next(c for c in why.causes if c.code == "marker_moved").block == "doc"


def test_model_changed(session: Session) -> None:
    session.context(words(1_500), cache="5m", name="doc")
    session.ask("Q1", stream=False)
    session.ask("Q2", stream=False, model="claude-sonnet-4-6")

    why = explain(session)
    assert why.codes[0] == "model_changed"
    assert "model changed (claude-sonnet-4-5 → claude-sonnet-4-6)" in why.summary
    assert (why.api, why.agrees) == ("model_changed", True)


def test_tool_choice_changed_invalidates_only_messages(session: Session) -> None:
    session.tools([tool("lookup", 1_200)], cache="5m", name="tools")
    session.context(words(300), name="doc")
    session.ask("Q1", stream=False, cache="last")
    session.ask("Q2", stream=False, cache="last", tool_choice={"type": "none"})

    why = explain(session)
    assert why.codes[0] == "settings_changed"
    assert "tool_choice changed" in why.summary
    assert why.summary.startswith("hit ")  # the tools entry is still read
    assert session.calls[1].tokens.read > 1_024
    assert (why.api, why.agrees) == ("unavailable", True)


def test_speed_changed_invalidates_system_and_messages_not_tools(session: Session) -> None:
    """A setting of the docs' table that is rendered into the system prompt: tools stay cached."""
    session.tools([tool("lookup", 1_200)], cache="5m", name="tools")
    session.system(words(600), cache="5m", name="rules")
    session.ask("Q1", stream=False, cache="last")
    session.ask("Q2", stream=False, cache="last", speed="fast")

    why = explain(session)
    assert why.codes[0] == "settings_changed"
    assert "speed changed since call 1 (system prompt and messages cached again)" in why.summary
    assert 1_024 < session.calls[1].tokens.read < session.calls[0].tokens.written  # the tools entry only
    assert (why.api, why.agrees) == ("unavailable", True)


def test_workspace_changed(emu: Emulator, session: Session) -> None:
    session.context(words(1_500), cache="5m", name="doc")
    session.ask("Q1", stream=False)
    session.client = emu.client(api_key="sk-ant-another-workspace")
    session.ask("Q2", stream=False)

    why = explain(session)
    assert why.codes[0] == "workspace_changed"
    assert (why.api, why.agrees) == ("previous_message_not_found", True)


def test_a_growing_chat_hits_and_says_so(session: Session) -> None:
    session.system(words(1_500), cache="5m", name="rules")
    for prompt in ("one", "two", "three"):
        session.ask(prompt, stream=False, cache="last")
        session.advance(20)
    summaries = [e.summary for e in explain_all(session)]
    assert summaries[0].startswith("wrote ")
    assert all(s.startswith("hit ") for s in summaries[1:]), summaries
    assert explain(session, 2).codes == ()
    live = Explainer(session)  # the panel's way: one call at a time
    assert [live.explain(r).summary for r in session.calls] == summaries


def test_a_removed_system_block_is_named_where_it_was(session: Session) -> None:
    session.system(words(1_500), cache="5m", name="rules")
    session.system(words(300, "x"), name="style")
    session.ask("Q1", stream=False)
    session.drop("style")
    session.ask("Q2", stream=False)
    cause = explain(session).causes[0]
    assert (cause.code, cause.path) == ("system_changed", "system.1")
    assert cause.short == "system changed: a block added or removed at 'style'"  # gone: as it was sent
    assert explain(session).agrees is True


def test_a_shorter_request_agrees_with_messages_changed(session: Session) -> None:
    session.system(words(1_500), cache="5m", name="rules")
    session.context(words(200, "c"), name="note")
    session.ask("Q1", stream=False)
    params = session.calls[-1].request
    shorter = {**params, "messages": params["messages"][:1]}  # the same prefix, its tail cut
    shorter["messages"][0] = {**shorter["messages"][0], "content": shorter["messages"][0]["content"][:1]}
    names = {"system.0": "rules"}
    session._pipeline.send("create", shorter, names, stream=False, on_text=None)
    why = explain(session)
    assert why.codes == () and why.summary.startswith("hit ")
    assert (why.api, why.agrees) == ("messages_changed", True)


def test_disagreement_with_the_api_is_flagged(session: Session) -> None:
    session.system("Clock 09:00:00 " + words(1_500), cache="5m", name="rules")
    session.ask("Q1", stream=False)
    session.system("Clock 09:00:05 " + words(1_500), cache="5m", name="rules")
    session.ask("Q2", stream=False)
    record = session.calls[-1]
    assert record.response is not None
    wrong = CacheMissToolsChanged(type="tools_changed", cache_missed_input_tokens=10)
    record.response = record.response.model_copy(update={"diagnostics": Diagnostics(cache_miss_reason=wrong)})

    why = explain(session)
    assert why.codes[0] == "system_changed"
    assert (why.api, why.agrees) == ("tools_changed", False)
    assert why.summary.endswith("≠ API: tools_changed")
    assert any("DISAGREES (locally: system_changed)" in line for line in why.lines)
    assert "pcache-disagree" in why._repr_html_()


def test_rendering_and_errors(session: Session) -> None:
    with pytest.raises(ValueError, match="No calls yet"):
        explain(session)
    session.system("<b>rules</b> " + words(1_500), cache="5m", name="rules")
    session.ask("Q1", stream=False)
    why = explain(session)
    assert isinstance(why, Explanation)
    assert str(why).startswith("Call 1: wrote ")
    assert "First call of the session" in str(why)
    html = why.to_html()
    assert 'data-call="1"' in html and "<b>rules</b>" not in html
    with pytest.raises(ValueError, match="No call 5"):
        explain(session, 5)


@pytest.mark.parametrize(
    ("second", "says"),
    [
        (" More rules follow.", "in 'rules', character {n}: added ' More rules follow.'"),
        ("", "in 'rules', character {m}: removed 'service.'"),
    ],
)
def test_text_added_or_cut_at_the_end_of_a_block_is_named(session: Session, second: str, says: str) -> None:
    body = words(1_500) + " at your service."
    session.system(body, cache="5m", name="rules")
    session.ask("First question", stream=False)
    changed = body + second if second else body.removesuffix("service.")
    session.system(changed, cache="5m", name="rules")
    session.ask("Second question", stream=False)
    why = explain(session)
    assert says.format(n=len(body), m=len(changed)) in why.summary


def test_an_image_added_says_so_and_what_it_invalidates(session: Session) -> None:
    """A new user added an image and read "images changed": the why now names the change and the
    rule (the docs' table note: an image added or removed anywhere invalidates the messages)."""
    session.context(words(1_500), cache="5m", name="notes")
    session.ask("Q1", stream=False, cache="last")
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_1X1_B64}}
    session.context([image], name="figure")
    session.ask("Q2", stream=False, cache="last")

    why = explain(session)
    assert why.codes[0] == "settings_changed"
    assert "images added or removed since call 1 (messages cached again)" in why.summary
    assert "images changed" not in why.summary
    (cause,) = [c for c in why.causes if c.code == "settings_changed"]
    assert cause.message == (
        "Since call 1, images added or removed: that invalidates the messages cache (tools and system "
        "stay cached). Put images in the first turn, or expect this rewrite."
    )


def test_a_hostile_block_name_is_quoted_on_one_line_and_cut(session: Session) -> None:
    """A name with a newline and an escape sequence kept the one-line why two lines and drove a
    terminal; a 100 KB name doubled the explanation."""
    name = "rules\n\x1b[31m" + "x" * 100_000
    session.system("Time: 09:00:00. " + words(1_500), cache="5m", name=name)
    session.ask("Q1", stream=False)
    session.system("Time: 09:00:30. " + words(1_500), cache="5m", name=name)
    session.ask("Q2", stream=False)

    summary = explain(session).summary
    assert "\n" not in summary and "\x1b" not in summary and len(summary) < 200
    assert quoted("C:\\tmp\\new") == "'C:\\tmp\\new'"  # a backslash reads as one
    assert quoted("a\u200bb\u202e") == "'a\\u200bb\\u202e'"  # zero-width, direction: escapes
    assert "system changed in 'rules ␛[31mxxx" in summary and "…', character 12" in summary


def test_a_block_edited_or_dropped_since_is_named_as_it_was_sent(session: Session, tmp_path: Path) -> None:
    """An older call's why named an edited block by its path (`system.0`): the conversation now
    holds another version or none; after a load too, where the panel explains every call again."""
    for at in ("09:00:00", "09:00:30", "09:01:00"):
        session.system(f"Time: {at}. " + words(1_500), cache="5m", name="rules")
        session.ask(f"Q at {at}", stream=False)
    session.drop("rules")
    why = "system changed in 'rules', character 12: '09:00:00.' → '09:00:30.'"
    assert why in explain(session, 2).summary
    loaded = Session(model=session.model)
    loaded.load(session.save(tmp_path / "s.json"))
    assert why in explain(loaded, 2).summary and loaded.book.names == session.book.names


def test_a_name_is_the_one_sent_at_that_place_even_for_the_same_content(session: Session) -> None:
    # The same text moved from system block 'alpha' into context block 'beta': the system block
    # removed is 'alpha', never the name the text had elsewhere.
    session.system(words(1_500), cache="5m", name="alpha")
    session.ask("Q1", stream=False)
    session.drop("alpha")
    session.context(words(1_500), name="beta")
    session.ask("Q2", stream=False)
    assert "a block added or removed at 'alpha'" in explain(session, 2).summary


def test_a_block_renamed_with_the_same_content_is_named_as_sent_last(session: Session) -> None:
    session.system(words(1_500), cache="5m", name="old")
    session.ask("Q1", stream=False)
    block = session.conversation.drop("old")
    session.conversation.add(block.model_copy(update={"name": "new"}))
    session.advance(360)
    session.ask("Q2", stream=False)
    session.system(words(1_500) + " Edited.", cache="5m", name="new")  # the content sent is gone now
    assert "expired 5m entry at 'new'" in explain(session, 2).summary


def test_a_reset_forgets_the_names_the_blocks_were_sent_under(session: Session, tmp_path: Path) -> None:
    session.system(words(1_500), cache="5m", name="secret-codename")
    session.ask("Q1", stream=False)
    session.reset()
    assert session.book.names == {}
    saved = json.loads(session.save(tmp_path / "s.json").read_text())
    assert saved["block_names"] == []  # (the ledger keeps its live entries, named, as a reset says)


def test_calls_sent_together_are_explained_as_the_writes_they_were(session: Session, tmp_path: Path) -> None:
    """Gathered calls each write (an entry is readable once the response that wrote it began): the
    explanation said "by the rules ... were cached", or an expired entry, against the prediction.
    The calls in flight are recorded, kept in the session file, and explained the same after a load."""
    gathered_then_one(session, words(3_000))
    assert [c.in_flight for c in session.calls] == [[], [1], [1, 2], []]
    assert [c.outcome for c in session.calls] == ["write", "write", "write", "hit"]
    assert [c.prediction[0]["status"] for c in session.calls if c.prediction] == ["write"] * 3 + ["hit"]
    written = session.calls[0].tokens.written
    whys = [e.summary for e in explain_all(session)]
    assert whys == [f"wrote {written:,} (5m)"] * 3 + [f"hit {written:,}"]
    said = explain(session, 3)
    assert "Sent while calls 1 and 2 were in flight" in " ".join(said.lines) and said.agrees is not False
    session.save(tmp_path / "s.json")
    loaded = Session(model=session.model)
    loaded.load(tmp_path / "s.json")
    assert [c.in_flight for c in loaded.calls] == [[], [1], [1, 2], []]
    assert [e.summary for e in explain_all(loaded)] == whys


def test_a_call_that_read_what_a_call_in_flight_wrote_is_explained_as_the_hit_it_was(
    session: Session,
) -> None:
    """A long answer's write is readable once it began, before it came back: a call sent meanwhile
    may read it (a review: explained as a write, against its own usage)."""
    import asyncio

    from pcache_magic import UserMessage

    system = session.cached_system_message(words(3_000))
    emu = session.connection.emulator  # type: ignore[union-attr]
    answer = emu._ahandle

    async def overlapping() -> None:
        reached, release = asyncio.Event(), asyncio.Event()

        async def slow(request: Any) -> Any:  # the first's write lands at once, its answer later
            response = await answer(request)
            if not reached.is_set():
                reached.set()
                await release.wait()
            return response

        emu._ahandle = slow
        session.async_client = emu.async_client()
        first = asyncio.create_task(session.acreate([system, UserMessage(content="one", source="user")]))
        await reached.wait()
        await session.acreate([system, UserMessage(content="two", source="user")])
        release.set()
        await first

    asyncio.run(overlapping())
    second = next(c for c in session.calls if c.in_flight)
    assert second.outcome == "hit"
    said = explain(session, second.index)
    assert (
        said.summary.startswith("hit ")
        and said.agrees is not False
        and "in flight" not in " ".join(said.lines)
    )


def test_a_failed_calls_error_prints_visible_and_cut(session: Session) -> None:
    """A server's error with ESC and RLO, 100 KB long: its plain text drove a terminal, turned the
    text after it, and ran to 200 KB (the summary and its line)."""
    session.ask("Q1", stream=False)
    params = {"model": session.model, "max_tokens": 8, "messages": [{"role": "user", "content": "Hi"}]}
    record = session.begin_call("create", params, {})
    session.end_call(record, params, {}, 0.0, error=RuntimeError("\x1b[2J\u202e<script>" + "M" * 100_000))
    text = str(explain(session))
    assert "\x1b" not in text and "\u202e" not in text and len(text) < 5_000
    assert text.startswith("Call 2: failed: RuntimeError: ␛[2J\\u202e<script>MMM")
