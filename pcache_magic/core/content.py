"""A block's content: a list that refuses to be edited in place.

Blocks are frozen so that what was worked out for one (its rendering, its digest, whether it
calls a tool) holds while it stays in the conversation.  A content list edited in place would
break that silently: the kept rendering would not send the edit, and an index would have to look
at every block's list on every call to notice it (~150 us per 1,000 blocks with cold caches).
So a validated block holds a `Content`: reading, comparing, copying and serializing are a
list's; editing says how to make a new block instead.
"""

from __future__ import annotations

import copy
from typing import Any, NoReturn

__all__ = ["Content", "ReadOnlyList"]


class ReadOnlyList(list[Any]):
    """A list whose in-place edits raise TypeError with `refusal`, which says what to do instead."""

    __slots__ = ()
    refusal = "This list cannot be edited in place: make a new one."

    def _refuse(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError(self.refusal)

    append = extend = insert = pop = remove = clear = sort = reverse = _refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse


class Content(ReadOnlyList):
    """A read-only list of content-block params (equal to the plain list of the same items)."""

    __slots__ = ()
    refusal = (
        "A block's content cannot be edited in place (blocks are frozen): make a new block, "
        "block.model_copy(update={'content': [...]}), and add it under the same name."
    )

    def __copy__(self) -> Content:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Content:
        return Content(copy.deepcopy(list(self), memo))

    def __reduce__(self) -> tuple[type[Content], tuple[list[dict[str, Any]]]]:
        return Content, (list(self),)
