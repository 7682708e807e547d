"""The IPython magics: parse the line, call the Session, show what happened.

Thin on purpose: the Session owns the conversation, the calls and the cache
bookkeeping; `cells` turns cells and files into content, `names` gives blocks
readable names; `expand` puts `{var}` into a prompt, `turn` sends and shows a
`%%claude` turn; `help` lists the magics; `store` saves and exports; `output`
and the view draw.  The one Session lives on the
`ClaudeMagics` instance (no module-level state); its settings are traitlets
(`_settings.SessionMagics`), so `%config ClaudeMagics.model = "..."` reaches it.
Every mistake on a magic line ends as a one-line `UsageError` and leaves the
session as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from IPython.core.error import UsageError
from IPython.core.magic import cell_magic, line_cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument
from IPython.display import display

from ..core.fmt import visible
from ..core.toolspec import tool_param
from ..core.ttl import TTLS
from ..session.transport import secrets
from . import batch_magic, cells, echo, expand, map_magic, names, prewarm
from .args import magic_arguments, no_arguments, parse_argstring, without_comment
from .clock import advance
from .formats import FORMATS
from .help import HelpText, describe
from .output import SessionTables, clock_report, one_line, say, usage_errors
from .output_schema import resolve_schema, store_reply
from .session_files import session_file
from .settings import MODES, MODES_HELP, SessionMagics
from .turn import check_max_tokens, run_turn

if TYPE_CHECKING:  # the session's parts are imported by the magics that use them, not at loading
    from ..core.conversation import Block
__all__ = ["ClaudeMagics"]


#: `%claude_session`'s commands (`--load` written for `load` gets the line as it should read).
_SESSION_COMMANDS = ("show", "reset", "drop", "save", "load", "export")

# Cell magics pass `magic_arguments("%name")` so that their usage line reads `%%name`.


def _cache_arg(func: Callable[..., Any]) -> Callable[..., Any]:
    func = argument(
        "--name", help="Block name (default: the file, the first words or the tools; a re-run replaces it)."
    )(func)
    return argument(
        "--cache", nargs="?", const=True, choices=TTLS, metavar="5m|1h", help="Cache up to this block."
    )(func)


@magics_class
class ClaudeMagics(SessionMagics):
    """Prompt-cached conversations with Claude, one cell per block."""

    # -- blocks -------------------------------------------------------------------------------
    def _add(self, kind: str, explicit: str | None, derived: str, make: Callable[[str], Block]) -> Block:
        """Add the cell's block under its name; a re-run replaces what the cell made before."""
        names.check_given(explicit)
        before = echo.warnings(self.session)
        cell, run = cells.cell_id(self._ip)
        taken = {b.name: b.kind for b in self.session.conversation.blocks}
        naming = self._cells.plan(cell, run, kind, explicit, derived, taken)
        with usage_errors(self.session):
            block = make(naming.name)
        self._cells.commit(naming)
        added = naming.name not in taken and naming.replaces not in taken
        if naming.replaces in self.session.conversation.names():
            if naming.name not in taken:  # renamed: the block takes the old one's place
                from ..session.blocks import take_place

                take_place(self.session.conversation, naming.name, cast(str, naming.replaces))
            self.session.drop(cast(str, naming.replaces))
        say(echo.block_echo(self.session, block, before, added))
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
        self._add(
            "system",
            args.name,
            names.derived("system", cells.clean_text(cell), args.file),
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
        self._add(
            "context",
            args.name,
            names.derived("context", cells.clean_text(cell), [*args.file, *args.image]),
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
        derived = names.derived("tools", tools=[p["name"] for p in params])
        block = self._add(
            "tools", args.name, derived, lambda n: self.session.tools(specs, cache=args.cache, name=n)
        )
        self._runners.pop(block.name, None)
        if runners:
            self._runners[block.name] = runners

    # -- calls ----------------------------------------------------------------------------------
    @magic_arguments("%claude")
    @argument("--model", help="Model for this turn only.")
    @argument("--max-tokens", type=int, help="max_tokens for this turn only.")
    @argument("--no-stream", action="store_true", help="Wait for the whole reply.")
    @argument("--thinking", metavar="N|adaptive", help="Extended thinking: N budget tokens, or adaptive.")
    @argument("--cache", choices=MODES, help=MODES_HELP + " Default: ClaudeMagics.cache_mode.")
    @argument("--name", help="Name the turn (a re-run then replaces it; default: a new turn each run).")
    @argument("-o", "--out", metavar="NAME", help="Also keep the reply's text in the notebook variable NAME.")
    @argument("--schema", metavar="NAME", help="Reply in JSON: a dict, a pydantic model or a .json file.")
    @argument(
        "--format",
        choices=FORMATS,
        default="markdown",
        help="Show the reply rendered, as plain text, or its code.",
    )
    @argument("--no-expand", action="store_true", help="Send {name} as written (no notebook variables).")
    @no_var_expand
    @line_cell_magic
    def claude(self, line: str, cell: str | None = None) -> None:
        """The cell is the next user turn; the reply streams in, then one line of usage per call.

        `{name}` or `{name.attr}` puts a notebook variable's value into the message (`{{name}}`
        keeps the braces; other braces are sent as written).  `%claude` (one %) sends nothing: it
        shows this help (a one-line question would be taken by IPython's `?` help syntax).
        """
        if cell is None:
            if without_comment(line).strip():
                raise UsageError("%claude sends nothing: write your message on the lines below %%claude.")
            self.claude_help("claude")
            return
        args = parse_argstring(self.claude, line)
        names.check_given(args.name)
        prompt = cells.clean_text(cell)
        if not prompt:
            raise UsageError("The cell is empty: write your message below %%claude.")
        keys = secrets(self.session.client)  # a value holding the key is never put into a prompt
        try:
            out = expand.out_name(args.out, self._ip.user_ns) if args.out is not None else None
            prompt = prompt if args.no_expand else expand.expand(prompt, self._ip.user_ns, keys)
        except expand.ExpandError as error:
            raise UsageError(f"Not sent: {visible(error)}") from None
        check_max_tokens(self.session, args.model, args.max_tokens)
        schema = resolve_schema(args.schema, self._ip.user_ns, keys) if args.schema is not None else None
        records = run_turn(
            self.session,
            prompt,
            model=args.model,
            max_tokens=args.max_tokens,
            thinking=args.thinking,
            output_config=schema.output_config if schema is not None else None,
            cache=args.cache,
            name=args.name,
            stream=self.stream and not args.no_stream,
            fmt=args.format,
            rich="text/markdown" in getattr(self._ip.display_formatter, "active_types", ()),
            runners=self._runners,
            namespace=self._ip.user_ns,
            max_tool_rounds=self.max_tool_rounds,
        )
        if out is not None:
            store_reply(self._ip.user_ns, out, records, schema)

    @magic_arguments("%claude_map")
    @map_magic.map_arguments
    @no_var_expand
    @cell_magic
    def claude_map(self, line: str, cell: str) -> None:
        """The cell is a template sent once per item of ITEMS after the cached prefix (one write, N-1 reads).

        `{item}`, `{item[key]}` or `{item.attr}` is the item; `{name}` a notebook variable, as in
        `%%claude`.  The predicted cost is shown first; the conversation is not changed.
        """
        map_magic.map_cell(self.session, self._ip.user_ns, cell, map_magic.parse_line(self.claude_map, line))

    @magic_arguments()
    @argument("magic", nargs="?", help="One magic's full help, e.g. claude_context (default: all, briefly).")
    @line_magic
    def claude_help(self, line: str) -> None:
        """Every pcache_magic magic with its flags, read from the magics themselves."""
        args = parse_argstring(self.claude_help, line)
        magics = describe(self.magics)
        if args.magic is None:
            display(HelpText(magics))
            return
        wanted = args.magic.lstrip("%")
        chosen = [m for m in magics if m.name in (wanted, f"claude_{wanted}")]
        if not chosen:
            known = ", ".join(m.name for m in magics)
            raise UsageError(f"No magic named {args.magic!r}; the magics are: {known}.")
        display(HelpText(chosen[:1], full=True))

    @magic_arguments()
    @argument(
        "--keep-warm",
        choices=["on", "off"],
        help="on: refresh entries just before they die while a refresh costs less than a rewrite.",
    )
    @line_magic
    def claude_prewarm(self, line: str) -> None:
        """Fill the cache for the conversation so far without generating (`max_tokens: 0`)."""
        prewarm.prewarm(self.session, parse_argstring(self.claude_prewarm, line).keep_warm)

    # -- session ----------------------------------------------------------------------------------
    @magic_arguments()
    @argument("command", nargs="?", default="show", choices=_SESSION_COMMANDS)
    @argument("target", nargs="?", help="NAME to drop, PATH to save or load, python|ipynb|json to export.")
    @argument(
        "path",
        nargs="?",
        help="For export: write to this file instead of printing (a long export needs one).",
    )
    @argument("--max-mb", type=float, help="For load: the largest file read, in MB (default 64).")
    @line_magic
    def claude_session(self, line: str) -> None:
        """Show, reset, drop a block from, save, load or export the session (default: show)."""
        args = parse_argstring(self.claude_session, line, words=_SESSION_COMMANDS)
        command, target = args.command, args.target
        needs = {
            "drop": "a block NAME",
            "save": "a PATH",
            "load": "a PATH",
            "export": "python, ipynb or json",
        }
        if command in needs and not target:
            raise UsageError(f"%claude_session {command} needs {needs[command]}.")
        if command == "drop" and args.path:  # `drop my notes`: a name with a space, typed as shown
            example = f'"{target} {args.path}"'
            raise UsageError(f"A block name with a space goes in quotes: %claude_session drop {example}.")
        if (args.path and command != "export") or (target and command in ("show", "reset")):
            raise UsageError(f"Too many arguments for %claude_session {command}.")
        if args.max_mb is not None and (command != "load" or not 0 < args.max_mb < 1e6):
            wrong = f"is in MB, above 0 and below 1,000,000, not {args.max_mb:g}" if command == "load" else ""
            raise UsageError(
                f"--max-mb {wrong or 'goes with load only'}: %claude_session load PATH --max-mb 200"
            )
        session = self.session
        if command == "show":
            display(SessionTables(session))
        elif command == "reset":
            session.reset()
            self._runners.clear()
            self._cells.clear()
            say("Session reset (cache entries already written live on until they expire).")
        elif command == "drop":
            dropped = names.typed_back(target, session.conversation.names())
            session.drop(dropped)
            say(f"Dropped {dropped!r}.")
        else:
            self._file(command, target, args.path, args.max_mb)

    def _file(self, command: str, target: str, path: str | None, max_mb: float | None) -> None:
        """save, load and export (`session_files`); a load starts the cells and tools afresh."""
        said = session_file(self.session, command, target, path, max_mb)
        if command == "load":
            self._runners.clear()  # functions are not saved: re-run %%claude_tools --run to call them
            self._cells.clear()
            self._sync_traits()
        if command == "export" and path is None:
            print(said)  # the exported code or JSON as it is, never wrapped
        else:
            say(said)

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
        if self.no_calls_yet("why each call hit, wrote or missed shows here after"):
            return
        if args.all:
            for explanation in explain_all(self.session):
                say(f"call {explanation.call}: {explanation.summary}")
            return
        try:
            display(explain(self.session, args.call))
        except ValueError as error:
            raise UsageError(str(error)) from None

    @line_magic
    def claude_cost(self, line: str) -> None:
        """What the session's calls cost, and what they would have cost under each caching strategy."""
        from ..analysis.savings import money, what_if
        from ..view.cost import CostTable  # sized for a 700 px window and 80 columns of text

        no_arguments("claude_cost", line)
        if self.no_calls_yet("the costs show here after", ok=True):
            return
        display(CostTable(money(self.session)))
        try:
            replayed = what_if(self.session)
        except ValueError as error:  # a request the emulator refuses (a block type newer than it)
            say(f"No what-if table: {one_line(error)}; the replay needs every call the emulator accepts.")
            return
        display(CostTable(replayed))

    @magic_arguments()
    @argument("action", nargs="?", help="advance: move the emulator clock.")
    @argument("duration", nargs="*", help="How far: 90 (seconds), 90s, 6m, 90 minutes, 1h30m, 2h, 1d.")
    @line_magic
    def claude_clock(self, line: str) -> None:
        """Show the clock and the live cache entries, or move the emulator clock (offline only)."""
        args = parse_argstring(self.claude_clock, line, words=("advance",))
        if args.action == "advance":
            say(advance(self.session, " ".join(args.duration)))
        elif args.action is not None:
            raise UsageError(f"Did you mean %claude_clock advance {' '.join(args.duration) or args.action}?")
        say(clock_report(self.session))

    @magic_arguments()
    @argument("action", nargs="?", help="status|results|cancel ID, or list.")
    @argument("batch_id", nargs="?", help="The batch's id (msgbatch_...).")
    @argument("-o", "--output", help="results: keep the items in this variable.")
    @argument("--wait", action="store_true", help="results: wait until the batch has ended.")
    @line_magic
    def claude_batch(self, line: str) -> None:
        """A Message Batch by id (even one sent before a restart): its status, results or cancel."""
        a = parse_argstring(self.claude_batch, line, words=batch_magic.ACTIONS)
        ns = self._ip.user_ns
        say(batch_magic.run(self.session, ns, a.action, a.batch_id, output=a.output, wait=a.wait))
