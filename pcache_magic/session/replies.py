"""Is this a Messages API answer?  One cheap check before a call is recorded or learned from.

The SDK does not validate what a server sends back: it builds its types without checking them,
and a plain string comes back when a non-stream call gets an event stream.  A server at a wrong
`PCACHE_EMULATOR_URL` or `ANTHROPIC_BASE_URL` (or a broken gateway there) can so hand back a
message whose `content` is a string, whose token counts are words, negative or 10**30, or a stream
cut before it finished.  Kept in the calls, such a reply breaks every later total, export and view;
here it becomes a failed call instead (`MalformedReply`), said in one line that names what was
wrong, never the reply's text.

The check runs on every call: a few attributes, then one walk over the reply's data for what no
request or session file may hold (~13 us on a short reply); no re-validation.  A session file's
replies pass the same check (`schema.SavedReply`), so a file accepts what a server could send.
"""

from __future__ import annotations

import json
import math
import os
import sys
import types
import typing
import warnings
from collections.abc import Iterable, Iterator
from typing import Any, NoReturn, TypeVar

import pydantic
from anthropic.types import CacheCreation, ContentBlock, Message, Usage

from ..core.strict_json import MAX_DEPTH, MAX_INT_DIGITS
from .transport import ConfigError

__all__ = [
    "MAX_TOKENS",
    "MalformedReply",
    "check_reply",
    "read",
    "reply_problem",
    "reraise",
    "server_of",
    "unreadable",
    "usage_problem",
]

T = TypeVar("T")

#: Above any real call's token count (the largest context windows hold a few million), far below
#: the counts that overflow the views' sums and costs.
MAX_TOKENS = 10**9

_COUNTS = ("input_tokens", "output_tokens")
_OPTIONAL_COUNTS = ("cache_creation_input_tokens", "cache_read_input_tokens")
_SPLIT = ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens")
_NOT_THERE = object()
#: The first integer of more than `MAX_INT_DIGITS` digits (either sign), which a session file refuses.
_TOO_LONG = 10**MAX_INT_DIGITS
#: Nesting allowed in a reply, from the message down: a request's limit (`strict_json.MAX_DEPTH`) less 8.
#: A block sent back sits 5 levels deeper than in the reply in a Message Batches request (body,
#: requests, a request, its params, messages, a message, its content; the reply: message, content),
#: 2 in a plain one, so the deepest reply taken still fits in either, with 3 levels to spare.
_DATA_DEPTH = MAX_DEPTH - 8


def _members(annotation: Any) -> tuple[type, ...]:
    """The classes of a (possibly `Annotated`) union of the SDK's types."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return tuple(cls for arg in typing.get_args(annotation) for cls in _members(arg))
    return (annotation,)


#: The SDK's content block classes (a block of a type newer than the SDK is built as one of them).
_BLOCKS = _members(ContentBlock)


class MalformedReply(ConfigError):
    """A server answered a call with something that is not a Messages API answer: the call failed
    and nothing of it was kept.  A `ConfigError`, as the fix is almost always the base URL."""

    def __init__(self, what: str, server: str) -> None:
        self.what, self.server = what, server
        super().__init__(self.said("the call failed"))

    def said(self, outcome: str) -> str:
        """The one line, with `outcome` (what became of the call, or of the conversation) in it."""
        return (
            f"The server at {self.server} did not answer like the Messages API ({self.what}); {outcome}. "
            "Check PCACHE_EMULATOR_URL or ANTHROPIC_BASE_URL, or try again if it was a passing fault."
        )


def server_of(client: object) -> str:
    """`scheme://host:port` of `client`'s base URL (never a user name or password in it)."""
    url = getattr(client, "base_url", None)
    host = getattr(url, "host", None)
    if not host:
        return "its base URL"
    port = getattr(url, "port", None)
    return f"{getattr(url, 'scheme', 'http')}://{host}" + (f":{port}" if port else "")


def _count_problem(owner: object, names: tuple[str, ...], where: str, optional: bool = False) -> str | None:
    """The first of `owner`'s counts `names` that is not a whole number of tokens from 0 to
    `MAX_TOKENS` (None allowed where `optional`), said as `where.NAME`; None if all are."""
    for name in names:
        value = getattr(owner, name)
        if value is None and optional:
            continue
        if type(value) is not int or not 0 <= value < MAX_TOKENS:
            return f"{where}.{name} is not a whole number of tokens from 0 to {MAX_TOKENS:,}"
    return None


def reply_problem(message: object) -> str | None:
    """What makes `message` no Messages API answer, in plain words (no text from it), or None
    (also what every reply a session file holds must pass: `schema.SavedReply`)."""
    if isinstance(message, str):  # the SDK's answer to a body it could not take for JSON
        return "the reply is plain text, not a message"
    if not isinstance(message, Message):
        return f"the reply is a {type(message).__name__}, not a message"
    if not isinstance(message.id, str):
        return "the message has no id"
    if message.type != "message":
        return "it is not a message"
    content = message.content
    if not isinstance(content, list):
        return "its content is not a list of content blocks"
    for block in content:
        if not isinstance(block, _BLOCKS) or not isinstance(block.type, str):
            return "its content holds something that is not a content block"
        if (problem := _block_problem(block)) is not None:
            return problem
    if not isinstance(message.stop_reason, str):
        return "the message is incomplete: it has no stop_reason, the reply was cut short"
    found = usage_problem(message.usage)
    if found is not None:
        return found
    return _diagnostics_problem(getattr(message, "diagnostics", None)) or _data_problem(
        message.model_dump(warnings=False)
    )


def usage_problem(usage: object) -> str | None:
    """What makes `usage` no Messages API usage (its counts whole numbers of tokens from 0 to
    `MAX_TOKENS`), or None: a whole reply's, and a stream's opening usage before its cache writes
    are learned from a stream cut short (no other part of such a reply is checked or kept)."""
    if not isinstance(usage, Usage):
        return "it has no usage"
    found = _count_problem(usage, _COUNTS, "usage") or _count_problem(
        usage, _OPTIONAL_COUNTS, "usage", optional=True
    )
    split = usage.cache_creation
    if found is None and split is not None:
        if not isinstance(split, CacheCreation):
            return "usage.cache_creation is not a split of the cache writes"
        found = _count_problem(split, _SPLIT, "usage.cache_creation")
    return found


def _diagnostics_problem(diagnostics: object) -> str | None:
    """The explanations compare their causes with `diagnostics.cache_miss_reason.type`, and the
    calls table shows its `cache_missed_input_tokens`."""
    if diagnostics is None:
        return None
    reason = getattr(diagnostics, "cache_miss_reason", _NOT_THERE)
    if reason is None:
        return None
    missed = getattr(reason, "cache_missed_input_tokens", None)
    if isinstance(getattr(reason, "type", None), str) and (missed is None or _count(missed)):
        return None
    return "its diagnostics do not say a cache miss reason the API's way"


def _count(value: object) -> bool:
    return type(value) is int and 0 <= value < MAX_TOKENS


#: For the blocks a view shows or the next request sends back, the fields they read, and their types.
_FIELDS: dict[str, tuple[tuple[str, type], ...]] = {
    "text": (("text", str),),
    "thinking": (("thinking", str), ("signature", str)),
    "redacted_thinking": (("data", str),),
    "tool_use": (("id", str), ("name", str), ("input", dict)),
    "server_tool_use": (("id", str), ("name", str), ("input", dict)),
}


def _block_problem(block: Any) -> str | None:
    """A field of another type than the block's kind needs, where a view reads it or the next
    request sends it back (the rest of the block: `_data_problem`, over the whole reply)."""
    kind = block.type
    for name, needed in _FIELDS.get(kind, ()):
        if not isinstance(getattr(block, name, None), needed):
            return f"a {kind} block has no {name} of the API's type"
    if kind == "text" and not isinstance(getattr(block, "citations", None), list | None):
        return "a text block's citations are not a list"
    return None


def _data_problem(data: Any) -> str | None:
    """Whether the reply, as JSON data, holds what no session file or request may: a number that is
    not finite, an integer of more than `MAX_INT_DIGITS` digits, nesting deeper than `_DATA_DEPTH`.
    The conversation sends its content back and a session file holds all of it (`store`'s
    bounds), so such a reply would break both; anywhere in it, extras and usage included."""
    stack = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > _DATA_DEPTH:
            return f"it nests deeper than {_DATA_DEPTH} levels"
        if isinstance(value, float) and not math.isfinite(value):
            return "it holds a number that is not finite (NaN or Infinity)"
        if isinstance(value, int) and not -_TOO_LONG < value < _TOO_LONG:
            return f"it holds an integer of more than {MAX_INT_DIGITS} digits"
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return None


def check_reply(message: object, client: object) -> Message:
    """`message` itself if it is a whole Messages API answer; else `MalformedReply`.

    Whole: the SDK's `Message`, its `content` a list of the SDK's content blocks, a `stop_reason`
    (the API and the emulator always send one; a stream cut before its `message_delta` has none),
    token counts that are whole numbers from 0 to `MAX_TOKENS`, blocks whose fields a view or the
    next request reads of their types, and nothing a request or session file cannot hold.
    """
    problem = reply_problem(message)
    if problem is not None:
        raise MalformedReply(problem, server_of(client))
    return typing.cast(Message, message)


def unreadable(error: BaseException, client: object, *, streaming: bool = False) -> BaseException:
    """`error`, or the `MalformedReply` to raise in its place when it is the SDK failing to read a
    reply: a body that is not JSON or not UTF-8, nested too deep for `json` (a `RecursionError`),
    fields of the wrong types, an event stream with no message in it (its decoder's bare
    `AssertionError`), or, while a stream is read, events out of order.  Only for errors raised
    inside the SDK's own calls: ours pass through as they are."""
    if isinstance(error, json.JSONDecodeError):
        what = "its body is not valid JSON"
    elif isinstance(error, UnicodeDecodeError):
        what = "its body is not UTF-8 text"
    elif isinstance(error, pydantic.ValidationError):
        what = "its fields are not of the types the API sends"
    elif type(error) is AssertionError:
        what = "no message came in its event stream"
    elif isinstance(error, RecursionError):  # `json` reading nesting deeper than Python's stack
        what = "it nests too deep to be read"
    elif streaming and type(error) in (RuntimeError, IndexError, TypeError):  # the SDK's event accumulator
        what = "its events came out of order"
    elif type(error) in (TypeError, AttributeError) and _in_construct(error):  # a key like `_fields_set`
        what = "its fields are not of the types the API sends"
    else:
        return error
    return MalformedReply(what, server_of(client))


#: What pydantic's serializer warnings begin with (`BaseModel.model_dump(warnings=True)`).
_SERIALIZER_WARNINGS = "Pydantic serializer warnings"

#: Where the SDK builds a reply's types without validating them (`anthropic._models`).
_MODELS = os.path.join("anthropic", "_models.py")
_CONSTRUCT = frozenset({"construct", "construct_type", "_construct_field", "model_construct"})


def _in_construct(error: BaseException) -> bool:
    """Whether `error` was raised while the SDK built a reply's types: a body whose keys are its
    own arguments (`_fields_set`) or its private names makes `construct` itself fail."""
    tb = error.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name in _CONSTRUCT and code.co_filename.endswith(_MODELS):
            return True
        tb = tb.tb_next
    return False


def reraise(client: object, *, streaming: bool = False) -> NoReturn:
    """In an `except` around an SDK call: the error being handled, or the `MalformedReply` to raise in
    its place (`unreadable`), from nothing (the SDK's error quotes the reply).  A `try` costs
    nothing until it raises, where a context manager costs on every call (and every stream event)."""
    error = sys.exc_info()[1]
    if not isinstance(error, Exception):
        raise  # the error being handled (a Ctrl-C, an exit)
    malformed = unreadable(error, client, streaming=streaming)
    if malformed is error:
        raise
    raise malformed from None


def read(items: Iterable[T], client: object) -> Iterator[T]:
    """The items of the SDK's event `items` (a stream), each taken under `reraise`: what the caller
    does with an item (a callback of its own) is not the SDK's, and is never wrapped.

    While the SDK takes an event, pydantic's serializer warnings are not shown: the SDK copies each
    opening message and block with them on, and a hostile server's "lots" of tokens would print
    a warning to stderr before the reply is checked and refused in one line (~4 us an event)."""
    iterator = iter(items)
    while True:
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", _SERIALIZER_WARNINGS, UserWarning)
                item = next(iterator)
        except StopIteration:
            return
        except Exception:
            reraise(client, streaming=True)
        yield item
