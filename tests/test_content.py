"""A block's content: read like a list, never edited in place, and copied, pickled and saved whole."""

from __future__ import annotations

import copy
import json
import pickle

import pytest

from pcache_magic.core.content import Content
from pcache_magic.core.conversation import Block

ITEMS = [{"type": "text", "text": "hello"}]


def made() -> Block:
    return Block(name="b", role="user", kind="prompt", content=[dict(i) for i in ITEMS])


def test_a_validated_block_holds_content_equal_to_its_list() -> None:
    block = made()
    assert type(block.content) is Content and block.content == ITEMS and list(block.content) == ITEMS
    assert type(Block(name="e", role="user", kind="prompt").content) is Content


@pytest.mark.parametrize(
    "edit",
    [
        lambda c: c.append({}),
        lambda c: c.extend([{}]),
        lambda c: c.insert(0, {}),
        lambda c: c.pop(),
        lambda c: c.remove(c[0]),
        lambda c: c.clear(),
        lambda c: c.sort(),
        lambda c: c.reverse(),
        lambda c: c.__setitem__(0, {}),
        lambda c: c.__delitem__(0),
        lambda c: c.__iadd__([{}]),
        lambda c: c.__imul__(2),
    ],
)
def test_every_edit_in_place_is_refused_with_what_to_do(edit: object) -> None:
    block = made()
    with pytest.raises(TypeError, match=r"model_copy\(update="):
        edit(block.content)  # type: ignore[operator]
    assert block.content == ITEMS


def test_augmented_assignment_on_a_variable_makes_a_new_list_and_leaves_the_block() -> None:
    block = made()
    content = list(block.content)
    content += [{"type": "text", "text": "more"}]
    assert block.content == ITEMS and len(content) == 2


def test_copies_pickles_and_dumps_keep_the_content_whole() -> None:
    block = made()
    assert copy.copy(block.content) is block.content  # nothing to copy: it cannot change
    deep = copy.deepcopy(block.content)
    assert type(deep) is Content and deep == ITEMS and deep[0] is not block.content[0]
    assert pickle.loads(pickle.dumps(block)) == block
    assert type(pickle.loads(pickle.dumps(block)).content) is Content
    assert block.model_dump()["content"] == ITEMS and type(block.model_dump()["content"]) is list
    assert json.loads(block.model_dump_json())["content"] == ITEMS
    assert json.dumps(block.content) == json.dumps(ITEMS)
    assert type(Block.model_validate(block.model_dump()).content) is Content
