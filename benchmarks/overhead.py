"""What the Session adds to a call: `Session.ask` against a raw `client.messages.create`.

Both sides send the same request on a 50k-token conversation to the same in-process emulator
through the same SDK client, so the emulator's work, the SDK's and the JSON on the wire are
common to both; what is left is the session's own work per call (rendering the conversation,
the pre-flight checks and the prediction, recording, learning from the usage).  The request
is the steady state of a notebook: `cache="last"`, every call a cache hit.  The raw side sends
the params the session itself sent (`calls[-1].request`); the two sides are interleaved and
warmed by the harness.  Each session call adds a prompt and a reply, which are taken out
again so that every call sends the same 50k tokens.

Two floors are measured the same way, to show what the goal leaves room for: the session
with its cache bookkeeping switched off (no pre-flight checks, predictions or learning from
usage), and a bare conversation that only renders its request and sends it.
"""

from __future__ import annotations

import copy
import cProfile
import pstats
import random
import warnings
from collections.abc import Callable
from typing import Any

from pcache_magic.analysis.ledger import Prediction
from pcache_magic.core.conversation import Block, cache_control
from pcache_magic.core.preflight import Finding
from pcache_magic.emulator import Emulator
from pcache_magic.session.counts import Counted
from pcache_magic.session.session import Session
from pcache_magic.session.transport import connect

from ._harness import Figure, Goal, compare

__all__ = ["GOAL", "MODEL", "TARGET_TOKENS", "build_session", "run"]

MODEL = "claude-sonnet-4-5"
TARGET_TOKENS = 50_000
#: Goal (issue 21): a call through the Session costs at most 8% more than the same raw SDK call
#: (the best peer measured the same way, claudette, is 1.08x); with `cache="auto"`, 15%.
GOAL = Goal.at_most(1.08)
GOAL_AUTO = Goal.at_most(1.15)
CALLS, QUICK_CALLS = 200, 20
PROMPT = "Which claims above still lack evidence?"
EXCHANGES = 8

_WORDS = (
    "the a of to and in that is for it as with on by this be are from at or an which cache prefix "
    "token request model prompt system message block reviewer code function module test notebook "
    "session cost latency usage marker lifetime entry write read context paper section result "
    "claim evidence method careful because however therefore although review explain compare"
)
_VOCABULARY = _WORDS.split()


def _prose(rng: random.Random, words: int) -> str:
    sentences: list[str] = []
    while words > 0:
        n = min(words, rng.randint(6, 22))
        words -= n
        sentence = " ".join(rng.choice(_VOCABULARY) for _ in range(n))
        sentences.append(sentence[0].upper() + sentence[1:] + rng.choice("...?!"))
    return " ".join(sentences)


def _unchecked(session: Session) -> Session:
    """The session without its cache bookkeeping: no pre-flight checks or predictions before a
    call, no learning from its usage after (its call pipeline's two steps replaced on the instance).
    A floor for the benchmark, not a mode to ship."""

    def check(params: Any, names: Any, now: float) -> tuple[list[Finding], list[Prediction], Counted]:
        return [], [], Counted()

    def learn(params: Any, names: Any, message: Any, at: float) -> None:
        return None

    session._pipeline._check = check  # type: ignore[method-assign]
    session._pipeline._learn = learn  # type: ignore[method-assign]
    return session


def build_session(target: int = TARGET_TOKENS) -> Session:
    """A session holding about `target` tokens (within 2%): system (1h), a paper (1h), 8 exchanges."""
    scale = 1.0
    for _ in range(4):
        session = _session(scale)
        tokens = session.layout(session.params()).total_tokens
        if abs(tokens - target) <= target * 0.02:
            return session
        scale *= target / tokens
    raise RuntimeError(f"could not size the conversation near {target} tokens (got {tokens})")


def _session(scale: float) -> Session:
    rng = random.Random(20260101)
    session = Session(model=MODEL, connection=connect(emulator=Emulator(), max_retries=0))
    session.system(_prose(rng, round(2_200 * scale)), cache="1h", name="system")
    session.context(_prose(rng, round(22_000 * scale)), cache="1h", name="paper", source="paper.txt")
    for turn in range(EXCHANGES):
        question = [{"type": "text", "text": _prose(rng, round(900 * scale))}]
        answer = [{"type": "text", "text": _prose(rng, round(1_600 * scale))}]
        session.conversation.add(Block(name=f"q{turn}", role="user", kind="prompt", content=question))
        session.conversation.add(Block(name=f"a{turn}", role="assistant", kind="reply", content=answer))
    return session


def _ask(session: Session, cache: str = "last") -> Callable[[], object]:
    """One steady-state call through the session; the conversation is then put back as it was
    (one list assignment, so that what is timed is the call, not the benchmark's tidying up)."""
    blocks = session.conversation.blocks
    before = list(blocks)

    def call() -> object:
        message = session.ask(PROMPT, name="question", stream=False, cache=cache)  # type: ignore[arg-type]
        blocks[:] = before
        return message

    return call


def _render_and_send(session: Session, params: dict[str, Any]) -> Callable[[], object]:
    """A bare conversation: add the prompt, render the request, send it (with the raw side's
    diagnostics field, so the emulator does the same work), take the prompt out again."""
    conversation, client = session.conversation, session.client
    assert client is not None
    blocks = conversation.blocks
    before = list(blocks)
    marker = cache_control(session.default_ttl)

    def call() -> object:
        prompt = Block(
            name="question", role="user", kind="prompt", content=[{"type": "text", "text": PROMPT}]
        )
        conversation.add(prompt)
        request, _ = conversation.render(model=session.model, max_tokens=session.max_tokens, last_turn=marker)
        message = client.messages.create(**request, diagnostics=params["diagnostics"])
        blocks[:] = before
        return message

    return call


def _floors(
    baseline: Callable[[], object], params: dict[str, Any], calls: int, warmup: int
) -> dict[str, float]:
    """Ratios of the two floors against the same raw call (see the module's docstring)."""
    unchecked = _ask(_unchecked(build_session()))
    bare = _render_and_send(build_session(), params)
    for fn in (unchecked, bare):  # the first call writes the cache
        fn()
        fn()
    return {
        "ask_without_cache_bookkeeping": round(
            compare(baseline, unchecked, repeats=calls, warmup=warmup, min_sample_ns=0).slowdown, 4
        ),
        "render_and_send_only": round(
            compare(baseline, bare, repeats=calls, warmup=warmup, min_sample_ns=0).slowdown, 4
        ),
    }


def _raw(session: Session) -> tuple[Callable[[], object], dict[str, Any]]:
    """The same request, sent with the session's own SDK client and nothing around it."""
    params = copy.deepcopy(session.calls[-1].request)
    client = session.client
    assert client is not None

    def call() -> object:
        return client.messages.create(**params)

    return call, params


def _profile(fn: Callable[[], object], calls: int, top: int = 15) -> list[str]:
    """Where the session's own time goes: its functions (not the SDK's, not the emulator's),
    by cumulative milliseconds per call."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        fn()
    profiler.disable()
    rows = []
    for (filename, line, name), (_, ncalls, _, cumulative, _) in pstats.Stats(profiler).stats.items():  # type: ignore[attr-defined]
        path = filename.replace("\\", "/")
        if "/pcache_magic/" in path and "/emulator/" not in path:
            where = f"{path.rpartition('/pcache_magic/')[2]}:{line}({name})"
            rows.append((cumulative / calls * 1e3, ncalls / calls, where))
    rows.sort(reverse=True)
    return [f"{ms:8.3f} ms/call  {n:7.1f} calls/call  {where}" for ms, n, where in rows[:top]]


def run(quick: bool = False) -> list[Figure]:
    with warnings.catch_warnings():  # the SDK's model-deprecation notice, alike on both sides
        warnings.simplefilter("ignore", DeprecationWarning)
        return _run(quick)


def _run(quick: bool) -> list[Figure]:
    session = build_session()
    subject = _ask(session)
    subject()  # the first call writes the cache; every later one reads it
    subject()
    baseline, params = _raw(session)
    usage = session.calls[-1].usage
    if usage is None or (usage.cache_read_input_tokens or 0) < TARGET_TOKENS * 0.9:
        raise RuntimeError(f"the steady-state call did not read from the cache: {usage}")
    tokens = session.calls[-1].tokens.prompt
    calls = QUICK_CALLS if quick else CALLS
    result = compare(
        baseline,
        subject,
        labels=("client.messages.create (same params)", "Session.ask (cache='last')"),
        repeats=calls,
        warmup=2 if quick else 5,
        min_sample_ns=0,  # one call per sample: the median is a per-call median
    )
    # Cross-check: several calls per sample, so the collection the harness runs before each
    # sample (which leaves caches cold for both sides alike) weighs less; typically higher.
    batched = compare(baseline, subject, repeats=5 if quick else 11, warmup=1, min_sample_ns=25_000_000)
    details: dict[str, Any] = {
        **result.details(),
        "batched_ratio_of_medians": round(batched.slowdown, 4),
        "prompt_tokens": tokens,
        "blocks": len(session.conversation.blocks),
        "messages": len(params["messages"]),
        "calls_per_side": calls,
        "steady_state_usage": usage.model_dump(exclude_none=True),
        "floors": _floors(baseline, params, calls, 2 if quick else 5),
    }
    figure = Figure("overhead.session_ask_50k", result.slowdown, "x", GOAL, details)
    if not figure.met:
        extra_ms = (result.subject.median_ns - result.baseline.median_ns) / 1e6
        details["session_extra_ms"] = round(extra_ms, 3)
        details["profile_session_ask"] = _profile(subject, 3 if quick else 20)
    return [figure, _auto(quick)]


def _auto(quick: bool) -> Figure:
    """`cache="auto"` (the planner places the markers) against the raw call of what it sent."""
    session = build_session()
    subject = _ask(session, cache="auto")
    subject()  # the first call writes the cache; every later one reads it
    subject()
    baseline, _ = _raw(session)
    calls = QUICK_CALLS if quick else CALLS
    result = compare(
        baseline,
        subject,
        labels=("client.messages.create (same params)", "Session.ask (cache='auto')"),
        repeats=calls,
        warmup=2 if quick else 5,
        min_sample_ns=0,
    )
    usage = session.calls[-1].usage
    details: dict[str, Any] = {
        **result.details(),
        "prompt_tokens": session.calls[-1].tokens.prompt,
        "steady_state_usage": usage.model_dump(exclude_none=True) if usage else None,
        "calls_per_side": calls,
    }
    figure = Figure("overhead.session_ask_auto_50k", result.slowdown, "x", GOAL_AUTO, details)
    if not figure.met:
        details["profile_session_ask_auto"] = _profile(subject, 3 if quick else 20)
    return figure


if __name__ == "__main__":
    from ._harness import render_table

    figures = run(quick=False)
    print(render_table(figures))
    for floor, ratio in figures[0].details["floors"].items():
        print(f"floor: {floor} {ratio:.3f}x")
    for line in figures[0].details.get("profile_session_ask", []):
        print(line)
