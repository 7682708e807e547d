"""The session file, described by pydantic models: version 2, and its JSON Schema.

A saved session is everything the session knows and nothing secret: its blocks, its settings,
every call as sent and as answered (request minus headers, the SDK's `Message`, timings, the
prices used, what was predicted), the ledger's cache entries with their times and the clock.
Never the API key, never a header.  `docs/session-schema.json` is generated from these models
(`python -m pcache_magic.session.store --schema`) and a test fails when it drifts.

Requests repeat the whole prefix call after call, so they are stored packed: each distinct
content item (a tool, a system text, a message's block) once in `items`, each distinct message
once in `messages`, and a call's messages as "the first `keep` of the previous call's, then
`add`" (`pack.py`).  Every number is bounded and finite, every model a name; what the models
cannot say (indices in range, models in the catalogue) `store` checks before anything changes.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from anthropic.types import Message
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..core.conversation import Block
from ..core.env import without_api_key
from ..core.models import Prices
from ..core.ttl import TTL
from .replies import reply_problem
from .session_settings import CacheMode, TokenCounts

__all__ = [
    "FORMAT",
    "MAX_COUNT",
    "MAX_TIME",
    "VERSION",
    "PackedMessage",
    "PackedRequest",
    "RawMessage",
    "SavedCall",
    "SavedClock",
    "SavedEntry",
    "SavedName",
    "SavedPrediction",
    "SavedReply",
    "SavedSettings",
    "SessionFile",
    "StoreError",
    "json_schema",
]

FORMAT: Final = "pcache_magic.session.session"
VERSION: Final = 2

#: Latest instant a file may name (seconds since 1970, about the year 5138): far past any
#: emulator clock (at most a hundred years of advances), short of where floats lose the second.
MAX_TIME: Final = 1e11
#: Largest count (tokens, indices) a file may hold: far beyond any context window or session.
MAX_COUNT: Final = 10**12


class StoreError(ValueError):
    """A session file that cannot be loaded or written: one line naming the field and the fix (the
    key blotted out of it: a path or a block name typed with the key pasted in is quoted back)."""

    def __init__(self, message: str) -> None:
        super().__init__(without_api_key(message))


Timestamp = Annotated[float, Field(ge=0, le=MAX_TIME, allow_inf_nan=False)]
Seconds = Annotated[float, Field(ge=0, le=MAX_TIME, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
ModelName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^\S+$")]
Text = str  # bounded by the file size cap, like the content
Status = Literal["hit", "hit+write", "write", "below-minimum", "covered"]
Digest = Annotated[str, Field(pattern=r"^(?:[0-9a-f]{2}){1,64}$")]


class _Strict(BaseModel):
    """Unknown fields are refused: a typo or a foreign file is an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class SavedSettings(_Strict):
    """What a call uses unless it says otherwise (`session_settings.Settings`)."""

    model: ModelName
    max_tokens: Annotated[int, Field(ge=0, le=10**8)]
    default_ttl: TTL | None = None
    cache_mode: CacheMode = "none"
    diagnostics: bool = True
    max_cost: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    budget: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    token_counts: TokenCounts = "auto"


class SavedClock(_Strict):
    """The session's clock when saved.  Offline, loading moves a fresh emulator's clock on to
    `now` (its offset from the emulator's start), so the saved times stay in the past."""

    now: Timestamp
    mode: Literal["live", "offline", "server", "custom"]


class SavedEntry(_Strict):
    """One cache write the session's ledger remembers (`Ledger.dump`), with its prefix key."""

    key: Annotated[str, Field(pattern=r"^(?:[0-9a-f]{2}){1,64}$")]
    tokens: Count
    ttl: TTL
    expires_at: Timestamp
    path: Text
    block: Text | None = None
    model: ModelName


class SavedPrediction(_Strict):
    """What the session expected of one breakpoint before sending (`Prediction.as_dict`)."""

    path: Text
    block: Text | None = None
    ttl: TTL
    tokens: Count
    status: Status
    read: Count = 0


class SavedName(_Strict):
    """The name the block at `path` with content `digest` was last sent under (`CacheBook.names`)."""

    path: Text
    digest: Digest
    name: Text


class PackedMessage(_Strict):
    """A message of a request: its role and its content, a string or indices into `items`."""

    role: Literal["user", "assistant"]
    content: list[Count] | str


class RawMessage(_Strict):
    """A message of any other shape, kept as it was sent."""

    raw: Any


class PackedRequest(_Strict):
    """A request as sent: `keys` in their order; `tools` and `system` as indices into `items`
    (or the system string); the messages the previous call's first `keep`, then `add` (indices
    into `messages`); every other field as it was in `fields`."""

    keys: list[Annotated[str, Field(max_length=200)]]
    fields: dict[str, Any] = Field(default_factory=dict)
    tools: list[Count] | None = None
    system: list[Count] | str | None = None
    keep: Count = 0
    add: list[Count] = Field(default_factory=list)


class SavedReply(BaseModel):
    """A call's reply as saved, read back as the SDK read it from the server (its `construct`, no
    validation) and checked as the session checked it before recording it (`replies.reply_problem`):
    a file accepts the replies a server could have given the session, and only those.  So a call
    the session recorded always loads back, a content block newer than the SDK included, and a
    file is no way past the reply check.  Its envelope is checked first, cheaply (a type, an id, a
    list of objects that each say their type, a usage object): a file of a million empty blocks is
    refused at once, not after a strict validation's error per field of every block."""

    model_config = ConfigDict(extra="allow")

    type: Literal["message"]
    id: str
    content: list[dict[str, Any]]
    usage: dict[str, Any]

    @field_validator("content")
    @classmethod
    def _typed(cls, content: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each block says its type: the SDK builds a block for anything, ~35 us each."""
        if not all(isinstance(block.get("type"), str) for block in content):
            raise ValueError("its content holds something that is not a content block")
        return content


class SavedCall(_Strict):
    """One call as the session recorded it (`core.record.CallRecord`), failed ones included."""

    index: Count
    kind: Literal["ask", "prewarm", "create", "tool_loop", "batch"]
    model: ModelName
    started_at: Timestamp
    latency_s: Seconds = 0.0
    error: Text | None = None
    estimated: bool = False
    prices: Count | None = None
    """Index into the file's `prices`: the rates the call was priced at."""
    prediction: list[SavedPrediction] | None = None
    in_flight: list[Count] = []
    """The calls begun and not yet answered when this one began (`CallRecord.in_flight`)."""
    request: PackedRequest
    response: SavedReply | None = None
    """The reply, read as a `SavedReply` says; the SDK's `Message` once validated (`reply`)."""

    @property
    def reply(self) -> Message | None:
        """`response` as the session records it: the `Message` its validator built."""
        response: object = self.response
        return response if isinstance(response, Message) else None

    @field_validator("response")
    @classmethod
    def _read(cls, reply: SavedReply | None) -> Message | None:
        return None if reply is None else _as_the_sdk_read(reply)


def _as_the_sdk_read(reply: SavedReply) -> Message:
    """`reply` built as the SDK builds a reply (no validation), then checked as the session checks
    a reply before it records it: what passes here would have been recorded, and nothing else."""
    try:
        message = Message.model_construct(None, **reply.model_dump())
    except Exception:  # construct on hostile fields: whatever it raises, the reply is refused
        raise ValueError("not a Messages API answer the SDK can read") from None
    problem = reply_problem(message)
    if problem is not None:
        raise ValueError(problem)
    return message


class SessionFile(_Strict):
    """The whole file; `format` and `version` first, so foreign and newer files are told apart."""

    format: Literal["pcache_magic.session.session"] = FORMAT
    version: Literal[2] = VERSION
    saved_by: Annotated[str, Field(max_length=40)] = ""
    """The pcache_magic that wrote it (`X.Y.Z`)."""
    saved_at: Annotated[str, Field(max_length=40)] = ""
    settings: SavedSettings
    clock: SavedClock
    blocks: list[Block]
    ledger: list[SavedEntry] = Field(default_factory=list)
    prices: list[Prices] = Field(default_factory=list)
    items: list[Any] = Field(default_factory=list)
    """Each distinct content item of the requests (a tool, a system text, a message block), once."""
    messages: list[PackedMessage | RawMessage] = Field(default_factory=list)
    """Each distinct message of the requests, once."""
    calls: list[SavedCall] = Field(default_factory=list)
    block_names: list[SavedName] = Field(default_factory=list)
    """The names the blocks were sent under: explanations of calls whose blocks were edited or
    dropped since still name them."""


def json_schema() -> dict[str, Any]:
    """The JSON Schema of `SessionFile`, as published in docs/session-schema.json."""
    schema = SessionFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"{FORMAT}/v{VERSION}"
    return schema
