"""`emulator.image_check`: a base64 image whose header gives no size is the API's 400, in a message
or a tool result, through the SDK as through `validate_request`; readable images pass."""

from __future__ import annotations

import base64
import struct
from typing import Any

import anthropic
import pytest

from pcache_magic.emulator import Emulator
from pcache_magic.emulator.errors import ApiError
from pcache_magic.emulator.image_check import UNREADABLE, check_images

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + struct.pack(">II", 40, 30) + b"\x08\x02\x00\x00\x00"
FAKE = b"\x89PNG\r\n\x1a\n" + b"garbage" * 10


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
        [image(b"")],
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
    jpeg = big_head * 4 + b"\xff\xc0" + struct.pack(">HBHH", 11, 8, 30, 40) + b"\x01\x11\x00\xff\xd9"
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
