"""Token counts from the API's free `count_tokens` endpoint, for the pre-flight's prefixes.

The estimator (`core.tokens`) is close but not exact; with a key and the real API, the
minimum check and the cost forecast can use the API's own count instead.  What they need is
the *cumulative* prefix up to each breakpoint, so that is what is counted, one request per
prefix, never the blocks one by one:

- a breakpoint in `messages`: the request cut after that block (later messages and blocks
  dropped).  The count includes the few tokens of the assistant turn's opening that the API
  adds to any request (the uncached tail, 3 on the real API), so it may exceed the cached
  prefix by those.
- a breakpoint in `tools` or `system`: the endpoint needs a message, so the prefix is counted
  with a one-character user message (the probe), and the probe counted alone is taken off.

Counts are kept by the prefix's chained key (`prefix.Position.key`, built from each block's
digest, the model and the settings that move the cache), so an unchanged prefix is never
counted twice: a request per changed block version, not per call.  A failure (network, 429,
any API error, a reply whose count is not a whole number from 0 up) never blocks the call: the
estimate is used, with one short note.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anthropic

from ..core.prefix import Layout, Position
from ..core.rules import Breakpoint

__all__ = ["COUNT_TIMEOUT_S", "Counted", "TokenCounter", "wants_counts"]

#: Seconds one count may take: a slow count falls back to the estimate rather than hold the call.
COUNT_TIMEOUT_S = 10.0
#: The request fields `count_tokens` takes that change what is counted.
_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking", "output_config", "speed")
#: Fields that matter before the messages (a cut at tools or system keeps only these).
_PREFIX_FIELDS = ("model", "output_config", "speed")
_PROBE = {"role": "user", "content": "."}
#: Past this, a reply's count is not believed (no model's context window comes near it).
_MOST_TOKENS = 100_000_000
#: The host of the in-process emulator's clients (`emulator.BASE_URL`): never the real API.
_EMULATOR_HOST = "pcache-emulator.invalid"


def wants_counts(setting: str, client: object, estimated: bool) -> bool:
    """Whether to ask `count_tokens`: `api` always, `estimate` never, `auto` on a live client that
    is not the in-process emulator (`estimated`: the session's calls are emulated)."""
    if setting == "api":
        return client is not None
    if setting != "auto" or estimated or client is None:
        return False
    base_url = getattr(client, "base_url", None)
    return getattr(base_url, "host", None) != _EMULATOR_HOST


@dataclass(frozen=True)
class Counted:
    """The counted cumulative tokens of some breakpoints (by position index), and a note if a count
    failed (those breakpoints keep their estimate)."""

    tokens: dict[int, int] = field(default_factory=dict)
    note: str | None = None

    def corrected(self, lay: Layout, estimate: int) -> int:
        """`estimate` (a cumulative figure of `lay`) moved by the gap between count and estimate at
        the last counted breakpoint at or before it: the forecast's prompt and cache figures."""
        shift = 0
        for index, tokens in sorted(self.tokens.items()):
            if lay.positions[index].cumulative <= estimate:
                shift = tokens - lay.positions[index].cumulative
        return max(estimate + shift, 0)


class TokenCounter:
    """Counted prefixes by key, for one session; `requests` is how many counts were asked for."""

    def __init__(self) -> None:
        self._known: dict[bytes, int] = {}
        self.requests = 0

    def count(
        self,
        client: anthropic.Anthropic,
        params: Mapping[str, Any],
        lay: Layout,
        points: Sequence[Breakpoint],
    ) -> Counted:
        """The counted prefix up to each of `points`; on a failure, those counted so far and a note."""
        quick = client.with_options(max_retries=0, timeout=COUNT_TIMEOUT_S)
        found: dict[int, int] = {}
        for point in points:
            position = lay.positions[point.position]
            try:
                found[point.position] = self._prefix(quick, params, position)
            except Exception as error:  # any failure, even an odd 200 from a gateway: never the call's
                return Counted(found, f"count_tokens failed ({_why(error)}); the figures are estimates.")
        return Counted(found)

    def _prefix(self, client: anthropic.Anthropic, params: Mapping[str, Any], position: Position) -> int:
        if position.key not in self._known:
            if position.level == "messages":
                self._known[position.key] = self._ask(client, _cut_messages(params, position))
            else:
                with_probe = self._ask(client, _cut_before_messages(params, position))
                self._known[position.key] = max(with_probe - self._probe(client, params), 0)
        return self._known[position.key]

    def _probe(self, client: anthropic.Anthropic, params: Mapping[str, Any]) -> int:
        body = {name: params[name] for name in _PREFIX_FIELDS if name in params}
        key = b"probe:" + hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).digest()
        if key not in self._known:
            self._known[key] = self._ask(client, {**body, "messages": [_PROBE]})
        return self._known[key]

    def _ask(self, client: anthropic.Anthropic, body: dict[str, Any]) -> int:
        self.requests += 1
        tokens = getattr(client.messages.count_tokens(**body), "input_tokens", None)
        if type(tokens) is not int:
            raise _BadCount(f"no whole-number count, a {type(tokens).__name__}")
        if not 0 <= tokens <= _MOST_TOKENS:
            raise _BadCount("a count out of range")
        return tokens


class _BadCount(ValueError):
    """A count_tokens reply (a 200, perhaps from a proxy) whose `input_tokens` is not a count."""


def _why(error: Exception) -> str:
    """A few words on a failed count, never its body (which may echo the request)."""
    if isinstance(error, _BadCount):
        return str(error)
    status = getattr(error, "status_code", None)
    return f"{type(error).__name__}, HTTP {status}" if status else type(error).__name__


def _number(path: str, at: int) -> int:
    return int(path.split(".")[at])


def _cut_before_messages(params: Mapping[str, Any], position: Position) -> dict[str, Any]:
    """The tools (and system) up to `position`, with the probe as the only message."""
    body = {name: params[name] for name in _PREFIX_FIELDS if name in params}
    number = _number(position.path, 1)
    if position.level == "tools":
        body["tools"] = list(params.get("tools") or ())[: number + 1]
        return {**body, "messages": [_PROBE]}
    if params.get("tools"):
        body["tools"] = params["tools"]
    system = params.get("system")
    body["system"] = system if isinstance(system, str) else list(system or ())[: number + 1]
    return {**body, "messages": [_PROBE]}


def _cut_messages(params: Mapping[str, Any], position: Position) -> dict[str, Any]:
    """The request up to and including the block at `position` (a `messages.M.content.B` path)."""
    body = {name: params[name] for name in _FIELDS if name in params}
    m, b = _number(position.path, 1), _number(position.path, 3)
    messages = list(params.get("messages") or ())[: m + 1]
    last = dict(messages[-1])
    if not isinstance(last.get("content"), str):
        last["content"] = list(last.get("content") or ())[: b + 1]
    body["messages"] = [*messages[:-1], last]
    return body
