"""Images sent as base64, checked as the API checks them: one it cannot read is a 400.

The API decodes every image it is sent; bytes that start like a PNG (or JPEG, GIF, WebP) but
whose header gives no size are answered ``Could not process image`` (its wording, as recorded in
public issue threads, e.g. anthropics/claude-code#8647), not counted as a ~1,600-token image.
The header is read from the first `_HEAD_CHARS` of the base64 text, the whole of it only when a
JPEG's size marker lies further in.  Pure.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Sequence
from typing import Any

from ..core.tokens import image_size
from .errors import ApiError

__all__ = ["UNREADABLE", "check_images"]

#: The API's message for an image it cannot decode.
UNREADABLE = "Could not process image"
_HEAD_CHARS = 256 * 1024  # a multiple of 4: whole base64 quanta


def check_images(messages: Sequence[Any]) -> None:
    """ApiError 400 for the first base64 image (in a message or a tool result) the API could not read."""
    for image in _images(messages):
        source = image.get("source")
        if isinstance(source, dict) and source.get("type") == "base64" and not _readable(source.get("data")):
            raise ApiError.invalid(UNREADABLE)


def _images(messages: Sequence[Any]) -> Iterator[dict[str, Any]]:
    """Each image block of the messages, tool results' own included."""
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        for block in content if isinstance(content, list) else ():
            inner = (
                block.get("content")
                if isinstance(block, dict) and block.get("type") == "tool_result"
                else None
            )
            for item in [block, *(inner if isinstance(inner, list) else ())]:
                if isinstance(item, dict) and item.get("type") == "image":
                    yield item


def _readable(data: object) -> bool:
    """Whether the header of base64 `data` gives the image's size."""
    if not isinstance(data, str):
        return False
    for text in (data[:_HEAD_CHARS], data) if len(data) > _HEAD_CHARS else (data,):
        try:
            if image_size(base64.b64decode(text, validate=False)) is not None:
                return True
        except (binascii.Error, ValueError):
            return False
    return False
