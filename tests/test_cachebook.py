"""The session's book of the cache: layouts kept between calls, checks, predictions, learning."""

from __future__ import annotations

from typing import Any

from pcache_magic.analysis.cachebook import CacheBook
from pcache_magic.core.models import default_models
from pcache_magic.core.prefix import layout
from pcache_magic.core.tokens import TokenEstimator

MODEL = "claude-sonnet-4-5"  # caches from 1,024 tokens
EPH: dict[str, Any] = {"type": "ephemeral"}
LONG = "The reviewer reads every section of the paper with care. " * 300


def request(*turns: str, marked: bool = True) -> dict[str, Any]:
    system = {"type": "text", "text": LONG, **({"cache_control": EPH} if marked else {})}
    messages = [{"role": "user", "content": [{"type": "text", "text": t}]} for t in turns]
    return {"model": MODEL, "max_tokens": 10, "system": [system], "messages": messages}


def statuses(book: CacheBook, params: dict[str, Any], now: float) -> list[str]:
    findings, predictions = book.check(params, None, default_models().get(MODEL), now)
    assert not [f for f in findings if f.level == "error"]
    return [p.status for p in predictions]


def test_the_last_layout_is_kept_and_the_next_reuses_its_shared_prefix() -> None:
    book = CacheBook(default_models())
    first = request("Hello")
    lay = book.layout(first)
    assert book.layout(first) is lay  # the same request: checked, then learned from
    second = {**first, "messages": [*first["messages"], {"role": "user", "content": "More"}]}
    grown = book.layout(second)
    assert grown.positions[: len(lay.positions)] == lay.positions
    assert all(a is b for a, b in zip(grown.positions, lay.positions, strict=False))  # not laid out again
    assert grown == layout(second, TokenEstimator())  # and the same as from scratch


def test_a_write_is_predicted_then_read_until_it_expires() -> None:
    book, params, info = CacheBook(default_models()), request("Hello"), default_models().get(MODEL)
    assert statuses(book, params, 0.0) == ["write"]
    book.learn(params, {}, info, 0.0, read=0)
    assert [e["tokens"] for e in book.ledger.entries(0.0)] == [book.layout(params).positions[0].cumulative]
    again = request("Hello")  # new dicts, same content: the same prefix key
    assert statuses(book, again, 299.0) == ["hit"]
    assert statuses(book, again, 301.0) == ["write"]  # five minutes later the entry is gone


def test_a_request_that_breaks_a_rule_gets_an_error_and_no_prediction() -> None:
    book, info = CacheBook(default_models()), default_models().get(MODEL)
    params = request(*[f"turn {i}" for i in range(5)])
    for message in params["messages"]:
        message["content"][0]["cache_control"] = EPH  # with the system marker: six
    lay = book.layout(params)
    assert book.breakpoints(params, lay) is None
    findings, predictions = book.check(params, None, info, 0.0)
    assert [f.code for f in findings if f.level == "error"] == ["too-many-breakpoints"] and predictions == []
    book.learn(params, {}, info, 0.0, read=0)
    assert book.ledger.entries(0.0) == []  # the API refuses such a request: nothing was written


def test_an_unmarked_request_predicts_nothing_and_writes_nothing() -> None:
    book, params, info = (
        CacheBook(default_models()),
        request("Hello", marked=False),
        default_models().get(MODEL),
    )
    assert statuses(book, params, 0.0) == []
    book.learn(params, {}, info, 0.0, read=0)
    assert book.ledger.entries(0.0) == []


def test_an_edit_is_priced_against_the_last_request_answered_and_entries_get_keep_warm_advice() -> None:
    book, info = CacheBook(default_models()), default_models().get(MODEL)
    first = request("Hello")
    assert book.edit_impact(first, None, info, 0.0) is None  # nothing sent yet
    book.check(first, None, info, 0.0)
    book.learn(first, {"system.0": "rules"}, info, 0.0, read=0)
    assert book.edit_impact(first, None, info, 10.0) is None  # the same request: nothing to rewrite
    edited = request("Hello")
    edited["system"][0] = {**edited["system"][0], "text": LONG + " Be brief."}
    impact = book.edit_impact(edited, {"system.0": "rules"}, info, 10.0)
    assert impact is not None
    assert (impact.block, impact.ttl) == ("rules", "5m")
    assert impact.tokens == book.layout(edited).positions[0].cumulative
    # calls six minutes apart: the 5m entry written at 360 dies before the next call at 720
    book.learn(first, {"system.0": "rules"}, info, 360.0, read=0)
    (advice,) = book.keep_warm([0.0, 360.0], 370.0)
    assert advice.block == "rules"
    assert advice.worth
