"""`emulator.errors`: the API's error types, statuses and JSON body, as the SDK reads them."""

from __future__ import annotations

import json

import pytest
from anthropic.types.shared import ErrorResponse

from pcache_magic.emulator import wire
from pcache_magic.emulator.errors import ERROR_TYPES, ApiError

#: The documented status of each error type (caching-facts.md, "Errors the SDK maps").
DOCUMENTED = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


def test_every_documented_type_has_its_status() -> None:
    assert ERROR_TYPES == DOCUMENTED


@pytest.mark.parametrize(("kind", "status"), sorted(DOCUMENTED.items()))
def test_the_status_follows_the_type(kind: str, status: int) -> None:
    error = ApiError(kind, f"something about {kind}")
    assert error.status == status
    assert (error.type, error.message, str(error)) == (kind, f"something about {kind}", error.message)
    assert error.headers == {}


@pytest.mark.parametrize("kind", sorted(set(DOCUMENTED) - {"request_too_large"}))
def test_the_body_is_the_sdks_error_response(kind: str) -> None:
    """The SDK's own `ErrorResponse` model reads the body (it has no type for 413's `request_too_large`)."""
    body = ApiError(kind, "Nope.").body()
    assert body == {"type": "error", "error": {"type": kind, "message": "Nope."}}
    parsed = ErrorResponse.model_validate(body)
    assert (parsed.type, parsed.error.type, parsed.error.message) == ("error", kind, "Nope.")


def test_an_explicit_status_wins_and_allows_types_outside_the_table() -> None:
    moved = ApiError("invalid_request_error", "Method GET not allowed", status=405)
    assert (moved.status, moved.body()["error"]["type"]) == (405, "invalid_request_error")
    timeout = ApiError("timeout_error", "Too slow", status=504)
    assert timeout.status == 504
    assert timeout.body()["error"] == {"type": "timeout_error", "message": "Too slow"}


def test_headers_are_the_errors_own_copy() -> None:
    given = {"retry-after": "3"}
    error = ApiError("rate_limit_error", "Slow down", headers=given)
    given["retry-after"] = "999"
    assert error.headers == {"retry-after": "3"}


def test_each_body_is_a_fresh_object() -> None:
    error = ApiError.invalid("bad")
    error.body()["error"]["message"] = "tampered"
    assert error.body()["error"]["message"] == "bad"


def test_invalid_is_a_400_invalid_request_error() -> None:
    error = ApiError.invalid("messages: at least one message is required")
    assert isinstance(error, Exception)
    assert (error.status, error.type) == (400, "invalid_request_error")
    assert error.message == "messages: at least one message is required"


def test_the_wire_answer_carries_status_headers_and_body() -> None:
    error = ApiError("rate_limit_error", "Slow down", headers={"retry-after": "2"})
    answer = wire.error_response(error, "req_emu_000000000007")
    assert answer.body is not None
    assert answer.status == 429
    assert answer.headers["retry-after"] == "2" and answer.headers["request-id"] == "req_emu_000000000007"
    assert answer.headers["content-type"].startswith("application/json")
    assert json.loads(answer.body)["error"] == {"type": "rate_limit_error", "message": "Slow down"}


def test_the_wire_body_names_the_request_like_the_api() -> None:
    answer = wire.error_response(ApiError.invalid("bad"), "req_emu_000000000001")
    assert answer.body is not None
    assert json.loads(answer.body) == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "bad"},
        "request_id": "req_emu_000000000001",
    }


def test_a_method_a_path_does_not_take_is_a_405_naming_those_it_does() -> None:
    from pcache_magic.emulator.errors import check_method

    check_method("GET", "/v1/models", ("GET",))
    with pytest.raises(ApiError) as refused:
        check_method("DELETE", "/v1/models", ("GET", "POST"))
    assert refused.value.status == 405 and refused.value.headers == {"allow": "GET, POST"}
    assert "use GET, POST" in str(refused.value.message)


KEY = "sk-ant-api03-" + "abcdefghij" * 4


@pytest.mark.parametrize("auth", [f"x-api-key: {KEY}", f"authorization: Bearer {KEY}"])
@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", f"/v1/{KEY}", b"", 404),  # the path
        ("GET", f"/v1/models/{KEY}", b"", 404),  # a model id in the path
        (
            "POST",
            "/v1/messages",
            json.dumps(
                {"model": KEY, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
            ).encode(),
            404,
        ),
        ("POST", f"/v1/{KEY}/x", b"", 404),
    ],
)
def test_no_error_body_repeats_the_requests_key(
    auth: str, method: str, path: str, body: bytes, status: int
) -> None:
    """A client that puts its key in the path or the model gets it blotted out of the error."""
    from pcache_magic.emulator import Emulator

    name, _, value = auth.partition(": ")
    answer = Emulator().respond(method, path, {name: value, "content-type": "application/json"}, body)
    assert answer.status == status and answer.body is not None
    assert KEY not in answer.body.decode() and "[API key]" in answer.body.decode()


def test_a_short_key_is_not_blotted_from_every_word() -> None:
    """The emulator takes any key: a one-letter one must not garble the message."""
    answer = wire.error_response(ApiError.invalid("bad model"), "req_emu_000000000002", {"x-api-key": "a"})
    assert answer.body is not None and json.loads(answer.body)["error"]["message"] == "bad model"


def test_a_key_shaped_word_goes_even_without_a_key_header() -> None:
    from pcache_magic.emulator import Emulator
    from pcache_magic.emulator.errors import blot_keys

    answer = Emulator().respond("GET", f"/v1/{KEY}", {}, b"")
    assert answer.status == 404 and answer.body is not None
    assert json.loads(answer.body)["error"]["message"] == "Not found: /v1/[API key]"
    assert blot_keys("model: claude-sonnet-4-5 (key k)", "k") == "model: claude-sonnet-4-5 (key k)"
