"""A session as a file's data, and a validated file back into a session, all or nothing.

`snapshot` reads what a session knows (settings, blocks, calls as sent and answered, the
ledger, the clock) into plain JSON-ready data.  `prepare` turns a validated `SessionFile` into
what `Session.restore` takes, checking what the schema cannot (references in range, models in
the catalogue, blocks the API would accept) and raising `StoreError` before anything changes;
`Prepared.apply` then moves an offline clock on and replaces the session's state in one step.

Cache entries: the ledger is saved whole.  The live API and a `pcache-emulator` server outlive
the kernel, so their entries are kept.  An in-process emulator stands in for the API, so a fresh
one (a new kernel's) is given back the saved entries still live at the saved time; the ledger
then keeps what the emulator holds, and predictions after loading are those before saving.
"""

from __future__ import annotations

import functools
import importlib.metadata
import itertools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from ..analysis.cachebook import CacheBook
from ..analysis.ledger import Ledger
from ..core import strict_json
from ..core.conversation import Block, Conversation
from ..core.models import ModelTable, Prices, UnknownModelError
from ..core.prefix import layout
from ..core.record import CallRecord
from ..core.tokens import TokenEstimator
from ..emulator.engine import MAX_ADVANCE_S, MAX_OFFSET_S
from ..emulator.errors import ApiError
from ..emulator.validate import validate_request
from .emulator_http import emulator_answer
from .pack import Packer, unpack_requests
from .schema import FORMAT, VERSION, SavedSettings, SessionFile, StoreError
from .session_settings import Settings
from .transport import Connection

__all__ = ["CATALOGUE_FIX", "MAX_STATE_BYTES", "Prepared", "Saveable", "prepare", "snapshot", "version"]

#: The most of a server's state read back (ten thousand entries are about 1.5 MB).
MAX_STATE_BYTES = 16 * 2**20

#: How to make a model known, for the one-line error that names an unknown one.
CATALOGUE_FIX = (
    "add it to the catalogue with $PCACHE_MODELS (a JSON file of model entries) or "
    "Session(models=default_models().with_overrides({...})), then load again"
)


class Saveable(Protocol):
    """What saving and loading use of a `Session` (so this module needs no import of it)."""

    models: ModelTable
    conversation: Conversation
    connection: Connection | None

    @property
    def settings(self) -> Settings: ...
    @property
    def calls(self) -> list[CallRecord]: ...
    @property
    def ledger(self) -> Ledger: ...
    @property
    def book(self) -> CacheBook: ...
    @property
    def lock(self) -> AbstractContextManager[Any]: ...
    def now(self) -> float: ...
    def restore(
        self,
        conversation: Conversation,
        calls: Sequence[CallRecord],
        *,
        entries: Iterable[Mapping[str, Any]] = (),
        block_names: Mapping[tuple[str, bytes], str] | None = None,
        **settings: Any,
    ) -> None: ...


@functools.cache
def version() -> str:
    """This pcache_magic's version, from its installed metadata (the package itself imports the
    IPython layer, which a session must not)."""
    try:
        return importlib.metadata.version("pcache-magic")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def snapshot(session: Saveable, saved_at: str = "") -> dict[str, Any]:
    """Everything the session knows, as the JSON data of a `SessionFile` (requests packed)."""
    packer = Packer()
    prices: dict[Prices, int] = {}
    calls = []
    for record in session.calls:
        priced = None if record.prices is None else prices.setdefault(record.prices, len(prices))
        calls.append(
            {
                "index": record.index,
                "kind": record.kind,
                "model": record.model,
                "started_at": record.started_at,
                "latency_s": record.latency_s,
                "error": record.error,
                "estimated": record.estimated,
                "prices": priced,
                "prediction": record.prediction,
                **({"in_flight": record.in_flight} if record.in_flight else {}),
                "request": packer.request(record.request),
                "response": None
                if record.response is None
                else record.response.model_dump(mode="json", warnings=False),
            }
        )
    connection = session.connection
    return {
        "format": FORMAT,
        "version": VERSION,
        "saved_by": version(),
        "saved_at": saved_at,
        "settings": {name: getattr(session.settings, name) for name in SavedSettings.model_fields},
        "clock": {"now": session.now(), "mode": connection.mode if connection else "custom"},
        "blocks": [block.model_dump(mode="json") for block in session.conversation.blocks],
        "ledger": session.ledger.dump(),
        "prices": [p.model_dump() for p in prices],
        "items": packer.items,
        "messages": packer.messages,
        "calls": calls,
        "block_names": [
            {"path": path, "digest": digest.hex(), "name": name}
            for (path, digest), name in session.book.names.items()
        ],
    }


@dataclass
class Prepared:
    """A validated file, ready to replace a session's state (`apply` cannot fail half-way)."""

    file: SessionFile
    conversation: Conversation
    records: list[CallRecord]
    entries: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    block_names: dict[tuple[str, bytes], str] = field(default_factory=dict)

    def apply(self, session: Saveable) -> None:
        """Move an offline clock on to the saved time, then replace the session's state."""
        connection = session.connection
        behind = self.file.clock.now - session.now()
        emulator = connection.emulator if connection is not None else None
        if emulator is not None and behind > MAX_OFFSET_S - emulator.engine.offset:  # refused before moving
            raise StoreError(
                f"clock.now: the saved time is {behind / 86_400 / 365:,.0f} years ahead of this emulator's "
                "clock, further than it moves; the file was edited, or reset the emulator and load again."
            )
        if connection is not None and connection.offline and behind > 0:
            try:
                while behind > 0:
                    step = min(behind, MAX_ADVANCE_S)
                    connection.advance(step)
                    behind -= step
            except (ValueError, RuntimeError, OSError) as error:
                raise StoreError(
                    f"clock.now: the emulator's clock cannot be moved on to the saved time ({error}); "
                    "reset the emulator or save again."
                ) from None
        self._seed(session)
        settings = self.file.settings
        session.restore(
            self.conversation,
            self.records,
            entries=self._live(session),
            block_names=self.block_names,
            model=settings.model,
            max_tokens=settings.max_tokens,
            default_ttl=settings.default_ttl,
            cache_mode=settings.cache_mode,
            diagnostics=settings.diagnostics,
            max_cost=settings.max_cost,
            budget=settings.budget,
        )

    def _seed(self, session: Saveable) -> None:
        """Offline in process, the emulator stands in for the API, which keeps a session's entries
        until they expire whichever kernel restarts: put back the live ones it does not hold.
        Each is found in the latest saved request that holds its prefix, and laid out again under
        the emulator's own key for this session's client."""
        connection = session.connection
        if (
            connection is None
            or connection.emulator is None
            or self.file.clock.mode not in ("offline", "custom")
        ):
            return
        api_key = getattr(connection.client, "api_key", None)
        now = connection.emulator.now()
        wanted = {e["key"]: e for e in self.entries if e["expires_at"] > now}
        if not api_key or not wanted:
            return
        estimator, models = TokenEstimator(), session.models
        for record in reversed(self.records):
            if not wanted:
                break
            if not record.ok or record.model not in models:
                continue
            lay = layout(record.request, estimator, model=models.get(record.model).id)
            for depth, position in enumerate(lay.positions):
                entry = wanted.pop(position.key.hex(), None)
                if entry is not None:
                    connection.emulator.engine.seed(
                        api_key, record.request, depth, entry["ttl"], entry["expires_at"]
                    )

    def _live(self, session: Saveable) -> list[dict[str, Any]]:
        """The saved entries the emulator still holds (by model, size and lifetime); all of them
        live, where only the API knows (it keeps them until they expire, whoever restarts)."""
        connection = session.connection
        saved, now = self.file.clock.mode, connection.mode if connection else "custom"
        if "custom" not in (saved, now) and (saved == "live") != (now == "live"):
            return []  # an emulator's entries are not the API's, nor the other way round
        state = _emulator_state(connection)
        if state is None:
            return self.entries
        held = Counter((e["model"], e["tokens"], e["ttl"]) for e in state["entries"])
        kept = []
        for entry in self.entries:
            key = (entry["model"], entry["tokens"], entry["ttl"])
            if entry["expires_at"] <= state["now"]:  # expired: predicts nothing, kept as it was
                kept.append(entry)
            elif held[key] > 0:
                held[key] -= 1
                kept.append(entry)
        return kept


def _emulator_state(connection: Connection | None) -> Any:
    """What an emulator holds (in process, or a server's `/_emulator/state`); None live."""
    if connection is None or not connection.offline:
        return None
    if connection.emulator is not None:
        return connection.emulator.state()
    try:  # bounded in size and time, no redirect followed, as the clock's reads are
        body, whole = emulator_answer(f"{connection.url}/_emulator/state", max_bytes=MAX_STATE_BYTES)
        state = strict_json.loads(body) if whole else None
    except (OSError, ValueError):
        return None  # unreachable: its calls will say so; the entries are kept as saved
    return state if _state_shaped(state) else None  # not an emulator's (or too long): kept as saved too


def _state_shaped(state: Any) -> bool:
    """Whether a server's `/_emulator/state` answer has what `_live` reads: its time and entries."""
    entries = state.get("entries") if isinstance(state, dict) else None
    now = state.get("now") if isinstance(state, dict) else None
    return (
        isinstance(entries, list)
        and isinstance(now, int | float)
        and all(
            isinstance(e, dict) and all(isinstance(e.get(k), str | int) for k in ("model", "tokens", "ttl"))
            for e in entries
        )
    )


def _known(models: ModelTable, name: str, where: str) -> None:
    if name not in models:
        suggestion = models.suggest(name)
        also = f" (did you mean {suggestion!r}?)" if suggestion else ""
        raise StoreError(f"{where}: unknown model {name!r}{also}; {CATALOGUE_FIX}.")


def _check_block(block: Block, n: int, models: ModelTable, model: str) -> None:
    """A block the next request carries must be one the API accepts (an image's source, a tool)."""
    content = block.rendered()
    if not content or block.kind not in ("tools", "system", "context", "prompt"):
        return  # replies and tool results are the API's own answers, kept as they came
    body: dict[str, Any] = {"model": model, "max_tokens": 1, "messages": [{"role": "user", "content": "."}]}
    if block.role == "tools":
        body["tools"] = content
    elif block.role == "system":
        body["system"] = content
    else:
        body["messages"] = [{"role": "user", "content": content}]
    try:
        validate_request(body, known_model=models.__contains__)
    except ApiError as error:
        raise StoreError(
            f"blocks.{n} ({block.name!r}): the API would refuse it ({error.message}); fix or drop it "
            "in the file, or save again."
        ) from None


def prepare(file: SessionFile, models: ModelTable, notes: Iterable[str] = ()) -> Prepared:
    """Check what the schema cannot and build the session's new state; StoreError (one line)."""
    names = [b.name for b in file.blocks]
    counts = Counter(names)  # one pass: a file of 40,000 blocks counted in turn took 20 s
    twice = next((name for name in names if counts[name] > 1), None)
    if twice is not None:
        raise StoreError(f"blocks: the name {twice!r} is used twice; rename one (names are unique).")
    odd = next((n for n, c in enumerate(file.calls) if not _earlier(c.in_flight, c.index)), None)
    if odd is not None:
        raise StoreError(
            f"calls.{odd}.in_flight: not calls before it, each once, in order; save the session again."
        )
    _known(models, file.settings.model, "settings.model")
    model = models.get(file.settings.model).id
    for n, block in enumerate(file.blocks):
        _check_block(block, n, models, model)
    for n, entry in enumerate(file.ledger):
        _known(models, entry.model, f"ledger.{n}.model")
    try:
        requests = unpack_requests(file.items, file.messages, file.calls)
    except ValueError as error:
        raise StoreError(f"{error}; the file is damaged: save the session again.") from None
    records = []
    for n, (call, request) in enumerate(zip(file.calls, requests, strict=True)):
        _known(models, call.model, f"calls.{n}.model")
        if call.prices is not None and call.prices >= len(file.prices):
            raise StoreError(
                f"calls.{n}.prices: no prices {call.prices} in the file; save the session again."
            )
        try:
            records.append(
                CallRecord(
                    index=call.index,
                    kind=call.kind,
                    model=call.model,
                    started_at=call.started_at,
                    request=request,
                    response=call.reply,
                    latency_s=call.latency_s,
                    error=call.error,
                    estimated=call.estimated,
                    prices=None if call.prices is None else file.prices[call.prices],
                    prediction=None if call.prediction is None else [p.model_dump() for p in call.prediction],
                    in_flight=list(call.in_flight),
                )
            )
        except (ValidationError, UnknownModelError) as error:
            raise StoreError(f"calls.{n}: {error}; save the session again.") from None
    conversation = Conversation(blocks=list(file.blocks))
    entries = [entry.model_dump() for entry in file.ledger]
    block_names = {(n.path, bytes.fromhex(n.digest)): n.name for n in file.block_names}
    return Prepared(file, conversation, records, entries, list(notes), block_names)


def _earlier(indices: Sequence[int], index: int) -> bool:
    """Whether `indices` (a call's `in_flight`) are calls before `index`, each once, in order."""
    return all(a < b for a, b in itertools.pairwise([*indices, index])) and (not indices or indices[0] >= 1)
