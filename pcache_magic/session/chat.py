"""The notebook's turns: `ask` (with its tool loop) and `prewarm`, on a conversation.

`Chat` is given the parts a turn needs: `Requests` renders the conversation, the
`CallPipeline` checks, sends and records, and `emit` tells the observers that the blocks
changed.  Each call names the conversation it works on, since a session replaces its
conversation on reset or load.  A turn that fails or is interrupted (Ctrl-C mid-stream
included) leaves that conversation exactly as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from anthropic.types import Message

from ..core.conversation import Block, Conversation
from ..core.turns import answer_unanswered_tool_uses, as_content, run_tools
from .calls import CallPipeline
from .observers import Emit
from .requests import Requests
from .session_settings import CacheMode

__all__ = ["Chat"]


class Chat:
    """`ask` and `prewarm`: the conversation rendered by `requests`, sent through `pipeline`."""

    def __init__(self, requests: Requests, pipeline: CallPipeline, emit: Emit) -> None:
        self._requests = requests
        self._pipeline = pipeline
        self._emit = emit

    def ask(
        self,
        conversation: Conversation,
        prompt: str | Sequence[Mapping[str, Any]],
        *,
        stream: bool = True,
        on_text: Callable[[str], None] | None = None,
        cache: CacheMode | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        name: str | None = None,
        run_tool: Callable[[str, dict[str, Any]], Any] | None = None,
        max_tool_rounds: int = 8,
        **extra: Any,
    ) -> Message:
        """Send `conversation` plus `prompt` as the next user turn; keep the reply in it.

        With `run_tool`, tool calls are answered (`run_tool(name, input)`) and
        the loop continues until the turn ends or `max_tool_rounds` is reached.
        On any failure, including Ctrl-C mid-stream, the conversation is restored.
        """
        saved = list(conversation.blocks)  # blocks are frozen: the list is the whole state
        options: dict[str, Any] = {"cache": cache, "model": model, "max_tokens": max_tokens, **extra}
        try:
            answer_unanswered_tool_uses(conversation)
            turn = name or conversation.unique_name("prompt")
            conversation.add(Block(name=turn, role="user", kind="prompt", content=as_content(prompt)))
            message = self._call(conversation, "ask", options, stream, on_text)
            rounds = 0
            while run_tool is not None and message.stop_reason == "tool_use" and rounds < max_tool_rounds:
                rounds += 1
                conversation.add(
                    Block(
                        name=conversation.unique_name(f"{turn}-tool-result"),
                        role="user",
                        kind="tool_result",
                        content=run_tools(message, run_tool),
                    )
                )
                message = self._call(conversation, "tool_loop", options, stream, on_text)
        except BaseException:
            conversation.blocks[:] = saved
            self._emit("blocks", None)
            raise
        self._emit("blocks", None)
        return message

    def prewarm(self, conversation: Conversation, *, model: str | None = None) -> Message:
        """Fill the cache for `conversation` without generating (`max_tokens: 0`); it keeps nothing.

        A placeholder user turn goes last when the conversation has none there: a request needs
        one, and newer models refuse to continue an assistant turn.  It follows every block, so
        the cached prefix is the conversation's own.  Tool calls nobody answered get their error
        results in the request, as `ask` would send them.
        """
        request = conversation.copy_state()
        answer_unanswered_tool_uses(request)
        last = request.last_turn()
        if last is None or last.role != "user":
            request.add(
                Block(
                    name=request.unique_name("prewarm"),
                    role="user",
                    kind="prompt",
                    content=[{"type": "text", "text": "(pre-warming the cache)"}],
                )
            )
        params, names = self._requests.render(request, cache="none", model=model, max_tokens=0)
        return self._pipeline.send("prewarm", params, names, stream=False, on_text=None)

    def _call(
        self,
        conversation: Conversation,
        kind: Any,
        options: Mapping[str, Any],
        stream: bool,
        on_text: Callable[[str], None] | None,
    ) -> Message:
        """One request for the conversation as it stands; the reply (if any) joins it."""
        params, names = self._requests.render(conversation, **options)
        message = self._pipeline.send(kind, params, names, stream=stream, on_text=on_text)
        reply = [block.model_dump(exclude_none=True) for block in message.content]
        if reply:
            name = conversation.unique_name("reply")
            conversation.add(Block(name=name, role="assistant", kind="reply", content=reply))
        return message
