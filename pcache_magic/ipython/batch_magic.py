"""`%claude_batch status|results|cancel ID` and `%claude_batch list`: a Message Batch, by its id.

A batch outlives the kernel that sent it, so the magic re-attaches by id: `status` says where
it is, `results` records its answers in the session (once) and shows them as a table with what
each cost at the batch discount, `-o NAME` keeps the `BatchItem`s in a notebook variable.
Every failure is one `UsageError` line; the session is unchanged by a refusal.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

import anthropic
from IPython.core.error import UsageError

from ..core.env import without_api_key
from ..core.fmt import cut, money, plural, visible

if TYPE_CHECKING:
    from anthropic.types.messages import MessageBatch

    from ..session.batch import BatchItem
    from ..session.session import Session

__all__ = ["ACTIONS", "run"]

ACTIONS = ("status", "results", "cancel", "list")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_NAME = re.compile(r"^[A-Za-z_]\w*$")


def run(
    session: Session,
    namespace: MutableMapping[str, Any],
    action: str | None,
    batch_id: str | None,
    *,
    output: str | None = None,
    wait: bool = False,
) -> str:
    """The text to print for one `%claude_batch` line; UsageError for anything wrong."""
    from ..session import batch  # here: loading the extension does not import it

    if action not in ACTIONS:
        raise UsageError(
            f"Usage: %claude_batch {'|'.join(ACTIONS)} [ID]; e.g. %claude_batch status msgbatch_..."
        )
    if output is not None and (not _NAME.match(output) or action != "results"):
        raise UsageError(f"-o takes a Python variable name, with results only (not {output!r}).")
    client = session.client
    if client is None:
        raise UsageError("This session has no client to reach the Message Batches API with.")
    if action == "list":
        return _list(client)
    if batch_id is None or not _ID.match(batch_id):
        raise UsageError(f"%claude_batch {action} needs a batch id, e.g. %claude_batch {action} msgbatch_...")
    try:
        if action == "status":
            return describe(batch.status(session, batch_id))
        if action == "cancel":
            return describe(client.messages.batches.cancel(batch_id))
        items = batch.collect(session, batch_id, wait=wait)
    except batch.BatchError as error:
        raise UsageError(str(error)) from None
    except anthropic.NotFoundError:
        raise UsageError(batch.missing(batch_id)) from None
    except Exception as error:  # the SDK's own errors, in one line
        raise UsageError(f"Could not {action} batch {batch_id}: {type(error).__name__}.") from None
    if output is not None:
        namespace[output] = items
    return table(batch_id, items) + (f"\nThe items are in {output}." if output else "")


def describe(found: MessageBatch) -> str:
    """One batch in two lines: its status and counts, and when it ends or ended."""
    c = found.request_counts
    counts = ", ".join(
        f"{n} {name}"
        for name, n in (
            ("processing", c.processing),
            ("succeeded", c.succeeded),
            ("errored", c.errored),
            ("canceled", c.canceled),
            ("expired", c.expired),
        )
        if n
    )
    when = (
        f"ended {found.ended_at:%Y-%m-%d %H:%M:%S} UTC; %claude_batch results {found.id} fetches them"
        if found.ended_at is not None
        else f"expires {found.expires_at:%Y-%m-%d %H:%M:%S} UTC if it has not ended by then"
    )
    status = found.processing_status.replace("_", " ")
    return f"Batch {found.id}: {status} ({counts or 'no requests'}).\n  {when}."


def table(batch_id: str, items: Sequence[BatchItem]) -> str:
    """A row per request (outcome, cache read and write, output, cost) and the total."""
    rows = [f"{'custom_id':<24} {'outcome':<9} {'read':>8} {'write':>8} {'output':>7} {'cost':>9}"]
    total = 0.0
    for item in items:
        usage, name = item.usage, visible(item.custom_id[:24])  # a server's words: controls as pictures
        if usage is None:
            reason = visible(cut(without_api_key(item.error or "no answer"), 60))
            rows.append(f"{name:<24} {'failed':<9} {reason}")
            continue
        read, written = usage.cache_read_input_tokens or 0, usage.cache_creation_input_tokens or 0
        cost = item.cost.total if item.record is not None else None
        total += cost or 0.0
        shown = money(cost) if cost is not None else "recorded"
        outcome = "hit" if read else "write" if written else "uncached"
        out = usage.output_tokens
        rows.append(f"{name:<24} {outcome:<9} {read:>8,} {written:>8,} {out:>7,} {shown:>9}")
    ok = sum(1 for i in items if i.ok)
    recorded = (
        f"{money(total)} newly recorded (batch price: half the standard rates)"
        if any(i.record is not None for i in items)
        else "already recorded in this session"
    )
    rows.append(f"Batch {batch_id}: {plural(ok, 'answer')}, {len(items) - ok} failed; {recorded}.")
    return "\n".join(rows)


def _list(client: Any) -> str:
    try:
        page = client.messages.batches.list(limit=20)
    except Exception as error:
        raise UsageError(f"Could not list the batches: {type(error).__name__}.") from None
    found = list(page.data)
    if not found:
        return "No Message Batches yet."
    return "\n".join(describe(b).partition("\n")[0] for b in found)
