"""`ipython/batch_magic.py` and `%claude_batch`: a batch by id (status, results, cancel, list), and one
clear line for whatever goes wrong."""

from __future__ import annotations

from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import pcache_magic
from pcache_magic.session import batch
from pcache_magic.session.session import Session

LONG = " ".join(f"Rule {i}: grade the answer on its reasoning, not its length." for i in range(150))


def line(ip: InteractiveShell, text: str) -> str:
    with capture_output() as out:
        ip.run_cell(f"%claude_batch {text}").raise_error()
    return out.stdout


def refused(ip: InteractiveShell, text: str) -> str:
    calls = len(pcache_magic.current_session().calls)
    with capture_output():
        result = ip.run_cell(f"%claude_batch {text}")
    error = result.error_in_exec
    assert isinstance(error, UsageError), result
    assert "\n" not in str(error)
    assert len(pcache_magic.current_session().calls) == calls
    return str(error)


def submitted(session: Session, n: int = 3) -> str:
    """A batch sent and left processing, as a kernel restart would leave it."""
    session.system(LONG, cache=True)
    base = session.params(max_tokens=20)
    client = session.client
    assert client is not None
    asked = [{**base, "messages": [{"role": "user", "content": f"answer {i}"}]} for i in range(n)]
    requests: list[Any] = [{"custom_id": f"answer-{i}", "params": p} for i, p in enumerate(asked)]
    return client.messages.batches.create(requests=requests).id


def test_status_then_results_recorded_once_and_kept_in_a_variable(ip: InteractiveShell) -> None:
    session = pcache_magic.current_session()
    batch_id = submitted(session)
    status = line(ip, f"status {batch_id}")
    assert f"Batch {batch_id}: in progress (3 processing)." in status and "expires 2026-01-02" in status
    assert "try again later" in refused(ip, f"results {batch_id}")
    out = line(ip, f"results {batch_id} --wait -o graded")
    rows = out.splitlines()
    assert rows[1].startswith("answer-0") and " write " in rows[1]
    assert rows[2].startswith("answer-1") and " hit " in rows[2]
    assert "3 answers, 0 failed" in out and "The items are in graded." in out
    graded = ip.user_ns["graded"]
    assert [item.custom_id for item in graded] == ["answer-0", "answer-1", "answer-2"]
    assert all(isinstance(item, batch.BatchItem) and item.ok for item in graded)
    assert [c.kind for c in session.calls] == ["batch"] * 3
    assert "$" in rows[1] and "newly recorded" in out
    again = line(ip, f"results {batch_id}")
    assert "already recorded in this session" in " ".join(again.split()) and len(session.calls) == 3
    assert "ended 2026-01-01 09:01:00 UTC" in line(ip, f"status {batch_id}")


def test_cancel_and_list(ip: InteractiveShell) -> None:
    session = pcache_magic.current_session()
    batch_id = submitted(session, 2)
    assert f"Batch {batch_id}: canceling (2 processing)." in line(ip, f"cancel {batch_id}")
    assert f"Batch {batch_id}: ended (2 canceled)." in line(ip, "list")
    out = line(ip, f"results {batch_id}")
    assert "0 answers, 2 failed" in out and "canceled in batch" in out


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "Usage: %claude_batch status|results|cancel|list [ID]"),
        ("forward x", "Usage: %claude_batch"),
        ("status", "%claude_batch status needs a batch id"),
        ("status ../../x", "needs a batch id"),
        ("status msgbatch_missing", "No batch 'msgbatch_missing' in this workspace"),
        ("results msgbatch_missing", "No batch 'msgbatch_missing' in this workspace"),
        ("cancel msgbatch_missing", "No batch 'msgbatch_missing' in this workspace"),
        ("status msgbatch_x -o out", "-o takes a Python variable name, with results only"),
        ("results msgbatch_x -o 1bad", "-o takes a Python variable name"),
    ],
)
def test_bad_lines_are_one_line(ip: InteractiveShell, text: str, says: str) -> None:
    assert says in refused(ip, text)


def test_list_when_there_is_none(ip: InteractiveShell) -> None:
    assert line(ip, "list").strip() == "No Message Batches yet."


def test_a_failed_items_words_are_shown_without_controls_or_a_key() -> None:
    """A server's error for an item (and its custom_id) is shown with controls as pictures and
    anything shaped like a key blotted, cut to the column."""
    from pcache_magic.ipython.batch_magic import table

    key = "sk-ant-api03-" + "x" * 40
    item = batch.BatchItem("a\x1b[2Jb", error=f"\x1b]0;owned\x07 invalid key {key}")
    shown = table("msgbatch_1", [item])
    assert "\x1b" not in shown and "\x07" not in shown and key not in shown
    assert "a␛[2Jb" in shown and "[API key]" in shown
