"""What a block cell says when it runs: the block's size and cache, and what the next call will meet.

One line for the block (its tokens as the panel counts them, message framing included), then the
next request's findings that concern this cell: every error (whichever block it names), this
block's warnings, and the warnings the cell newly caused elsewhere (a marker that now covers an
earlier block's timestamp would otherwise be said only when that block's cell ran again), and what
re-sending an edited prefix will cost, priced before it is paid.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..core.conversation import Block
    from ..session.session import Session

__all__ = ["SAID", "block_echo", "warnings"]


#: Warnings on other blocks a cell says before "and N more" (the panel lists them all).
SAID = 3


def warnings(session: Session) -> set[tuple[str | None, str]]:
    """The kinds of warning the next request would get now, as (block, code): a cell's echo says
    only those it newly causes on other blocks, told by kind, not by their words (a prefix's token
    count in them changes whenever a block is added before it)."""
    params, paths = session.next_request()
    findings, _ = session.check(params, paths)
    return {(f.block, f.code) for f in findings if f.level == "warning"}


def block_echo(
    session: Session, block: Block, before: set[tuple[str | None, str]], added: bool = False
) -> str:
    """The lines a cell that made `block` prints (`before`: `warnings` before the cell ran; `added`:
    the block is new, not one the cell made before)."""
    params, paths = session.next_request()
    size = sum(p.tokens for p in session.layout(params).positions if paths.get(p.path) == block.name)
    cache = f"cached {block.cache.lifetime}" if block.cache else "not cached"
    lines = [f"{block.kind} block {block.name!r}: ~{size:,} tokens, {cache}."]
    findings, _ = session.check(params, paths)
    caused = 0
    for f in findings:
        if f.level == "error" or (f.level == "warning" and f.block in (None, block.name)):
            lines.append(f"  {f.level}: {f.message} {f.fix}")
        elif f.level == "warning" and (f.block, f.code) not in before:
            caused += 1
            if caused <= SAID:
                lines.append(f"  {f.level}: {f.message} {f.fix}")
    if caused > SAID:
        lines.append(f"  and {caused - SAID} more warnings on other blocks (%claude_panel lists them).")
    impact = session.book.edit_impact(params, paths, session.info, session.now())
    if impact is not None and impact.block == block.name:
        lines.append(f"  note: {impact.text(added)}")
    return "\n".join(lines)
