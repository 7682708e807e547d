"""The SDK clients for a `PCACHE_EMULATOR_URL` server: the SDK's own, with a shorter default timeout.

A local emulator answers at once, so the clients give up on a silent one after `SERVER_TIMEOUT_S`
per attempt instead of the SDK's 600 s.  The SDK refuses a non-streaming Messages call that may
take longer than 10 minutes ("Streaming is required ...") only while a client's timeout is its own
default, so a shorter default would turn that refusal off: these clients ask the SDK's check
themselves, on the same terms, so URL mode refuses what live and in-process clients refuse.
Like the SDK, which compares its default by value (a timeout of 600 s given on purpose counts as
its default), a timeout of exactly `SERVER_TIMEOUT_S` given on purpose counts as this default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anthropic
from anthropic._constants import MODEL_NONSTREAMING_TOKENS  # noqa: PLC2701 (the SDK's table for its check)

if TYPE_CHECKING:
    from anthropic._models import FinalRequestOptions

__all__ = ["SERVER_TIMEOUT_S", "AsyncServerAnthropic", "ServerAnthropic"]

#: Seconds per attempt against a `PCACHE_EMULATOR_URL` server when the caller gave no `timeout`: a
#: local emulator answers at once, so one that does not is dead (the SDK's own default is 600 s).
SERVER_TIMEOUT_S = 60.0


def _refuse_long_calls(
    client: anthropic.Anthropic | anthropic.AsyncAnthropic, options: FinalRequestOptions
) -> None:
    """Raise the SDK's `ValueError` for a call it would refuse at its default timeout.

    `messages.create` (not streamed) and `messages.parse`, plain or beta, ask the SDK's check when
    the call has no timeout of its own and the client's timeout is the default; the same here, with
    `SERVER_TIMEOUT_S` as the default.  The 600 s the check answers is not used: an attempt still
    waits `SERVER_TIMEOUT_S`.  Asked on each attempt, before the request is built: a few dict reads.
    """
    body = options.json_data
    if (
        isinstance(options.timeout, anthropic.NotGiven)
        and isinstance(body, dict)
        and not body.get("stream")
        and options.url.partition("?")[0] == "/v1/messages"  # beta's ends in "?beta=true"
        and client.timeout == SERVER_TIMEOUT_S
        and isinstance(body.get("max_tokens"), int)
    ):
        model = body.get("model")
        client._calculate_nonstreaming_timeout(  # noqa: SLF001 (the SDK's own check, not a copy)
            body["max_tokens"], MODEL_NONSTREAMING_TOKENS.get(model) if isinstance(model, str) else None
        )


class ServerAnthropic(anthropic.Anthropic):
    """`anthropic.Anthropic` whose default timeout is `SERVER_TIMEOUT_S`, refusals and all; its
    copies (`with_options`) are too, and one given another timeout refuses nothing, like the SDK's."""

    def _prepare_options(self, options: FinalRequestOptions) -> FinalRequestOptions:
        _refuse_long_calls(self, options)
        return super()._prepare_options(options)


class AsyncServerAnthropic(anthropic.AsyncAnthropic):
    """`ServerAnthropic`, async."""

    async def _prepare_options(self, options: FinalRequestOptions) -> FinalRequestOptions:
        _refuse_long_calls(self, options)
        return await super()._prepare_options(options)
