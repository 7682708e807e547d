"""The magics' settings and lifetime: traitlets that reach the live session, and its connection.

`ClaudeMagics` inherits this, so `%config ClaudeMagics.model = "..."` works as usual, while
`magics.py` keeps to the magics themselves.  Changing `offline`, the model or the retry policy
changes the live session, never the conversation.  The session is made by the first magic that
uses it (loading makes only the connection), so `%load_ext` imports none of the session's parts.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, cast

from IPython.core.error import UsageError
from IPython.core.magic import Magics
from traitlets import Bool, Enum, Float, Int, Unicode, observe, validate
from traitlets.traitlets import TraitError

from ..core.fmt import no_calls_yet as no_calls_line
from ..core.fmt import plural
from ..core.ttl import TTL, TTLS
from ..session.session_settings import DEFAULT_MODEL, TOKEN_COUNTS, CacheMode, TokenCounts
from ..session.transport import SERVER_TIMEOUT_S, Connection, connect, redact_key
from . import cells, files, live_panel
from .output import say

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from ..session.session import Session

__all__ = ["MAX_TIMEOUT", "MODES", "MODES_HELP", "SessionMagics"]

MODES = ["none", "last", "automatic", "auto"]
#: A day: longer is no timeout at all, and far longer overflows the socket's own limit.
MAX_TIMEOUT = 86_400.0
MODES_HELP = (
    "Markers beyond the blocks' own: none; last (one on the last turn); automatic (the API's "
    "top-level automatic caching); auto (the planner picks up to 4 breakpoints and their TTLs)."
)


class SessionMagics(Magics):
    """The one session the magics drive, and the settings that shape it."""

    model = Unicode(DEFAULT_MODEL, help="Model for %%claude (applies to the live session).").tag(config=True)
    max_tokens = Int(
        1024, help="max_tokens for %%claude: at least 1 (%claude_prewarm sends 0 by itself)."
    ).tag(config=True)
    default_ttl = Enum(TTLS, default_value="5m", help="Lifetime of a bare --cache.").tag(config=True)
    cache_mode = Enum(MODES, default_value="none", help=MODES_HELP).tag(config=True)
    stream = Bool(True, help="Stream replies into the output as they arrive.").tag(config=True)
    show_panel = Bool(False, help="Show the cache panel when the extension loads.").tag(config=True)
    offline = Bool(False, help="Use the offline emulator even with ANTHROPIC_API_KEY set.").tag(config=True)
    max_tool_rounds = Int(
        8, min=0, help="Tool calls answered per %%claude turn with --run tools (0: none)."
    ).tag(config=True)
    max_retries = Int(
        2, min=0, help="Retries after a 429, 5xx, timeout or refused connection (honours retry-after)."
    ).tag(config=True)
    timeout = Float(
        None,
        allow_none=True,
        min=0.001,
        max=MAX_TIMEOUT,
        help="Seconds per attempt before a timeout, up to a day (None: the SDK's; 60 with an emulator URL).",
    ).tag(config=True)
    max_cost = Float(
        None,
        allow_none=True,
        min=0.0,
        help="USD one call (or one call of a map) may cost at most, its answer at max_tokens; "
        "refused before sending above it (None: no limit).",
    ).tag(config=True)
    budget = Float(
        None,
        allow_none=True,
        min=0.0,
        help="USD the session's calls may cost in all; a call or map predicted past it is refused "
        "(None: no limit).",
    ).tag(config=True)
    token_counts = Enum(
        list(TOKEN_COUNTS),
        default_value="auto",
        help="The pre-flight's prefix token figures: auto (the API's free count_tokens when live, "
        "else the estimate); api (always count_tokens, the emulator's too); estimate (never ask).",
    ).tag(config=True)
    max_files = Int(
        files.DEFAULT_MAX_FILES, min=1, help="Files one cell's --file and --image may name, globs expanded."
    ).tag(config=True)
    max_files_mb = Int(
        files.DEFAULT_TOTAL_BYTES // files.MIB,
        min=1,
        help="MB all the files of one cell may come to, checked before any is read "
        "(default: the API's 32 MB request limit).",
    ).tag(config=True)

    def __init__(
        self, shell: InteractiveShell | None = None, session: Session | None = None, **kw: Any
    ) -> None:
        self._syncing = True  # the config is applied in super().__init__, before there is a session
        self._mirroring = False  # True while the traits show the session's own values
        try:
            super().__init__(shell=shell, **kw)
        except TraitError as error:  # a refused config value, quoted back: a key typed there too
            raise TraitError(self._hidden(str(error))) from None
        # Loading makes only the connection (so a bad key or URL refuses the load, and the notice can
        # say where calls go); the Session, and all it imports, waits for the first magic that uses it.
        self._session: Session | None = session
        self._making = threading.Lock()
        self._connection: Connection | None = None if session is not None else self._connect()
        self._panel: Any = None
        self._runners: dict[str, dict[str, Callable[..., Any]]] = {}  # tools block -> tool -> function
        self._cells = cells.CellBlocks()
        self._syncing = False
        for table in self.magics.values():  # as registered: every magic's one-line error without the key
            table.update({name: self._without_key(magic) for name, magic in table.items()})

    def _without_key(self, magic: Callable[..., Any]) -> Callable[..., Any]:
        """`magic`, its UsageError passed through `redact_key`: a key typed where a name, a model or
        a path goes is quoted back by the messages that name what was not found."""

        @functools.wraps(magic)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return magic(*args, **kwargs)
            except UsageError as error:
                if (text := self._hidden(str(error))) == str(error):
                    raise
                raise UsageError(text) from None

        return run

    def _hidden(self, text: str) -> str:
        """`text` without the API keys or a piece of one (`redact_key(pieces=True)`): an error that
        quotes what the user typed (a magic's, a refused setting's) may quote a key pasted there."""
        owner = getattr(self, "_session", None) or getattr(self, "_connection", None)
        return redact_key(text, owner.client if owner is not None else None, pieces=True)

    @property
    def session(self) -> Session:
        """The one Session the magics drive, made on first use from the traits and the connection
        (once: threads asking at the same moment get the same one)."""
        if self._session is None:
            with self._making:
                if self._session is None:
                    self._session = self._new_session(self._connection)
                    self._connection = None
        return self._session

    # -- settings and lifetime --------------------------------------------------------------
    def file_limits(self) -> files.Limits:
        """What one cell may read with --file and --image, from the traits."""
        return files.Limits(total_bytes=self.max_files_mb * files.MIB, max_files=self.max_files)

    def _client_options(self) -> dict[str, Any]:
        """The SDK's retry policy from the traits (the SDK's own default timeout when None)."""
        options: dict[str, Any] = {"max_retries": self.max_retries}
        if self.timeout is not None:
            options["timeout"] = self.timeout
        return options

    def _connect(self) -> Connection:
        return connect(offline=True if self.offline else None, **self._client_options())

    def _new_session(self, connection: Connection | None = None) -> Session:
        from ..session.session import Session

        session = Session(
            model=self.model,
            max_tokens=self.max_tokens,
            connection=connection or self._connect(),
            default_ttl=cast(TTL, self.default_ttl),
        )
        session.cache_mode = cast(CacheMode, self.cache_mode)
        session.max_cost, session.budget = self.max_cost, self.budget
        session.token_counts = cast(TokenCounts, self.token_counts)
        return session

    def use(self, session: Session) -> None:
        """Drive `session` from now on (the panel and the per-cell bookkeeping start over)."""
        self.close(live_panel.NEW_SESSION)
        self._session, self._connection = session, None
        self._runners.clear()
        self._cells.clear()
        self._sync_traits()

    def _sync_traits(self) -> None:
        """Show the session's settings in the traits without writing them back."""
        self._syncing = self._mirroring = True
        try:
            self.model, self.max_tokens = self.session.model, self.session.max_tokens
            self.default_ttl = self.session.default_ttl or self.default_ttl
            self.cache_mode = self.session.cache_mode
            self.max_cost, self.budget = self.session.max_cost, self.session.budget
            self.token_counts = self.session.token_counts
        finally:
            self._syncing = self._mirroring = False

    @validate("model")
    def _check_model(self, proposal: Any) -> str:
        from ..core.models import default_models

        session = getattr(self, "_session", None)
        try:
            (session.models if session is not None else default_models()).get(proposal["value"])
        except KeyError as error:
            raise TraitError(self._hidden(str(error))) from None
        return str(proposal["value"])

    @validate("max_tokens")
    def _check_max_tokens(self, proposal: Any) -> int:
        """At least 1 when set; a session that holds less (made in Python) is shown as it is."""
        value = int(proposal["value"])
        if value < 1 and not self._mirroring:
            raise TraitError(
                f"ClaudeMagics.max_tokens must be at least 1, not {value} "
                "(%claude_prewarm fills the cache without output)."
            )
        return value

    @validate("timeout")
    def _check_timeout(self, proposal: Any) -> float | None:
        """Float(min=..., max=...) lets NaN through: every comparison with it is false."""
        value = proposal["value"]
        if value is not None and not math.isfinite(value):
            raise TraitError(
                f"ClaudeMagics.timeout must be a number of seconds from 0.001 to {MAX_TIMEOUT:,.0f}, "
                f"or None for the SDK's default; not {value}."
            )
        return value

    @validate("max_cost", "budget")
    def _check_limit(self, proposal: Any) -> float | None:
        """Float(min=...) lets NaN and infinity through; a limit is a finite amount."""
        value = proposal["value"]
        if value is not None and not math.isfinite(value):
            name = proposal["trait"].name
            raise TraitError(
                f"ClaudeMagics.{name} is a cost in USD, 0 or more, or None for no limit; not {value}."
            )
        return value

    @observe("model", "max_tokens", "default_ttl", "cache_mode", "max_cost", "budget", "token_counts")
    def _apply(self, change: Any) -> None:
        if not self._syncing and getattr(self, "_session", None) is not None:  # else read when it is made
            setattr(self.session, change["name"], change["new"])

    def update_config(self, config: Any) -> None:
        """`%config ClaudeMagics.x = v`: a refused value is replaced by the one in force, in the
        config IPython hands every configurable and in the shell's, so the next `%load_ext` does
        not find it and fail."""
        try:
            super().update_config(config)
        except Exception as error:
            own = type(self).__name__
            shell_config = getattr(self.shell, "config", None)
            sections: tuple[Any, ...] = (config.get(own), shell_config.get(own) if shell_config else None)
            for section in sections:
                for name in list(section or ()):
                    if self.has_trait(name):
                        section[name] = getattr(self, name)
            if (text := self._hidden(str(error))) != str(error):  # IPython logs it: "not the str '<key>'"
                raise TraitError(text) from None
            raise

    @contextlib.contextmanager
    def _or_back(self, change: Any) -> Iterator[None]:
        """Put the trait back as it was if applying `change` fails (a bad URL in the environment,
        say): the setting shown is then the one calls go out with, and setting it again retries."""
        try:
            yield
        except BaseException:
            self._syncing = True
            try:
                setattr(self, change["name"], change["old"])
            finally:
                self._syncing = False
            raise

    @observe("max_retries", "timeout")
    def _retry_policy(self, change: Any) -> None:
        """Give the live session's clients the new policy (same connection, same HTTP client); before
        there is a session, a new connection made with it."""
        if self._syncing:
            return
        if self._session is None:  # no session, so no call yet: a connection made with the new policy
            with self._or_back(change):
                self._connection = self._connect()
            return
        import anthropic

        # The default timeout, as `connect` gives it: the SDK's, or a minute against an emulator URL.
        default = SERVER_TIMEOUT_S if getattr(self.session.connection, "mode", "") == "server" else None
        options = {"timeout": default or anthropic.DEFAULT_TIMEOUT, **self._client_options()}
        if self.session.client is not None:
            self.session.client = self.session.client.with_options(**options)
        if self.session.async_client is not None:
            self.session.async_client = self.session.async_client.with_options(**options)

    @observe("offline")
    def _switch(self, change: Any) -> None:
        """A new connection; the conversation carries over, the calls belong to the old one."""
        if self._syncing:
            return
        if self._session is None:  # nothing said or shown yet: only the connection changes
            with self._or_back(change):
                self._connection = self._connect()
            say(f"pcache_magic: {self.notice()}")
            return
        with self._or_back(change):
            connection = self._connect()
        current = self.session.connection
        if connection.mode == "offline" and current is not None and current.mode == "offline":
            say(f"pcache_magic: {self.notice()}")  # an emulator in process either way: the session,
            return  # its calls and its cache stay (handles to it stay good)
        conversation, runners, panel = (
            self.session.conversation.copy_state(),
            dict(self._runners),
            self._panel,
        )
        self.use(self._new_session(connection))
        self.session.conversation = conversation
        self._runners.update(runners)
        say(f"pcache_magic: {self.notice()}")
        if panel is not None:
            self.open_panel()

    def explain_new_calls(self, *_: Any) -> None:
        """After a cell (IPython's `post_run_cell`): explain the calls it made, each once, so a panel
        opened later (or after a load) opens on them instead of replaying them all (`CallLog`)."""
        # Never fails a cell, Ctrl-C included: a panel explains what is left when it opens.
        with contextlib.suppress(Exception, KeyboardInterrupt):
            session = self._session
            if session is None or not session.calls:
                return
            from ..analysis.call_log import call_log

            log = call_log(session)
            if log.behind(session.calls):
                log.update(session)

    def notice(self) -> str:
        """Live or offline, and the model; never the key."""
        if self._session is None:
            return f"{cast(Connection, self._connection).notice}; model {self.model}"
        connection = self.session.connection
        return f"{connection.notice if connection else 'custom client'}; model {self.session.model}"

    def no_calls_yet(self, after: str, *, ok: bool = False) -> bool:
        """Before the first call (`ok`: the first successful one), say so in one line and be True.

        Information, not a UsageError: a notebook run top to bottom goes on past it."""
        calls = self._session.calls if self._session is not None else []  # not made just to look
        if any(r.ok for r in calls) if ok else calls:
            return False
        say(no_calls_line(after, ok=ok))
        return True

    def farewell(self) -> str | None:
        """Unloading: what the magics let go of, when the session was made and holds calls or blocks.

        The session object lives on in any variable that holds it (`s = current_session()`), so
        the line says the magics and the panel let go of it, not that it is gone."""
        session = self._session
        if session is None or not (session.calls or session.conversation.blocks):
            return None
        counts = ((len(session.calls), "call"), (len(session.conversation.blocks), "block"))
        held = ", ".join(plural(n, word) for n, word in counts if n)
        return (
            f"pcache_magic unloaded: the magics and the panel let go of this session ({held}); "
            "%load_ext starts a new one. A variable holding it can still save it: s.save('FILE')."
        )

    def close(self, note: str = "") -> None:
        """Unloading: stop keep-warm (no call goes out for a notebook that let go) and close the
        panel, leaving `note` in its output (`live_panel.close`)."""
        if self._session is not None:
            self._session.keepwarm.stop()
        if self._panel is not None:
            live_panel.close(self._panel, note)
            self._panel = None

    @property
    def _ip(self) -> InteractiveShell:
        if self.shell is None:
            raise RuntimeError("ClaudeMagics needs a shell: load it with %load_ext pcache_magic.")
        return self.shell

    def open_panel(self) -> None:
        """Display a new panel for the session; the previous one closes, saying so (one live panel)."""
        from ..view.panel import CachePanel

        if self._panel is not None:  # keep-warm goes on: only the panel is replaced
            live_panel.close(self._panel, live_panel.REPLACED)
        self._panel = live_panel.show(CachePanel(self.session))
