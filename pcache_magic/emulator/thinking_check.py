"""Thinking blocks sent back, checked as the API checks them: their signatures and their place.

The API signs each thinking block so that it can refuse one that was forged or edited; the
emulator signs with an HMAC of the text (`reply.sign_thought`) and refuses a block whose signature
is not its own, and any `redacted_thinking` (it never writes one).  It also refuses thinking out of
place: in an assistant message that holds thinking, the thinking comes first; and with thinking
enabled, the assistant message of the tool loop in progress (the one before the final tool
results) must start with its thinking.  The wordings are the API's, as recorded in public issue
threads (anthropics/claude-code#20705, n8n-io/n8n#22550).  Pure.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Any

from .errors import ApiError
from .reply import sign_thought

__all__ = ["check_thinking"]

_THINKING = frozenset({"thinking", "redacted_thinking"})
_FINAL = (
    "messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{found}`. When"
    " `thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding"
    " the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include thinking blocks"
    " from previous turns. To avoid this requirement, disable `thinking`. Please consult our"
    " documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
)


def _blocks(message: dict[str, Any]) -> Sequence[dict[str, Any]]:
    content = message["content"]
    return () if isinstance(content, str) else content


def check_thinking(messages: list[dict[str, Any]], mode: str | None, key: bytes | None) -> None:
    """ApiError for the first thinking block out of place or not signed by `key` (None: signatures
    are not checked); `mode`: the request's `thinking.type`."""
    for i, message in enumerate(messages):
        blocks = _blocks(message)
        kinds = [b["type"] for b in blocks]
        late = bool(kinds) and kinds[0] not in _THINKING and bool(_THINKING & {*kinds})
        if late and message["role"] == "assistant":
            raise ApiError.invalid(
                f"messages.{i}.content.0: If an assistant message contains any thinking blocks, the"
                f" first block must be thinking or redacted_thinking. Found {kinds[0]}."
            )
        for j, block in enumerate(blocks if key is not None else ()):
            where = f"messages.{i}.content.{j}"
            if block["type"] == "thinking" and key is not None:
                expected = sign_thought(key, block["thinking"]).encode()
                if not hmac.compare_digest(block["signature"].encode(), expected):
                    raise ApiError.invalid(f"{where}: Invalid `signature` in `thinking` block")
            elif block["type"] == "redacted_thinking":
                raise ApiError.invalid(f"{where}: Invalid `data` in `redacted_thinking` block")
    last = _blocks(messages[-1]) if messages else ()
    in_loop = bool(last) and all(b["type"] == "tool_result" for b in last)
    if mode == "enabled" and in_loop and len(messages) >= 2 and messages[-2]["role"] == "assistant":
        first = _blocks(messages[-2])[:1]
        if first and first[0]["type"] not in _THINKING:
            raise ApiError.invalid(_FINAL.format(i=len(messages) - 2, found=first[0]["type"]))
