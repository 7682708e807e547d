"""The IPython magics: parse the line, call the Session, show what happened.

Thin on purpose: the Session owns the conversation, the calls and the cache
bookkeeping; `cells` turns cells and files into content and names; `store`
saves and exports; `_output` and the view draw.  The one Session lives on the
`ClaudeMagics` instance (no module-level state); its settings are traitlets
(`_settings.SessionMagics`), so `%config ClaudeMagics.model = "..."` reaches it.
Every mistake on a magic line ends as a one-line `UsageError` and leaves the
session as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from IPython.core.error import UsageError
from IPython.core.magic import cell_magic, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument
from IPython.display import display

from ..core.conversation import Block
from ..core.fmt import duration
from ..core.toolspec import tool_param
from ..core.ttl import TTLS
from ..session import store
from . import cells
from .args import magic_arguments, no_arguments, parse_argstring
from .output import Reply, SessionTables, Summary, clock_report, one_line, tool_runner, usage_errors
from .settings import MODES, MODES_HELP, SessionMagics

__all__ = ["ClaudeMagics"]


# Cell magics pass `magic_arguments("%name")` so that their usage line reads `%%name`.


def _cache_arg(func: Callable[..., Any]) -> Callable[..., Any]:
    func = argument("--name", help="Block name (default: one per cell; a re-run replaces it).")(func)
    return argument(
        "--cache", nargs="?", const=True, choices=TTLS, metavar="5m|1h", help="Cache up to this block."
    )(func)


@magics_class
class ClaudeMagics(SessionMagics):
    """Prompt-cached conversations with Claude, one cell per block."""

    # -- blocks -------------------------------------------------------------------------------
    def _add(self, kind: str, explicit: str | None, derived: str, make: Callable[[str], Block]) -> Block:
        """Add the cell's block under its name; a re-run replaces what the cell made before."""
        cell, run = cells.cell_id(self._ip)
        naming = self._cells.plan(cell, run, kind, explicit, derived)
        with usage_errors(self.session):
            block = make(naming.name)
        self._cells.commit(naming)
        if naming.replaces in self.session.conversation.names():
            self.session.drop(cast(str, naming.replaces))
        estimate = self.session.estimator
        size = sum(estimate.tool(i) if block.role == "tools" else estimate.block(i) for i in block.content)
        cache = f"cached {block.cache.lifetime}" if block.cache else "not cached"
        print(f"{block.kind} block {block.name!r}: ~{size:,} tokens, {cache}.")
        findings, _ = self.session.check()
        for f in findings:  # what the next call will meet, said now rather than at send time
            if f.level != "info" and f.block in (None, block.name):
                print(f"  {f.level}: {f.message} {f.fix}")
        return block

    @magic_arguments("%claude_system")
    @_cache_arg
    @argument("--file", nargs="+", action="extend", default=[], metavar="PATH", help="Text files; globs.")
    @line_cell_magic
    def claude_system(self, line: str, cell: str | None = None) -> None:
        """The cell (and any --file, each headed by its name) is a system prompt block.

        A bare `--cache` uses ClaudeMagics.default_ttl.  With files only, use the line form:
        `%claude_system --cache 1h --file guide.md`.
        """
        args = parse_argstring(self.claude_system, line)
        try:
            text = cells.system_text(cell or "", args.file, self.file_limits())
        except (ValueError, OSError) as error:
            raise UsageError(one_line(error)) from None
        if not text:
            raise UsageError("The cell is empty: write the system prompt below %%claude_system (or --file).")
        first = args.file[0] if args.file else None
        self._add(
            "system",
            args.name,
            f"system:{first}" if first else "system",
            lambda n: self.session.system(text, cache=args.cache, name=n),
        )

    @magic_arguments("%claude_context")
    @_cache_arg
    @argument("--file", nargs="+", action="extend", default=[], metavar="PATH", help="Text, PDF; globs.")
    @argument("--image", nargs="+", action="extend", default=[], metavar="PATH", help="PNG/JPEG/GIF/WebP.")
    @line_cell_magic
    def claude_context(self, line: str, cell: str | None = None) -> None:
        """The cell text and the files become one user context block (code, documents, images).

        With files only, use the line form: `%claude_context --cache 1h --file src/*.py`
        (IPython refuses a `%%` cell magic with an empty body).
        """
        args = parse_argstring(self.claude_context, line)
        try:
            content, source = cells.context_content(cell or "", args.file, args.image, self.file_limits())
        except (ValueError, OSError) as error:
            raise UsageError(one_line(error)) from None
        if not content:
            raise UsageError("Nothing to add: the cell is empty and no --file or --image was given.")
        first = (args.file or args.image or [None])[0]
        first_line = cells.clean_text(cell).lstrip().splitlines()[0] if not first else ""
        derived = f"context:{first or cells.short_hash(first_line)}"
        self._add(
            "context",
            args.name,
            derived,
            lambda n: self.session.context(content, cache=args.cache, name=n, source=source),
        )

    @magic_arguments("%claude_tools")
    @_cache_arg
    @argument("--run", action="store_true", help="Run the functions when Claude calls the tools.")
    @cell_magic
    def claude_tools(self, line: str, cell: str) -> None:
        """The cell is tool definitions: JSON (a list or one object), or a Python expression
        giving dicts or functions (schema from the signature, description from the docstring)."""
        args = parse_argstring(self.claude_tools, line)
        namespace = self._ip.user_ns
        try:
            specs = cells.parse_tools(cell, namespace)
            params = [tool_param(s) for s in specs]
        except ValueError as error:
            raise UsageError(one_line(error)) from None
        runners: dict[str, Callable[..., Any]] = {}
        if args.run:
            for spec, param in zip(specs, params, strict=True):
                fn = spec if callable(spec) else namespace.get(param["name"])
                if not callable(fn):
                    raise UsageError(f"--run: there is no function named {param['name']!r} in the notebook.")
                runners[param["name"]] = fn
        derived = f"tools:{params[0]['name']}"
        block = self._add(
            "tools", args.name, derived, lambda n: self.session.tools(specs, cache=args.cache, name=n)
        )
        self._runners.pop(block.name, None)
        if runners:
            self._runners[block.name] = runners

    # -- calls ----------------------------------------------------------------------------------
    def _forget_turn(self, name: str) -> None:
        """Drop a named prompt and its replies, so asking again replaces the whole turn.

        Replacing only the prompt in place would leave its old reply after it,
        and a request may not end on an assistant turn.
        """
        blocks = self.session.conversation.blocks
        start = next((i for i, b in enumerate(blocks) if b.name == name), None)
        if start is None:
            return
        if blocks[start].kind != "prompt":
            raise UsageError(f"{name!r} names a {blocks[start].kind} block; give the turn another --name.")
        end = next((i for i in range(start + 1, len(blocks)) if blocks[i].kind == "prompt"), len(blocks))
        turn = [blocks[start], *(b for b in blocks[start + 1 : end] if b.kind in ("reply", "tool_result"))]
        for block in turn:
            self.session.drop(block.name)

    @magic_arguments("%claude")
    @argument("--model", help="Model for this turn only.")
    @argument("--max-tokens", type=int, help="max_tokens for this turn only.")
    @argument("--no-stream", action="store_true", help="Wait for the whole reply.")
    @argument("--cache", choices=MODES, help=MODES_HELP + " Default: ClaudeMagics.cache_mode.")
    @argument("--name", help="Name the turn (a re-run then replaces it; default: a new turn each run).")
    @cell_magic
    def claude(self, line: str, cell: str) -> None:
        """The cell is the next user turn; the reply streams in, then one line of usage per call."""
        args = parse_argstring(self.claude, line)
        prompt = cells.clean_text(cell)
        if not prompt:
            raise UsageError("The cell is empty: write your message below %%claude.")
        if args.max_tokens is not None and args.max_tokens < 1:
            raise UsageError(
                "--max-tokens must be at least 1 (%claude_prewarm fills the cache without output)."
            )
        with usage_errors(self.session):
            info = self.session.models.get(args.model or self.session.model)
        limit = self.session.max_tokens if args.max_tokens is None else args.max_tokens
        if not 1 <= limit <= info.max_output_tokens:
            where = "--max-tokens" if args.max_tokens is not None else "ClaudeMagics.max_tokens"
            raise UsageError(f"{where} is {limit:,}; {info.id} takes 1 to {info.max_output_tokens:,}.")
        stream = self.stream and not args.no_stream
        rich = "text/markdown" in getattr(self._ip.display_formatter, "active_types", ())
        reply = Reply(rich, live=stream)
        live = set(self.session.conversation.names())
        table = {k: fn for block, fns in self._runners.items() if block in live for k, fn in fns.items()}
        runner = tool_runner(table, self._ip.user_ns, reply) if table else None
        first = len(self.session.calls)
        saved = self.session.conversation.copy_state()
        try:
            with usage_errors(self.session):
                if args.name:
                    self._forget_turn(args.name)
                message = self.session.ask(
                    prompt,
                    stream=stream,
                    on_text=reply.write,
                    cache=args.cache,
                    model=args.model,
                    max_tokens=args.max_tokens,
                    name=args.name,
                    run_tool=runner,
                    max_tool_rounds=self.max_tool_rounds,
                )
        except BaseException:
            if args.name:  # the session rolled back its own part; put back the turn forgotten above
                self.session.conversation = saved
            raise
        finally:
            reply.flush()
        reply.finish(self.session.calls[first:], message.stop_reason)
        if runner is not None and message.stop_reason == "tool_use":
            print(f"Stopped after {self.max_tool_rounds} tool rounds (ClaudeMagics.max_tool_rounds).")

    @line_magic
    def claude_prewarm(self, line: str) -> None:
        """Fill the cache for the conversation so far without generating (`max_tokens: 0`)."""
        no_arguments("claude_prewarm", line)
        with usage_errors(self.session):
            self.session.prewarm()
        display(Summary(self.session.calls[-1]))

    # -- session ----------------------------------------------------------------------------------
    @magic_arguments()
    @argument(
        "command", nargs="?", default="show", choices=["show", "reset", "drop", "save", "load", "export"]
    )
    @argument("target", nargs="?", help="NAME for drop, PATH for save and load, python or json for export.")
    @argument("path", nargs="?", help="For export: write to this file instead of printing.")
    @line_magic
    def claude_session(self, line: str) -> None:
        """Show, reset, drop a block from, save, load or export the session (default: show)."""
        args = parse_argstring(self.claude_session, line)
        command, target = args.command, args.target
        needs = {"drop": "a block NAME", "save": "a PATH", "load": "a PATH", "export": "python or json"}
        if command in needs and not target:
            raise UsageError(f"%claude_session {command} needs {needs[command]}.")
        if (args.path and command != "export") or (target and command in ("show", "reset")):
            raise UsageError(f"Too many arguments for %claude_session {command}.")
        session = self.session
        if command == "show":
            display(SessionTables(session))
        elif command == "reset":
            session.reset()
            self._runners.clear()
            self._cells.clear()
            print("Session reset (cache entries already written live on until they expire).")
        elif command == "drop":
            if target not in session.conversation.names():
                known = ", ".join(session.conversation.names()) or "none"
                raise UsageError(f"No block named {target!r}; the blocks are: {known}.")
            session.drop(target)
            print(f"Dropped {target!r}.")
        elif command == "export":
            self._export(target, args.path)
        else:
            self._save_or_load(command, target)

    def _export(self, kind: str, path: str | None) -> None:
        if kind not in ("python", "json"):
            raise UsageError("%claude_session export takes python or json: %claude_session export python")
        text = store.export_python(self.session) if kind == "python" else store.export_json(self.session)
        if path is None:
            print(text)
            return
        try:
            print(f"Wrote {store.write_atomic(path, text)}.")
        except (store.StoreError, OSError) as error:
            raise UsageError(one_line(error)) from None

    def _save_or_load(self, command: str, path: str) -> None:
        try:
            if command == "save":
                written = store.save(self.session, path)
                print(f"Saved {len(self.session.conversation.blocks)} blocks to {written}.")
                return
            state = store.load(path)
            store.apply(state, self.session)
        except (store.StoreError, OSError) as error:
            raise UsageError(one_line(error)) from None
        self._runners.clear()  # functions are not saved: re-run %%claude_tools --run to call them again
        self._cells.clear()
        self._sync_traits()
        print(f"Loaded {len(state.blocks)} blocks and {len(state.calls)} call records from {path}.")

    @line_magic
    def claude_panel(self, line: str) -> None:
        """Show the cache panel: blocks, markers, per-call reads and writes, cost, TTL countdown."""
        no_arguments("claude_panel", line)
        self.open_panel()

    @magic_arguments()
    @argument("call", nargs="?", type=int, help="The call's number in the panel (default: the last call).")
    @argument("--all", action="store_true", help="Every call, one line each.")
    @line_magic
    def claude_explain(self, line: str) -> None:
        """Why a call hit, wrote or missed: the first change, expiry, minimum, lookback, markers."""
        from ..analysis.diagnose import explain, explain_all

        args = parse_argstring(self.claude_explain, line)
        if args.all and self.session.calls:
            for explanation in explain_all(self.session):
                print(f"call {explanation.call}: {explanation.summary}")
            return
        try:
            display(explain(self.session, args.call))
        except ValueError as error:
            raise UsageError(str(error)) from None

    @line_magic
    def claude_cost(self, line: str) -> None:
        """What the session's calls cost, and what they would have cost under each caching strategy."""
        from ..analysis.savings import money, what_if

        no_arguments("claude_cost", line)
        if not any(r.ok for r in self.session.calls):
            raise UsageError("No successful calls yet: ask something with %%claude first.")
        display(money(self.session), what_if(self.session))

    @magic_arguments()
    @argument("action", nargs="?", help="advance: move the emulator clock.")
    @argument("duration", nargs="?", help="How far: 6m, 90s, 1h30m or seconds.")
    @line_magic
    def claude_clock(self, line: str) -> None:
        """Show the clock and the live cache entries, or move the emulator clock (offline only)."""
        args = parse_argstring(self.claude_clock, line)
        session = self.session
        if args.action == "advance":
            try:
                seconds = cells.parse_duration(args.duration or "")
            except ValueError as error:
                raise UsageError(str(error)) from None
            if not session.offline:
                raise UsageError(
                    "The clock only moves offline: the live API's cache lifetimes run in real time "
                    "(%config ClaudeMagics.offline = True switches to the emulator)."
                )
            try:
                session.advance(seconds)
            except OSError as error:  # a pcache-emulator server that has gone away
                raise UsageError(f"Could not move the emulator clock ({one_line(error)}).") from None
            print(f"Moved the emulator clock on by {duration(seconds)}.")
        elif args.action is not None:
            raise UsageError(f"Did you mean %claude_clock advance {args.duration or args.action}?")
        print(clock_report(session))
