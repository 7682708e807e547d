"""turn.py: one %%claude turn through a real Session and the emulator, shown and undone."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from pcache_magic.emulator import Emulator
from pcache_magic.ipython.turn import check_max_tokens, run_turn
from pcache_magic.session.session import Session
from pcache_magic.session.transport import connect

MODEL = "claude-sonnet-4-5"


@pytest.fixture
def quiet(emu: Emulator) -> Session:
    """A session whose client does not retry, so an injected fault fails the turn at once."""
    return Session(model=MODEL, connection=connect(emulator=emu, max_retries=0))


def test_max_tokens_is_refused_before_anything_is_sent(quiet: Session) -> None:
    with pytest.raises(UsageError, match=r"^--max-tokens must be at least 1 "):
        check_max_tokens(quiet, None, 0)
    with pytest.raises(UsageError, match=r"^--max-tokens is 10,000,000; claude-sonnet-4-5 takes 1 to "):
        check_max_tokens(quiet, None, 10_000_000)
    quiet.max_tokens = 10_000_000
    with pytest.raises(UsageError, match=r"^ClaudeMagics\.max_tokens is 10,000,000"):
        check_max_tokens(quiet, None, None)
    check_max_tokens(quiet, None, 100)
    assert quiet.calls == []


def test_a_named_turn_asked_again_replaces_the_whole_turn(shell: InteractiveShell, quiet: Session) -> None:
    with capture_output():
        run_turn(quiet, "First?", name="q", stream=False)
        run_turn(quiet, "Between.", stream=False)
        records = run_turn(quiet, "First, again?", name="q", stream=False)
    assert len(records) == 1 and records[0].ok
    assert quiet.conversation.names() == ["prompt", "reply-2", "q", "reply"]
    block = quiet.conversation.get("q")
    assert block is not None and block.content[0]["text"] == "First, again?"


def test_a_failed_named_turn_puts_the_old_turn_back(
    shell: InteractiveShell, emu: Emulator, quiet: Session
) -> None:
    with capture_output():
        run_turn(quiet, "First?", name="q", stream=False)
    before = [b.model_dump() for b in quiet.conversation.blocks]
    emu.inject(529, times=1)
    with capture_output(), pytest.raises(UsageError, match=r"^The API is overloaded \(529\)"):
        run_turn(quiet, "First, again?", name="q", stream=False)
    assert [b.model_dump() for b in quiet.conversation.blocks] == before


def test_tools_of_dropped_blocks_are_not_run_and_code_format_shows_code(
    shell: InteractiveShell, quiet: Session
) -> None:
    ran: list[str] = []

    def ping() -> str:
        """Ping."""
        ran.append("ping")
        return "pong"

    quiet.tools([ping], name="kept")
    with capture_output() as out:
        records = run_turn(quiet, "Use ping", fmt="code", runners={"kept": {"ping": ping}})
    assert ran == ["ping"] and [r.kind for r in records] == ["ask", "tool_loop"]
    markdown = [o.data["text/markdown"] for o in out.outputs if "text/markdown" in o.data]
    assert len(markdown) == 1 and markdown[0].startswith("```")  # not streamed: one code block
    assert sum("pcache-summary" in o.data.get("text/html", "") for o in out.outputs) == 2  # usage lines
    with capture_output():
        records = run_turn(quiet, "Use ping", stream=False, runners={"gone": {"ping": ping}})
    assert ran == ["ping"] and [r.kind for r in records] == ["ask"]  # a dropped block's functions: unused
