"""`emulator/batches.py`: the Message Batches endpoints via the real SDK client, on the emulator clock."""

from __future__ import annotations

import gc
import itertools
import json
import tracemalloc
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from pcache_magic.emulator import Emulator
from pcache_magic.emulator import batches as batches_module
from pcache_magic.emulator.server import EmulatorHTTPServer

from _helpers import MODEL

PREFIX = "rules of the grading " * 400  # far above the 1,024-token minimum


def params(question: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 20,
        "system": [{"type": "text", "text": PREFIX, "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": question}],
        **extra,
    }


def requests(n: int) -> list[Any]:
    return [{"custom_id": f"q{i}", "params": params(f"question {i}")} for i in range(n)]


def test_a_batch_runs_on_the_clock_writes_once_and_reads_after(emu: Emulator) -> None:
    client = emu.client()
    batch = client.messages.batches.create(requests=requests(3))
    assert batch.processing_status == "in_progress"
    assert batch.request_counts.processing == 3 and batch.request_counts.succeeded == 0
    assert batch.results_url is None and batch.ended_at is None
    assert (batch.expires_at - batch.created_at).total_seconds() == 24 * 3600
    emu.advance(59)
    assert client.messages.batches.retrieve(batch.id).processing_status == "in_progress"
    assert emu.state()["entries"] == []  # nothing ran before its end
    emu.advance(30)  # the batch runs at its end (60 s), not at the 89 s the clock reaches
    ended = client.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended"
    assert ended.request_counts.succeeded == 3 and ended.request_counts.processing == 0
    assert ended.ended_at is not None and (ended.ended_at - ended.created_at).total_seconds() == 60
    [entry] = emu.state()["entries"]
    assert entry["expires_in"] == 300 - 29  # written at the batch's end
    results = list(client.messages.batches.results(batch.id))
    assert [r.custom_id for r in results] == ["q0", "q1", "q2"]
    usages = [r.result.message.usage for r in results if r.result.type == "succeeded"]
    assert (usages[0].cache_creation_input_tokens or 0) > 1024 and usages[0].cache_read_input_tokens == 0
    assert all(u.cache_read_input_tokens == usages[0].cache_creation_input_tokens for u in usages[1:])


def test_a_bad_request_is_an_errored_result_and_the_rest_succeed(emu: Emulator) -> None:
    client = emu.client()
    unnamed: dict[str, Any] = {"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    bad: list[Any] = [
        {"custom_id": "too-long", "params": params("x", max_tokens=10**7)},
        {"custom_id": "streams", "params": params("x", stream=True)},
        {"custom_id": "no-model", "params": unnamed},
    ]
    batch = client.messages.batches.create(requests=[*requests(1), *bad])
    emu.advance(60)
    counts = client.messages.batches.retrieve(batch.id).request_counts
    assert (counts.succeeded, counts.errored) == (1, 3)
    results: dict[str, Any] = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    assert results["q0"].type == "succeeded"
    for custom_id in ("too-long", "streams", "no-model"):
        result = results[custom_id]
        assert result.type == "errored"
        assert result.error.error.type == "invalid_request_error"
    assert "max_tokens" in results["too-long"].error.error.message
    assert "stream" in results["streams"].error.error.message


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ([{"custom_id": "a b", "params": params("x")}], "custom_id: String should match pattern"),
        ([{"custom_id": "a", "params": params("x")}, {"custom_id": "a", "params": params("y")}], "duplicate"),
        ([{"custom_id": "a", "params": "x"}], "params: Input should be a valid dictionary"),
        ([{"custom_id": "a", "params": params("x"), "extra": 1}], "extra: Extra inputs are not permitted"),
        ([], "a batch holds 1 to 100,000 requests"),
    ],
)
def test_the_batch_shape_is_refused_whole(emu: Emulator, body: list[Any], says: str) -> None:
    with pytest.raises(anthropic.BadRequestError, match=says):
        emu.client(max_retries=0).messages.batches.create(requests=body)
    assert list(emu.client().messages.batches.list()) == []


def test_results_before_the_end_cancel_and_delete(emu: Emulator) -> None:
    client = emu.client(max_retries=0)
    batch = client.messages.batches.create(requests=requests(2))
    with pytest.raises(anthropic.BadRequestError, match="has not ended yet"):
        client.get(f"/v1/messages/batches/{batch.id}/results", cast_to=object)
    with pytest.raises(anthropic.BadRequestError, match="still processing"):
        client.messages.batches.delete(batch.id)
    emu.advance(10)
    canceling = client.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling" and canceling.cancel_initiated_at is not None
    ended = client.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended" and ended.request_counts.canceled == 2
    assert [r.result.type for r in client.messages.batches.results(batch.id)] == ["canceled", "canceled"]
    assert emu.state()["entries"] == []  # a canceled request never ran
    assert client.messages.batches.delete(batch.id).type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve(batch.id)


def test_a_batch_past_24_hours_expires() -> None:
    emu = Emulator(batch_delay_s=30 * 3600)
    client = emu.client()
    batch = client.messages.batches.create(requests=requests(2))
    emu.advance(24 * 3600)
    ended = client.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended" and ended.request_counts.expired == 2


def test_list_pages_newest_first_and_other_keys_see_nothing(emu: Emulator) -> None:
    client = emu.client()
    ids = [client.messages.batches.create(requests=requests(1)).id for _ in range(5)]
    page = client.messages.batches.list(limit=2)
    assert [b.id for b in page.data] == ids[::-1][:2] and page.has_more
    assert [b.id for b in client.messages.batches.list(limit=2)] == ids[::-1]  # auto-paging
    before = client.messages.batches.list(limit=2, before_id=ids[1])  # the two newer next to it
    assert [b.id for b in before.data] == [ids[3], ids[2]] and before.has_more
    other = emu.client(api_key="sk-ant-another-workspace", max_retries=0)
    assert list(other.messages.batches.list()) == []
    with pytest.raises(anthropic.NotFoundError):
        other.messages.batches.retrieve(ids[0])
    with pytest.raises(anthropic.BadRequestError, match="limit"):
        emu.client(max_retries=0).messages.batches.list(limit=0)


def test_reset_forgets_batches_and_a_bad_path_or_method_is_refused(emu: Emulator) -> None:
    client = emu.client(max_retries=0)
    client.messages.batches.create(requests=requests(1))
    emu.reset()
    assert list(client.messages.batches.list()) == []
    with pytest.raises(anthropic.NotFoundError):
        client.get("/v1/messages/batches/x/y/z", cast_to=object)
    answer = emu.respond("PUT", "/v1/messages/batches", {"x-api-key": "k"}, b"")
    assert answer.status == 405 and answer.headers["allow"] == "GET, POST"


def test_an_injected_fault_is_retried_on_create(emu: Emulator) -> None:
    emu.inject(529)
    batch = emu.client(max_retries=1).messages.batches.create(requests=requests(1))
    assert batch.request_counts.processing == 1


def test_a_batch_keeps_its_requests_in_about_their_json_size(emu: Emulator) -> None:
    """Parsed, 200,000 `[]` take ~16 MB; kept as JSON, ~0.6 MB (the store's bound counts bytes)."""
    client = emu.client(max_retries=0)
    bomb = [{"custom_id": "bomb", "params": params("q", x=[[] for _ in range(200_000)])}]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        batch = client.messages.batches.create(requests=bomb)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert batch.request_counts.processing == 1 and kept < 2_000_000
    assert 600_000 < emu.batches.nbytes < 700_000


def test_past_its_bytes_the_store_forgets_ended_batches_oldest_first_never_running_ones(
    emu: Emulator,
) -> None:
    client = emu.client(max_retries=0)
    first = client.messages.batches.create(requests=requests(2))
    size = emu.batches.nbytes
    emu.batches.max_bytes = 2 * size + size // 2  # two such batches in progress, not three
    second = client.messages.batches.create(requests=requests(2))
    body = json.dumps({"requests": requests(2)}).encode()
    full = emu.respond("POST", "/v1/messages/batches", {"x-api-key": "k"}, body)
    assert full.status == 429 and full.headers["x-should-retry"] == "false"  # only the clock frees room
    assert b"processing queue is full" in (full.body or b"")
    for batch in (first, second):
        assert client.messages.batches.retrieve(batch.id).processing_status == "in_progress"
    emu.advance(61)
    ended = emu.batches.nbytes  # both batches' results
    emu.batches.max_bytes = size + ended - 1  # room for one more batch once the oldest is forgotten
    third = client.messages.batches.create(requests=requests(2))
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve(first.id)
    results = [r.result.type for r in client.messages.batches.results(second.id)]
    assert results == ["succeeded", "succeeded"]
    assert client.messages.batches.retrieve(third.id).processing_status == "in_progress"
    assert emu.batches.nbytes <= emu.batches.max_bytes


def test_past_the_count_a_batch_in_progress_is_kept_and_the_new_one_refused(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batches_module, "MAX_BATCHES", 2)
    client = emu.client(max_retries=0)
    kept = [client.messages.batches.create(requests=requests(1)).id for _ in range(2)]
    with pytest.raises(anthropic.RateLimitError, match="processing queue is full"):
        client.messages.batches.create(requests=requests(1))
    assert [b.id for b in client.messages.batches.list()] == kept[::-1]
    emu.advance(61)
    newest = client.messages.batches.create(requests=requests(1)).id
    assert [b.id for b in client.messages.batches.list()] == [newest, kept[1]]  # the oldest ended one went


def test_over_the_server_the_same_batch(threaded: tuple[Emulator, EmulatorHTTPServer]) -> None:
    _, server = threaded
    client = anthropic.Anthropic(base_url=server.url, api_key="sk-ant-server-test", max_retries=0)
    batch = client.messages.batches.create(requests=requests(2))
    client.post("/_emulator/advance", body={"seconds": 61}, cast_to=object)
    ended = client.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended" and ended.results_url is not None
    results: list[Any] = list(client.messages.batches.results(batch.id))
    assert [r.result.type for r in results] == ["succeeded", "succeeded"]
    assert results[1].result.message.usage.cache_read_input_tokens > 1024


def heavy(i: int, max_tokens: int = 2_000) -> dict[str, Any]:
    """A request of ~2 KB whose structured result is ~6 KB: a schema fanning out by `$ref`."""

    def obj(**props: Any) -> dict[str, Any]:
        return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}

    defs = {f"d{j}": obj(a={"$ref": f"#/$defs/d{j + 1}"}, b={"$ref": f"#/$defs/d{j + 1}"}) for j in range(10)}
    schema = {**obj(x={"$ref": "#/$defs/d0"}), "$defs": {**defs, "d10": {"type": "string"}}}
    body = {"model": MODEL, "max_tokens": max_tokens, "messages": [{"role": "user", "content": f"q{i}"}]}
    output = {"format": {"type": "json_schema", "schema": schema}}
    return {"custom_id": f"h{i}", "params": {**body, "output_config": output}}


def test_results_are_weighed_as_they_come_and_past_the_store_the_rest_are_not_run(emu: Emulator) -> None:
    client = emu.client(max_retries=0)
    old = client.messages.batches.create(requests=requests(1))
    emu.advance(61)
    batch = client.messages.batches.create(requests=[heavy(i) for i in range(6)])
    emu.batches.max_bytes = emu.batches.nbytes + 12_000  # the old batch, the requests, ~2 results more
    emu.advance(61)
    ended = client.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended" and emu.batches.nbytes <= emu.batches.max_bytes
    with pytest.raises(anthropic.NotFoundError):  # ended batches are forgotten first, oldest first
        client.messages.batches.retrieve(old.id)
    results = list(client.messages.batches.results(batch.id))
    kinds = [r.result.type for r in results]
    ran = kinds.count("succeeded")
    assert [r.custom_id for r in results] == [f"h{i}" for i in range(6)]
    assert 2 <= ran < 6 and kinds == ["succeeded"] * ran + ["errored"] * (6 - ran)
    assert (ended.request_counts.succeeded, ended.request_counts.errored) == (ran, 6 - ran)
    errors = [r.result.error.error for r in results[ran:] if r.result.type == "errored"]
    assert all(e.type == "overloaded_error" and "send this request again" in e.message for e in errors)
    after = client.messages.create(**heavy(9, max_tokens=5)["params"])
    # Two ids a request (message, tool): the old one, those kept, the one that did not fit; no more ran.
    assert after.id == f"msg_emu_{2 * (1 + ran + 1) + 1:020d}"


def ticking() -> Iterator[float]:
    return itertools.count()


def test_a_due_batch_runs_a_slice_a_poll_in_order_with_its_cache_reads(emu: Emulator) -> None:
    client = emu.client(max_retries=0)
    emu.batches.slice_s, emu.batches.work_clock = 0.5, ticking().__next__  # one request a slice
    batch = client.messages.batches.create(requests=requests(3))
    emu.engine.advance(61)  # its end has come, and nothing has run it yet
    polled = [client.messages.batches.retrieve(batch.id) for _ in range(3)]
    assert [p.processing_status for p in polled] == ["in_progress", "in_progress", "ended"]
    assert [p.request_counts.processing for p in polled] == [3, 3, 0]
    results = list(client.messages.batches.results(batch.id))
    assert [r.custom_id for r in results] == ["q0", "q1", "q2"]
    usages = [r.result.message.usage for r in results if r.result.type == "succeeded"]
    assert usages[0].cache_read_input_tokens == 0
    assert all(u.cache_read_input_tokens == usages[0].cache_creation_input_tokens for u in usages[1:])


def test_a_cancel_between_slices_cancels_the_requests_not_yet_run(emu: Emulator) -> None:
    client = emu.client(max_retries=0)
    emu.batches.slice_s, emu.batches.work_clock = 0.5, ticking().__next__
    batch = client.messages.batches.create(requests=requests(3))
    emu.engine.advance(61)
    assert client.messages.batches.cancel(batch.id).processing_status == "canceling"  # after q0 ran
    ended = client.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended"
    assert [r.result.type for r in client.messages.batches.results(batch.id)] == [
        "succeeded",
        "canceled",
        "canceled",
    ]


def test_advance_lets_the_lock_go_between_slices_and_runs_the_batch_at_its_end(emu: Emulator) -> None:
    client = emu.client(max_retries=0)
    emu.batches.slice_s, emu.batches.work_clock = 0.5, ticking().__next__
    batch = client.messages.batches.create(requests=requests(4))
    held: list[float] = []

    class Lock:
        """The emulator's lock, as `advance` takes it: counted, and when (on the clock)."""

        def __enter__(self) -> None:
            held.append(emu.engine.now())

        def __exit__(self, *_: object) -> None:
            return None

    emu.batches.advance(90, Lock())
    assert len(held) >= 5  # the check, then a step a slice: other clients get in between
    ended = client.messages.batches.retrieve(batch.id)
    assert ended.ended_at is not None and (ended.ended_at - ended.created_at).total_seconds() == 60
    [entry] = emu.state()["entries"]
    assert entry["expires_in"] == 300 - 30  # every request ran at the batch's end, not later


def test_two_advances_on_their_way_at_once_add_up(emu: Emulator) -> None:
    """Another thread's advance between this one's steps (the lock let go between slices) moved the
    clock to the same target as this one: two of 100 s made 160 s. Now it moves on from where the
    first goes, as one after the other would."""
    start = emu.engine.now()
    client = emu.client(max_retries=0)
    emu.batches.slice_s, emu.batches.work_clock = 0.5, ticking().__next__
    client.messages.batches.create(requests=requests(3))  # due at 60 s: the first advance goes in steps
    others: list[float] = []

    class Lock:
        """The lock, let go: the first time, another advance runs whole in between."""

        def __enter__(self) -> None:
            return None

        def __exit__(self, *_: object) -> None:
            if not others:
                others.append(0.0)  # once: the other advance lets its lock go too
                others[0] = emu.batches.advance(100, Lock())

    emu.batches.advance(100, Lock())
    assert emu.engine.now() - start == 200
    assert others == [start + 200]


def test_an_advance_interrupted_or_reset_on_its_way_leaves_no_target_behind(emu: Emulator) -> None:
    """Interrupted between steps (Ctrl-C while a batch runs), an advance left its target set: the
    next `advance(10)` moved the clock an hour. A reset between steps stops one on its way."""
    start = emu.engine.now()
    client = emu.client(max_retries=0)
    emu.batches.slice_s, emu.batches.work_clock = 0.5, ticking().__next__
    client.messages.batches.create(requests=requests(3))
    steps = 0

    class Interrupting:
        def __enter__(self) -> None:
            return None

        def __exit__(self, *_: object) -> None:
            nonlocal steps
            steps += 1
            if steps == 2:  # after the check and one step
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        emu.batches.advance(3_600, Interrupting())
    moved = emu.engine.now() - start
    assert moved < 3_600 and emu.advance(10) - start == moved + 10

    class Resetting:
        def __enter__(self) -> None:
            return None

        def __exit__(self, *_: object) -> None:
            emu.batches.clear()  # as `Emulator.reset` does, between two steps

    before = emu.engine.now()
    assert emu.batches.advance(3_600, Resetting()) == before  # stopped, the clock as it was


def test_the_requests_past_a_full_store_weigh_no_more_than_their_ids(emu: Emulator) -> None:
    """Each request past a full store kept its `overloaded_error` line (~450 bytes), more than a
    small request weighed: the store passed its cap by ~35 MB a 100,000-request batch. Now only the
    ids are kept, and the lines written when the results are read."""
    client = emu.client(max_retries=0)
    tiny = [
        {"custom_id": f"t{i}", "params": {"model": MODEL, "max_tokens": 1, "messages": []}}
        for i in range(300)
    ]
    batch = client.messages.batches.create(requests=[heavy(0), *tiny])
    emu.batches.max_bytes = emu.batches.nbytes + 100  # the first result does not fit
    emu.advance(61)
    assert emu.batches.nbytes <= emu.batches.max_bytes
    results = list(client.messages.batches.results(batch.id))
    assert [r.custom_id for r in results] == ["h0", *(f"t{i}" for i in range(300))]
    assert {r.result.error.error.type for r in results if r.result.type == "errored"} == {"overloaded_error"}
    assert client.messages.batches.retrieve(batch.id).request_counts.errored == 301


def test_the_apis_size_limit_counts_the_requests_not_the_emulators_bookkeeping(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The 256 MB limit was compared with the requests plus 160 bytes of bookkeeping each: a batch
    the API takes could be refused, with a count no request added up to."""
    from pcache_magic.emulator import batch_record

    asked = requests(10)
    size = sum(len(batch_record.strict_json.dumps(r["params"]).encode()) for r in asked)
    monkeypatch.setattr(batch_record, "MAX_BATCH_BYTES", size)
    kept, nbytes = batch_record.encode_requests({"requests": asked})
    assert len(kept) == 10 and nbytes == size + 10 * batch_record.ITEM_OVERHEAD  # kept, weighed whole
    monkeypatch.setattr(batch_record, "MAX_BATCH_BYTES", size - 1)
    with pytest.raises(batch_record.ApiError, match=f"not {size:,}"):
        batch_record.encode_requests({"requests": asked})
