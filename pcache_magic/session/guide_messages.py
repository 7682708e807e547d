"""Message and result models with the shapes of `autogen_core.models`, without importing autogen.

Code written for the AutoGen prompt-caching guide (`SystemMessage`, `UserMessage`,
`FunctionExecutionResult`, `CreateResult`, ...) runs here unchanged; the cached
`Anthropic*` variants carry the markers the guide's `cached_*` helpers place, in fields
defined once (`CacheFields`, ...) and shared with `pcache_magic.autogen`'s AutoGen subclasses.
Pure: no I/O, no SDK calls.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, Literal

from anthropic.types import Message
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..core.conversation import CacheControl

__all__ = [
    "AnthropicFunctionExecutionResultMessage",
    "AnthropicSystemMessage",
    "AnthropicUserMessage",
    "AssistantMessage",
    "CacheFields",
    "CacheUsage",
    "CreateResult",
    "FinishReason",
    "FunctionCall",
    "FunctionExecutionResult",
    "FunctionExecutionResultMessage",
    "GuideMessage",
    "RequestUsage",
    "SystemMessage",
    "ToolResultCacheFields",
    "UserCacheFields",
    "UserMessage",
    "cache_fields",
    "has_marker",
    "image_block",
    "is_image",
]

FinishReason = Literal["stop", "length", "function_calls", "content_filter", "unknown"]

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def _media_type(data: bytes) -> str:
    """The image type from its magic number: the API needs it and guessing wrong is a 400."""
    for magic, media in _MAGIC:
        if data.startswith(magic):
            return media
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise ValueError("Unrecognised image bytes: only PNG, JPEG, GIF and WebP images can be sent.")


def is_image(item: object) -> bool:
    """Whether `item` can stand for an image in multipart content (see `image_block`)."""
    if isinstance(item, bytes | bytearray):
        return True
    if isinstance(item, Mapping):
        return item.get("type") == "image"
    return hasattr(item, "data_uri") or callable(getattr(item, "to_base64", None))


def image_block(item: object) -> dict[str, Any]:
    """An SDK base64 image block for raw bytes, an SDK image dict, or an autogen-like `Image`.

    `Image` objects are read through `data_uri` (which names the media type) or
    `to_base64()` (the type then comes from the decoded bytes' magic number).
    """
    if isinstance(item, Mapping):
        if item.get("type") != "image":
            raise ValueError(f"Content dicts must be SDK image blocks, not type {item.get('type')!r}.")
        return dict(item)
    if isinstance(item, bytes | bytearray):
        raw = bytes(item)
        return _base64_block(_media_type(raw), base64.b64encode(raw).decode("ascii"))
    uri = getattr(item, "data_uri", None)
    if isinstance(uri, str) and uri.startswith("data:") and ";base64," in uri:
        header, data = uri[5:].split(";base64,", 1)
        return _base64_block(header or _media_type(_decode(data)), data)
    to_base64 = getattr(item, "to_base64", None)
    if callable(to_base64):
        data = str(to_base64())
        return _base64_block(_media_type(_decode(data)), data)
    raise ValueError(
        f"Cannot send {type(item).__name__} as an image: expected bytes, an image dict or Image."
    )


def _decode(data: str) -> bytes:
    """The first bytes of base64 image data: enough for the magic number, without decoding it all."""
    try:
        return base64.b64decode(data[:64] + "=" * (-len(data[:64]) % 4))
    except binascii.Error as error:
        raise ValueError(f"Image data is not valid base64: {error}") from None


def _base64_block(media_type: str, data: str) -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


class FunctionCall(BaseModel):
    """A tool call the model made; `arguments` is the JSON text of its input."""

    id: str
    arguments: str
    name: str


class SystemMessage(BaseModel):
    content: str
    type: Literal["SystemMessage"] = "SystemMessage"


class UserMessage(BaseModel):
    """A user turn: a string, or multipart content (strings and images)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    content: str | list[Any]
    source: str
    type: Literal["UserMessage"] = "UserMessage"

    @field_validator("content")
    @classmethod
    def _parts(cls, value: str | list[Any]) -> str | list[Any]:
        if isinstance(value, list):
            for i, item in enumerate(value):
                if not isinstance(item, str) and not is_image(item):
                    raise ValueError(f"content[{i}] is {type(item).__name__}: expected str or an image")
        return value


class AssistantMessage(BaseModel):
    """A model turn: text, or the tool calls it made (with the text before them as `thought`)."""

    content: str | list[FunctionCall]
    source: str
    thought: str | None = None
    type: Literal["AssistantMessage"] = "AssistantMessage"


class FunctionExecutionResult(BaseModel):
    """What running one tool call produced; `call_id` is the `FunctionCall.id` it answers."""

    content: str
    name: str
    call_id: str
    is_error: bool = False

    @field_validator("is_error", mode="before")
    @classmethod
    def _none_is_no_error(cls, value: object) -> object:
        """AutoGen says `is_error=None` for no error: accepted, so its results convert field for field."""
        return False if value is None else value


class FunctionExecutionResultMessage(BaseModel):
    content: list[FunctionExecutionResult]
    type: Literal["FunctionExecutionResultMessage"] = "FunctionExecutionResultMessage"


class CacheFields(BaseModel):
    """The marker a cached system message adds; mixed into `AnthropicSystemMessage` of both families.

    The cache fields (types, validation, docs) are written once, in these mixins; each cached
    message is its family's plain message plus a mixin: this module's (no AutoGen needed) and
    `pcache_magic.autogen`'s (real subclasses of AutoGen's, so AutoGen code that dispatches on
    them, or on their unchanged `type`, still works).  The mixin goes first in the bases so the
    message's own fields come first in dumps and reprs.
    """

    cache_control: CacheControl | None = None
    """The marker (on the whole text of a system message); None sends the message unmarked."""


class UserCacheFields(CacheFields):
    """A cached user message's marker and where it goes; mixed into `AnthropicUserMessage`."""

    cache_index: int | None = None
    """The content block that carries the marker; None means the last text block (else the last)."""


class ToolResultCacheFields(BaseModel):
    """Cached tool results' markers; mixed into `AnthropicFunctionExecutionResultMessage`."""

    cache_control_config: dict[int, CacheControl] = Field(default_factory=dict)
    """Result index -> its marker; results not named are sent unmarked."""


_CACHE_FIELDS = (UserCacheFields, CacheFields, ToolResultCacheFields)  # the most specific first


def cache_fields(message: object) -> dict[str, Any]:
    """A cached message's marker fields by name ({} if plain): to build its twin in the other family."""
    for mixin in _CACHE_FIELDS:
        if isinstance(message, mixin):
            return {name: getattr(message, name) for name in mixin.model_fields}
    return {}


def has_marker(message: object) -> bool:
    """Whether a message carries a marker at all (a cached message may have none)."""
    if isinstance(message, CacheFields):
        return message.cache_control is not None
    return isinstance(message, ToolResultCacheFields) and bool(message.cache_control_config)


class AnthropicSystemMessage(CacheFields, SystemMessage):
    """A `SystemMessage` whose text block carries `cache_control`."""


class AnthropicUserMessage(UserCacheFields, UserMessage):
    """A `UserMessage` with a marker: on block `cache_index`, or else on the last text block."""


class AnthropicFunctionExecutionResultMessage(ToolResultCacheFields, FunctionExecutionResultMessage):
    """Tool results with markers on chosen results (`cache_control_config`: result index -> marker)."""


GuideMessage = SystemMessage | UserMessage | AssistantMessage | FunctionExecutionResultMessage


class CacheUsage(BaseModel):
    """What the cache did on one call; the write is split by lifetime because the prices differ."""

    model_config = ConfigDict(frozen=True)

    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0


class RequestUsage(BaseModel):
    """Tokens of one call; `prompt_tokens` counts ALL input (uncached + written + read)."""

    model_config = ConfigDict(frozen=True)

    prompt_tokens: int
    completion_tokens: int
    cache_usage: CacheUsage | None = None
    """None when the call neither wrote nor read the cache."""


class CreateResult(BaseModel):
    """The model's answer: text, or the tool calls it made; `raw` is the SDK `Message`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    finish_reason: FinishReason
    content: str | list[FunctionCall]
    usage: RequestUsage
    cached: bool
    """True when tokens were read from the cache; False on a call that only wrote it (the reference
    implementation says True there), as the guide's "This response used cached content" reads: a
    write is paid for, not used; `usage.cache_usage.cache_write_tokens` shows it."""
    raw: Message | None = None
    thought: str | None = None
