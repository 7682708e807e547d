"""Images sent as base64, checked as the API checks them: one it cannot read, or too large, is a 400.

The API refuses base64 text over 5 MB (`MAX_IMAGE_BASE64`), in its wording (``...image.source.
base64: image exceeds 5 MB maximum: N bytes > 5242880 bytes``, as recorded in anthropics/claude-code
#12167 and #2146).  This judges it from the text's length alone, before any image is decoded (the
message names the source, not its data: a check of the request, it seems, not of the image).
The API sniffs the bytes' format: PNG bytes declared ``image/jpeg`` are a 400 (`MISMATCH`).  Its
wording since 2026 (BerriAI/litellm#24900, 2026-04; vybestack/llxprt-code#2130, 2026-06;
1jehuang/jcode#465, 2026-07): ``...image.source.base64: The image was specified using the
image/png media type, but the image appears to be a image/jpeg image``; until late 2025 it was
``...image.source.base64.data: Image does not match the provided media type image/png``
(anthropics/claude-code#6300, #13131, #15746).  The API decodes every image it is sent; bytes of no
known format, or that start like a PNG (or JPEG, GIF, WebP) but whose header gives no size, that
stop after the header or before the format's end, or that break its rules (`core.image_bytes`),
are answered ``Could not process image`` (its wording, as recorded in public issue threads, e.g.
anthropics/claude-code#8647; #60920 for bytes of no known format), not counted as a ~1,600-token
image.  A side over 8000 px, or over 2000 px in a request of more than 20 images, is refused as
well (the vision docs' "General limits"; the wording as recorded in anthropics/claude-code#4778
and #52220).  More than `MAX_MEDIA` images and documents a request (`MAX_MEDIA_LARGE_CONTEXT`
past a 200k context) is refused before any image is read, an empty text and a data URL in place
of base64 in the API's own words (`EMPTY`, `NOT_BASE64`).  The bytes are walked by
`core.image_bytes`, never decoded as pixels.  Pure.

A conversation sends its images again on every call, so the check must cost little: clean base64
(the usual case) is decoded only where the walk reads it (`_Base64View`), in small blocks: a 5 MB
image costs one C pass over its text to see that it is clean (2 to 5 ms), not a whole decode (11 ms).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Sequence
from typing import Any, SupportsIndex, overload

from ..core.image_bytes import ImageBytes, image_size, image_type
from ..core.tokens import MANY_IMAGES, MANY_IMAGES_EDGE, MAX_IMAGE_BASE64, MAX_IMAGE_EDGE, MAX_MEDIA
from .errors import ApiError

__all__ = [
    "EMPTY",
    "MANY_IMAGES_TOO_LARGE",
    "MISMATCH",
    "NOT_BASE64",
    "TOO_LARGE",
    "TOO_MANY_BYTES",
    "UNREADABLE",
    "check_images",
]

#: The API's message for an image it cannot decode.
UNREADABLE = "Could not process image"
#: The API's message (after the image's path) for a side over the limit.
TOO_LARGE = f"At least one of the image dimensions exceed max allowed size: {MAX_IMAGE_EDGE} pixels"
#: The same, when the request holds more than `MANY_IMAGES` images.
MANY_IMAGES_TOO_LARGE = (
    "At least one of the image dimensions exceed max allowed size for many-image requests:"
    f" {MANY_IMAGES_EDGE} pixels"
)
#: The API's messages (after the path of the image's base64) for an empty text and a data URL
#: (``data:image/png;base64,...``) in place of the base64: anthropics/claude-code#12750 and
#: anthropics/anthropic-sdk-typescript#603.
EMPTY, NOT_BASE64 = "image cannot be empty", "invalid base64 data"
#: The API's message (after the path of the image's base64) for text over `MAX_IMAGE_BASE64`;
#: `{}` is the text's length.
TOO_MANY_BYTES = f"image exceeds 5 MB maximum: {{}} bytes > {MAX_IMAGE_BASE64} bytes"
#: The API's message (after the path of the image's base64) for bytes of another format than the
#: declared `media_type`; `{}` are the declared and the sniffed media types.
MISMATCH = "The image was specified using the {} media type, but the image appears to be a {} image"
_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def check_images(messages: Sequence[Any], max_media: int = MAX_MEDIA) -> None:
    """ApiError 400 for the first base64 image (in a message or a tool result) the API would refuse:
    too long a text (any image's, judged before any is decoded), bytes of another format than its
    media type, unreadable, or a side over the limit (the lower one when the request has over 20
    images)."""
    # counted before any image is read (a cheap refusal of a big request); a document as one
    media = list(_media(messages))
    found = [(where, block) for where, block in media if block["type"] == "image"]
    documents = len(media) - len(found)
    if len(media) > max_media:
        raise ApiError.invalid(f"too many images and documents: {len(found)} + {documents} > {max_media}")
    images = [
        (where, source)
        for where, image in found
        if isinstance(source := image.get("source"), dict) and source.get("type") == "base64"
    ]
    for where, source in images:
        text = source.get("data")
        if isinstance(text, str) and len(text) > MAX_IMAGE_BASE64:
            raise ApiError.invalid(f"{where}.image.source.base64: {TOO_MANY_BYTES.format(len(text))}")
    many = len(found) > MANY_IMAGES
    for where, source in images:
        text = source.get("data")
        if text == "":
            raise ApiError.invalid(f"{where}.image.source.base64: {EMPTY}")
        if isinstance(text, str) and text[:5].lower() == "data:":  # a data URL, not its base64 part
            raise ApiError.invalid(f"{where}.image.source.base64: {NOT_BASE64}")
        data = _bytes(text)
        kind = None if data is None else image_type(data)
        declared = source.get("media_type")
        if kind is not None and declared in _MEDIA_TYPES and kind != declared:
            raise ApiError.invalid(f"{where}.image.source.base64: {MISMATCH.format(declared, kind)}")
        size = None if data is None or kind is None else image_size(data, complete=True)
        if size is None:
            raise ApiError.invalid(UNREADABLE)
        path = f"{where}.image.source.base64.data"
        if max(size) > MAX_IMAGE_EDGE:
            raise ApiError.invalid(f"{path}: {TOO_LARGE}")
        if many and max(size) > MANY_IMAGES_EDGE:
            raise ApiError.invalid(f"{path}: {MANY_IMAGES_TOO_LARGE}")


def _media(messages: Sequence[Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each image and document block of the messages, tool results' own and the images of a document
    of content blocks included (the API reads those too, and counts them as images), with its path
    as the API names it (``messages.3.content.1``, ``messages.3.content.1.tool_result.content.0``,
    ``messages.3.content.1.document.source.content.0``)."""
    kinds = ("image", "document")
    for m, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        for c, block in enumerate(content if isinstance(content, list) else ()):
            if not isinstance(block, dict):
                continue
            where = f"messages.{m}.content.{c}"
            if block.get("type") in kinds:
                yield where, block
            yield from _inner(where, block)


def _inner(where: str, block: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The media inside `block`: a tool result's images and documents, a content document's images
    (and those of a content document inside a tool result)."""
    kind, source = block.get("type"), block.get("source")
    kinds: tuple[str, ...]
    if kind == "tool_result":
        inner, path, kinds = block.get("content"), f"{where}.tool_result.content", ("image", "document")
    elif kind == "document" and isinstance(source, dict) and source.get("type") == "content":
        inner, path, kinds = source.get("content"), f"{where}.document.source.content", ("image",)
    else:
        return
    for k, item in enumerate(inner if isinstance(inner, list) else ()):
        if isinstance(item, dict) and item.get("type") in kinds:
            yield f"{path}.{k}", item
            if kind == "tool_result":
                yield from _inner(f"{path}.{k}", item)


def _bytes(data: object) -> ImageBytes | None:
    """The bytes base64 `data` stands for: a lazy view of clean base64, else decoded whole."""
    if not isinstance(data, str):
        return None
    view = _Base64View.of(data)
    if view is not None:
        return view
    try:  # not plain base64 (line breaks, stray characters): decoded whole, skipping them
        return base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        return None


class _Base64View:
    """The bytes a clean base64 text stands for, decoded a block at a time where they are read:
    a PNG walk reads 8 bytes per chunk, a JPEG's only its header segments."""

    _CHARS = 256
    """Base64 characters per block (192 bytes): a chunk header costs a small decode (a 1,024-character
    block made a 480-chunk PNG's walk 3.5 ms slower)."""
    _BYTES = _CHARS // 4 * 3

    def __init__(self, text: str, padding: int) -> None:
        self._text = text
        self._len = len(text) // 4 * 3 - padding
        self._blocks: dict[int, bytes] = {}

    @classmethod
    def of(cls, text: str) -> _Base64View | None:
        """A view of `text` if it is base64 and nothing else (whole quanta, `=` only at the end),
        so that byte k is at character 4 * (k // 3); else None."""
        if len(text) % 4 or not text.isascii():
            return None
        rest = text.encode("ascii").translate(None, _ALPHABET)
        if rest not in (b"", b"=", b"==") or not text.endswith(rest.decode()):
            return None
        return cls(text, len(rest))

    def __len__(self) -> int:
        return self._len

    @overload
    def __getitem__(self, key: SupportsIndex, /) -> int: ...

    @overload
    def __getitem__(self, key: slice, /) -> bytes: ...

    def __getitem__(self, key: SupportsIndex | slice, /) -> int | bytes:
        if isinstance(key, slice):
            start, stop, step = key.indices(self._len)
            if step != 1:
                raise ValueError("a base64 view is read in contiguous slices only")
            if start >= stop:
                return b""
            first, last = start // self._BYTES, (stop - 1) // self._BYTES
            offset = first * self._BYTES
            if first == last:  # most reads: a chunk's or a segment's header
                return self._block(first)[start - offset : stop - offset]
            if last - first > 8:  # a long read (a window searched for an end marker): one C call
                chars = self._text[first * self._CHARS : (last + 1) * self._CHARS]
                return binascii.a2b_base64(chars)[start - offset : stop - offset]
            joined = b"".join(self._block(n) for n in range(first, last + 1))
            return joined[start - offset : stop - offset]
        index = key.__index__()
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError("index out of range")
        return self._block(index // self._BYTES)[index % self._BYTES]

    def _block(self, n: int) -> bytes:
        block = self._blocks.get(n)
        if block is None:
            block = self._blocks[n] = binascii.a2b_base64(self._text[n * self._CHARS : (n + 1) * self._CHARS])
        return block
