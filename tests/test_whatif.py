"""The offline what-if: each strategy replayed on the emulator engine, priced by hand."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest

from pcache_magic.analysis.oracle import oracle_cost
from pcache_magic.analysis.strategies import planner_strategy
from pcache_magic.analysis.whatif import (
    BASELINES,
    NO_SHARE,
    STRATEGIES,
    Replay,
    WhatIf,
    ideal_cost,
    replays,
    simulate,
    what_if,
)
from pcache_magic.core import fmt
from pcache_magic.core.prefix import layout
from pcache_magic.core.tokens import TokenEstimator
from pcache_magic.emulator import Emulator
from pcache_magic.session.session import Session
from pcache_magic.session.transport import connect

from _helpers import gathered_then_one, parse, text, unguarded_dollars

MODEL = "claude-sonnet-4-5"  # $3 input, $3.75 5m write, $6 1h write, $0.30 read, $15 output


def words(n: int, tag: str = "w") -> str:
    return " ".join(f"{tag}{i % 97}" for i in range(n))


def _session() -> tuple[Emulator, Session]:
    emu = Emulator()
    return emu, Session(model=MODEL, connection=connect(emulator=emu))


def _three_calls() -> Session:
    """A marked system prompt and three asks, the second after a 400 s pause (its entry expires)."""
    _, session = _session()
    session.system(words(1_500), cache="5m", name="rules")
    for prompt, pause in (("one", 30), ("two", 400), ("three", 30)):
        session.ask(prompt, stream=False, cache="last")
        session.advance(pause)
    return session


def test_replaying_the_session_as_sent_reproduces_the_recorded_cost() -> None:
    session = _three_calls()
    result = what_if(session)
    assert [r.strategy for r in result.runs] == list(STRATEGIES)
    assert result.recorded is not None
    assert result.run("as-sent").cost.total == pytest.approx(result.recorded.total, rel=1e-12)
    assert result.run("as-sent").tokens.read == sum(c.tokens.read for c in session.calls)
    assert result.ideal.total <= min(r.cost.total for r in result.runs)
    assert result.oracle is not None and result.ideal.total <= result.oracle.total
    assert result.oracle.total <= min(r.cost.total for r in result.runs) * (1 + 1e-12)
    html = result._repr_html_()
    assert "one marker on the last message" in html and "ideal" in html and "oracle" in html
    assert "claudette" not in html  # a label says what the strategy does, not whose it is
    assert "Saving: against no caching. Share: of the oracle's saving." in str(result)  # the key
    share = result.fraction_of_oracle("planner")
    assert share is not None and share <= 1
    assert f"Its share of the oracle's saving: {fmt.share(share)}." in " ".join(str(result).split())


def test_the_what_if_says_share_of_one_saving_throughout() -> None:
    """Header, caption, rows and the planner's note: one measure (the oracle's saving), one name."""
    session = _three_calls()
    result = what_if(session)
    shown = str(result)
    assert "ideal" not in shown.split("\n", 1)[0] and "of ideal" not in shown and "oracle saves" not in shown
    caption = result._caption()
    assert caption.startswith("What if: ") and ". " not in caption and "Saving" not in caption  # one sentence
    rows = {cells[0]: cells[1:] for line in shown.splitlines() if len(cells := re.split(r"\s{2,}", line)) > 1}
    planner = result.fraction_of_oracle("planner")
    assert rows["the planner (--cache auto)"][2] == fmt.share(planner)  # the column is the note's figure
    none = result.run("none").cost.total
    assert result.oracle is not None
    # the floors: their saving, the oracle's 100%, and a dash (explained) where a figure cannot be
    assert rows["oracle: best caching in hindsight"][1:] == [
        fmt.money(none - result.oracle.total),
        "100%",
        "—",
        "—",
    ]
    assert rows["ideal: repeats read, writes free"][1:] == [
        fmt.money(none - result.ideal.total),
        "—",
        "—",
        "—",
    ]
    assert f"share of the oracle's saving: {fmt.share(planner)}" in " ".join(shown.split())
    assert max(len(line) for line in shown.splitlines()) <= fmt.TEXT_WIDTH
    html = result._repr_html_()  # shown from Python: `%claude_cost`'s class, and no `$` MathJax reads
    assert html.startswith('<div class="pcache-panel pcache-cost pcache-cost-whatif"><table')
    assert not unguarded_dollars(html) and "Share: of the oracle&#x27;s saving." in html


def test_what_if_prices_each_strategy_as_the_rules_say() -> None:
    """Two stateless calls on one cached-size document, 60 s apart: the dollars worked out by hand."""
    document = words(2_000, "d")
    requests = [
        {
            "model": MODEL,
            "max_tokens": 100,
            "system": "Answer from the document.",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": document}, {"type": "text", "text": q}]}
            ],
        }
        for q in ("What is the first point?", "And the last one?")
    ]
    calls = [Replay(0.0, requests[0], 100), Replay(60.0, requests[1], 200)]
    estimator = TokenEstimator()
    lays = [layout(r, estimator) for r in requests]
    total = [lay.total_tokens for lay in lays]
    blocks = [lay.positions[-1].cumulative for lay in lays]  # all but the uncached tail no marker reaches
    tail = total[0] - blocks[0]
    shared = lays[0].positions[1].cumulative  # system + document: what the two calls share
    output = (100 + 200) * 15
    per_million = 1e6

    none = simulate(calls, "none").cost.total
    assert none == pytest.approx((3 * sum(total) + output) / per_million)
    # the last message is the question: each call writes everything, the second cannot read the first's entry
    assert simulate(calls, "last").cost.total == pytest.approx(
        (3.75 * sum(blocks) + 3 * 2 * tail + output) / per_million
    )
    assert simulate(calls, "automatic").cost.total == simulate(calls, "last").cost.total
    # the planner puts a free breakpoint after the document on the first call and, knowing nothing of
    # the gaps yet, hedges it for an hour; the question gets a 5m marker (a follow-up may extend it);
    # the second call reads the document and, having seen questions replaced, writes nothing new
    planner = simulate(calls, "planner")
    first_question = blocks[0] - shared
    assert (planner.tokens.write_1h, planner.tokens.write_5m, planner.tokens.read) == (
        shared,
        first_question,
        shared,
    )
    first = 6 * shared + 3.75 * first_question + 3 * tail
    second_uncached = 0.3 * shared + 3 * (total[1] - shared)
    assert planner.cost.total == pytest.approx((first + second_uncached + output) / per_million)
    ideal = ideal_cost(calls)
    assert ideal.total == pytest.approx((3 * total[0] + second_uncached + output) / per_million)
    # the oracle knows the second call comes a minute later: the document for 5 minutes, questions uncached
    oracle = oracle_cost(calls)
    assert oracle.total == pytest.approx(
        (3.75 * shared + 3 * (first_question + tail) + second_uncached + output) / per_million
    )
    assert ideal.total <= oracle.total <= min(simulate(calls, s).cost.total for s in STRATEGIES)


def test_one_hour_beats_five_minutes_across_pauses() -> None:
    _, session = _session()
    session.context(words(3_000), cache="5m", name="codebase")
    for prompt in ("a", "b", "c", "d"):
        session.ask(prompt, stream=False)
        session.advance(600)  # ten minutes: a 5m entry is gone, a 1h one lives on
    result = what_if(session, [*BASELINES])
    five, hour = result.run("all-5m"), result.run("all-1h")
    assert five.tokens.read == 0 and hour.tokens.read > 0
    assert hour.cost.total < five.cost.total
    assert result.best_baseline.strategy == "all-1h"  # the user's own markers are baselines too
    assert five.cost.total > result.run("none").cost.total  # every 5m write expires unread


def test_unknown_or_rejected_requests_are_reported() -> None:
    bad: dict[str, Any] = {"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": ""}]}
    with pytest.raises(ValueError, match="call 1 under 'no caching': the emulator rejected it"):
        simulate([Replay(0.0, bad)], "none")
    with pytest.raises(KeyError):
        simulate([], "no-such-strategy")


def test_a_strategy_can_be_passed_as_a_function() -> None:
    """`simulate` takes a strategy maker as well as a name (the benchmark's informed planner is one)."""
    request = {"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": words(2_000)}]}
    calls = [Replay(0.0, request), Replay(30.0, request)]
    run = simulate(calls, planner_strategy())
    assert run.strategy == run.label == "make" and run.tokens.read > 0
    assert run.cost.total == simulate(calls, "planner").cost.total
    assert BASELINES == ("none", "last", "automatic", "all-5m", "all-1h")


def shares(result: WhatIf) -> dict[str, str]:
    """The share column of the text table by row, the strategies and the oracle (the columns are
    found by their header's position: a blank cell leaves no mark of its own)."""
    lines = str(result).splitlines()
    head = next(line for line in lines if line.startswith("strategy "))
    start, stop = head.index("share"), head.index("read")
    labels = [r.label for r in result.runs] + ["oracle: best caching in hindsight"]
    return {
        label: line[start:stop].strip() for line in lines for label in labels if line.startswith(label + "  ")
    }


def test_every_share_is_a_percentage_or_a_dash_that_is_explained() -> None:
    """The column mixed "none", "0%", percentages and blanks: now a percentage wherever the share
    is defined (negative when caching cost more), and where it is not (the oracle saves nothing)
    a dash that the key under the table, and the cell's tooltip, explain."""
    _, session = _session()  # short prompts, under the cache minimum: nothing can be saved
    session.ask("Hello", stream=False)
    session.ask("Again", stream=False)
    flat = what_if(session)
    assert set(shares(flat).values()) == {NO_SHARE} and len(shares(flat)) == len(flat.runs) + 1
    why = "A share of — is undefined: the oracle saves nothing against no caching."
    assert why in " ".join(str(flat).split())
    html = flat.to_html()
    share_cells = [tr[3] for tr in parse(f"<div>{html}</div>").iter("tr") if tr[0].tag == "td"]
    dashes = [td for td in share_cells[:-1] if td.text == NO_SHARE]  # the strategies' and the oracle's
    assert len(dashes) == len(flat.runs) + 1
    assert {td.get("title") for td in dashes} == {"undefined: the oracle saves nothing against no caching"}
    assert why.replace("'", "&#x27;") in html

    _, session = _session()  # a 1h write read once, after a pause: most caching costs more
    session.system(words(1_500), cache="1h", name="rules")
    session.ask("one", stream=False)
    session.advance(3_000)
    session.ask("two", stream=False)
    costly = what_if(session)
    shown = shares(costly)
    assert all(re.fullmatch(r"-?\d+%", s) for s in shown.values()), shown
    assert shown["no caching"] == "0%" and shown["oracle: best caching in hindsight"] == "100%"
    negative = [k for k, v in shown.items() if v.startswith("-")]
    assert negative and "none" not in shown.values() and "undefined" not in str(costly)
    for label in negative:
        run = next(r for r in costly.runs if r.label == label)
        assert shown[label] == f"-{fmt.share(-(costly.fraction_of_oracle(run.strategy) or 0))}"


def test_the_floors_say_what_they_are_and_no_cell_is_left_blank() -> None:
    """A new user found the oracle's and the ideal's rows half blank, and the ideal cheaper than the
    oracle, with nothing to say why.  Now each has its saving, a dash with a tooltip where a figure
    cannot be (a floor is priced, not replayed; the ideal's share would pass 100%), and a line
    under the table says what each floor is."""
    session = _three_calls()
    result = what_if(session)
    assert result.oracle is not None and result.ideal.total < result.oracle.total
    html = result.to_html()
    root = parse(f"<div>{html}</div>")
    body = [tr for tr in root.iter("tr") if tr[0].tag == "td"]
    assert all(text(td).strip() for tr in body for td in tr)  # no blank cell
    oracle, ideal = body[-2:]
    assert [oracle[0].text, ideal[0].text] == [
        "oracle: best caching in hindsight",
        "ideal: repeats read, writes free",
    ]
    for tr in (oracle, ideal):
        assert [td.text for td in tr[4:]] == [NO_SHARE, NO_SHARE]
        assert all("not replayed" in (td.get("title") or "") for td in tr[4:])
    assert ideal[3].text == NO_SHARE and "past 100%" in (ideal[3].get("title") or "")
    assert oracle[3].text == "100%" and oracle[3].get("title") is None
    said = " ".join(str(result).split())
    assert (
        "Oracle: the cheapest caching had the future been known (4-marker and 20-block limits relaxed)"
        in said
    )
    assert "no strategy costs less" in said
    assert (
        "Ideal: every prefix seen before read, no write paid: never above the oracle, a bound no "
        "real caching reaches" in said
    )
    assert "no token counts (—). The ideal's share would pass 100%." in said
    assert "undefined" not in said  # the oracle saves something: no share is undefined here
    assert "a bound no real caching reaches." in " ".join(
        t.text or "" for t in root.iter("p")
    )  # under the HTML table too
    assert max(len(line) for line in str(result).splitlines()) <= fmt.TEXT_WIDTH


def test_a_planner_beaten_by_its_hour_bet_says_why() -> None:
    """A new user read "the planner (--cache auto)" as the worst row of a short session and nothing
    said why: before any pause it writes a large stable prefix for an hour."""
    _, quick = _session()
    quick.context(words(3_000), name="codebase")
    for prompt in ("a", "b"):
        quick.ask(prompt, stream=False)
    note = what_if(quick).notes[0]
    assert "costs 1." in note and "writes a large stable prefix for an hour" in note
    _, paced = _session()
    paced.context(words(3_000), name="codebase")
    for prompt in ("a", "b", "c", "d"):
        paced.ask(prompt, stream=False)
        paced.advance(600)  # the pauses the hour is for: the bet pays, nothing to explain
    assert "for an hour" not in what_if(paced).notes[0]


def test_a_loss_to_an_hour_baseline_is_not_said_to_be_a_loss_to_no_caching() -> None:
    """A 5m entry expired by a 6-minute pause: all 1h is the best baseline, and saved half. The note
    said "any caching cost more than none" against its own table (a new user's review)."""
    _, session = _session()
    session.context(words(3_000), cache="5m", name="handbook")
    for prompt, pause in (("a", 240), ("b", 360), ("c", 0)):
        session.ask(prompt, stream=False)
        session.advance(pause)
    result = what_if(session)
    assert result.best_baseline.strategy == "all-1h"
    said = " ".join(result.notes[0].split())
    assert "cost more than none" not in said and "5m writes were cheaper" not in said
    assert "tokens more than that baseline, and not all of them were read back" in said


def test_when_no_write_pays_the_notes_and_tooltips_say_so() -> None:
    """A model switch after one call: nothing is read back, no caching is the best baseline and the
    oracle saves nothing.  The ideal's share dash said "past 100%" and the planner's note said 5m
    writes were cheaper: each now says what happened."""
    _, session = _session()
    session.context(words(3_000), name="codebase")
    session.ask("a", stream=False, model="claude-haiku-4-5")
    session.ask("b", stream=False)
    result = what_if(session)
    assert result.best_baseline.strategy == "none"
    said = " ".join(str(result).split())
    assert "5m writes were cheaper" not in said and "would pass 100%" not in said
    assert "No write was read back enough to pay for itself in these calls" in said
    root = parse(f"<div>{result.to_html()}</div>")
    ideal = [tr for tr in root.iter("tr") if tr[0].tag == "td"][-1]
    assert ideal[3].get("title") == "undefined: the oracle saves nothing against no caching"


def test_calls_sent_together_replay_as_the_writes_they_were() -> None:
    """Gathered calls each wrote (none could read another's write): replayed in turn, the second and
    third read, and "as sent" cost less than the calls did."""
    _, session = _session()
    gathered_then_one(session, words(3_000))
    recorded = sum(c.cost.total for c in session.calls)
    assert what_if(session).run("as-sent").cost.total == pytest.approx(recorded)


def test_a_batchs_requests_replay_at_the_batch_rate() -> None:
    """A batch's items were billed at half price: every strategy pays them so, and the floors too
    (the oracle stays under every strategy and over the ideal)."""
    from pcache_magic.session import batch

    _, session = _session()
    session.system(words(3_000), cache="5m", name="rubric")
    session.ask("first", stream=False, cache="last")
    base = session.params()
    batch.run_batch(session, [{**base, "messages": [{"role": "user", "content": f"q{i}"}]} for i in range(3)])
    assert [c.kind for c in session.calls] == ["ask", "batch", "batch", "batch"]
    result = what_if(session)
    assert result.recorded is not None
    assert result.run("as-sent").cost.total == pytest.approx(result.recorded.total, rel=1e-12)
    standard = what_if([replace(r, batch=False) for r in replays(session.calls)])
    for run in result.runs:  # the same tokens, the batch's at half price
        assert run.tokens == standard.run(run.strategy).tokens
        assert run.cost.total < standard.run(run.strategy).cost.total
    assert result.oracle is not None and result.oracle.total <= min(r.cost.total for r in result.runs)
    assert result.ideal.total <= result.oracle.total
