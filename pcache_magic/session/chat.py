"""The notebook's turns: `ask` (with its tool loop) and `prewarm`, on a conversation.

`Chat` is given the parts a turn needs: `Requests` renders the conversation, the
`CallPipeline` checks, sends and records, and `emit` tells the observers that the blocks
changed.  Each call names the conversation it works on, since a session replaces its
conversation on reset or load.  A turn that fails or is interrupted (Ctrl-C mid-stream
included) undoes exactly what it added or replaced, and nothing else.

A turn holds the pipeline's lock from its prompt to its reply, so turns from several threads
follow one another whole (`blocking=False` refuses instead of waiting); an `ask` from inside
a turn on the same thread (from `on_text`, `run_tool` or an observer) is refused too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from anthropic.types import Message

from ..core.conversation import Block, Conversation
from ..core.turns import answer_unanswered_tool_uses, as_content, run_tools
from .calls import CallInProgress, CallPipeline
from .observers import Emit
from .requests import Requests
from .session_settings import CacheMode

__all__ = ["Chat"]


class _Edits:
    """What one turn added to a conversation or replaced in it, so a failure undoes that alone."""

    def __init__(self, conversation: Conversation) -> None:
        self.conversation = conversation
        self._done: list[tuple[Block | None, Block]] = []  # (the block replaced or None, the new one)

    def add(self, block: Block) -> None:
        replaced = self.conversation.get(block.name)
        self.conversation.add(block)
        self._done.append((replaced, block))

    def added(self, blocks: Sequence[Block]) -> None:
        self._done += [(None, block) for block in blocks]

    def undo(self) -> None:
        """Take each new block out (or put back the one it replaced) where it stands now."""
        blocks = self.conversation.blocks
        for replaced, block in reversed(self._done):
            at = next((i for i, b in enumerate(blocks) if b is block), None)
            if at is None:  # already gone (dropped meanwhile)
                continue
            if replaced is None:
                del blocks[at]
            else:
                blocks[at] = replaced


class Chat:
    """`ask` and `prewarm`: the conversation rendered by `requests`, sent through `pipeline`."""

    def __init__(self, requests: Requests, pipeline: CallPipeline, emit: Emit) -> None:
        self._requests = requests
        self._pipeline = pipeline
        self._emit = emit
        self._asking = False  # a turn is under way (read and written under the pipeline's lock)

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
        blocking: bool = True,
        **extra: Any,
    ) -> Message:
        """Send `conversation` plus `prompt` as the next user turn; keep the reply in it.

        With `run_tool`, tool calls are answered (`run_tool(name, input)`) and
        the loop continues until the turn ends or `max_tool_rounds` is reached.
        On any failure, including Ctrl-C mid-stream, the turn's own blocks are taken out again.
        Another thread's turn is waited for, or with `blocking=False` is a `CallInProgress`.
        """
        options: dict[str, Any] = {"cache": cache, "model": model, "max_tokens": max_tokens, **extra}
        if name is not None:  # a key typed as the turn's name: refused before anything changes
            self._requests.check_name(name)
        with self._pipeline.exclusive(blocking=blocking), self._one_turn():
            edits = _Edits(conversation)
            try:
                if conversation.calls_tools():  # one pass over the blocks, only when a reply calls tools
                    edits.added(answer_unanswered_tool_uses(conversation))
                turn = name or conversation.unique_name("prompt")
                edits.add(Block(name=turn, role="user", kind="prompt", content=as_content(prompt)))
                message = self._call(edits, "ask", options, stream, on_text)
                rounds = 0
                while run_tool is not None and message.stop_reason == "tool_use" and rounds < max_tool_rounds:
                    rounds += 1
                    edits.add(
                        Block(
                            name=conversation.unique_name(f"{turn}-tool-result"),
                            role="user",
                            kind="tool_result",
                            content=run_tools(message, run_tool),
                        )
                    )
                    message = self._call(edits, "tool_loop", options, stream, on_text)
            except BaseException:
                edits.undo()
                self._emit("blocks", None)
                raise
            self._emit("blocks", None)
            return message

    @property
    def turning(self) -> bool:
        """Whether a turn is under way (read it under the pipeline's lock: then it is this thread's)."""
        return self._asking

    @contextlib.contextmanager
    def _one_turn(self) -> Iterator[None]:
        """Refuse a turn inside a turn: the lock is re-entrant, so only this flag sees one."""
        if self._asking:
            raise CallInProgress(
                "ask() was called during another ask() on the same thread (from on_text, "
                "run_tool or an observer); call it after that one returns."
            )
        self._asking = True
        try:
            yield
        finally:
            self._asking = False

    def prewarm(self, conversation: Conversation, *, model: str | None = None) -> Message:
        """Fill the cache for `conversation` without generating (`max_tokens: 0`); it keeps nothing.

        A placeholder user turn goes last when the conversation has none there: a request needs
        one, and newer models refuse to continue an assistant turn.  It follows every block, so
        the cached prefix is the conversation's own.  Tool calls nobody answered get their error
        results in the request, as `ask` would send them.
        """
        with self._pipeline.lock:  # the conversation as it stands between turns
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
        edits: _Edits,
        kind: Any,
        options: Mapping[str, Any],
        stream: bool,
        on_text: Callable[[str], None] | None,
    ) -> Message:
        """One request for the conversation as it stands; the reply (if any) joins it."""
        conversation = edits.conversation
        params, names = self._requests.render(conversation, **options)
        message = self._pipeline.send(kind, params, names, stream=stream, on_text=on_text)
        reply = [block.model_dump(exclude_none=True, warnings=False) for block in message.content]
        if reply:
            name = conversation.unique_name("reply")
            edits.add(Block(name=name, role="assistant", kind="reply", content=reply))
        return message
