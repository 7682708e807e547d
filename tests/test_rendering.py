"""Renderings that say how many of their messages are the very dicts of the one before."""

from __future__ import annotations

import copy
import gc
import pickle

import pytest

from pcache_magic.core.conversation import Block, Conversation, cache_control
from pcache_magic.core.prefix import layout
from pcache_magic.core.rendering import _TOLD_FROM, RenderedMessages
from pcache_magic.core.tokens import TokenEstimator

MODEL = "claude-sonnet-4-5"


def turn(conversation: Conversation, n: int, role: str = "user") -> None:
    kind = "prompt" if role == "user" else "reply"
    conversation.add(
        Block(name=f"{role}{n}", role=role, kind=kind, content=[{"type": "text", "text": f"t{n}"}])
    )  # type: ignore[arg-type]


def long(messages: int = _TOLD_FROM + 6) -> Conversation:
    conversation = Conversation()
    for n in range(messages // 2):
        turn(conversation, n)
        turn(conversation, n, "assistant")
    return conversation


def render(conversation: Conversation, marked: bool = True) -> RenderedMessages:
    params, _ = conversation.render(model=MODEL, max_tokens=1, last_turn=cache_control() if marked else None)
    messages = params["messages"]
    assert type(messages) is RenderedMessages
    return messages


def identical(a: list[object], b: list[object]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x is not y), min(len(a), len(b)))


def test_a_new_turn_shares_every_message_before_it_and_says_so() -> None:
    conversation = long()
    first = render(conversation)
    turn(conversation, 99)
    second = render(conversation)
    told = second.shared_with(first)
    assert told == identical(second, first) and told >= len(first) - 2  # the last one was marked
    assert second.shared_with([*first]) == -1  # an equal list is not the rendering it was built on


def test_an_edit_in_the_middle_is_where_the_sharing_stops() -> None:
    conversation = long()
    first = render(conversation)
    conversation.add(
        Block(name="user3", role="user", kind="prompt", content=[{"type": "text", "text": "edited"}])
    )
    second = render(conversation)
    assert second.shared_with(first) == identical(second, first) == 6


def test_a_rendering_in_between_is_seen_through_even_once_it_is_gone() -> None:
    conversation = long()
    sent = render(conversation)
    render(conversation, marked=False)  # a view's rendering, kept nowhere
    gc.collect()
    turn(conversation, 99)
    then = render(conversation)
    assert then.shared_with(sent) == identical(then, sent) >= 0


def test_a_short_conversation_says_nothing_and_is_compared_instead() -> None:
    conversation = long(10)
    first = render(conversation)
    turn(conversation, 99)
    assert render(conversation).shared_with(first) == -1


def test_the_rendering_built_on_is_not_kept_alive_and_copies_are_plain_lists() -> None:
    conversation = long()
    first = render(conversation)
    turn(conversation, 99)
    second = render(conversation)
    turn(conversation, 100)
    render(conversation)
    assert second.shared_with(first) >= 0
    copied = [copy.copy(second), copy.deepcopy(second), pickle.loads(pickle.dumps(second))]
    assert all(type(c) is list and c == second for c in copied)


def test_a_layout_built_on_what_a_rendering_says_has_the_keys_of_one_from_scratch() -> None:
    conversation, estimator = long(), TokenEstimator()
    params, _ = conversation.render(model=MODEL, max_tokens=1, last_turn=cache_control())
    previous = layout(params, estimator)
    for n in range(99, 104):
        turn(conversation, n, "user" if n % 2 else "assistant")
        if n == 101:  # an earlier block replaced in place
            conversation.add(
                Block(
                    name="assistant5", role="assistant", kind="reply", content=[{"type": "text", "text": "x"}]
                )
            )
        params, _ = conversation.render(model=MODEL, max_tokens=1, last_turn=cache_control())
        built = layout(params, estimator, previous=previous)
        fresh = layout(params, estimator)
        assert [p.key for p in built.positions] == [p.key for p in fresh.positions]
        previous = built


def test_a_rendering_refuses_edits_in_place_and_a_copy_can_be_edited() -> None:
    messages = render(long())
    with pytest.raises(TypeError, match=r"list\(params\['messages'\]\)"):
        messages.append({"role": "user", "content": "more"})
    with pytest.raises(TypeError):
        messages[0] = {"role": "user", "content": "changed"}
    edited = list(messages)
    edited.append({"role": "user", "content": "more"})
    assert len(edited) == len(messages) + 1


class _Adding(Block):
    """A block that adds another block to its conversation while it is rendered (as another
    thread's `add` may land while a rendering is under way)."""

    def rendered(self, marker: object = None) -> list[dict[str, object]]:
        target = _TARGET[0]
        if not any(b.name == "late" for b in target.blocks):
            turn(target, 500)
            target.blocks[-1] = target.blocks[-1].model_copy(update={"name": "late"})
        return super().rendered(marker)  # type: ignore[arg-type]


_TARGET: list[Conversation] = []


def test_a_block_added_while_rendering_is_rendered_by_the_next_call() -> None:
    conversation = long(8)
    _TARGET[:] = [conversation]
    conversation.add(
        _Adding(name="adder", role="user", kind="prompt", content=[{"type": "text", "text": "a"}])
    )
    first, _ = conversation.render(model=MODEL, max_tokens=1)
    assert not any("t500" in str(m) for m in first["messages"])  # not in the snapshot it began with
    second, _ = conversation.render(model=MODEL, max_tokens=1)
    assert "t500" in str(second["messages"][-1])  # the next rendering sends it
    assert conversation.render(model=MODEL, max_tokens=1)[0]["messages"] == second["messages"]
