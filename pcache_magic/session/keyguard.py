"""The API key never travels in a request body: a prompt, block or tool that holds it is refused.

A key pasted into a cell, or expanded into a prompt from a variable, would be sent, kept in the
call record, shown by the views, saved and exported.  Every request is scanned before it goes
(`CallPipeline.begin_call`) for the keys `transport.secrets` knows.  The session re-sends the
same block objects call after call, so a block found clean is remembered by identity and not
scanned again: a call costs a scan of its new blocks only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..core.preflight import Finding

__all__ = ["KeyGuard"]

#: Blocks remembered as clean; past this the memory starts over (a scan is cheap, memory is not).
_REMEMBERED = 20_000


class KeyGuard:
    """Finds an API key in a request's system, tools and messages, remembering clean blocks."""

    def __init__(self) -> None:
        self._clean: dict[int, object] = {}  # id -> the block itself, so the id is not reused

    def check(
        self, params: Mapping[str, Any], keys: Sequence[str], names: Mapping[str, str]
    ) -> Finding | None:
        """An error finding naming the first block that holds one of `keys`, or None."""
        if not keys:
            return None
        for path, block in _blocks(params):
            if isinstance(block, dict | list) and self._clean.get(id(block)) is block:
                continue
            text = block if isinstance(block, str) else json.dumps(block, ensure_ascii=False, default=str)
            if any(key in text for key in keys):
                return Finding(
                    level="error",
                    code="api-key-in-request",
                    block=names.get(path, path),
                    message=f"The request holds the API key (at {path}); it is never sent.",
                    fix="Take the key out of that prompt, block or tool, then run the cell again.",
                )
            if isinstance(block, dict | list):
                if len(self._clean) >= _REMEMBERED:
                    self._clean.clear()
                self._clean[id(block)] = block
        return None


def _blocks(params: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """Each top-level piece of a request that can carry text, with its request path."""
    system = params.get("system")
    if isinstance(system, str):
        yield "system", system
    elif isinstance(system, list):
        yield from ((f"system.{i}", b) for i, b in enumerate(system))
    for i, tool in enumerate(params.get("tools") or ()):
        yield f"tools.{i}", tool
    for m, message in enumerate(params.get("messages") or ()):
        content = message.get("content") if isinstance(message, Mapping) else message
        if isinstance(content, list):
            yield from ((f"messages.{m}.content.{i}", b) for i, b in enumerate(content))
        else:
            yield f"messages.{m}", content
    for field in ("stop_sequences", "metadata", "output_config", "tool_choice"):
        if field in params:
            yield field, params[field]
