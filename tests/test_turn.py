"""turn.py: one %%claude turn through a real Session and the emulator, shown and undone."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from pcache_magic.emulator import Emulator
from pcache_magic.ipython.turn import check_max_tokens, run_turn, thinking_config
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


# -- --thinking ------------------------------------------------------------------------------------
def test_thinking_values_become_the_request_field(quiet: Session) -> None:
    assert thinking_config(quiet, None, 4096, None) is None
    assert thinking_config(quiet, None, 4096, "2048") == {"type": "enabled", "budget_tokens": 2048}
    assert thinking_config(quiet, None, 4096, "2,048") == {"type": "enabled", "budget_tokens": 2048}
    assert thinking_config(quiet, "claude-sonnet-5", None, "Adaptive") == {"type": "adaptive"}
    assert thinking_config(quiet, "claude-sonnet-4-6", None, "adaptive") == {"type": "adaptive"}


@pytest.mark.parametrize(
    ("model", "max_tokens", "value", "message"),
    [
        (None, 4096, "1000", r"^--thinking is 1,000; a thinking budget is at least 1,024 tokens\.$"),
        (
            None,
            2048,
            "2048",
            r"needs max_tokens above it \(thinking counts against it; now 2,048\): add --max-tokens 6144\.$",
        ),
        (None, None, "4096", r"now 1,024\): add --max-tokens 8192\.$"),
        (None, 64_000, "64000", r"claude-sonnet-4-5 writes at most 64,000 tokens, thinking included"),
        (
            None,
            4096,
            "lots",
            r"^--thinking takes a budget in tokens \(e\.g\. 2048\) or adaptive, not 'lots'\.$",
        ),
        (None, 4096, "adaptive", r"^claude-sonnet-4-5 has no adaptive thinking; give a budget instead"),
        (
            "claude-sonnet-5",
            4096,
            "2048",
            r"^claude-sonnet-5 takes only adaptive thinking: use --thinking adaptive\.$",
        ),
        ("claude-3-5-haiku-latest", 4096, "2048", r"^claude-3-5-haiku-latest has no extended thinking"),
        ("claude-sonet-5", 4096, "2048", r"Did you mean 'claude-sonnet-5'"),
    ],
)
def test_thinking_the_api_would_refuse_is_one_line_before_sending(
    quiet: Session, model: str | None, max_tokens: int | None, value: str, message: str
) -> None:
    quiet.max_tokens = 1024
    with pytest.raises(UsageError, match=message):
        run_turn(quiet, "Think.", model=model, max_tokens=max_tokens, thinking=value, stream=False)
    assert quiet.calls == [] and quiet.conversation.names() == []


def test_a_thinking_turn_sends_it_and_shows_the_thinking_above_the_answer(
    shell: InteractiveShell, quiet: Session
) -> None:
    with capture_output() as out:
        records = run_turn(quiet, "Think first.", max_tokens=4096, thinking="2048", rich=False)
    assert records[0].request["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert [b.type for b in records[0].response.content] == ["thinking", "text"]  # type: ignore[union-attr]
    printed = out.stdout
    assert printed.index("[thinking · ~") < printed.index("[pcache_magic offline emulator")
    assert "  │ Offline emulator, a budget of 2,048 tokens" in printed
    with capture_output() as out:
        run_turn(quiet, "And again.", max_tokens=4096, thinking="2048")
    shown = [o.data["text/markdown"] for o in out.outputs if o.data.get("text/markdown")]
    assert shown[-1].startswith("<details><summary>thinking · ~")
