"""Which client `connect` builds from the environment, and that the key never leaks.

Live mode is only built here, never called: nothing in this file reaches the network.  The
server mode runs against a `pcache-emulator` served on a loopback port in a thread.
"""

from __future__ import annotations

import asyncio
import gzip
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import httpx2
import pytest
from _hostile_http import (
    GZIP_HEAD,
    HUGE_LENGTH,
    Script,
    endless,
    endless_sse,
    gzip_bomb,
    once,
    raw_serving,
    redirect,
)

from pcache_magic.emulator import BASE_URL, DEFAULT_API_KEY, Emulator
from pcache_magic.emulator.server import serve
from pcache_magic.session import bounded_http, transport
from pcache_magic.session.session import Session
from pcache_magic.session.transport import (
    EMULATOR_URL_ENV,
    OFFLINE_ENV,
    ConfigError,
    Connection,
    connect,
    redact_error,
    redact_key,
)

#: A fake key that would be easy to spot anywhere it leaked.
SENTINEL = "sk-ant-SENTINEL-0123456789-do-not-print"


@pytest.fixture(autouse=True)
def _no_base_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK reads ANTHROPIC_BASE_URL when no base_url is given; keep these tests hermetic.
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)


def leaks(conn: Connection) -> bool:
    return any(SENTINEL in text for text in (conn.notice, repr(conn), str(conn)))


def test_no_key_means_the_in_process_emulator_with_a_notice() -> None:
    conn = connect(env={})
    assert conn.mode == "offline" and conn.offline
    assert isinstance(conn.emulator, Emulator)
    assert conn.notice == "offline: calls go to the built-in emulator (set ANTHROPIC_API_KEY to go live)"
    assert str(conn.client.base_url).rstrip("/") == BASE_URL
    assert conn.client.api_key == DEFAULT_API_KEY
    assert conn.async_client.api_key == DEFAULT_API_KEY
    assert conn.clock() == conn.emulator.now()
    # the emulator behind it answers through the real SDK
    reply = conn.client.messages.create(
        model="claude-sonnet-4-5", max_tokens=20, messages=[{"role": "user", "content": "Hi"}]
    )
    assert reply.type == "message" and reply.usage.input_tokens > 0


def test_an_empty_key_counts_as_no_key() -> None:
    assert connect(env={"ANTHROPIC_API_KEY": ""}).mode == "offline"


NO_KEY_NOTICE = "offline: calls go to the built-in emulator (set ANTHROPIC_API_KEY to go live)"


@pytest.mark.parametrize(
    ("env", "offline"),
    [({OFFLINE_ENV: "1"}, None), ({"ANTHROPIC_API_KEY": ""}, True), ({OFFLINE_ENV: "1"}, True)],
)
def test_without_a_key_the_notice_says_set_one_however_offline_was_chosen(
    env: dict[str, str], offline: bool | None
) -> None:
    # The stored notebook outputs hold this exact line (make test runs with PCACHE_OFFLINE=1).
    assert connect(env=env, offline=offline).notice == NO_KEY_NOTICE


@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
def test_pcache_offline_forces_offline_even_with_a_key(value: str) -> None:
    conn = connect(env={"ANTHROPIC_API_KEY": SENTINEL, OFFLINE_ENV: value})
    assert conn.mode == "offline" and conn.emulator is not None
    assert conn.client.api_key == DEFAULT_API_KEY  # the real key is not even handed to the emulator
    # the notice says why it is offline with a key, and what to do (not "set ANTHROPIC_API_KEY")
    assert conn.notice == (
        "offline: calls go to the built-in emulator "
        "(PCACHE_OFFLINE is set; unset it to use ANTHROPIC_API_KEY)"
    )
    assert not leaks(conn)


@pytest.mark.parametrize("value", ["0", "", "false", "no"])
def test_pcache_offline_off_values_keep_a_key_live(value: str) -> None:
    assert connect(env={"ANTHROPIC_API_KEY": SENTINEL, OFFLINE_ENV: value}).mode == "live"


def test_offline_argument_overrides_the_environment() -> None:
    assert connect(env={"ANTHROPIC_API_KEY": SENTINEL}, offline=True).mode == "offline"
    assert connect(env={"ANTHROPIC_API_KEY": SENTINEL, OFFLINE_ENV: "1"}, offline=False).mode == "live"


@pytest.mark.parametrize("env", [{}, {OFFLINE_ENV: "1"}, {OFFLINE_ENV: "0"}])
def test_the_offline_argument_with_a_key_is_named_in_the_notice(env: dict[str, str]) -> None:
    conn = connect(env={"ANTHROPIC_API_KEY": SENTINEL, **env}, offline=True)
    assert conn.mode == "offline" and conn.client.api_key == DEFAULT_API_KEY
    assert conn.notice == (
        "offline: calls go to the built-in emulator "
        "(offline=True was given; set offline=False to use ANTHROPIC_API_KEY)"
    )
    assert not leaks(conn)


@pytest.mark.parametrize("env", [{}, {"ANTHROPIC_API_KEY": SENTINEL}])
def test_a_given_emulator_is_named_in_the_notice_key_or_not(env: dict[str, str]) -> None:
    conn = connect(env=env, emulator=Emulator())  # a key would not make it live: no "set ANTHROPIC_API_KEY"
    assert conn.notice == "offline: calls go to the emulator given to connect()"
    assert not leaks(conn)


def test_a_key_means_live_built_but_never_called() -> None:
    conn = connect(env={"ANTHROPIC_API_KEY": SENTINEL}, max_retries=0)
    assert conn.mode == "live" and not conn.offline
    assert conn.emulator is None and conn.url is None
    assert isinstance(conn.client, anthropic.Anthropic)
    assert isinstance(conn.async_client, anthropic.AsyncAnthropic)
    assert conn.client.api_key == SENTINEL and conn.async_client.api_key == SENTINEL
    assert str(conn.client.base_url).rstrip("/") == "https://api.anthropic.com"
    assert conn.client.max_retries == 0  # client kwargs pass through
    assert conn.clock is time.time
    assert conn.notice == "live: calls go to the Anthropic API (ANTHROPIC_API_KEY is set)"
    assert not leaks(conn)


def test_the_live_notice_names_another_host() -> None:
    conn = connect(
        env={"ANTHROPIC_API_KEY": SENTINEL, "ANTHROPIC_BASE_URL": "https://gateway.example.org/v1"}
    )
    assert str(conn.client.base_url).startswith("https://gateway.example.org/v1")
    assert (
        conn.notice
        == "live: calls go to gateway.example.org, from ANTHROPIC_BASE_URL (ANTHROPIC_API_KEY is set)"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ANTHROPIC_BASE_URL": "http://[::1"}, "ANTHROPIC_BASE_URL is not a valid URL (Invalid IPv6 URL)"),
        ({"ANTHROPIC_BASE_URL": "ht!tp://x"}, "ANTHROPIC_BASE_URL='ht!tp://x' is not an http(s) URL"),
        ({"ANTHROPIC_BASE_URL": "localhost:8080"}, "is not an http(s) URL with a host"),
        ({"ANTHROPIC_BASE_URL": "http://x:99999"}, "Port out of range"),
        ({"ANTHROPIC_BASE_URL": "ftp://user:pw@x"}, "ANTHROPIC_BASE_URL=(a URL with credentials) is not"),
        ({EMULATOR_URL_ENV: "http://[::1"}, f"{EMULATOR_URL_ENV} is not a valid URL"),
        ({"ANTHROPIC_API_KEY": SENTINEL + "\n"}, "characters an HTTP header cannot carry"),
        ({"ANTHROPIC_API_KEY": "sk ant"}, "holds whitespace"),
        ({"ANTHROPIC_API_KEY": "sk-ant-é"}, "holds whitespace or characters"),
    ],
)
def test_a_configuration_the_sdk_would_choke_on_is_one_line_without_the_key(
    env: dict[str, str], message: str
) -> None:
    env = {"ANTHROPIC_API_KEY": SENTINEL, **env}
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        connect(env=env)
    error = caught.value
    assert error.__cause__ is None and error.__context__ is None and "\n" not in str(error)
    assert SENTINEL not in str(error) and "pw" not in str(error)
    # IPython's Verbose mode prints every frame's variables: none of them may hold the key or the env
    frames, tb = [], error.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    ours = [frame for frame in frames if "pcache_magic" in frame.f_code.co_filename]
    assert ours and all(SENTINEL not in repr(frame.f_locals) for frame in ours)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "http://[::1",
            "base_url is not a valid URL (Invalid IPv6 URL); pass one like https://api.anthropic.com.",
        ),
        ("ht!tp://x", "base_url='ht!tp://x' is not an http(s) URL with a host; pass one like"),
    ],
)
def test_a_bad_base_url_argument_is_named_as_the_argument(url: str, message: str) -> None:
    """The URL checked is the one used: a `base_url=` argument wins over ANTHROPIC_BASE_URL, and
    the error names the argument, not the variable the user did not set."""
    for env in (
        {"ANTHROPIC_API_KEY": SENTINEL},
        {"ANTHROPIC_API_KEY": SENTINEL, "ANTHROPIC_BASE_URL": "https://ok.example"},
    ):
        with pytest.raises(ConfigError, match=re.escape(message)) as caught:
            connect(env=env, base_url=url)
        assert "ANTHROPIC_BASE_URL" not in str(caught.value) and SENTINEL not in str(caught.value)


def test_the_live_notice_names_the_host_and_where_its_url_came_from() -> None:
    env = {"ANTHROPIC_API_KEY": SENTINEL, "ANTHROPIC_BASE_URL": "ht!tp://not-used"}
    conn = connect(env=env, base_url="https://gateway.example.org/v1")
    assert str(conn.client.base_url).startswith("https://gateway.example.org/v1")
    assert conn.notice == (
        "live: calls go to gateway.example.org, from the base_url= argument (ANTHROPIC_API_KEY is set)"
    )
    assert not leaks(conn)


def test_an_error_quoting_the_key_is_blotted_out_in_place() -> None:
    """What Python callers get re-raised: the same object, type and attributes, without the key."""
    client = anthropic.Anthropic(api_key=SENTINEL, base_url="http://127.0.0.1:9")
    cause = ValueError(f"header x-api-key: {SENTINEL}")
    error = RuntimeError(f"bad key: {SENTINEL}", 3)
    error.__cause__ = cause
    error.body = {"error": {"message": f"bad key: {SENTINEL}", "seen": [SENTINEL, 1]}}  # type: ignore[attr-defined]
    assert redact_error(error, client) is error
    assert error.args == ("bad key: [API key]", 3) and str(cause) == "header x-api-key: [API key]"
    assert error.body == {"error": {"message": "bad key: [API key]", "seen": ["[API key]", 1]}}  # type: ignore[attr-defined]
    untouched = RuntimeError(f"bad key: {SENTINEL}")
    assert str(redact_error(untouched, object())) == f"bad key: {SENTINEL}"  # no client key to look for


def test_a_bad_base_url_does_not_matter_offline() -> None:
    conn = connect(env={"ANTHROPIC_API_KEY": SENTINEL, OFFLINE_ENV: "1", "ANTHROPIC_BASE_URL": "ht!tp://x"})
    assert conn.mode == "offline"


@pytest.mark.parametrize("timeout", [0, -1.0, float("nan"), float("inf")])
def test_a_timeout_must_be_finite_and_positive(timeout: float) -> None:
    with pytest.raises(ConfigError, match="timeout must be a finite number of seconds > 0"):
        connect(env={}, timeout=timeout)


def test_moving_the_clock_online_is_a_clear_error() -> None:
    conn = connect(env={"ANTHROPIC_API_KEY": SENTINEL})
    with pytest.raises(RuntimeError, match="only be moved offline"):
        conn.advance(300)
    session = Session(connection=conn)
    with pytest.raises(RuntimeError, match="only be moved offline"):
        session.advance(300)
    assert SENTINEL not in repr(session) and "live" in repr(session)


def test_the_process_environment_is_read_when_no_env_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SENTINEL)
    monkeypatch.delenv(OFFLINE_ENV, raising=False)
    monkeypatch.delenv(EMULATOR_URL_ENV, raising=False)
    assert connect().mode == "live"
    monkeypatch.setenv(OFFLINE_ENV, "1")
    assert connect().mode == "offline"


def test_a_given_emulator_is_used_and_its_clock_moves() -> None:
    emu = Emulator()
    conn = connect(env={"ANTHROPIC_API_KEY": SENTINEL, EMULATOR_URL_ENV: "http://127.0.0.1:1"}, emulator=emu)
    assert conn.mode == "offline" and conn.emulator is emu
    start = emu.now()
    assert conn.advance(300) == start + 300 == emu.now() == conn.clock()


def test_the_emulator_url_means_server_mode_with_that_base_url() -> None:
    env = {EMULATOR_URL_ENV: "http://127.0.0.1:8765/", "ANTHROPIC_API_KEY": SENTINEL, OFFLINE_ENV: "1"}
    conn = connect(env=env, max_retries=0)
    assert conn.mode == "server" and conn.offline and conn.emulator is None
    assert conn.url == "http://127.0.0.1:8765"
    assert str(conn.client.base_url).rstrip("/") == "http://127.0.0.1:8765"
    assert str(conn.async_client.base_url).rstrip("/") == "http://127.0.0.1:8765"
    assert conn.notice == "offline: calls go to the pcache-emulator at http://127.0.0.1:8765"
    assert not leaks(conn)
    without_key = connect(env={EMULATOR_URL_ENV: "http://127.0.0.1:8765"})
    assert without_key.mode == "server" and without_key.client.api_key == DEFAULT_API_KEY


@pytest.mark.parametrize("netloc", [f"me:{SENTINEL}@", f"{SENTINEL}@", "me:@", ":pw@"])
def test_an_emulator_url_with_credentials_is_refused_without_repeating_them(netloc: str) -> None:
    """httpx would send a user name and password in the URL as Basic auth, where an endpoint
    echoing its request puts them in an error no key redaction knows of: refused, unrepeated."""
    with pytest.raises(ConfigError) as caught:
        connect(env={EMULATOR_URL_ENV: f"http://{netloc}127.0.0.1:8765/"})
    message = str(caught.value)
    assert message == (
        f"{EMULATOR_URL_ENV} holds a user name or password; remove them from the URL "
        "(the emulator needs none)."
    )
    assert SENTINEL not in message and "pw" not in message and "me:" not in message


def test_server_mode_never_sends_the_real_key_but_keeps_keys_apart() -> None:
    def key_sent(key: str) -> str:
        conn = connect(env={EMULATOR_URL_ENV: "http://127.0.0.1:8765", "ANTHROPIC_API_KEY": key})
        assert conn.client.api_key == conn.async_client.api_key
        return str(conn.client.api_key)

    sent = key_sent(SENTINEL)
    assert SENTINEL not in sent and "SENTINEL" not in sent
    assert sent.startswith(DEFAULT_API_KEY)
    assert sent == key_sent(SENTINEL)  # the same key is the same emulator workspace
    assert sent != key_sent(SENTINEL + "-other")  # another key, another workspace


@pytest.fixture
def server_url() -> Iterator[tuple[Emulator, str]]:
    emu = Emulator()
    server = serve(emu, "127.0.0.1", 0, timeout=5.0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield emu, server.url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_server_mode_clock_advance_and_calls(server_url: tuple[Emulator, str]) -> None:
    emu, url = server_url
    conn = connect(env={EMULATOR_URL_ENV: url + "/"}, max_retries=0)
    assert conn.clock() == emu.now()
    assert conn.advance(3_600) == emu.now() == conn.clock()
    session = Session(model="claude-sonnet-4-5", connection=conn)
    session.system(" ".join(["word"] * 1_500), cache=True)
    session.ask("Hi", stream=False)
    session.ask("Again", stream=True)
    assert [c.outcome for c in session.calls] == ["write", "hit"]
    assert [e["tokens"] for e in emu.state()["entries"]] == [session.calls[0].tokens.written]


def test_an_http_client_offline_is_one_line_saying_it_is_not_used() -> None:
    with pytest.raises(ConfigError, match=r"^http_client is for the live API and PCACHE_EMULATOR_URL"):
        connect(env={OFFLINE_ENV: "1"}, http_client=httpx2.Client())
    assert connect(env={OFFLINE_ENV: "1"}, http_client=None).mode == "offline"  # None: as if left out


def test_an_http_client_the_sdk_cannot_take_is_one_line_naming_it() -> None:
    for env in ({"ANTHROPIC_API_KEY": SENTINEL}, {EMULATOR_URL_ENV: "http://127.0.0.1:9"}):
        with pytest.raises(ConfigError, match=r"^http_client must be an HTTP client the SDK takes") as caught:
            connect(env=env, http_client=object())
        assert SENTINEL not in str(caught.value) and caught.value.__cause__ is None


LONG: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 64_000,
    "messages": [{"role": "user", "content": "Hi"}],
}


def _refusal(call: Callable[[], object]) -> tuple[type[BaseException], str]:
    with pytest.raises(ValueError) as caught:
        call()
    return type(caught.value), str(caught.value)


def test_server_mode_refuses_a_long_non_streaming_call_as_live_and_in_process_do(
    server_url: tuple[Emulator, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK refuses a non-streaming call that may take over 10 minutes only at its own default
    timeout; URL mode's shorter default (`SERVER_TIMEOUT_S`) refuses the same, sync and async, with
    the same error, sending nothing, and the calls it sends still wait at most a minute."""
    emu, url = server_url
    sent: list[tuple[str, str | None]] = []
    respond = emu.respond

    def counting(method: str, path: str, headers: Any, body: bytes, arrived: int | None = None) -> Any:
        sent.append((path, headers.get("x-stainless-read-timeout")))
        return respond(method, path, headers, body, arrived)

    monkeypatch.setattr(emu, "respond", counting)
    conn = connect(env={EMULATOR_URL_ENV: url}, max_retries=0)
    in_process = connect(env={})
    expected = _refusal(lambda: in_process.client.messages.create(**LONG))
    assert expected[1].startswith("Streaming is required for operations that may take longer than 10 minutes")
    assert _refusal(lambda: conn.client.messages.create(**LONG)) == expected
    assert _refusal(lambda: asyncio.run(conn.async_client.messages.create(**LONG))) == expected
    assert _refusal(lambda: asyncio.run(in_process.async_client.messages.create(**LONG))) == expected
    assert sent == []
    with conn.client.messages.stream(**LONG) as events:  # streamed, as the SDK asks: sent
        assert events.get_final_message().stop_reason == "end_turn"
    assert sent == [("/v1/messages", str(transport.SERVER_TIMEOUT_S))]


def test_a_key_the_session_never_saw_is_blotted_out_by_its_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    pasted = "sk-ant-api03-" + "Q" * 40  # the real key, typed offline where a model name goes
    said = redact_key(f"Unknown model {pasted!r}; did you mean 'claude-sonnet-4-5'?", None)
    assert pasted not in said and "Q" * 8 not in said and "[API key]" in said
    assert redact_key("claude-sonnet-4-5 and sk-ant-x", None) == "claude-sonnet-4-5 and sk-ant-x"  # too short


#: A key with no repeats, so each piece of it is its own.
RANDOM_KEY = "sk-ant-api03-u8jzPde0IgxLd6GncfBAepfJBd0Kh8oOOL8dKLzd"


@pytest.mark.parametrize(
    "typed",
    [
        f"5{RANDOM_KEY[13:]}",  # a count, a duration: "invalid int value"
        f"x{RANDOM_KEY[13:]}",  # a model
        f"/tmp/a{RANDOM_KEY[13:]}.png",  # a path
        f"msgbatch_{RANDOM_KEY[13:]}",  # a batch id
        f"{RANDOM_KEY[13:52]}Z",  # a name, one character wrong
        f"{RANDOM_KEY[13:33]}.{RANDOM_KEY[33:]}Q",  # a file name
    ],
)
def test_a_word_holding_a_piece_of_the_key_is_blotted_out_of_a_magic_error(
    monkeypatch: pytest.MonkeyPatch, typed: str
) -> None:
    """`pieces=True` (the magics' errors): "5<key>" shares the key's characters, so it goes whole."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", RANDOM_KEY)
    said = redact_key(f"Cannot read {typed!r}; write e.g. 6m.", None, pieces=True)
    assert "[part of the API key]" in said and said.endswith("; write e.g. 6m.")
    assert not any(RANDOM_KEY[i : i + 8] in said for i in range(13, len(RANDOM_KEY) - 7)), said
    assert redact_key(typed, None) == typed  # not for a whole text (a saved file): the key itself only


def test_in_server_mode_the_real_key_is_blotted_in_pieces_and_the_stand_in_is_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The client holds a public stand-in (with a digest of the key); the environment the secret."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", RANDOM_KEY)
    conn = connect(env={EMULATOR_URL_ENV: "http://127.0.0.1:9", "ANTHROPIC_API_KEY": RANDOM_KEY})
    digest = str(conn.client.api_key).rsplit("-", 1)[1]
    said = f"workspace {digest}x, model x{RANDOM_KEY[13:]}"
    assert redact_key(said, conn.client, pieces=True) == f"workspace {digest}x, model [part of the API key]"


def test_server_mode_gives_up_on_a_silent_server_within_a_minute_an_attempt() -> None:
    """The SDK waits 600 s per attempt; a local emulator that has not answered in 60 s never will."""
    env = {EMULATOR_URL_ENV: "http://127.0.0.1:9"}
    conn = connect(env=env)
    assert conn.client.timeout == conn.async_client.timeout == transport.SERVER_TIMEOUT_S == 60.0
    assert connect(env=env, timeout=5.0).client.timeout == 5.0  # the caller's own is kept
    assert connect(env={}).client.timeout == anthropic.DEFAULT_TIMEOUT  # in process: the SDK's
    assert connect(env={"ANTHROPIC_API_KEY": SENTINEL}).client.timeout == anthropic.DEFAULT_TIMEOUT


def test_in_server_mode_an_error_echoing_the_real_key_is_blotted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client sends a stand-in, never the key, yet a server that knows the key may echo it: what
    `Session.ask` raises quoted it, blotting only the client's own (the record was redacted)."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", RANDOM_KEY)
    conn = connect(env={EMULATOR_URL_ENV: "http://127.0.0.1:9", "ANTHROPIC_API_KEY": RANDOM_KEY})
    error = RuntimeError(f"bad key {RANDOM_KEY}, sent {conn.client.api_key}")
    error.body = {"error": {"message": f"bad key {RANDOM_KEY}"}}  # type: ignore[attr-defined]
    assert redact_error(error, conn.client) is error
    assert error.body == {"error": {"message": "bad key [API key]"}}  # type: ignore[attr-defined]
    assert str(error) == "bad key [API key], sent [API key]"


def _or_clock(script: Script) -> Script:
    """`script` for the calls; the clock's reads get a pcache-emulator's answer."""

    def both(conn: Any, path: str) -> None:
        if "/_emulator/" in path:
            conn.sendall(b'HTTP/1.0 200 OK\r\ncontent-length: 27\r\n\r\n{"now": 0.0, "entries": []}')
        else:
            script(conn, path)

    return both


def _refused_in_one_line(script: Script, stream: bool, said: str) -> None:
    """An ask against a server playing `script`: one line saying `said`, the call recorded failed
    and the conversation as it was."""
    with raw_serving(_or_clock(script)) as url:
        session = Session(
            model="claude-sonnet-4-5", connection=connect(env={EMULATOR_URL_ENV: url}, max_retries=0)
        )
        with pytest.raises(anthropic.APIConnectionError) as raised:
            session.ask("hello", stream=stream)
    assert said in str(raised.value) and "\n" not in str(raised.value)
    assert [call.ok for call in session.calls] == [False] and not session.conversation.blocks


@pytest.mark.parametrize(
    ("script", "stream", "said"),
    [
        (endless(HUGE_LENGTH, b" " * 65536), False, "passed 32 MiB"),
        (once(GZIP_HEAD + gzip_bomb(64 * 1024 * 1024)), False, "passed 32 MiB"),
        (endless_sse(), True, "passed 4 MiB"),
        (
            redirect("http://localhost:9/steal"),
            False,
            "a redirect to localhost (another host) is not followed",
        ),
    ],
    ids=["huge content-length", "gzip bomb", "endless stream", "redirect elsewhere"],
)
def test_a_hostile_emulator_url_costs_a_bounded_read_and_one_line(
    monkeypatch: pytest.MonkeyPatch, script: Script, stream: bool, said: str
) -> None:
    """Before, each of these read until memory ran out, streamed for ever, or sent the prompt on."""
    monkeypatch.setattr(bounded_http, "MAX_STREAM", 4 * 1024 * 1024)  # the SDK gathers text: keep it quick
    _refused_in_one_line(script, stream, said)


def _to_content(conn: Any, path: str) -> None:
    """A same-origin 307 from the call to a file's content path, where 3 MiB of message wait."""
    if path.endswith("/content"):
        body = b'{"id":"m"' + b" " * (3 * 1024 * 1024) + b"}"
        conn.sendall(f"HTTP/1.1 200 OK\r\ncontent-length: {len(body)}\r\n\r\n".encode() + body)
    else:
        head = b"HTTP/1.1 307 X\r\nlocation: /x/v1/files/f/content\r\n"
        conn.sendall(head + b"content-length: 0\r\nconnection: close\r\n\r\n")


@pytest.mark.parametrize(
    ("script", "stream", "said"),
    [
        (_to_content, False, "passed 1 MiB"),
        (
            once(GZIP_HEAD + gzip.compress(b'{"id":"m"}') + b"x" * 3_000_000),
            False,
            "compressed body had ended",
        ),
        (once(GZIP_HEAD + gzip.compress(b"event: ping\ndata: {}\n\n") + b"x" * 3_000_000), True, "had ended"),
    ],
    ids=["same-origin redirect to /content", "gzip then more", "gzip stream then more"],
)
def test_a_redirect_or_bytes_after_gzip_cannot_lift_the_bounds(
    monkeypatch: pytest.MonkeyPatch, script: Script, stream: bool, said: str
) -> None:
    """Before, the redirect got the 2 GiB cap of a file's content, and zlib kept what followed gzip."""
    monkeypatch.setattr(bounded_http, "MAX_BODY", 1024 * 1024)
    _refused_in_one_line(script, stream, said)
