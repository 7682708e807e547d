"""Images sent as base64, checked as the API checks them: one it cannot read, or too large, is a 400.

The API decodes every image it is sent; bytes that start like a PNG (or JPEG, GIF, WebP) but
whose header gives no size, or that stop after the header, are answered ``Could not process
image`` (its wording, as recorded in public issue threads, e.g. anthropics/claude-code#8647), not
counted as a ~1,600-token image.  A side over 8000 px, or over 2000 px in a request of more than
20 images, is refused as well (the vision docs' "General limits"; the wording as recorded in
anthropics/claude-code#4778 and #52220).  The bytes are walked by `image_size`, never decoded
as pixels.  Pure.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Sequence
from typing import Any

from ..core.tokens import MANY_IMAGES, MANY_IMAGES_EDGE, MAX_IMAGE_EDGE, image_size
from .errors import ApiError

__all__ = ["MANY_IMAGES_TOO_LARGE", "TOO_LARGE", "UNREADABLE", "check_images"]

#: The API's message for an image it cannot decode.
UNREADABLE = "Could not process image"
#: The API's message (after the image's path) for a side over the limit.
TOO_LARGE = f"At least one of the image dimensions exceed max allowed size: {MAX_IMAGE_EDGE} pixels"
#: The same, when the request holds more than `MANY_IMAGES` images.
MANY_IMAGES_TOO_LARGE = (
    "At least one of the image dimensions exceed max allowed size for many-image requests:"
    f" {MANY_IMAGES_EDGE} pixels"
)


def check_images(messages: Sequence[Any]) -> None:
    """ApiError 400 for the first base64 image (in a message or a tool result) the API would refuse:
    unreadable, or a side over the limit (the lower one when the request has over 20 images)."""
    images = list(_images(messages))
    many = len(images) > MANY_IMAGES
    for where, image in images:
        source = image.get("source")
        if not isinstance(source, dict) or source.get("type") != "base64":
            continue
        size = _size(source.get("data"))
        if size is None:
            raise ApiError.invalid(UNREADABLE)
        data = f"{where}.image.source.base64.data"
        if max(size) > MAX_IMAGE_EDGE:
            raise ApiError.invalid(f"{data}: {TOO_LARGE}")
        if many and max(size) > MANY_IMAGES_EDGE:
            raise ApiError.invalid(f"{data}: {MANY_IMAGES_TOO_LARGE}")


def _images(messages: Sequence[Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each image block of the messages, tool results' own included, with its path as the API
    names it (``messages.3.content.1``, ``messages.3.content.1.tool_result.content.0``)."""
    for m, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        for c, block in enumerate(content if isinstance(content, list) else ()):
            if not isinstance(block, dict):
                continue
            where = f"messages.{m}.content.{c}"
            if block.get("type") == "image":
                yield where, block
            inner = block.get("content") if block.get("type") == "tool_result" else None
            for k, item in enumerate(inner if isinstance(inner, list) else ()):
                if isinstance(item, dict) and item.get("type") == "image":
                    yield f"{where}.tool_result.content.{k}", item


def _size(data: object) -> tuple[int, int] | None:
    """The (width, height) of base64 `data` if the header gives it and pixel data follows."""
    if not isinstance(data, str):
        return None
    try:
        return image_size(base64.b64decode(data, validate=False), complete=True)
    except (binascii.Error, ValueError):
        return None
