"""`observers.Observers`: a session's listeners, told of each change in the order they came."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from pcache_magic.session.observers import Observers


def test_every_observer_is_told_in_order_with_the_payload() -> None:
    observers = Observers()
    heard: list[tuple[str, str, Any]] = []
    observers.subscribe(lambda event, payload: heard.append(("first", event, payload)))
    observers.subscribe(lambda event, payload: heard.append(("second", event, payload)))
    observers.emit("call", 7)
    observers.emit("reset")
    assert heard == [
        ("first", "call", 7),
        ("second", "call", 7),
        ("first", "reset", None),
        ("second", "reset", None),
    ]
    assert len(observers) == 2


def test_unsubscribing_stops_the_telling_and_twice_is_harmless() -> None:
    observers = Observers()
    heard: list[str] = []
    unsubscribe = observers.subscribe(lambda event, payload: heard.append(event))
    observers.emit("blocks")
    unsubscribe()
    unsubscribe()
    observers.emit("blocks")
    assert heard == ["blocks"] and len(observers) == 0


def test_an_observer_leaving_while_told_does_not_skip_the_next() -> None:
    observers = Observers()
    heard: list[str] = []

    def leaving(event: str, payload: Any) -> None:
        heard.append("leaving")
        unsubscribe()

    unsubscribe = observers.subscribe(leaving)
    observers.subscribe(lambda event, payload: heard.append("staying"))
    observers.emit("call")
    observers.emit("call")
    assert heard == ["leaving", "staying", "staying"]


def test_an_observer_that_raises_is_warned_about_once_and_the_others_are_told() -> None:
    observers = Observers()
    heard: list[str] = []

    def broken(event: str, payload: Any) -> None:
        raise ValueError("panel\nbroke")

    observers.subscribe(broken)
    observers.subscribe(lambda event, payload: heard.append(event))
    with pytest.warns(RuntimeWarning) as warned:
        observers.emit("call", 1)
        observers.emit("blocks")
    assert heard == ["call", "blocks"]
    (line,) = [str(w.message) for w in warned]  # once, in one line
    assert line.startswith("A session observer (") and "broken) raised ValueError: panel broke when" in line
    assert "'call'" in line and "\n" not in line

    def stop(event: str, payload: Any) -> None:
        raise KeyboardInterrupt

    observers.subscribe(stop)  # a Ctrl-C is no observer's error: it goes through
    with pytest.raises(KeyboardInterrupt):
        observers.emit("call")


def test_an_observers_error_is_said_without_the_key_or_controls_and_never_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The warning quotes the error: its key is blotted, its escapes are pictures; an error whose
    text itself fails, or warnings made errors, still leave the change made and the others told."""
    key = "sk-ant-api03-" + "q" * 40
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)

    class Unprintable(Exception):
        def __str__(self) -> str:
            raise ValueError("no text")

    def leaky(event: str, payload: Any) -> None:
        raise RuntimeError(f"\x1b]0;owned\x07 {key}")

    def mute(event: str, payload: Any) -> None:
        raise Unprintable

    observers, heard = Observers(), []
    for observer in (leaky, mute, lambda event, payload: heard.append(event)):
        observers.subscribe(observer)
    with pytest.warns(RuntimeWarning) as warned:
        observers.emit("call")
    said = " ".join(str(w.message) for w in warned)
    assert (
        key not in said and "\x1b" not in said and "[API key]" in said and "raised Unprintable when" in said
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        observers.subscribe(lambda event, payload: 1 / 0)
        observers.emit("blocks")  # said, never raised
    assert heard == ["call", "blocks"]


def test_an_unsubscribed_observer_is_not_held_and_is_warned_again_if_it_comes_back() -> None:
    observers = Observers()

    def broken(event: str, payload: Any) -> None:
        raise ValueError("x")

    leave = observers.subscribe(broken)
    with pytest.warns(RuntimeWarning):
        observers.emit("call")
    leave()
    assert observers._failed == []  # a dead panel is not kept alive by its old failure
    observers.subscribe(broken)
    with pytest.warns(RuntimeWarning):
        observers.emit("call")
