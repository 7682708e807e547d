"""formats.py: a reply's text for --out, and its code for --format code."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from pcache_magic.ipython.formats import CodeText, code_of, reply_text, show_code
from pcache_magic.session.session import Session

REPLY = """Here is the fix:

```python
def refund(amount: int) -> int:
    return amount
```

And the test:

~~~python
assert refund(3) == 3
~~~
"""


def test_code_of_joins_the_fenced_blocks_and_keeps_their_language() -> None:
    assert code_of(REPLY) == (
        "python",
        "def refund(amount: int) -> int:\n    return amount\n\nassert refund(3) == 3",
    )


def test_code_of_a_reply_without_fences_is_all_of_it() -> None:
    assert code_of("\nSELECT 1;\n\n") == ("", "SELECT 1;")


def test_code_text_fences_past_any_backticks_inside() -> None:
    code = CodeText("print('```')", "python")
    assert code._repr_markdown_() == "````python\nprint('```')\n````"
    assert repr(code) == "print('```')"
    assert CodeText("x = 1")._repr_markdown_() == "```\nx = 1\n```"


def test_reply_text_is_what_claude_wrote(session: Session) -> None:
    session.ask("Say something.", stream=False)
    record = session.calls[-1]
    assert record.response is not None
    written = [b.text for b in record.response.content if b.type == "text"]
    assert reply_text(session.calls) == "\n\n".join(written) and written


def test_show_code_shows_the_code_then_the_usage_line(shell: InteractiveShell, session: Session) -> None:
    # `shell`: display() publishes only where an IPython shell exists
    session.ask("Say something.", stream=False)
    with capture_output() as out:
        show_code(session.calls, "end_turn")
    assert "text/markdown" in out.outputs[0].data and out.outputs[0].data["text/markdown"].startswith("```")
    assert "cache read" in out.outputs[-1].data["text/plain"]
    assert len(out.outputs) == 1 + len(session.calls)


def test_code_text_shows_no_key_and_no_raw_controls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-api03-formats-secret-key")
    code = CodeText("key = 'sk-ant-api03-formats-secret-key'\x1b[2J", "py\u202e")
    assert repr(code) == "key = '[API key]'␛[2J"
    assert code._repr_markdown_() == "```py\\u202e\nkey = '[API key]'␛[2J\n```"
