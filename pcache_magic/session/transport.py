"""Build the `anthropic` client: the live API, a running emulator server, or the in-process emulator.

The same SDK client class serves every mode; offline only swaps the HTTP
transport, so request building, retries, streaming and parsing are the same
code online and offline.  The API key is read from the environment and handed
to the SDK; it is never stored here, printed, or put in a notice.

The configuration (base URL, key, timeout) is checked before any client is built, and any failure
is one `ConfigError` line raised from a frame that holds no secret: IPython's Verbose mode prints
every frame's local variables, and the SDK's own frames hold the key.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import anthropic
import httpx2

from ..core.env import MIN_KEY, getenv, without_api_key, without_pieces
from .bounded_http import with_bounded_clients
from .server_client import SERVER_TIMEOUT_S, AsyncServerAnthropic, ServerAnthropic
from .server_clock import ServerClock

if TYPE_CHECKING:
    from ..emulator import Emulator

__all__ = [
    "EMULATOR_URL_ENV",
    "MIN_KEY",
    "OFFLINE_ENV",
    "SERVER_TIMEOUT_S",
    "STAND_IN",
    "ConfigError",
    "Connection",
    "ServerClock",
    "connect",
    "redact_error",
    "redact_key",
    "secrets",
]

OFFLINE_ENV = "PCACHE_OFFLINE"
EMULATOR_URL_ENV = "PCACHE_EMULATOR_URL"
BASE_URL_ENV = "ANTHROPIC_BASE_URL"
#: How errors and the notice name a base URL given to `connect(base_url=...)` rather than the environment.
BASE_URL_ARG = "base_url"
_TRUE = {"1", "true", "yes", "on"}

Mode = Literal["live", "offline", "server"]
#: Why an in-process emulator serves the calls: no key, `PCACHE_OFFLINE`, `offline=True`, or an
#: emulator handed to `connect`.
OfflineReason = Literal["no key", "env", "argument", "emulator"]

#: What the offline notice says in brackets: why the emulator serves the calls, and how to go live.
#: The no-key wording is in stored notebook outputs (notebooks/sanitize.cfg maps the others to it).
_NO_KEY_HINT = "set ANTHROPIC_API_KEY to go live"
_OFFLINE_HINTS: dict[OfflineReason | None, str] = {
    "env": f"{OFFLINE_ENV} is set; unset it to use ANTHROPIC_API_KEY",
    "argument": "offline=True was given; set offline=False to use ANTHROPIC_API_KEY",
}


#: The key an emulator's client holds (`emulator.DEFAULT_API_KEY`; in server mode, with a digest of
#: the real key after it): public, never a secret.
STAND_IN = "sk-ant-emulator"


def _api_key(client: object) -> str | None:
    key = getattr(client, "api_key", None)
    return key if isinstance(key, str) and len(key) >= MIN_KEY else None


def secrets(client: object) -> list[str]:
    """The keys never to send in a request body, print, save or export: `client`'s own and the
    environment's (in server mode the client holds a stand-in, the environment the real one)."""
    found = [_api_key(client), (getenv("ANTHROPIC_API_KEY") or "").strip()]
    return list(dict.fromkeys(key for key in found if key and len(key) >= MIN_KEY))


def redact_key(text: str, client: object, *, pieces: bool = False) -> str:
    """`text` with the API keys (`secrets`) blotted out: an endpoint may echo the key in its error
    message, a prompt may quote it, and such text is shown, recorded, saved and exported.

    `pieces`, for a short message that quotes what the user typed: also each word that shares
    `MIN_KEY` or more consecutive characters with a key (`env.without_pieces`): a key pasted with a
    space in it is two words, and "unrecognized arguments" quotes the second; "5<key>" is one."""
    key = _api_key(client)
    text = without_api_key(text.replace(key, "[API key]") if key else text)  # and the environment's
    if not pieces:
        return text
    keys = [k for k in secrets(client) if not k.startswith(STAND_IN)]  # a stand-in hides nothing
    return without_pieces(text, keys)


def _blot(value: Any, keys: list[str]) -> Any:
    """`value` with `keys` blotted out of every string in it (an error body is plain JSON data)."""
    if isinstance(value, str):
        for key in keys:
            value = value.replace(key, "[API key]")
        return value
    if isinstance(value, dict):
        return {k: _blot(v, keys) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_blot(v, keys) for v in value)
    return value


def redact_error(error: BaseException, client: object) -> BaseException:
    """`error` itself, with the API keys (`secrets`: `client`'s own and the environment's) blotted
    out of what it says (its message, `args` and the API's error `body`), and of the errors it was
    raised from: it is re-raised to Python callers, who print it.  A server-mode client holds a
    stand-in, so a server echoing the real key is blotted by the environment's.  The SDK's own
    request and response objects on it are left as they are."""
    keys = sorted(secrets(client), key=len, reverse=True)  # a key holding another goes first
    seen: set[int] = set()
    current: BaseException | None = error
    while keys and current is not None and id(current) not in seen:
        seen.add(id(current))
        current.args = _blot(current.args, keys)
        for name in ("message", "body"):
            if isinstance(getattr(current, name, None), str | dict | list):
                with contextlib.suppress(AttributeError):  # a read-only property
                    setattr(current, name, _blot(getattr(current, name), keys))
        current = current.__cause__ or current.__context__
    return error


def _named(source: str) -> str:
    """Where a base URL came from, as a message names it."""
    return f"the {BASE_URL_ARG}= argument" if source == BASE_URL_ARG else source


class ConfigError(ValueError):
    """The environment or the arguments cannot make a client; one line that says what to fix."""


@dataclass(frozen=True)
class Connection:
    """A ready client pair, what it talks to, and the clock cache lifetimes run on."""

    client: anthropic.Anthropic
    async_client: anthropic.AsyncAnthropic
    mode: Mode
    clock: Callable[[], float]
    emulator: Emulator | None = None
    url: str | None = None
    why: OfflineReason | None = None
    #: Where a live base URL came from: `ANTHROPIC_BASE_URL`, or `base_url` given to `connect`.
    base_url_from: str = BASE_URL_ENV

    @property
    def offline(self) -> bool:
        return self.mode != "live"

    @property
    def notice(self) -> str:
        """One line for the user: where calls go (never the key)."""
        if self.mode == "live":
            host = self.client.base_url.host
            where = (
                "the Anthropic API"
                if host == "api.anthropic.com"
                else f"{host}, from {_named(self.base_url_from)}"
            )
            return f"live: calls go to {where} (ANTHROPIC_API_KEY is set)"
        if self.mode == "server":
            return f"offline: calls go to the pcache-emulator at {self.url}"
        if self.why == "emulator":
            return "offline: calls go to the emulator given to connect()"
        return f"offline: calls go to the built-in emulator ({_OFFLINE_HINTS.get(self.why, _NO_KEY_HINT)})"

    def advance(self, seconds: float) -> float:
        """Move the emulator's clock; a clear error online, where time is real."""
        if self.emulator is not None:
            return self.emulator.advance(seconds)
        if self.mode == "server" and self.url:
            clock = self.clock if isinstance(self.clock, ServerClock) else ServerClock(self.url)
            return clock.advance(seconds)
        raise RuntimeError("The clock can only be moved offline; online, cache lifetimes run in real time.")


def connect(
    *,
    env: Mapping[str, str] | None = None,
    offline: bool | None = None,
    emulator: Emulator | None = None,
    **client_kwargs: Any,
) -> Connection:
    """Pick the mode from the environment (or the arguments) and build the clients.

    - `emulator` given: that in-process emulator.
    - `PCACHE_EMULATOR_URL`: a running `pcache-emulator` over HTTP.  Without a `timeout` argument
      each attempt waits at most `SERVER_TIMEOUT_S` (60 s), not the SDK's 600 s, so a server that
      accepts and never answers fails in a minute (times `max_retries` + 1) with the usual one-line
      timeout error.  The SDK's refusal of a long non-streaming request ("Streaming is required
      ...") still applies, as with its own default timeout (`ServerAnthropic`).
    - `offline=True` or `PCACHE_OFFLINE=1`, or no `ANTHROPIC_API_KEY`: a new in-process emulator.
    - otherwise: the live API, with the key from `ANTHROPIC_API_KEY`.

    URL and live mode bound each answer (`bounded_http`: a byte cap, a deadline per attempt, no
    redirect to another host), except on the side (sync or async) of a caller's own `http_client`.
    Offline, the emulator is the transport: an `http_client` is refused there.

    Raises `ConfigError` (one line, no secret, no chained traceback) when they cannot make a client.
    """
    outcome = _connect(os.environ if env is None else env, offline, emulator, client_kwargs)
    del env, client_kwargs  # the traceback of the raise below shows this frame's locals: no secret in them
    if isinstance(outcome, ConfigError):
        raise outcome
    return outcome


def _connect(
    env: Mapping[str, str], offline: bool | None, emulator: Emulator | None, client_kwargs: dict[str, Any]
) -> Connection | ConfigError:
    """`connect`'s work; a failure is returned, never raised, so no frame of it reaches a traceback."""
    try:
        _check_timeout(client_kwargs.get("timeout"))
        _check_http_client(client_kwargs.get("http_client"))
        return _clients(env, offline, emulator, client_kwargs)
    except ConfigError as error:
        return ConfigError(str(error))
    except Exception as error:  # the SDK or httpx refusing what the checks let through
        source = _named(BASE_URL_ARG if client_kwargs.get(BASE_URL_ARG) else BASE_URL_ENV)
        return ConfigError(f"Could not build the Anthropic client ({type(error).__name__}); check {source}.")


def _check_timeout(timeout: object) -> None:
    if isinstance(timeout, int | float) and not (math.isfinite(timeout) and timeout > 0):
        raise ConfigError(f"timeout must be a finite number of seconds > 0, not {timeout!r}.")


def _check_http_client(client: object) -> None:
    """A caller's own HTTP client is one the SDK takes (it serves the sync or the async side)."""
    if client is not None and not isinstance(client, httpx2.Client | httpx2.AsyncClient):
        raise ConfigError(
            "http_client must be an HTTP client the SDK takes: anthropic.DefaultHttpxClient(), "
            f"or DefaultAsyncHttpxClient() for async calls, not {type(client).__name__}."
        )


def _check_key(key: str) -> None:
    """A key the SDK would put in a header as is: whitespace or a control character there makes the
    HTTP library raise an error that quotes the header, key and all."""
    if not (key.isascii() and key.isprintable() and " " not in key):
        raise ConfigError(
            "ANTHROPIC_API_KEY holds whitespace or characters an HTTP header cannot carry; set it again."
        )


def _check_url(name: str, url: str) -> None:
    """A URL the SDK can use; the error names where it came from (an environment variable, or the
    `base_url` argument) and what to do there."""
    fix = "pass one like https://api.anthropic.com" if name == BASE_URL_ARG else "fix or unset it"
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 (reading it validates it)
    except ValueError as error:
        raise ConfigError(f"{name} is not a valid URL ({error}); {fix}.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        shown = "(a URL with credentials)" if parts.username or parts.password else repr(url)
        raise ConfigError(f"{name}={shown} is not an http(s) URL with a host; {fix}.")


def _clients(
    env: Mapping[str, str], offline: bool | None, emulator: Emulator | None, client_kwargs: dict[str, Any]
) -> Connection:
    forced_by: OfflineReason = "argument"
    if offline is None:
        offline, forced_by = env.get(OFFLINE_ENV, "").strip().lower() in _TRUE, "env"
    key = env.get("ANTHROPIC_API_KEY") or None
    if emulator is None and (url := env.get(EMULATOR_URL_ENV)):
        _check_url(EMULATOR_URL_ENV, url)
        if "@" in urllib.parse.urlsplit(url).netloc:  # httpx would send them as Basic auth
            raise ConfigError(
                f"{EMULATOR_URL_ENV} holds a user name or password; remove them from the URL "
                "(the emulator needs none)."
            )
        url = url.rstrip("/")
        # The emulator only needs a per-key workspace, never the secret (the URL may be plain http).
        stand_in = STAND_IN + (f"-{hashlib.sha256(key.encode()).hexdigest()[:16]}" if key else "")
        sync, async_ = with_bounded_clients({"api_key": stand_in, "base_url": url, **client_kwargs})
        clock, own = ServerClock(url), client_kwargs.get("http_client")
        for made in (kw for kw in (sync, async_) if kw["http_client"] is not own):  # ours, not the caller's
            made.setdefault("timeout", SERVER_TIMEOUT_S)  # not the SDK's 600 s
            clock.listen(made["http_client"])
        return Connection(ServerAnthropic(**sync), AsyncServerAnthropic(**async_), "server", clock, url=url)
    if emulator is not None or offline or key is None:
        # Why, for the notice; without a key that is all there is to say.
        why: OfflineReason = "emulator" if emulator is not None else "no key" if key is None else forced_by
        if client_kwargs.pop("http_client", None) is not None:  # None: as if left out
            raise ConfigError(
                "http_client is for the live API and PCACHE_EMULATOR_URL; offline the emulator is the "
                "transport: leave http_client out."
            )
        if emulator is None:
            from ..emulator import Emulator

            emulator = Emulator()
        return Connection(
            emulator.client(**client_kwargs),
            emulator.async_client(**client_kwargs),
            "offline",
            emulator.now,
            emulator=emulator,
            why=why,
        )
    _check_key(key)
    source = BASE_URL_ARG if client_kwargs.get(BASE_URL_ARG) else BASE_URL_ENV
    if source == BASE_URL_ENV and env.get(BASE_URL_ENV):  # passed on: the URL checked is the one used
        client_kwargs = {BASE_URL_ARG: env[BASE_URL_ENV], **client_kwargs}
    if client_kwargs.get(BASE_URL_ARG):
        _check_url(source, str(client_kwargs[BASE_URL_ARG]))
    sync, async_ = with_bounded_clients({"api_key": key, **client_kwargs})  # a hostile base URL too
    return Connection(
        anthropic.Anthropic(**sync),
        anthropic.AsyncAnthropic(**async_),
        "live",
        time.time,
        base_url_from=source,
    )
