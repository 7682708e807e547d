"""Property: what the session predicts before a call is what the emulator then does.

Hypothesis builds a session (tools, system and context blocks of sizes around the models'
minimum cacheable lengths, 0-4 markers with TTLs in the allowed order), then runs a sequence
of steps on it: asks (any cache mode, streamed or not, any of three models), pre-warms, clock
jumps around the 5-minute and 1-hour lifetimes, marker changes and edits.  Before each call
the test keeps a copy of the session's `Ledger`; after it, the copy's `plan` for the request
actually sent must equal the emulator's `usage` token for token, the per-breakpoint
predictions recorded on the call must agree with that usage, and the ledger's live entries
must be the emulator's.  A step the pre-flight rejects must send nothing and change nothing.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pcache_magic.core.rules import resolve_breakpoints
from pcache_magic.emulator import Emulator
from pcache_magic.session.session import PreflightError, Session
from pcache_magic.session.transport import connect

MODELS = ("claude-sonnet-4-5", "claude-opus-5", "claude-haiku-4-5")
#: Words per block: each is about that many tokens, so sums land on both sides of 512/1,024/4,096.
SIZES = (20, 150, 400, 700, 1_000, 1_000, 1_800, 3_500, 4_200)
#: Clock jumps (seconds): both sides of each lifetime, plus arbitrary ones.
JUMPS = st.one_of(
    st.sampled_from([0, 1, 299, 300, 301, 3_599, 3_600, 3_601]),
    st.sampled_from([300, 3_600]),  # exactly a lifetime: the entry is gone at its expiry instant
    st.integers(min_value=0, max_value=4_000),
)
TTLs = Literal["5m", "1h"]


def text(tag: str, words: int, version: int = 0) -> str:
    return f"{tag} v{version} " + " ".join(f"w{i % 97}" for i in range(words))


@dataclass
class Spec:
    """One block the session holds: its kind, name, size, content version and marker."""

    kind: Literal["tools", "system", "context"]
    name: str
    words: int
    marker: TTLs | None
    version: int = 0


@dataclass
class World:
    emu: Emulator
    session: Session
    specs: list[Spec] = field(default_factory=list)


def put(world: World, spec: Spec) -> None:
    """(Re)define the block through the public API; the same name replaces it in place."""
    s = world.session
    body = text(spec.name, spec.words, spec.version)
    if spec.kind == "tools":
        tool = {"name": spec.name, "description": body, "input_schema": {"type": "object"}}
        s.tools([tool], cache=spec.marker, name=spec.name)
    elif spec.kind == "system":
        s.system(body, cache=spec.marker, name=spec.name)
    else:
        s.context(body, cache=spec.marker, name=spec.name)


@st.composite
def worlds(draw: st.DrawFn) -> list[Spec]:
    """Blocks in request order (tools, system, context), markers 1h-then-5m, at most 4."""
    specs: list[Spec] = []
    if draw(st.booleans()):
        specs.append(Spec("tools", "lookup", draw(st.sampled_from(SIZES)), None))
    specs += [
        Spec("system", f"sys{i}", draw(st.sampled_from(SIZES)), None) for i in range(draw(st.integers(0, 2)))
    ]
    specs += [
        Spec("context", f"ctx{i}", draw(st.sampled_from(SIZES)), None) for i in range(draw(st.integers(0, 2)))
    ]
    marked = draw(st.lists(st.booleans(), min_size=len(specs), max_size=len(specs)))
    hours = draw(st.integers(0, 4))  # the first `hours` markers are 1h, the rest 5m: the allowed order
    count = 0
    for spec, on in zip(specs, marked, strict=True):
        if on and count < 4:
            spec.marker = "1h" if count < hours else "5m"
            count += 1
    return specs


Step = tuple[str, Any]


def steps() -> st.SearchStrategy[list[Step]]:
    ask = st.tuples(
        st.just("ask"),
        st.fixed_dictionaries(
            {
                "cache": st.sampled_from(["none", "last", "automatic", "auto"]),
                "stream": st.booleans(),
                # mostly the session's model (None), so calls can hit; sometimes a switch
                "model": st.one_of(st.none(), st.none(), st.none(), st.sampled_from(MODELS)),
                "words": st.sampled_from([3, 60, 600]),
            }
        ),
    )
    return st.lists(
        st.one_of(
            ask,
            ask,
            ask,
            st.tuples(st.just("advance"), JUMPS),
            st.tuples(st.just("prewarm"), st.sampled_from(MODELS)),
            st.tuples(st.just("remark"), st.tuples(st.integers(0, 4), st.sampled_from([None, "5m", "1h"]))),
            st.tuples(st.just("edit"), st.integers(0, 4)),
            st.tuples(st.just("drop-marker"), st.integers(0, 4)),
        ),
        min_size=2,
        max_size=14,
    )


def check_call(world: World, before: Any, now: float) -> None:
    """The call just made: the pre-call ledger's plan and the recorded predictions vs usage."""
    s = world.session
    record = s.calls[-1]
    assert record.ok, record.error
    usage = record.usage
    assert usage is not None and usage.cache_creation is not None
    request = record.request
    info = s.models.get(str(request["model"]))
    lay = s.layout(request)
    points = resolve_breakpoints(lay, request.get("cache_control"))
    expected = before.plan(lay, points, info, now)
    actual = (
        usage.cache_read_input_tokens,
        usage.cache_creation.ephemeral_5m_input_tokens,
        usage.cache_creation.ephemeral_1h_input_tokens,
        usage.input_tokens,
    )
    assert (expected.read, expected.write_5m, expected.write_1h, expected.uncached) == actual
    assert usage.cache_creation_input_tokens == expected.written
    # The per-breakpoint predictions stored on the record, read against the same usage.
    predictions = record.prediction or []
    assert [p["path"] for p in predictions] == [lay.positions[b.position].path for b in points]
    read, written = usage.cache_read_input_tokens or 0, usage.cache_creation_input_tokens or 0
    hits = [p for p in predictions if p["status"] in ("hit", "hit+write")]
    writes = [p for p in predictions if p["status"] in ("write", "hit+write")]
    assert len(hits) <= 1
    # Read > 0 exactly when one breakpoint was predicted to read, and by exactly that much.
    assert read == sum(p["read"] for p in predictions)
    assert bool(read) == bool(hits)
    if hits and hits[0]["status"] == "hit":
        assert read == hits[0]["tokens"] > 0
    assert written == (max(p["tokens"] for p in writes) - read if writes else 0)
    for p in predictions:
        if p["status"] == "below-minimum":
            assert p["tokens"] < info.min_cache_tokens
        if p["status"] == "covered":
            assert p["tokens"] < read
    for p in predictions:
        event(f"prediction: {p['status']}")
    lookback = any(p["status"] == "hit+write" for p in predictions)
    event(f"outcome: {record.outcome}" + (" (read found by lookback)" if lookback else ""))
    if expected.write_1h:
        event("outcome: 1h write")
    if read:  # something was read: the plan found it, at the tokens of a live ledger entry
        assert expected.hit >= 0
        assert read in {e["tokens"] for e in before.entries(now)}
    else:
        assert expected.hit == -1 and not hits


def check_entries(world: World) -> None:
    """The ledger's live entries are exactly the emulator's (tokens, TTL, expiry)."""
    now = world.session.now()
    mine = sorted((e["tokens"], e["ttl"], e["expires_at"]) for e in world.session.ledger.entries(now))
    theirs = sorted((e["tokens"], e["ttl"], e["expires_at"]) for e in world.emu.state()["entries"])
    assert mine == theirs


def violates(world: World, extra_marker: bool) -> bool:
    """Whether the markers break a rule: more than 4, or a 1h one after a 5m one (request order)."""
    ttls = [spec.marker for spec in world.specs if spec.marker]
    if extra_marker:  # "last" or "automatic" adds a default (5m) breakpoint on the new prompt
        ttls.append("5m")
    return len(ttls) > 4 or any(a == "5m" and b == "1h" for a, b in itertools.pairwise(ttls))


def call(world: World, send: Any, *, extra_marker: bool = False) -> None:
    """Make one call; a pre-flight rejection must be right, send nothing and change nothing."""
    s = world.session
    rejected = violates(world, extra_marker)
    before, now = copy.deepcopy(s.ledger), s.now()
    conversation, calls = s.conversation.model_dump(), len(s.calls)
    ids_before = world.emu.next_request_id()
    try:
        send()
    except PreflightError as error:
        event("rejected before sending")
        assert rejected
        assert {f.code for f in error.findings} <= {"too-many-breakpoints", "ttl-order"}
        assert world.emu.next_request_id() == _following(ids_before)  # no request in between
        assert s.conversation.model_dump() == conversation and len(s.calls) == calls
        return
    assert not rejected
    assert len(s.calls) == calls + 1
    check_call(world, before, now)


def _following(request_id: str) -> str:
    head, _, number = request_id.rpartition("_")
    return f"{head}_{int(number) + 1:0{len(number)}d}"


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(specs=worlds(), plan=steps(), first=st.sampled_from(MODELS))
def test_predictions_match_the_emulator(specs: list[Spec], plan: list[Step], first: str) -> None:
    emu = Emulator()
    world = World(emu, Session(model=first, connection=connect(emulator=emu, max_retries=0)), specs)
    for spec in specs:
        put(world, spec)
    asked = 0
    for kind, arg in plan:
        s = world.session
        if kind == "ask":
            asked += 1
            send = partial(
                s.ask,
                f"question {asked} " + "q " * arg["words"],
                cache=arg["cache"],
                stream=arg["stream"],
                model=arg["model"],
            )
            call(world, send, extra_marker=arg["cache"] in ("last", "automatic"))
        elif kind == "prewarm":
            call(world, partial(s.prewarm, model=arg))
        elif kind == "advance":
            s.advance(arg)
        elif specs:
            spec = specs[arg[0] % len(specs)] if kind == "remark" else specs[arg % len(specs)]
            if kind == "remark":
                spec.marker = arg[1]
            elif kind == "edit":
                spec.version += 1
            else:
                spec.marker = None
            put(world, spec)
        check_entries(world)
