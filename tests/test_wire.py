"""The emulator's wire layer, driven through the real `anthropic` SDK in process."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import anthropic
import httpx2
import pytest

from pcache_magic.emulator import Emulator, ManualClock, strict_json, wire
from pcache_magic.emulator import engine as engine_module
from pcache_magic.emulator.wire import FaultPlan, RequestIds, Site, handle

MODEL = "claude-sonnet-4-6"
SENTINEL = "sk-ant-sentinel-0d5e7c1b9a"
#: Long enough (> 5,000 words) to clear every model's minimum cacheable length.
LONG_SYSTEM = " ".join(f"rule{i} keep answers short and cite line numbers." for i in range(800))


def cached_params(question: str = "Which functions lack tests?", **extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 64,
        "system": [{"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": question}],
        **extra,
    }


def plain_params(**extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 32,
        "messages": [{"role": "user", "content": "Say hello."}],
        **extra,
    }


@pytest.fixture
def client(emu: Emulator) -> anthropic.Anthropic:
    return emu.client(max_retries=0)


def raw_client(emu: Emulator) -> httpx2.Client:
    """Plain httpx2 through the emulator's transport, to send what the SDK never would."""
    return httpx2.Client(transport=httpx2.MockTransport(emu.handle), base_url="http://emu.invalid")


def error_type(response: httpx2.Response) -> str:
    body = response.json()
    assert body["type"] == "error"
    return str(body["error"]["type"])


# --- the happy paths --------------------------------------------------------------------


def test_create_returns_a_message_with_cache_usage(client: anthropic.Anthropic) -> None:
    raw = client.messages.with_raw_response.create(**cached_params())
    assert raw.headers["request-id"].startswith("req_emu_")
    message = raw.parse()
    assert isinstance(message, anthropic.types.Message)
    assert message.id.startswith("msg_") and message.model == MODEL
    usage = message.usage
    assert usage.cache_creation_input_tokens and usage.cache_creation_input_tokens > 5_000
    assert usage.cache_read_input_tokens == 0
    assert usage.cache_creation is not None
    assert usage.cache_creation.ephemeral_5m_input_tokens == usage.cache_creation_input_tokens

    again = client.messages.create(**cached_params("And which have no docstring?"))
    assert again.usage.cache_read_input_tokens == usage.cache_creation_input_tokens
    assert again.usage.cache_creation_input_tokens == 0


def test_request_ids_are_deterministic_per_emulator() -> None:
    def ids(emu: Emulator) -> list[str]:
        client = emu.client(max_retries=0)
        return [client.models.with_raw_response.list().headers["request-id"] for _ in range(3)]

    first = ids(Emulator())
    assert first == ids(Emulator())
    assert len(set(first)) == 3


def test_stream_events_in_api_order_and_final_usage_matches_create(
    client: anthropic.Anthropic,
) -> None:
    events = list(client.messages.create(**cached_params(), stream=True))
    types = [e.type for e in events]
    assert types[0] == "message_start" and types[-1] == "message_stop"
    assert types[-2] == "message_delta"
    assert "content_block_delta" in types
    start = events[0]
    assert isinstance(start, anthropic.types.RawMessageStartEvent)
    assert start.message.usage.cache_creation_input_tokens  # cache figures ride on message_start

    with Emulator().client(max_retries=0).messages.stream(**cached_params()) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    expected = Emulator().client(max_retries=0).messages.create(**cached_params())
    assert final.usage.model_dump() == expected.usage.model_dump()
    assert text == "".join(b.text for b in expected.content if b.type == "text")


def test_sse_bytes_are_framed_as_the_api_sends_them(emu: Emulator) -> None:
    with raw_client(emu) as http:
        response = http.post("/v1/messages", headers={"x-api-key": SENTINEL}, json=plain_params(stream=True))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.endswith("\n\n")
    blocks = response.text[:-2].split("\n\n")
    for block in blocks:
        event_line, data_line = block.split("\n")
        name = event_line.removeprefix("event: ")
        assert json.loads(data_line.removeprefix("data: "))["type"] == name
    assert blocks[0].startswith("event: message_start\ndata: {")


def test_count_tokens_matches_the_prompt_a_create_would_bill(emu: Emulator) -> None:
    params = cached_params()
    counted = emu.client(max_retries=0).messages.count_tokens(
        model=params["model"], system=params["system"], messages=params["messages"]
    )
    usage = Emulator().client(max_retries=0).messages.create(**params).usage
    total = usage.input_tokens + (usage.cache_creation_input_tokens or 0)
    total += usage.cache_read_input_tokens or 0
    assert counted.input_tokens == total
    assert emu.state()["entries"] == []  # counting never writes the cache


def test_models_list_and_get(client: anthropic.Anthropic) -> None:
    ids = [m.id for m in client.models.list()]
    assert MODEL in ids
    assert client.models.retrieve(MODEL).id == MODEL
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("claude-does-not-exist")


def test_query_strings_are_ignored(emu: Emulator) -> None:
    with raw_client(emu) as http:
        response = http.post("/v1/messages?beta=true", headers={"x-api-key": SENTINEL}, json=plain_params())
    assert response.status_code == 200
    assert response.json()["type"] == "message"


# --- errors ------------------------------------------------------------------------------


def test_missing_key_is_401(emu: Emulator) -> None:
    with raw_client(emu) as http:
        response = http.post("/v1/messages", json=plain_params())
        assert response.status_code == 401
        assert error_type(response) == "authentication_error"
        assert response.headers["request-id"].startswith("req_emu_")
        bad_scheme = http.post("/v1/messages", headers={"authorization": "Basic abc"}, json=plain_params())
        assert bad_scheme.status_code == 401
    no_key = emu.client(max_retries=0, default_headers={"Authorization": anthropic.Omit()})
    with pytest.raises(anthropic.AuthenticationError):
        no_key.messages.create(**plain_params())


def test_unknown_path_is_404_and_wrong_method_is_405(emu: Emulator, client: anthropic.Anthropic) -> None:
    with raw_client(emu) as http:
        missing = http.get("/v1/nothing-here", headers={"x-api-key": SENTINEL})
        wrong = http.get("/v1/messages", headers={"x-api-key": SENTINEL})
    assert missing.status_code == 404 and error_type(missing) == "not_found_error"
    assert wrong.status_code == 405 and error_type(wrong) == "invalid_request_error"
    assert wrong.headers["allow"] == "POST"
    with pytest.raises(anthropic.NotFoundError):
        client.get("/v1/nothing-here", cast_to=object)


def test_body_over_the_cap_is_413() -> None:
    emu = Emulator(max_body_bytes=2_000)
    with pytest.raises(anthropic.APIStatusError) as caught:
        emu.client(max_retries=0).messages.create(**cached_params())
    assert caught.value.status_code == 413
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "request_too_large"


def test_malformed_json_and_invalid_requests_are_400(emu: Emulator, client: anthropic.Anthropic) -> None:
    with raw_client(emu) as http:
        for content in (b"{not json", b"[1, 2]", b"", b"\xff\xfe"):
            response = http.post("/v1/messages", headers={"x-api-key": SENTINEL}, content=content)
            assert response.status_code == 400, content
            assert error_type(response) == "invalid_request_error"
    five = [
        {"type": "text", "text": f"part {i} " * 50, "cache_control": {"type": "ephemeral"}} for i in range(5)
    ]
    with pytest.raises(anthropic.BadRequestError, match="maximum of 4 blocks"):
        client.messages.create(**plain_params(system=five))


# --- injected faults ---------------------------------------------------------------------


def test_429_with_retry_after_is_retried_then_succeeds(emu: Emulator) -> None:
    emu.inject(429, retry_after=0.001)
    raw = emu.client(max_retries=2).messages.with_raw_response.create(**plain_params())
    assert raw.retries_taken == 1
    assert raw.parse().type == "message"
    assert len(emu.faults) == 0


def test_429_carries_retry_after_and_leaves_the_cache_alone(
    emu: Emulator, client: anthropic.Anthropic
) -> None:
    emu.inject(429, retry_after=7)
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(**cached_params())
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert emu.state()["entries"] == []
    assert client.messages.create(**cached_params()).usage.cache_creation_input_tokens


def test_persistent_529_fails_after_the_retries(emu: Emulator) -> None:
    emu.inject(529, times=5, retry_after=0.001)
    with pytest.raises(anthropic.APIStatusError) as caught:
        emu.client(max_retries=2).messages.create(**plain_params())
    assert caught.value.status_code == 529
    assert caught.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    assert len(emu.faults) == 2  # three attempts consumed three faults


def test_500_is_an_internal_server_error(emu: Emulator, client: anthropic.Anthropic) -> None:
    emu.inject(500)
    with pytest.raises(anthropic.InternalServerError):
        client.messages.count_tokens(model=MODEL, messages=plain_params()["messages"])
    emu.inject(403)
    with pytest.raises(anthropic.PermissionDeniedError):
        client.messages.create(**plain_params())


def test_disconnect_cuts_the_stream_after_message_start(emu: Emulator, client: anthropic.Anthropic) -> None:
    emu.inject("disconnect")
    assert client.messages.create(**plain_params()).type == "message"  # passes a disconnect by
    seen: list[str] = []
    with (
        pytest.raises((anthropic.APIConnectionError, httpx2.TransportError)),
        client.messages.stream(**cached_params()) as stream,
    ):
        seen.extend(event.type for event in stream)
    assert seen[0] == "message_start" and "content_block_delta" in seen
    assert "message_stop" not in seen
    assert len(emu.state()["entries"]) == 1  # the response had begun, so the write stands
    with client.messages.stream(**cached_params()) as stream:
        assert stream.get_final_message().usage.cache_read_input_tokens


def test_fault_plan_rejects_nonsense() -> None:
    plan = FaultPlan()
    for bad in (200, 302, 600, "boom", True):
        with pytest.raises(ValueError):
            plan.inject(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        plan.inject(429, times=0)
    with pytest.raises(ValueError):
        plan.inject(429, retry_after=-1)
    assert len(plan) == 0


# --- async -------------------------------------------------------------------------------


def test_async_client_create_and_stream(emu: Emulator) -> None:
    async def run() -> tuple[anthropic.types.Message, anthropic.types.Message, list[str]]:
        async with emu.async_client(max_retries=0) as client:
            created = await client.messages.create(**cached_params())
            async with client.messages.stream(**cached_params()) as stream:
                types: list[str] = [event.type async for event in stream]
                final = await stream.get_final_message()
        return created, final, types

    created, final, types = asyncio.run(run())
    assert created.usage.cache_creation_input_tokens
    assert final.usage.cache_read_input_tokens == created.usage.cache_creation_input_tokens
    assert types[0] == "message_start" and types[-1] == "message_stop"


def test_async_disconnect_and_retry(emu: Emulator) -> None:
    async def run() -> int:
        async with emu.async_client(max_retries=2) as client:
            emu.inject(429, retry_after=0.001)
            raw = await client.messages.with_raw_response.create(**plain_params())
            emu.inject("disconnect")
            with pytest.raises((anthropic.APIConnectionError, httpx2.TransportError)):
                async with client.messages.stream(**plain_params()) as stream:
                    async for _ in stream:
                        pass
            return raw.retries_taken

    assert asyncio.run(run()) == 1


# --- workspaces, the clock, secrecy -------------------------------------------------------


def test_distinct_keys_do_not_share_a_cache(emu: Emulator) -> None:
    alice, bob = emu.client("sk-ant-alice", max_retries=0), emu.client("sk-ant-bob", max_retries=0)
    first = alice.messages.create(**cached_params())
    assert first.usage.cache_creation_input_tokens
    assert alice.messages.create(**cached_params()).usage.cache_read_input_tokens
    other = bob.messages.create(**cached_params())
    assert other.usage.cache_read_input_tokens == 0
    assert other.usage.cache_creation_input_tokens == first.usage.cache_creation_input_tokens


def test_advance_expires_and_reset_forgets(emu: Emulator, client: anthropic.Anthropic) -> None:
    start = emu.now()
    client.messages.create(**cached_params())
    (entry,) = emu.state()["entries"]
    assert entry["ttl"] == "5m" and entry["expires_in"] == pytest.approx(300)
    assert emu.advance(299) == pytest.approx(start + 299)
    assert client.messages.create(**cached_params()).usage.cache_read_input_tokens
    emu.advance(301)  # the hit refreshed the entry at +299; it lives until +599
    assert emu.state()["entries"] == []
    assert client.messages.create(**cached_params()).usage.cache_read_input_tokens == 0
    emu.inject(429)
    emu.reset()
    assert emu.state()["entries"] == [] and len(emu.faults) == 0
    with pytest.raises(ValueError):
        emu.advance(-1)


def test_custom_clock_is_used() -> None:
    clock = ManualClock(1_000.0)
    assert Emulator(clock).now() == pytest.approx(1_000.0)


def test_emulator_controls_over_the_wire(emu: Emulator) -> None:
    with raw_client(emu) as http:
        advanced = http.post("/_emulator/advance", json={"seconds": 60})
        assert advanced.status_code == 200 and advanced.json()["now"] == pytest.approx(emu.now())
        for bad in ({"seconds": -1}, {"seconds": "soon"}, {}):
            assert http.post("/_emulator/advance", json=bad).status_code == 400
        assert http.post("/_emulator/inject", json={"fault": 529, "times": 2}).status_code == 200
        assert len(emu.faults) == 2
        assert http.post("/_emulator/inject", json={"fault": 200}).status_code == 400
        assert http.post("/_emulator/reset").status_code == 200
        assert len(emu.faults) == 0
        assert http.get("/_emulator/state").json()["entries"] == []


def test_the_key_never_appears_in_any_response() -> None:
    emu = Emulator(max_body_bytes=50_000)
    seen: list[str] = []

    def record(response: httpx2.Response) -> None:
        response.read()
        seen.append(response.text)
        seen.extend(f"{k}: {v}" for k, v in response.headers.items())

    http = httpx2.Client(
        transport=httpx2.MockTransport(emu.handle),
        base_url="http://emu.invalid",
        event_hooks={"response": [record]},
    )
    for auth in ({"x-api-key": SENTINEL}, {"authorization": f"Bearer {SENTINEL}"}):
        http.post("/v1/messages", headers=auth, json=cached_params())
        http.post("/v1/messages", headers=auth, json=cached_params(stream=True))
        http.post("/v1/messages/count_tokens", headers=auth, json=plain_params())
        http.post("/v1/messages", headers=auth, json=plain_params(model="claude-nope"))
        http.post("/v1/messages", headers=auth, json={"model": MODEL})
        http.post("/v1/messages", headers=auth, content=b"{oops " + SENTINEL.encode())
        http.post("/v1/messages", headers=auth, content=b"x" * 60_000)
        http.get("/v1/messages", headers=auth)
        http.get(f"/v1/models/{MODEL}", headers=auth)
        emu.inject(429, retry_after=1)
        http.post("/v1/messages", headers=auth, json=plain_params())
        emu.inject("disconnect")
        with pytest.raises(httpx2.RemoteProtocolError):
            http.post("/v1/messages", headers=auth, json=plain_params(stream=True))
        http.get("/_emulator/state")
    assert len(seen) > 20
    assert not [s for s in seen if SENTINEL in s]
    assert SENTINEL not in json.dumps(emu.state()) and SENTINEL not in repr(emu)


def test_handle_is_usable_without_the_facade(emu: Emulator) -> None:
    site = Site(emu.engine, FaultPlan(), RequestIds())
    answer = handle(site, "GET", "/v1/models", {"X-Api-Key": "k"}, b"")
    assert answer.status == 200 and answer.events is None and answer.body
    assert answer.headers["request-id"] == "req_emu_000000000001"
    assert json.loads(answer.body)["data"]


def test_the_wire_layer_keeps_no_id_counter_of_its_own() -> None:
    """Ids come from the emulator that answers: the module holds no counter a caller could fall
    back on and share with every other emulator in the process (it had a default one)."""
    assert not [name for name, value in vars(wire).items() if isinstance(value, RequestIds)]


def test_two_emulators_ids_are_independent_under_threads() -> None:
    """Two emulators driven at once from several threads: each numbers its own requests 1..n with
    no gap or repeat, and its messages' ids likewise, whatever the other does meanwhile."""
    emus, per_thread, threads = (Emulator(), Emulator()), 6, 4
    seen: dict[int, list[tuple[str, str]]] = {0: [], 1: []}
    lock = threading.Lock()

    def drive(which: int) -> None:
        client = emus[which].client(max_retries=0)
        for _ in range(per_thread):
            raw = client.messages.with_raw_response.create(**plain_params())
            with lock:
                seen[which].append((raw.headers["request-id"], raw.parse().id))

    workers = [threading.Thread(target=drive, args=(n % 2,)) for n in range(2 * threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    alone = Emulator().client(max_retries=0)  # what one emulator numbers on its own
    expected = [
        alone.messages.with_raw_response.create(**plain_params()) for _ in range(per_thread * threads)
    ]
    for which in (0, 1):
        request_ids, message_ids = zip(*seen[which], strict=True)
        assert sorted(request_ids) == [raw.headers["request-id"] for raw in expected]
        assert sorted(message_ids) == [raw.parse().id for raw in expected]
        assert emus[which].next_request_id() == f"req_emu_{per_thread * threads + 1:012d}"


# --- one heavy request does not hold up the others ----------------------------------------------

SLOW = "slow-request-marker"


@pytest.mark.parametrize("stage", ["parse", "layout"])
def test_a_request_parsed_or_laid_out_does_not_hold_up_another(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch, stage: str
) -> None:
    """A 29 MB body spends seconds in these two stages; another client's request is answered meanwhile."""
    entered, release = threading.Event(), threading.Event()

    def held(real: Any) -> Any:
        def run(first: Any, *args: Any, **kwargs: Any) -> Any:
            if SLOW in (first.decode() if isinstance(first, bytes) else json.dumps(first)):
                entered.set()
                release.wait(10)
            return real(first, *args, **kwargs)

        return run

    if stage == "parse":
        monkeypatch.setattr(strict_json, "loads", held(strict_json.loads))
    else:
        monkeypatch.setattr(engine_module, "layout", held(engine_module.layout))
    headers = {"x-api-key": "k", "content-type": "application/json"}
    slow = json.dumps(plain_params(messages=[{"role": "user", "content": SLOW}])).encode()
    heavy = threading.Thread(target=emu.respond, args=("POST", "/v1/messages", headers, slow))
    heavy.start()
    try:
        assert entered.wait(10)
        answers: list[int] = []
        other = threading.Thread(
            target=lambda: answers.append(
                emu.respond("POST", "/v1/messages", headers, json.dumps(plain_params()).encode()).status
            )
        )
        other.start()
        other.join(10)
        assert answers == [200]  # answered while the heavy request is still in its stage
    finally:
        release.set()
        heavy.join(10)


# --- hostile bodies: each a one-line 400, never a 500, and the emulator carries on -----------------


def nested(levels: int) -> str:
    """`{"a": {"a": ... 1}}`: `levels` objects, one inside the other."""
    return '{"a":' * levels + "1" + "}" * levels


HOSTILE = [
    pytest.param(
        '{"model": "m", "max_tokens": 1, "messages": [], "x": ' + nested(100) + "}",
        "nesting deeper than 100 levels",
        id="101-levels",
    ),
    pytest.param("[" * 100_000 + "]" * 100_000, "nesting deeper than 100 levels", id="100k-levels"),
    pytest.param(
        json.dumps(plain_params(messages=[{"role": "user", "content": "a \ud800 b"}])),
        "lone surrogate \\ud800 is not valid Unicode",
        id="lone-surrogate",
    ),
    pytest.param(
        json.dumps(plain_params(system="\udfff")),
        "lone surrogate \\udfff is not valid Unicode",
        id="lone-low",
    ),
    pytest.param(
        json.dumps(plain_params()).replace('"max_tokens": 32', '"max_tokens": 32, "temperature": 1e400'),
        "1e400 is out of range for a number",
        id="1e400",
    ),
    pytest.param('{"max_tokens": NaN}', "NaN is not a valid JSON value", id="nan"),
]


@pytest.mark.parametrize(("text", "reason"), HOSTILE)
def test_hostile_json_is_a_one_line_400(
    emu: Emulator, client: anthropic.Anthropic, text: str, reason: str
) -> None:
    with raw_client(emu) as http:
        response = http.post(
            "/v1/messages", headers={"x-api-key": "k"}, content=text.encode(errors="surrogatepass")
        )
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert message == f"There was an issue with your request body: invalid JSON ({reason})"
    assert "\n" not in message
    assert client.messages.create(**cached_params()).usage.cache_creation_input_tokens


def test_utf8_encoded_surrogates_and_other_encodings_are_refused(emu: Emulator) -> None:
    with raw_client(emu) as http:
        for raw in (b'{"a": "\xed\xa0\x80"}', json.dumps(plain_params()).encode("utf-16")):
            response = http.post("/v1/messages", headers={"x-api-key": "k"}, content=raw)
            assert response.status_code == 400
            assert "invalid JSON (the body is not UTF-8" in response.json()["error"]["message"]


def test_deep_but_allowed_nesting_and_surrogate_pairs_are_answered(client: anthropic.Anthropic) -> None:
    schema: dict[str, Any] = {"type": "object"}
    for _ in range(40):  # 40 schema levels: 82 JSON levels inside the request
        schema = {"type": "object", "properties": {"inner": schema}}
    message = client.messages.create(
        **plain_params(
            max_tokens=1024,
            messages=[{"role": "user", "content": "emoji \U0001f600, then a tool"}],
            tools=[{"name": "deep", "input_schema": schema}],
        )
    )
    assert message.type == "message"
    assert any("\U0001f600" in getattr(block, "text", "") for block in message.content)


def test_every_answer_is_strict_json(emu: Emulator, client: anthropic.Anthropic) -> None:
    emu.advance(10 * 365 * 86_400)
    client.messages.create(**cached_params())
    with raw_client(emu) as http:
        for response in (http.get("/_emulator/state"), http.post("/_emulator/advance", json={"seconds": 1})):
            strict_json.loads(response.text)  # raises on NaN or Infinity
        refused = http.post("/_emulator/advance", content=b'{"seconds": 1e20}')
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == "seconds must be at most 315,360,000 (10 years) per advance"
    emu.reset()
    assert emu.state()["now"] == ManualClock()()  # reset undoes the advances
