"""One `%%claude` turn: checked before it is sent, shown as it arrives, undone if it fails.

The magic parses its line and the cell; this sends the turn through the Session, shows the
reply in the chosen `--format`, answers tool calls with the `--run` functions, and, when
`--name` asks a turn again, replaces the whole earlier turn (and puts it back if the new one
fails: the session has rolled back only its own part by then).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from IPython.core.error import UsageError

from .formats import show_code
from .output import Reply, tool_runner, usage_errors

if TYPE_CHECKING:
    from ..core.record import CallRecord
    from ..session.session import CacheMode, Session

__all__ = ["check_max_tokens", "run_turn", "thinking_config"]

MIN_BUDGET = 1024  # the API's least `budget_tokens`


def check_max_tokens(session: Session, model: str | None, max_tokens: int | None) -> None:
    """Refuse, before anything is sent, a max_tokens the model cannot take."""
    if max_tokens is not None and max_tokens < 1:
        raise UsageError("--max-tokens must be at least 1 (%claude_prewarm fills the cache without output).")
    with usage_errors(session):
        info = session.models.get(model or session.model)
    limit = session.max_tokens if max_tokens is None else max_tokens
    if not 1 <= limit <= info.max_output_tokens:
        where = "--max-tokens" if max_tokens is not None else "ClaudeMagics.max_tokens"
        raise UsageError(f"{where} is {limit:,}; {info.id} takes 1 to {info.max_output_tokens:,}.")


def thinking_config(
    session: Session, model: str | None, max_tokens: int | None, value: str | None
) -> dict[str, Any] | None:
    """`--thinking N|adaptive` as the request's `thinking`, refused before sending where the API
    would refuse it (a budget below 1,024 or not below max_tokens, a mode the model lacks)."""
    if value is None:
        return None
    with usage_errors(session):
        info = session.models.get(model or session.model)
    modes = info.thinking.modes if info.thinking is not None else ("enabled", "adaptive")
    if not modes:
        raise UsageError(f"{info.id} has no extended thinking; pick a model that has (--model NAME).")
    if value.strip().lower() == "adaptive":
        if "adaptive" not in modes:
            raise UsageError(f"{info.id} has no adaptive thinking; give a budget instead: --thinking 2048.")
        return {"type": "adaptive"}
    try:
        budget = int(value.replace(",", "").replace("_", ""))
    except ValueError:
        raise UsageError(
            f"--thinking takes a budget in tokens (e.g. 2048) or adaptive, not {value!r}."
        ) from None
    if "enabled" not in modes:
        raise UsageError(f"{info.id} takes only adaptive thinking: use --thinking adaptive.")
    if budget < MIN_BUDGET:
        raise UsageError(f"--thinking is {budget:,}; a thinking budget is at least {MIN_BUDGET:,} tokens.")
    limit = session.max_tokens if max_tokens is None else max_tokens
    if budget >= limit:
        room = min(budget + 4096, info.max_output_tokens)
        if budget >= info.max_output_tokens:
            raise UsageError(
                f"--thinking is {budget:,}; {info.id} writes at most {info.max_output_tokens:,} tokens, "
                "thinking included: give a smaller budget."
            )
        raise UsageError(
            f"--thinking {budget:,} needs max_tokens above it (thinking counts against it; now {limit:,}): "
            f"add --max-tokens {room}."
        )
    return {"type": "enabled", "budget_tokens": budget}


def run_turn(
    session: Session,
    prompt: str,
    *,
    model: str | None = None,
    max_tokens: int | None = None,
    thinking: str | None = None,
    output_config: Mapping[str, Any] | None = None,
    cache: str | None = None,
    name: str | None = None,
    stream: bool = True,
    fmt: str = "markdown",
    rich: bool = True,
    runners: Mapping[str, Mapping[str, Callable[..., Any]]] | None = None,
    namespace: Mapping[str, Any] | None = None,
    max_tool_rounds: int = 8,
) -> list[CallRecord]:
    """Ask `prompt` as the next turn and show it; the turn's call records (one per tool round).

    `rich`: the front end renders Markdown.  `runners`: tools block name -> tool -> function
    (only the blocks still in the conversation count).  `--format code` waits for the whole
    reply, since only its code is shown.  `thinking`: `--thinking`'s value (see `thinking_config`).
    """
    from ..session.blocks import named_turn  # here: loading the extension imports no session part

    config = thinking_config(session, model, max_tokens, thinking)
    extra: dict[str, Any] = {"thinking": config} if config is not None else {}
    if output_config:  # --schema (ipython/output_schema.py)
        extra["output_config"] = dict(output_config)
    markdown = rich and fmt == "markdown"
    # Plain text cannot put thinking above an answer already printed: such a turn waits for it all.
    stream = stream and fmt != "code" and (markdown or config is None)
    reply = Reply(markdown, live=stream)
    live = set(session.conversation.names())
    table = {k: fn for block, fns in (runners or {}).items() if block in live for k, fn in fns.items()}
    runner = tool_runner(table, namespace or {}, reply) if table else None
    first = len(session.calls)
    saved = session.conversation.copy_state()
    try:
        with usage_errors(session):
            for block in named_turn(session.conversation, name) if name else ():
                session.drop(block.name)  # asking again replaces the whole turn
            message = session.ask(
                prompt,
                stream=stream,
                on_text=reply.write,
                cache=cast("CacheMode | None", cache),
                model=model,
                max_tokens=max_tokens,
                name=name,
                run_tool=runner,
                max_tool_rounds=max_tool_rounds,
                **extra,
            )
    except BaseException:
        reply.flush()  # a partial reply stays readable; on success `finish` replaces the stream at once
        if name:  # the session rolled back its own part; put back the turn dropped above
            session.conversation = saved
        raise
    records = session.calls[first:]
    if fmt == "code":
        show_code(records, message.stop_reason)
    else:
        reply.finish(records, message.stop_reason)
    if runner is not None and message.stop_reason == "tool_use":
        print(f"Stopped after {max_tool_rounds} tool rounds (ClaudeMagics.max_tool_rounds).")
    return records
