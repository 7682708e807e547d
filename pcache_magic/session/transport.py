"""Build the `anthropic` client: the live API, a running emulator server, or the in-process emulator.

The same SDK client class serves every mode; offline only swaps the HTTP
transport, so request building, retries, streaming and parsing are the same
code online and offline.  The API key is read from the environment and handed
to the SDK; it is never stored here, printed, or put in a notice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import anthropic

if TYPE_CHECKING:
    from ..emulator import Emulator

__all__ = ["EMULATOR_URL_ENV", "OFFLINE_ENV", "Connection", "connect"]

OFFLINE_ENV = "PCACHE_OFFLINE"
EMULATOR_URL_ENV = "PCACHE_EMULATOR_URL"
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

    @property
    def offline(self) -> bool:
        return self.mode != "live"

    @property
    def notice(self) -> str:
        """One line for the user: where calls go (never the key)."""
        if self.mode == "live":
            return "live: calls go to the Anthropic API (ANTHROPIC_API_KEY is set)"
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
            return float(_emulator_call(f"{self.url}/_emulator/advance", {"seconds": seconds})["now"])
        raise RuntimeError("The clock can only be moved offline; online, cache lifetimes run in real time.")


def _emulator_call(url: str, payload: Mapping[str, Any] | None = None) -> Any:
    data = json.dumps(payload or {}).encode() if payload is not None else None
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def connect(
    *,
    env: Mapping[str, str] | None = None,
    offline: bool | None = None,
    emulator: Emulator | None = None,
    **client_kwargs: Any,
) -> Connection:
    """Pick the mode from the environment (or the arguments) and build the clients.

    - `emulator` given: that in-process emulator.
    - `PCACHE_EMULATOR_URL`: a running `pcache-emulator` over HTTP.
    - `offline=True` or `PCACHE_OFFLINE=1`, or no `ANTHROPIC_API_KEY`: a new in-process emulator.
    - otherwise: the live API, with the key from `ANTHROPIC_API_KEY`.
    """
    env = os.environ if env is None else env
    forced_by: OfflineReason = "argument"
    if offline is None:
        offline, forced_by = env.get(OFFLINE_ENV, "").strip().lower() in _TRUE, "env"
    key = env.get("ANTHROPIC_API_KEY") or None
    if emulator is None and (url := env.get(EMULATOR_URL_ENV)):
        url = url.rstrip("/")
        # The emulator only needs a per-key workspace, never the secret (the URL may be plain http).
        stand_in = "sk-ant-emulator" + (f"-{hashlib.sha256(key.encode()).hexdigest()[:16]}" if key else "")
        kwargs = {"api_key": stand_in, "base_url": url, **client_kwargs}

        last_seen = [time.time()]

        def server_clock() -> float:
            """The server's clock; while it cannot be reached, the last time it told (calls then fail
            with their own one-line error, instead of every magic failing on the clock)."""
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                last_seen[0] = float(_emulator_call(f"{url}/_emulator/state", None)["now"])
            return last_seen[0]

        return Connection(
            anthropic.Anthropic(**kwargs), anthropic.AsyncAnthropic(**kwargs), "server", server_clock, url=url
        )
    if emulator is not None or offline or key is None:
        # Why, for the notice; without a key that is all there is to say.
        why: OfflineReason = "emulator" if emulator is not None else "no key" if key is None else forced_by
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
    return Connection(
        anthropic.Anthropic(api_key=key, **client_kwargs),
        anthropic.AsyncAnthropic(api_key=key, **client_kwargs),
        "live",
        time.time,
    )
