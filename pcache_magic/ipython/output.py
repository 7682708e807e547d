"""What the magics show: display objects, the streamed reply, and one-line errors.

Display objects carry both a rich representation (Markdown, or the view's
HTML) and plain text, so the same `display()` reads well in JupyterLab, in a
terminal and in a saved notebook.  Errors become `UsageError`s: IPython shows
those as one line, without a traceback.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import anthropic
from IPython.core.error import UsageError
from IPython.display import display

from ..core.fmt import clock, cut, duration, entry_names, fit, plural, tokens, visible
from ..session.transport import redact_key
from .reply_text import MarkdownText, ReplyText, held_back, shown, transcript

if TYPE_CHECKING:
    from ..core.record import CallRecord
    from ..session.session import Session

__all__ = [
    "Reply",
    "SessionTables",
    "Summary",
    "api_error_text",
    "clock_report",
    "one_line",
    "say",
    "thinking_note",
    "tool_runner",
    "usage_errors",
]

UPDATE_EVERY_S = 0.1  # live enough to read along, rare enough not to flood the front end
# The streaming display as it opens and once cleared: plain text, not Markdown.  JupyterLab 4
# and Notebook 7 re-render an update in the same renderer while its type is unchanged, parse
# Markdown asynchronously and clear an empty one at once, so an empty Markdown update could land
# before a partial reply still being parsed, and leave that partial above the finished turn.  A new
# type replaces the renderer: a render still pending lands in a discarded node.  The same at both
# ends, so a saved notebook is the same whether or not its runner applied the updates (nbval does not).
_BLANK = {"text/plain": ""}


class Summary:
    """One call's usage line: HTML from the renderer, plain text in a terminal."""

    def __init__(self, record: CallRecord) -> None:
        self.record = record

    def _repr_html_(self) -> str:
        from ..view.render import render_summary

        html = render_summary(self.record)
        note = thinking_note(self.record)
        return f"{html[: -len('</div>')]}{note}</div>" if note and html.endswith("</div>") else html

    def __repr__(self) -> str:
        from ..view.render import summary_text

        return visible(summary_text(self.record) + thinking_note(self.record))  # a server's error


def thinking_note(record: CallRecord) -> str:
    """` · output of which ~N thinking (estimate)`, or "" for a reply without thinking text."""
    from ..view.calls import thinking_tokens

    thought = thinking_tokens(record)
    return f" · output of which {tokens(thought, True)} thinking (estimate)" if thought else ""


class SessionTables:
    """`%claude_session show`: the panel's tables as static HTML, or a short text listing."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _repr_html_(self) -> str:
        from ..view.render import render_session

        return render_session(self.session)

    def __repr__(self) -> str:
        lines = [repr(self.session)]
        for b in self.session.conversation.in_request_order():
            mark = f", cache {b.cache.lifetime}" if b.cache else ""
            source = f" ({visible(b.source)})" if b.source else ""
            lines.append(f"  {visible(b.name)}: {b.kind}{mark}{source}")
        t = self.session.totals
        est = self.session.offline and t.calls > 0
        failed = f" ({t.failed} failed)" if t.failed else ""  # every call, as the panel counts them
        lines.append(f"  {plural(t.calls + t.failed, 'call')}{failed}: {t.tokens.line(est)}; {t.cost}")
        return "\n".join(lines)


class Reply:
    """Where a `%%claude` reply goes as it arrives.

    Rich front ends get one Markdown display, updated at most every
    `UPDATE_EVERY_S`; a terminal gets the text printed as it comes.  Tool calls
    and their results are noted in place, so the loop is visible, not silent.

    The streaming display starts and ends empty, and the finished turn is a
    display of its own: a saved notebook then holds the same outputs whether or
    not the tool that ran it applies display updates (nbval does not).  Its
    last update always wins: it is cleared to another type than the reply's
    (`_BLANK`), and nothing updates it after `finish`.
    """

    def __init__(self, rich: bool, live: bool = True) -> None:
        self.text = ""
        self.tool_lines: list[str] = []
        self._rich = rich
        self._handle = display(_BLANK, raw=True, display_id=True) if rich and live else None
        if self._handle is not None:
            self._handle.update(MarkdownText("…"))
        self._live = live
        self._last = 0.0
        self._printed = 0  # how much of `text` a terminal has been given

    def write(self, text: str) -> None:
        self.text += text
        if not self._live:
            return
        if self._handle is None:
            self._print(final=False)
        elif time.monotonic() - self._last >= UPDATE_EVERY_S:
            self._last = time.monotonic()
            self._handle.update(ReplyText(self.text))

    def tool(self, name: str, arguments: Mapping[str, Any], outcome: str) -> None:
        line = f"> tool `{name}({json.dumps(arguments, default=str)})` → {one_line(outcome, 200)}"
        self.tool_lines.append(line)
        self.write(f"\n\n{line}\n\n")

    def _print(self, *, final: bool) -> None:
        """Print what a terminal has not been given yet (`shown`), but for an end that may be the
        start of the API key (`held_back`), until `final`: a key split between pieces is blotted."""
        rest = self.text[self._printed :]
        end = len(rest) if final else held_back(rest)
        if end:
            print(shown(rest[:end], pieces=final), end="", flush=True)
            self._printed += end

    def flush(self) -> None:
        """Show all that arrived (also after a failure: a partial reply stays readable).

        With nothing arrived (the call was refused, or failed first), the "…" goes.  The text
        goes to a fresh renderer (cleared first), so no earlier partial still rendering lands after it.
        """
        if self._handle is not None:
            self._handle.update(_BLANK, raw=True)
            if self.text:
                self._handle.update(ReplyText(self.text))
        elif self._live:
            self._print(final=True)

    def finish(self, records: Sequence[CallRecord], stop_reason: str | None) -> None:
        """The whole turn in place of the stream, then one usage line per call."""
        text = transcript(records, self.tool_lines, self._rich) or f"*(no text; stop reason: {stop_reason})*"
        if self._handle is not None:
            self._handle.update(_BLANK, raw=True)
            self._handle = None  # closed: a late write or flush cannot bring a partial back
            self._live = False
        if self._rich:
            display(ReplyText(text, ours=True))
        elif self._live and self.text:  # printed as it came (`run_turn` waits for one with thinking)
            self._print(final=True)
            print()
        else:
            print(shown(text))
        for record in records:
            display(Summary(record))


def tool_runner(
    table: Mapping[str, Callable[..., Any]], namespace: Mapping[str, Any], reply: Reply
) -> Callable[[str, dict[str, Any]], Any]:
    """`run_tool` for the session: call the registered function, noting each call in the reply.

    The function is looked up in the notebook namespace by its name first, so
    redefining it in a cell takes effect without re-running `%%claude_tools`.
    """

    def run(name: str, arguments: dict[str, Any]) -> Any:
        fn = table.get(name)
        if fn is None:
            reply.tool(name, arguments, "not run: no --run function of that name")
            raise LookupError(f"no function for tool {name!r}; register it with %%claude_tools --run")
        latest = namespace.get(getattr(fn, "__name__", ""))
        try:
            output = (latest if callable(latest) else fn)(**arguments)
        except Exception as error:  # the session sends it back as an is_error result
            reply.tool(name, arguments, f"{type(error).__name__}: {error}")
            raise
        reply.tool(name, arguments, str(output))
        return output

    return run


def clock_report(session: Session) -> str:
    """The clock, and the cache entries the session believes live (plus the emulator's count)."""
    from ..view.render import keepwarm_lines

    now = session.now()
    when = clock(now, date=True)
    lines = [f"{'Emulator' if session.offline else 'Real'} time: {when}"]
    entries = session.ledger.entries(now)
    if not entries:
        lines.append("No live cache entries (as far as this session knows).")
    for e, where in zip(entries, entry_names(entries), strict=True):
        left = duration(e["expires_in"], ceil=True)
        shown = tokens(int(e["tokens"]), estimated=True)
        lines.append(f"  {where}: {shown} tokens (estimated), {e['ttl']}, expires in {left}")
    lines += [f"  {line}" for line in keepwarm_lines(session.keepwarm, now)]
    emulator = session.connection.emulator if session.connection is not None else None
    if emulator is not None:
        lines.append(f"The emulator holds {plural(len(emulator.state()['entries']), 'live entry')}.")
    if session.offline:
        lines.append(
            "Offline, time stands still until you move it: %claude_clock advance 5m (or 90s, 1h30m, 2h)."
        )
    return "\n".join(lines)


def say(text: str) -> None:
    """Print `text` wrapped between words to `TEXT_WIDTH` (`fmt.fit`): a notebook breaks a longer
    line of plain text anywhere, inside an amount or a flag too.  Control characters (a file
    name's ESC or BEL, which a front end would act on) print as their pictures (`fmt.visible`)."""
    print(fit(visible(text)))


def one_line(text: object, limit: int = 300) -> str:
    """`text` on one line of at most `limit` characters, its control characters as pictures (an
    error quotes what the user gave: a file name may hold an escape sequence)."""
    return cut(" ".join(visible(text).split()), limit)


def api_error_text(error: anthropic.APIError, retries: int) -> str:
    """What happened and what to do, in one line (the SDK's messages carry no key)."""
    after = f" after {retries} {'retry' if retries == 1 else 'retries'}" if retries else ""
    if isinstance(error, anthropic.APITimeoutError):
        return f"The API did not answer in time{after}; try again, or raise ClaudeMagics.timeout."
    if isinstance(error, anthropic.APIConnectionError):
        from ..session.bounded_http import AnswerTooLarge, RedirectRefused

        cause = error.__cause__
        if isinstance(cause, AnswerTooLarge | RedirectRefused):  # a bound on what a server may send
            said = one_line(cause)
            return f"The server's answer was refused: {said}; check where the calls go (its base URL)."
        return f"Could not reach the API{after}; check the network, or work offline (ClaudeMagics.offline)."
    if not isinstance(error, anthropic.APIStatusError):
        return f"The API call failed: {one_line(error.message)}"
    body = error.body if isinstance(error.body, dict) else {}
    inner = body.get("error")
    detail = one_line((inner.get("message") if isinstance(inner, dict) else None) or error.message)
    status = error.status_code
    advice = {
        400: f"The API rejected the request (400): {detail}",
        401: "The API key was rejected (401); check ANTHROPIC_API_KEY.",
        403: f"The key may not do this (403): {detail}",
        404: f"Not found (404): {detail}; check the model (%config ClaudeMagics.model).",
        413: "The request is too large (413); drop or shrink a context block (%claude_session drop NAME).",
        429: f"Rate limited (429){after}; wait a minute and try again.",
        529: f"The API is overloaded (529){after}; try again in a minute.",
    }
    if status in advice:
        return advice[status]
    if status >= 500:
        return f"The API failed ({status}){after}: {detail}; try again shortly."
    return f"The API answered {status}: {detail}"


@contextmanager
def usage_errors(session: Session) -> Iterator[None]:
    """Turn what a Session call raises into UsageErrors (the session has already rolled back)."""
    from ..core.preflight import PreflightError  # here: loading the extension imports neither
    from ..core.turns import broken_stream
    from ..session.replies import MalformedReply

    try:
        yield
    except MalformedReply as error:  # before ValueError: it says the conversation is unchanged
        raise UsageError(error.said("the conversation is unchanged")) from None
    except PreflightError as error:
        # a block's name from a file or another's notebook may hold controls: shown as pictures
        found = [visible(f"{f.where()}{f.message} {f.fix}") for f in error.findings]
        if len(found) == 1:
            raise UsageError(f"Not sent: {found[0]}") from None
        raise UsageError("Not sent:\n" + "\n".join(f"  - {f}" for f in found)) from None
    except KeyboardInterrupt:
        raise UsageError("Interrupted; the conversation is unchanged.") from None
    except anthropic.APIError as error:
        cut = broken_stream(error)
        if cut is not None:  # SDK 2.17 and later: a stream cut mid-reply, wrapped
            raise UsageError(_broke(cut)) from None
        retries = getattr(session.client, "max_retries", 0)
        raise UsageError(redact_key(api_error_text(error, retries), session.client)) from None
    except (ValueError, KeyError) as error:
        plain_key = type(error) is KeyError and error.args  # KeyError's str() is the repr of its key
        raise UsageError(one_line(error.args[0] if plain_key else error)) from None
    except Exception as error:
        if not type(error).__module__.startswith(("httpx", "httpcore")):
            raise
        # SDK 2.16: a stream cut mid-reply surfaces as the HTTP library's error, not the SDK's.
        raise UsageError(_broke(error)) from None


def _broke(error: BaseException) -> str:
    return (
        f"The connection broke during the reply ({type(error).__name__}); "
        "the conversation is unchanged, run the cell again."
    )
