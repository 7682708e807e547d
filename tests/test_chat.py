"""`chat.Chat`, alone: a turn on the conversation it is given, its tool loop, prewarm, and rollback.

The part is given the request renderer, the call pipeline and `emit`; the same behaviour
through `Session.ask` is tested in test_session.py.
"""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from pcache_magic.analysis.cachebook import CacheBook
from pcache_magic.core.conversation import Block, CacheControl, Conversation
from pcache_magic.core.models import default_models
from pcache_magic.core.record import CallRecord
from pcache_magic.emulator import Emulator
from pcache_magic.session.calls import CallPipeline
from pcache_magic.session.chat import Chat
from pcache_magic.session.requests import Planners, Requests
from pcache_magic.session.session_settings import Settings

from _helpers import MODEL

#: About 1,500 tokens: above Sonnet 4.5's 1,024-token minimum.
LONG = " ".join(f"line{i % 40}" for i in range(1_500))
WEATHER = {"name": "get_weather", "input_schema": {"type": "object"}}


class Alone:
    """A Chat built without a session, and what it was given, to look at."""

    def __init__(self, emu: Emulator) -> None:
        models = default_models()
        book = CacheBook(models)
        self.calls: list[CallRecord] = []
        self.events: list[tuple[str, Any]] = []
        self.settings = Settings(model=MODEL, max_tokens=256)
        planners = Planners(models, book, self.calls)
        pipeline = CallPipeline(
            client=emu.client(max_retries=0),
            async_client=None,
            models=models,
            book=book,
            calls=self.calls,
            planners=planners,
            settings=self.settings,
            clock=emu.now,
            emit=self.emit,
            estimated=True,
        )
        self.chat = Chat(Requests(self.settings, planners, emu.now), pipeline, self.emit)
        self.conversation = Conversation()
        marked = CacheControl()
        self.conversation.add(
            Block(name="sys", role="system", kind="system", content=[text(LONG)], cache=marked)
        )

    def emit(self, event: str, payload: Any) -> None:
        self.events.append((event, payload))


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def test_ask_adds_the_turn_and_the_reply_to_the_conversation_given(emu: Emulator) -> None:
    alone = Alone(emu)
    seen: list[str] = []
    message = alone.chat.ask(alone.conversation, "What is this?", on_text=seen.append, cache="last")
    assert alone.conversation.names() == ["sys", "prompt", "reply"]
    assert "".join(seen) == message.content[0].text  # type: ignore[union-attr]
    (record,) = alone.calls
    assert record.kind == "ask" and record.request["max_tokens"] == 256  # the settings' own
    assert record.request["messages"][0]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    assert alone.events == [("call", record), ("blocks", None)]


def test_the_tool_loop_answers_each_call_then_ends_the_turn(emu: Emulator) -> None:
    alone = Alone(emu)
    alone.conversation.add(Block(name="tools", role="tools", kind="tools", content=[WEATHER]))
    asked: list[str] = []
    message = alone.chat.ask(
        alone.conversation, "Use get_weather", stream=False, run_tool=lambda name, args: asked.append(name)
    )
    assert message.stop_reason == "end_turn" and asked == ["get_weather"]
    assert alone.conversation.names() == ["sys", "tools", "prompt", "reply", "prompt-tool-result", "reply-2"]
    assert [c.kind for c in alone.calls] == ["ask", "tool_loop"]


@pytest.mark.parametrize("stream", [False, True])
def test_a_failed_turn_leaves_the_conversation_as_it_was(emu: Emulator, stream: bool) -> None:
    alone = Alone(emu)
    before = list(alone.conversation.blocks)
    emu.inject(500)
    with pytest.raises(anthropic.InternalServerError):
        alone.chat.ask(alone.conversation, "One", stream=stream)
    assert alone.conversation.blocks == before
    (failed,) = alone.calls
    assert failed.outcome == "failed" and alone.events == [("call", failed), ("blocks", None)]


def test_ctrl_c_mid_stream_leaves_the_conversation_as_it_was(emu: Emulator) -> None:
    alone = Alone(emu)
    before = list(alone.conversation.blocks)

    def stop(chunk: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        alone.chat.ask(alone.conversation, "One", on_text=stop)
    assert alone.conversation.blocks == before and alone.calls[0].error == "interrupted"


def test_prewarm_sends_a_placeholder_turn_and_keeps_nothing(emu: Emulator) -> None:
    alone = Alone(emu)
    before = alone.conversation.model_dump()
    message = alone.chat.prewarm(alone.conversation)
    assert message.stop_reason == "max_tokens" and alone.conversation.model_dump() == before
    (record,) = alone.calls
    assert (record.kind, record.request["max_tokens"], record.outcome) == ("prewarm", 0, "write")
    assert record.request["messages"] == [{"role": "user", "content": [text("(pre-warming the cache)")]}]
    assert alone.events == [("call", record)]  # the blocks did not change


def test_a_failed_turn_takes_out_its_own_blocks_and_keeps_what_others_added(emu: Emulator) -> None:
    """A block added while the turn was under way (here by the tool runner) is not the turn's own:
    the failure takes out the prompt, the reply and the tool result, and leaves it."""
    alone = Alone(emu)
    alone.conversation.add(Block(name="tools", role="tools", kind="tools", content=[WEATHER]))

    def run_tool(name: str, args: dict[str, Any]) -> str:
        alone.conversation.add(Block(name="notes", role="system", kind="system", content=[text("A note.")]))
        emu.inject(500)  # the round that sends the tool result fails
        return "sunny"

    with pytest.raises(anthropic.InternalServerError):
        alone.chat.ask(alone.conversation, "Use get_weather", stream=False, run_tool=run_tool)
    assert alone.conversation.names() == ["sys", "tools", "notes"]
    assert [c.kind for c in alone.calls] == ["ask", "tool_loop"] and not alone.calls[1].ok


def test_a_failed_turn_puts_back_the_block_its_name_replaced(emu: Emulator) -> None:
    alone = Alone(emu)
    alone.chat.ask(alone.conversation, "First wording", name="question", stream=False)
    alone.chat.ask(alone.conversation, "Next", stream=False)
    before = list(alone.conversation.blocks)
    emu.inject(500)
    with pytest.raises(anthropic.InternalServerError):
        alone.chat.ask(alone.conversation, "Second wording", name="question", stream=False)
    assert alone.conversation.blocks == before
    assert all(a is b for a, b in zip(alone.conversation.blocks, before, strict=True))
