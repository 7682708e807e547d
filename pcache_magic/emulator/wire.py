"""HTTP semantics of the emulator, without sockets.

One function, `handle`, turns a request (method, path, headers, body bytes) into a
`WireResponse`, answered by a `Site`: one emulator's engine, faults, batches, lock and
request ids. The in-process httpx2 transport and the HTTP server both call it, so the
two routes answer byte for byte alike. No state lives in this module: each `Site` brings
its own id source, so two emulators in one process never share or race a counter. The API
key is read only to partition the cache: it goes to the engine (which hashes it) and is
never stored, echoed or logged here.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from . import batches as batch_api
from . import strict_json
from .batch_record import encode_requests
from .errors import ApiError, blot_keys, check_method
from .faults import Fault, FaultPlan, fault_error

if TYPE_CHECKING:
    from .batches import Batches
    from .engine import Engine

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "ConnectionCut",
    "Fault",
    "FaultPlan",
    "RequestIds",
    "Site",
    "WireResponse",
    "error_response",
    "handle",
    "sse_event",
]

DEFAULT_MAX_BODY_BYTES = 32 * 2**20

_JSON = "application/json"
_SSE = "text/event-stream; charset=utf-8"
_MESSAGES = "/v1/messages"
_COUNT = "/v1/messages/count_tokens"
_MODELS = "/v1/models"


class ConnectionCut(Exception):
    """Raised by `WireResponse.events` where an injected disconnect cuts the stream.

    Each transport turns it into its own broken connection: the in-process one raises
    `httpx2.RemoteProtocolError`, the server drops the socket without the final chunk.
    """


@dataclass(frozen=True)
class WireResponse:
    """A response: `body` for JSON, or `events`, a lazy iterator of encoded SSE events."""

    status: int
    headers: dict[str, str]
    body: bytes | None = None
    events: Iterator[bytes] | None = field(default=None, repr=False)
    timed_out: bool = False
    """An injected timeout: the transport must not answer. The in-process one raises
    `httpx2.ReadTimeout`; the server holds the connection until the client gives up."""


class RequestIds:
    """Deterministic `request-id` values (`req_emu_000000000001`, ...), one counter per owner."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            return f"req_emu_{next(self._counter):012d}"


@dataclass(frozen=True)
class Site:
    """What answers a request: one emulator's engine, fault plan and id source (its own, never
    shared: ids are unique per emulator), its Message Batches (None: those endpoints 404), its
    body limit, and `lock`, held from the fault on (see `handle`)."""

    engine: Engine
    faults: FaultPlan
    request_ids: RequestIds
    batches: Batches | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    lock: AbstractContextManager[Any] | None = None


@dataclass(frozen=True)
class _Request:
    """A request past its route, key, size and JSON checks, as `_dispatch` and `_batch` take it
    (`model_id`: a model's, or a batch's, id from the path; `arrived`: its `Engine.ticket`, from
    when it came in; `early`: what `_early` made of it)."""

    route: str
    model_id: str
    key: str
    data: dict[str, Any]
    path: str
    request_id: str
    arrived: int | None = None
    early: Any = None


def sse_event(name: str, data: Mapping[str, Any]) -> bytes:
    """One event exactly as the API frames it: compact JSON on a single `data:` line."""
    payload = strict_json.dumps(data)
    return f"event: {name}\ndata: {payload}\n\n".encode()


def _json(status: int, data: Any, request_id: str, extra: Mapping[str, str] | None = None) -> WireResponse:
    body = strict_json.dumps(data).encode()
    headers = {"content-type": _JSON, "request-id": request_id, **(extra or {})}
    headers["content-length"] = str(len(body))
    return WireResponse(status, headers, body=body)


def error_response(
    error: ApiError, request_id: str, headers: Mapping[str, str] | None = None
) -> WireResponse:
    """The API's JSON error body (naming the request, as the API's does), status and headers; the key
    of the request's `headers`, and anything shaped like a key, blotted out (`errors.blot_keys`)."""
    body = error.body()
    body["error"]["message"] = blot_keys(
        body["error"]["message"], _api_key({k.lower(): v for k, v in (headers or {}).items()})
    )
    return _json(error.status, {**body, "request_id": request_id}, request_id, error.headers)


def _timed_out(request_id: str) -> WireResponse:
    """An injected timeout; the 504 body is only for a transport that cannot stay silent."""
    error = ApiError("api_error", "The request timed out (injected by the emulator)", status=504)
    answer = error_response(error, request_id)
    return WireResponse(answer.status, answer.headers, body=answer.body, timed_out=True)


def _api_key(headers: Mapping[str, str]) -> str | None:
    """The caller's key from `x-api-key`, else from `authorization: Bearer ...` (SDK 2.x)."""
    key = headers.get("x-api-key", "").strip()
    if key:
        return key
    scheme, _, token = headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def _parse_json(body: bytes, *, required: bool) -> dict[str, Any]:
    if not body.strip():
        if required:
            raise ApiError.invalid("Request body is empty; expected a JSON object.")
        return {}
    try:  # strict: no NaN or Infinity, no lone surrogates, no nesting past strict_json.MAX_DEPTH
        data = strict_json.loads(body)
    except ValueError as exc:
        raise ApiError.invalid(f"There was an issue with your request body: invalid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ApiError.invalid("Request body must be a JSON object.")
    return data


def _route(method: str, path: str) -> tuple[str, str]:
    """(route name, model id) for a path; ApiError 404/405 when there is none."""
    allowed: tuple[str, ...]
    model_id = ""
    if path == batch_api.PREFIX or path.startswith(batch_api.PREFIX + "/"):
        name, batch_id = batch_api.route(method, path)
        return f"{batch_api.PREFIX}:{name}", batch_id
    if path in (_MESSAGES, _COUNT, "/_emulator/advance", "/_emulator/reset", "/_emulator/inject"):
        allowed = ("POST",)
    elif path in (_MODELS, "/_emulator/state"):
        allowed = ("GET",)
    elif path.startswith(_MODELS + "/") and path.count("/") == 3 and len(path) > len(_MODELS) + 1:
        allowed, model_id = ("GET",), unquote(path[len(_MODELS) + 1 :])
        path = _MODELS + "/{id}"
    else:
        raise ApiError("not_found_error", f"Not found: {path}")
    check_method(method, path, allowed)
    return path, model_id


def handle(
    site: Site,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    arrived: int | None = None,
) -> WireResponse:
    """Answer one request as the Messages API would (plus the `/_emulator/*` controls).

    Order of checks: route (404/405), key (401, `/v1/*` only), size (413), JSON (400), an
    injected fault, then the engine (`site.batches`: the Message Batches endpoints). Never raises
    for a bad request; every response has a `request-id` header (from `site.request_ids`).
    `headers` may be any case-insensitive or lower-case mapping. `site.lock` is held only from the
    fault on: the parse and the engine's work on the request alone (`_early`) run outside it, so
    one heavy request does not stall every other client.
    """
    request_id = site.request_ids()
    hdrs = {k.lower(): v for k, v in headers.items()}
    try:
        route, model_id = _route(method.upper(), path.partition("?")[0])
        key = _api_key(hdrs)
        if route.startswith("/v1/") and key is None:
            raise ApiError("authentication_error", "x-api-key header is required")
        if len(body) > site.max_body_bytes:
            raise ApiError(
                "request_too_large",
                f"Request exceeds the maximum allowed number of bytes ({site.max_body_bytes}).",
            )
        create = batch_api.PREFIX + ":create"
        data = _parse_json(body, required=route in (_MESSAGES, _COUNT, create, "/_emulator/inject"))
        early = _early(site.engine, route, key or "", data)
        request = _Request(route, model_id, key or "", data, path, request_id, arrived, early)
        if route == "/_emulator/advance":  # takes the lock a step at a time, then answers the state
            _advance(site, data)
        with site.lock or nullcontext():
            if route.startswith(batch_api.PREFIX + ":"):
                return _batch(site, request)
            return _dispatch(site, request)
    except ApiError as exc:
        return error_response(exc, request_id, hdrs)
    except Exception as exc:  # an engine bug: answer 500 like the API, never a traceback
        message = f"Emulator internal error: {type(exc).__name__}: {exc}"
        return error_response(ApiError("api_error", message), request_id, hdrs)


def _early(engine: Engine, route: str, key: str, data: dict[str, Any]) -> Any:
    """What a message, count or batch create request yields from itself alone (`Engine.prepare`,
    the count, the batch's compact requests), or the error it raises, kept to answer after the
    fault: an injected fault still comes first."""
    try:
        if route == batch_api.PREFIX + ":create":
            return encode_requests(data)
        if route == _MESSAGES:
            return engine.prepare(key, data)
        if route == _COUNT:
            return engine.count_tokens(key, data)
    except Exception as exc:  # raised again under the lock, after the fault (`_settled`)
        return exc
    return None


def _settled(early: Any) -> Any:
    if isinstance(early, Exception):
        raise early
    return early


def _dispatch(site: Site, request: _Request) -> WireResponse:
    """A parsed request to its endpoint."""
    engine, faults, route, request_id = site.engine, site.faults, request.route, request.request_id
    if route == _MESSAGES:
        return _message(site, request)
    if route == _COUNT:
        fault = faults.take(streaming=False)
        if fault is not None and fault.kind == "timeout":
            return _timed_out(request_id)
        if fault is not None:
            raise fault_error(fault)
        return _json(200, _settled(request.early), request_id)
    if route == _MODELS:
        return _json(200, engine.list_models(), request_id)
    if route == _MODELS + "/{id}":
        return _json(200, engine.get_model(request.model_id), request_id)
    if route == "/_emulator/reset":
        engine.reset()
        faults.clear()
        if site.batches is not None:
            site.batches.clear()
    elif route == "/_emulator/inject":
        data = request.data
        try:
            retry_after = data.get("retry_after")
            faults.inject(data.get("fault"), times=data.get("times", 1), retry_after=retry_after)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise ApiError.invalid(str(exc)) from None
    return _json(200, engine.state(), request_id)


def _message(site: Site, request: _Request) -> WireResponse:
    """`/v1/messages`: an injected fault first, then the engine's message or its event stream."""
    engine, faults, key, data = site.engine, site.faults, request.key, request.data
    streaming = data.get("stream") is True
    fault = faults.take(streaming=streaming)
    if fault is not None and fault.kind == "timeout":
        return _timed_out(request.request_id)
    if fault is not None and fault.kind != "disconnect":
        raise fault_error(fault)
    prepared = request.early
    if not streaming:
        message = engine.create_message(key, data, arrived=request.arrived, prepared=_settled(prepared))
        return _json(200, message, request.request_id)
    try:  # raises before any event is sent
        events = engine.stream_message(key, data, arrived=request.arrived, prepared=_settled(prepared))
    except BaseException:
        if fault is not None:
            faults.put_back(fault)
        raise
    headers = {"content-type": _SSE, "cache-control": "no-cache", "request-id": request.request_id}
    return WireResponse(200, headers, events=_encode(events, cut=fault is not None))


def _advance(site: Site, data: dict[str, Any]) -> None:
    """`/_emulator/advance`: batches stop at each one's end on the way, the lock let go between
    slices of their work (`Batches.advance`)."""
    seconds = data.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise ApiError.invalid('Expected {"seconds": <number >= 0>}.')
    try:
        if site.batches is None:
            with site.lock or nullcontext():
                site.engine.advance(seconds)
        else:
            site.batches.advance(seconds, site.lock)
    except ValueError as exc:
        raise ApiError.invalid(str(exc)) from None


def _batch(site: Site, request: _Request) -> WireResponse:
    """A Message Batches request; a create takes an injected fault as a message request does."""
    path, request_id = request.path, request.request_id
    if site.batches is None:
        raise ApiError("not_found_error", f"Not found: {path.partition('?')[0]}")
    name = request.route.rpartition(":")[2]
    if name == "create" and (fault := site.faults.take(streaming=False)) is not None:
        if fault.kind == "timeout":
            return _timed_out(request_id)
        raise fault_error(fault)
    answer = site.batches.dispatch(
        name,
        request.model_id,
        request.key,
        request.data,
        path.partition("?")[2],
        encoded=_settled(request.early),
    )
    if isinstance(answer, bytes):  # the results, one JSON line per request
        headers = {"content-type": "application/binary", "request-id": request_id}
        headers["content-length"] = str(len(answer))
        return WireResponse(200, headers, body=answer)
    return _json(200, answer, request_id)


def _encode(events: list[tuple[str, dict[str, Any]]], *, cut: bool) -> Iterator[bytes]:
    """Encode lazily; with `cut`, stop after the first content delta and half an event."""
    for index, (name, data) in enumerate(events):
        chunk = sse_event(name, data)
        if cut and index > 0 and events[index - 1][0] == "content_block_delta":
            yield chunk[: len(chunk) // 2]
            raise ConnectionCut("connection closed by the emulator in the middle of the stream")
        yield chunk
    if cut:  # a stream too short to cut in the middle still ends abruptly
        raise ConnectionCut("connection closed by the emulator before the end of the stream")
