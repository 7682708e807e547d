"""The API's error shapes, raised by the emulator's pure layers and rendered by its wire layer."""

from __future__ import annotations

from typing import Any

from ..core.env import KEY_SHAPE

__all__ = ["ERROR_TYPES", "ApiError", "blot_keys", "check_method"]

#: What looks like an Anthropic API key, wherever a client put it (a path, a model name).

#: HTTP status for each error type the Messages API documents.
ERROR_TYPES: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


class ApiError(Exception):
    """An error the emulator answers with, exactly as the real API would shape it.

    `body()` is the wire JSON: ``{"type": "error", "error": {"type": ..., "message": ...}}``.
    """

    def __init__(
        self,
        type: str,
        message: str,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.type = type
        self.message = message
        self.status = status if status is not None else ERROR_TYPES[type]
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"type": "error", "error": {"type": self.type, "message": self.message}}

    @classmethod
    def invalid(cls, message: str) -> ApiError:
        """A 400 `invalid_request_error`, the most common answer to a bad request."""
        return cls("invalid_request_error", message)


def check_method(method: str, path: str, allowed: tuple[str, ...]) -> None:
    """A 405 naming the methods `path` takes (and an `allow` header), unless `method` is one."""
    if method not in allowed:
        raise ApiError(
            "invalid_request_error",
            f"Method {method} not allowed for {path}; use {', '.join(allowed)}.",
            status=405,
            headers={"allow": ", ".join(allowed)},
        )


def blot_keys(message: str, key: str | None) -> str:
    """`message` without the request's own `key` (if it is long enough to be one: the emulator
    takes any key) and without anything shaped like an API key: an error quoting the path or the
    model a client sent quotes a key put there, and error texts are printed and logged."""
    if key and len(key) >= 8:
        message = message.replace(key, "[API key]")
    return KEY_SHAPE.sub("[API key]", message)
