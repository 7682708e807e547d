"""`emulator.image_check`: a base64 image of another format than its media type, or whose header gives
no size, or with no pixel data after its header, or damaged or cut before its end, or with a side over
the documented limit, or over 5 MB of text, is the API's 400, in a message or a tool result, through
the SDK as through `validate_request`; readable images within the limits pass, and clean base64 is
decoded only where the header walk reads it."""

from __future__ import annotations

import base64
import binascii
import itertools
import struct
import zlib
from typing import Any

import anthropic
import pytest

from pcache_magic.core.tokens import MAX_IMAGE_BASE64
from pcache_magic.emulator import Emulator
from pcache_magic.emulator.errors import ApiError
from pcache_magic.emulator.image_check import (
    EMPTY,
    MANY_IMAGES_TOO_LARGE,
    MISMATCH,
    NOT_BASE64,
    TOO_LARGE,
    TOO_MANY_BYTES,
    UNREADABLE,
    _Base64View,
    check_images,
)


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(width: int, height: int, pixels: bool = True) -> bytes:
    """A PNG of this size; without `pixels`, its signature and IHDR only (a header, no image)."""
    head = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return head + (chunk(b"IDAT", zlib.compress(b"\x00")) + chunk(b"IEND", b"") if pixels else b"")


PNG = png(40, 30)
FAKE = b"\x89PNG\r\n\x1a\n" + b"garbage" * 10
SOF = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 30, 40, 1) + b"\x01\x11\x00"
SOS = b"\xff\xda" + struct.pack(">HB", 8, 1) + b"\x01\x00\x00\x3f\x00"


def image(data: bytes, media: str = "image/png") -> dict[str, Any]:
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": media, "data": base64.b64encode(data).decode()},
    }


def test_the_api_wording() -> None:
    assert UNREADABLE == "Could not process image"


@pytest.mark.parametrize(
    "content",
    [
        [image(FAKE), {"type": "text", "text": "what is it?"}],
        [{"type": "tool_result", "tool_use_id": "t1", "content": [image(FAKE)]}],
        [image(b"\xff\xd8\xff\xe0" + bytes(64), "image/jpeg")],
        # A header and no pixel data: the API cannot decode these either.
        [image(png(40, 30, pixels=False))],
        [image(b"\xff\xd8" + SOF + b"\xff\xd9", "image/jpeg")],
        [image(b"GIF89a" + struct.pack("<HH", 40, 30) + bytes(3) + b"\x3b", "image/gif")],
        [image(b"BM6\x00\x00\x00" + bytes(64))],  # bytes of no known format (a BMP)
        [image(b"<html>Not Found</html>")],
        [
            image(
                b"RIFF\x16\x00\x00\x00WEBPVP8 \x0a\x00\x00\x00\x00\x00\x00\x9d\x01\x2a(\x00\x1e\x00",
                "image/webp",
            )
        ],
    ],
)
def test_an_image_whose_header_gives_no_size_is_a_400(content: list[dict[str, Any]]) -> None:
    with pytest.raises(ApiError) as refused:
        check_images([{"role": "user", "content": content}])
    assert (refused.value.status, refused.value.type, refused.value.message) == (
        400,
        "invalid_request_error",
        UNREADABLE,
    )


def test_readable_images_and_other_sources_pass() -> None:
    big_head = b"\xff\xd8\xff\xe1" + struct.pack(">H", 65_000) + bytes(64_998)  # a long EXIF segment
    jpeg = big_head * 4 + SOF + SOS + b"\x12\x34\xff\xd9"  # the size past the first 256 KiB
    url = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    messages = [
        {"role": "user", "content": [image(PNG), image(jpeg, "image/jpeg"), url]},
        {"role": "assistant", "content": "fine"},
        {"role": "user", "content": "plain text"},
    ]
    check_images(messages)


def test_the_emulator_answers_a_fake_png_like_the_api_and_counts_a_real_one() -> None:
    client = Emulator().client(max_retries=0)
    fake: list[Any] = [{"role": "user", "content": [image(FAKE)]}]
    real: list[Any] = [{"role": "user", "content": [image(PNG)]}]
    with pytest.raises(anthropic.BadRequestError) as refused:
        client.messages.create(model="claude-sonnet-4-5", max_tokens=5, messages=fake)
    body: Any = refused.value.body
    assert refused.value.status_code == 400 and body["error"]["message"] == UNREADABLE
    counted = client.messages.count_tokens(model="claude-sonnet-4-5", messages=real)
    assert counted.input_tokens < 100  # 40x30 pixels: a few tokens, not the ~1,600 of an unknown size


def test_an_empty_text_and_a_data_url_get_the_apis_own_words() -> None:
    """Not "Could not process image": the API names these two mistakes (empty, a data URL pasted
    whole where its base64 part belongs)."""
    empty = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": ""}}
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    pasted = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": url}}
    assert refusal(messages(empty)) == f"messages.0.content.1.image.source.base64: {EMPTY}"
    assert refusal(messages(pasted)) == f"messages.0.content.1.image.source.base64: {NOT_BASE64}"
    assert (EMPTY, NOT_BASE64) == ("image cannot be empty", "invalid base64 data")


def messages(*images: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "text", "text": "look"}, *images]}]


def refusal(messages: list[dict[str, Any]]) -> str:
    with pytest.raises(ApiError) as refused:
        check_images(messages)
    assert (refused.value.status, refused.value.type) == (400, "invalid_request_error")
    return refused.value.message


def test_a_side_over_8000_px_is_refused_as_the_api_words_it() -> None:
    data = "messages.0.content.2.image.source.base64.data"
    assert refusal(messages(image(PNG), image(png(8001, 10)))) == f"{data}: {TOO_LARGE}"
    assert refusal(messages(image(png(10, 8001)))).startswith("messages.0.content.1.image.")
    tool = [{"type": "tool_result", "tool_use_id": "t1", "content": [image(PNG), image(png(9000, 9000))]}]
    assert refusal([{"role": "user", "content": tool}]) == (
        f"messages.0.content.0.tool_result.content.1.image.source.base64.data: {TOO_LARGE}"
    )
    assert TOO_LARGE == "At least one of the image dimensions exceed max allowed size: 8000 pixels"
    check_images(messages(image(png(8000, 8000))))  # the limit itself passes


def test_over_20_images_a_side_over_2000_px_is_refused() -> None:
    wide = image(png(2001, 10))
    check_images(messages(*[image(PNG)] * 19, wide))  # 20 images: the 8000 px limit
    check_images(messages(*[image(PNG)] * 20, image(png(2000, 2000))))  # 21, none over 2000 px
    assert refusal(messages(*[image(PNG)] * 20, wide)) == (
        f"messages.0.content.21.image.source.base64.data: {MANY_IMAGES_TOO_LARGE}"
    )
    url = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    tool = {"type": "tool_result", "tool_use_id": "t1", "content": [image(PNG)] * 10}
    many = [*messages(*[image(PNG)] * 9, url), {"role": "user", "content": [tool, wide]}]
    assert refusal(many) == f"messages.1.content.1.image.source.base64.data: {MANY_IMAGES_TOO_LARGE}"
    assert MANY_IMAGES_TOO_LARGE == (
        "At least one of the image dimensions exceed max allowed size for many-image requests: 2000 pixels"
    )


def test_the_emulator_answers_an_oversized_image_with_a_400() -> None:
    client = Emulator().client(max_retries=0)
    big: list[Any] = [{"role": "user", "content": [image(png(8192, 100))]}]
    with pytest.raises(anthropic.BadRequestError) as refused:
        client.messages.create(model="claude-sonnet-4-5", max_tokens=5, messages=big)
    body: Any = refused.value.body
    assert body["error"] == {
        "type": "invalid_request_error",
        "message": f"messages.0.content.0.image.source.base64.data: {TOO_LARGE}",
    }


def test_over_100_images_is_too_much_media_600_past_a_200k_context() -> None:
    """The vision docs: 100 images a request for a 200k-token context, 600 for the others; the
    API's 2026 wording as recorded (images + documents).  Counted before any image is read: a
    request of thousands of hostile images is refused at once."""
    check_images(messages(*[image(PNG)] * 100))
    assert refusal(messages(*[image(PNG)] * 102)) == "too many images and documents: 102 + 0 > 100"
    pdf = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}}
    assert refusal([*messages(*[image(PNG)] * 104), {"role": "user", "content": [pdf]}]) == (
        "too many images and documents: 104 + 1 > 100"
    )
    assert refusal([*messages(*[image(PNG)] * 60), {"role": "user", "content": [pdf] * 50}]) == (
        "too many images and documents: 60 + 50 > 100"  # documents count, whatever the images
    )
    hostile = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "!" * 10}}
    assert refusal(messages(*[hostile] * 101)).startswith("too many images")  # not "Could not process"
    client = Emulator().client(max_retries=0)
    many: list[Any] = messages(*[image(PNG)] * 101)
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model="claude-sonnet-4-5", max_tokens=5, messages=many)  # 200k
    client.messages.create(model="claude-sonnet-5", max_tokens=5, messages=many)  # 1M: up to 600


def sized_png(total: int) -> bytes:
    """A whole PNG of exactly `total` bytes (a text chunk makes up the rest)."""
    return PNG[:33] + chunk(b"tEXt", bytes(total - len(PNG) - 12)) + PNG[33:]


def test_an_image_over_5_mb_of_base64_is_refused_in_the_api_wording() -> None:
    """The API counts the base64 text (5,242,880 characters: a 3,932,160-byte file), not the file."""
    assert MAX_IMAGE_BASE64 == 5_242_880 == len(image(sized_png(3_932_160))["source"]["data"])
    check_images(messages(image(sized_png(3_932_160))))  # the limit itself passes
    over = image(sized_png(3_932_161))
    assert refusal(messages(image(PNG), over)) == (
        "messages.0.content.2.image.source.base64: image exceeds 5 MB maximum: 5242884 bytes > 5242880 bytes"
    )
    tool = [{"type": "tool_result", "tool_use_id": "t1", "content": [over]}]
    assert refusal([{"role": "user", "content": tool}]) == (
        "messages.0.content.0.tool_result.content.0.image.source.base64: " + TOO_MANY_BYTES.format(5_242_884)
    )


def test_an_oversized_text_is_judged_by_its_length_before_any_image_is_decoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_decoding(*_: object, **__: object) -> bytes:
        raise AssertionError("decoded")

    monkeypatch.setattr(binascii, "a2b_base64", no_decoding)
    huge = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "!" * 30_000_000},
    }
    assert refusal(messages(image(FAKE), huge)).startswith(  # the unreadable image first is not read
        "messages.0.content.2.image.source.base64: image exceeds 5 MB maximum: 30000000 bytes"
    )


def test_a_clean_image_is_decoded_only_where_its_headers_are(monkeypatch: pytest.MonkeyPatch) -> None:
    """A conversation re-sends its images on every call: a 3 MB PNG costs a few KB of decoding."""
    decoded: list[int] = []
    a2b = binascii.a2b_base64

    def counting(data: str | bytes, **kwargs: Any) -> bytes:
        decoded.append(len(data))
        return a2b(data, **kwargs)

    monkeypatch.setattr(binascii, "a2b_base64", counting)
    stream = zlib.compress(bytes(48 * 65_536), 0)  # stored: as large as its pixels
    idats = (chunk(b"IDAT", stream[at : at + 65_536]) for at in range(0, len(stream), 65_536))
    big = PNG[:33] + b"".join(idats) + PNG[-12:]
    check_images(messages(image(big)))
    assert 0 < sum(decoded) < 100_000  # old: the whole 4.2 MB of text, on every request
    wrapped = base64.encodebytes(big).decode()  # line breaks: decoded whole, as before
    check_images(messages({"type": "image", "source": {"type": "base64", "media_type": "", "data": wrapped}}))


@pytest.mark.parametrize("length", [0, 1, 2, 3, 4, 190, 191, 192, 193, 767, 768, 769, 2000])
def test_the_base64_view_reads_as_the_bytes_it_stands_for(length: int) -> None:
    raw = bytes(range(256)) * 8
    raw = raw[:length]
    view = _Base64View.of(base64.b64encode(raw).decode())
    assert view is not None and len(view) == len(raw)
    for start, stop in itertools.product((None, 0, 1, 5, 191, 192, 194, 768, 1900, -3, 3000), repeat=2):
        assert view[start:stop] == raw[start:stop]
    assert [view[i] for i in range(length)] == list(raw)
    if raw:
        assert view[-1] == raw[-1]
    with pytest.raises(IndexError):
        view[length]


@pytest.mark.parametrize("text", ["AAA", "AA=A", "A===", "AAAA\nAAAA", "AAAA AAAA", "AAé="])
def test_text_that_is_not_plain_base64_gets_no_view(text: str) -> None:
    assert _Base64View.of(text) is None


JPEG = b"\xff\xd8" + SOF + SOS + b"\x12\x34\xff\xd9"
WEBP = b"RIFF\x18\x00\x00\x00WEBPVP8 \x0c\x00\x00\x00\x00\x00\x00\x9d\x01\x2a(\x00\x1e\x00\x01\x02"


def test_bytes_of_another_format_than_declared_are_refused_in_the_api_wording() -> None:
    """PNG bytes declared image/jpeg: the API sniffs the bytes and answers 400 (its wording since 2026,
    BerriAI/litellm#24900, vybestack/llxprt-code#2130), naming the image's base64 source."""
    check_images(messages(image(PNG), image(JPEG, "image/jpeg"), image(WEBP, "image/webp")))
    assert refusal(messages(image(PNG), image(PNG, "image/jpeg"))) == (
        "messages.0.content.2.image.source.base64: The image was specified using the image/jpeg"
        " media type, but the image appears to be a image/png image"
    )
    tool = [{"type": "tool_result", "tool_use_id": "t1", "content": [image(JPEG, "image/webp")]}]
    assert refusal([{"role": "user", "content": tool}]) == (
        "messages.0.content.0.tool_result.content.0.image.source.base64: "
        + MISMATCH.format("image/webp", "image/jpeg")
    )
    assert refusal(messages(image(FAKE, "image/gif"))).endswith(
        "but the image appears to be a image/png image"
    )


def test_the_emulator_answers_a_mislabelled_image_with_a_400() -> None:
    client = Emulator().client(max_retries=0)
    wrong: list[Any] = [{"role": "user", "content": [image(JPEG, "image/png")]}]
    with pytest.raises(anthropic.BadRequestError) as refused:
        client.messages.create(model="claude-sonnet-4-5", max_tokens=5, messages=wrong)
    body: Any = refused.value.body
    assert body["error"] == {
        "type": "invalid_request_error",
        "message": "messages.0.content.0.image.source.base64: " + MISMATCH.format("image/png", "image/jpeg"),
    }


@pytest.mark.parametrize(
    ("data", "media"),
    [
        (PNG[:45] + bytes([PNG[45] ^ 1]) + PNG[46:], "image/png"),  # a byte of IDAT changed: its CRC fails
        (png(40, 30)[:33] + chunk(b"IDAT", b"garbage") + PNG[-12:], "image/png"),  # no zlib stream
        (JPEG[:-2], "image/jpeg"),  # the scan, then no end of image: cut short
        (JPEG[:-4] + bytes(range(256)) * 8, "image/jpeg"),  # garbage after the scan header
        (b"GIF89a" + struct.pack("<HH", 4, 4) + bytes(3) + b"\x2c" + bytes(9) + b"\x02\x01\x00", "image/gif"),
        (WEBP[:4] + b"\x40" + WEBP[5:], "image/webp"),  # a RIFF size past the bytes
    ],
    ids=["png-crc", "png-not-zlib", "jpeg-no-eoi", "jpeg-garbage", "gif-no-trailer", "webp-riff"],
)
def test_garbage_after_a_valid_header_is_a_400(data: bytes, media: str) -> None:
    """The header gives a size and pixel data follows it, but the API could not decode the rest."""
    assert refusal(messages(image(data, media))) == UNREADABLE


def test_the_images_of_a_document_of_content_blocks_are_checked_and_counted() -> None:
    """A document whose source is content blocks carries its own images: the API reads them (the
    emulator counted a fake one as a ~1,600-token image), and they are images of the request."""

    def document(*items: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "document",
            "source": {"type": "content", "content": [{"type": "text", "text": "p"}, *items]},
        }

    check_images(messages(document(image(PNG))))
    assert refusal(messages(document(image(FAKE)))) == UNREADABLE
    assert refusal(messages(document(image(JPEG, "image/png")))).startswith(
        "messages.0.content.1.document.source.content.1.image.source.base64: The image was specified"
    )
    tool = {"type": "tool_result", "tool_use_id": "t1", "content": [document(image(FAKE))]}
    assert refusal(messages(tool)) == UNREADABLE  # a document of a tool result's, too
    assert refusal(messages(document(*[image(PNG)] * 101))) == "too many images and documents: 101 + 1 > 100"
