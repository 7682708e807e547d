"""Many threads, one session: whole turns one after another, a failure undoes its own turn only,
and async calls in flight together are numbered apart.

Real threads, released together by a barrier, call `Session.ask` on one session over the
in-process emulator.  The emulator's reply quotes the last user message and counts the
messages it saw, so each reply shows which prompt it answered and how much conversation came
before it.  Mid-stream, each `on_text` yields the GIL (`time.sleep(0)`, not a wait), so turns
that were not serialised would interleave.  Nothing here waits on time for a test to pass; the
one bounded `join` below only gives a broken lock the chance to show itself.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import anthropic
import pytest

from pcache_magic.emulator import Emulator
from pcache_magic.session.guide_messages import UserMessage
from pcache_magic.session.session import CallInProgress, Session
from pcache_magic.session.transport import connect

from _helpers import MODEL

THREADS = 8
ASKS = 4
#: A thread that should finish at once is taken as blocked when still alive after this long.
BLOCKED_S = 0.5


def make(emu: Emulator) -> Session:
    return Session(model=MODEL, connection=connect(emulator=emu, max_retries=0))


def run_together(count: int, body: Callable[[int], None]) -> None:
    """`body(i)` on `count` threads released at once; a thread's uncaught error fails the test."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            body(i)
        except BaseException as error:  # reported below, on the test's thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads) and errors == []


def yield_gil(chunk: str) -> None:
    time.sleep(0)  # a switch point mid-stream, not a wait


def breaking(chunk: str) -> None:
    raise RuntimeError("the notebook's callback broke")


def text_of(content: list[dict[str, Any]]) -> str:
    return "".join(item.get("text", "") for item in content)


def assert_one_conversation(session: Session) -> list[str]:
    """Turns alternate, each reply answers the prompt before it having seen every turn before it,
    and the successful calls are those turns, in order; the prompts, in conversation order."""
    blocks = session.conversation.blocks
    assert [b.role for b in blocks] == ["user", "assistant"] * (len(blocks) // 2)
    prompts = [text_of(b.content) for b in blocks[::2]]
    for turn, (prompt, reply) in enumerate(zip(prompts, blocks[1::2], strict=True)):
        answer = text_of(reply.content)
        assert f'Your last message: "{prompt}"' in answer
        assert f"messages {2 * turn + 1})" in answer  # it saw the turns before it and its prompt
    ok = [c for c in session.calls if c.ok]
    assert [text_of(c.request["messages"][-1]["content"]) for c in ok] == prompts
    assert [text_of(c.response.model_dump()["content"]) for c in ok if c.response] == [
        text_of(b.content) for b in blocks[1::2]
    ]
    return prompts


def in_thread_order(prompts: list[str]) -> None:
    """Each thread's prompts appear in the order it asked them."""
    for t in range(THREADS):
        mine = [p for p in prompts if p.startswith(f"thread {t} ")]
        assert mine == sorted(mine)


def test_eight_threads_asking_at_once_take_whole_turns_in_order(emu: Emulator) -> None:
    session = make(emu)

    def asker(t: int) -> None:
        for k in range(ASKS):
            session.ask(f"thread {t} ask {k}", stream=t % 2 == 0, on_text=yield_gil)

    run_together(THREADS, asker)
    prompts = assert_one_conversation(session)
    assert len(prompts) == THREADS * ASKS
    in_thread_order(prompts)
    assert [c.index for c in session.calls] == list(range(1, THREADS * ASKS + 1))


def test_a_failed_call_takes_out_its_own_turn_and_nothing_else(emu: Emulator) -> None:
    """One call gets an injected 500 (whichever thread sends first); thread 3's second ask fails
    in its own `on_text`; every other ask succeeds and keeps its turn."""
    session = make(emu)
    emu.inject(500)
    failures: dict[str, BaseException] = {}
    lock = threading.Lock()

    def asker(t: int) -> None:
        for k in range(ASKS):
            prompt = f"thread {t} ask {k}"
            try:
                session.ask(prompt, stream=True, on_text=breaking if (t, k) == (3, 1) else yield_gil)
            except (anthropic.InternalServerError, RuntimeError) as error:
                with lock:
                    failures[prompt] = error

    run_together(THREADS, asker)
    assert sorted(type(e).__name__ for e in failures.values()) == ["InternalServerError", "RuntimeError"]
    assert isinstance(failures["thread 3 ask 1"], RuntimeError)
    prompts = assert_one_conversation(session)
    assert len(prompts) == THREADS * ASKS - 2 and not set(failures) & set(prompts)
    in_thread_order(prompts)
    assert sorted(c.index for c in session.calls) == list(range(1, THREADS * ASKS + 1))
    failed = [c for c in session.calls if not c.ok]
    assert sorted(text_of(c.request["messages"][-1]["content"]) for c in failed) == sorted(failures)


def test_blocking_false_refuses_while_another_thread_is_in_a_call(emu: Emulator) -> None:
    session = make(emu)
    inside, release = threading.Event(), threading.Event()

    def hold(chunk: str) -> None:
        inside.set()
        assert release.wait(timeout=30)

    first = threading.Thread(target=session.ask, args=("first",), kwargs={"on_text": hold})
    first.start()
    try:
        assert inside.wait(timeout=30)
        with pytest.raises(CallInProgress, match=r"^Another call is in progress on this session"):
            session.ask("refused", blocking=False)
        # A block edited from another thread waits for the turn: it lands after the reply.
        late = threading.Thread(
            target=session.context, args=("Added from another thread.",), kwargs={"name": "late"}
        )
        late.start()
        late.join(timeout=BLOCKED_S)
        assert late.is_alive() and session.conversation.names() == ["prompt"]
    finally:
        release.set()
        first.join(timeout=30)
    late.join(timeout=30)
    assert session.conversation.names() == ["prompt", "reply", "late"]
    assert [c.index for c in session.calls] == [1] and session.calls[0].ok
    session.ask("after", blocking=False)  # nothing in progress now: it goes
    assert [c.index for c in session.calls] == [1, 2]


def test_an_ask_from_inside_an_ask_on_the_same_thread_is_refused(session: Session) -> None:
    refused: list[BaseException] = []

    def nested(chunk: str) -> None:
        if not refused:
            try:
                session.ask("nested")
            except CallInProgress as error:
                refused.append(error)

    session.ask("outer", on_text=nested)
    assert len(refused) == 1 and "on the same thread" in str(refused[0])
    assert session.conversation.names() == ["prompt", "reply"] and len(session.calls) == 1


def test_a_reset_load_or_block_change_from_inside_an_ask_is_refused(session: Session, tmp_path: Any) -> None:
    """From `on_text`, a reset left 0 blocks and one call numbered 2, and dropping the turn's prompt
    two replies in a row (reviews)."""
    session.ask("first")
    session.save(tmp_path / "s.json")
    refused: list[str] = []

    def meddle(chunk: str) -> None:
        if not refused:
            changes = (
                session.reset,
                lambda: session.load(tmp_path / "s.json"),
                lambda: session.drop("prompt"),
                lambda: session.context("late notes", name="late"),
            )
            for change in changes:
                try:
                    change()
                except CallInProgress as error:
                    refused.append(str(error))

    session.ask("second", on_text=meddle)
    assert len(refused) == 4 and all("is refused during ask()" in said for said in refused)
    assert [c.index for c in session.calls] == [1, 2] and len(session.conversation.blocks) == 4
    session.reset()  # after the turn: as ever
    assert session.calls == []


def test_twenty_gathered_async_calls_get_distinct_indices(session: Session) -> None:
    async def gathered() -> list[Any]:
        asks = (session.acreate([UserMessage(content=f"question {i}", source="user")]) for i in range(20))
        return await asyncio.gather(*asks)

    results = asyncio.run(gathered())
    assert sorted(c.index for c in session.calls) == list(range(1, 21))
    assert all(c.ok for c in session.calls)
    for record in session.calls:  # each record holds its own request's answer
        asked = text_of(record.request["messages"][-1]["content"])
        assert f'Your last message: "{asked}"' in text_of(record.response.model_dump()["content"])  # type: ignore[union-attr]
    assert {r.raw.id for r in results} == {c.response.id for c in session.calls}  # type: ignore[union-attr]
    session.ask("and then a notebook turn")
    assert session.calls[-1].index == 21


def test_a_save_waits_for_the_turn_in_progress_and_keeps_it_whole(tmp_path: Any) -> None:
    session = make(Emulator())
    session.system("You answer briefly.", name="rules")
    streaming, release, saved = threading.Event(), threading.Event(), threading.Event()

    def hold(chunk: str) -> None:  # the turn is mid-stream until the test lets it go on
        streaming.set()
        release.wait(30)

    asking = threading.Thread(target=lambda: session.ask("First question", on_text=hold))
    asking.start()
    assert streaming.wait(30)
    path = tmp_path / "session.json"
    saving = threading.Thread(target=lambda: (session.save(path), saved.set()))
    saving.start()
    assert not saved.wait(BLOCKED_S)  # held back: the turn holds the session
    release.set()
    asking.join(30)
    saving.join(30)
    loaded = make(Emulator())
    loaded.load(path)
    assert [b.kind for b in loaded.conversation.blocks] == ["system", "prompt", "reply"]
    assert len(loaded.calls) == 1 and loaded.calls[0].response is not None
