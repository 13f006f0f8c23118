"""Typed errors. Each carries the HTTP status and a message a user can act on.

Services raise these; only the app turns them into responses (``app.py``), so a service never
knows about HTTP and a caller never sees an opaque 500 for a mistake it can fix.
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, *, detail: Any = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.headers = headers

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.detail is not None:
            body["detail"] = self.detail
        return body


class BadRequest(AppError):
    status_code = 400
    code = "bad_request"


class Unauthenticated(AppError):
    status_code = 401
    code = "unauthenticated"

    def __init__(
        self, message: str = "Sign in first: a valid bearer token is required.", **kw: Any
    ):
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"}, **kw)


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


class NotFound(AppError):
    """Also used for objects that exist but lie outside the caller's scope: a hospital must not
    learn that another hospital's case exists."""

    status_code = 404
    code = "not_found"


class NotAcceptable(AppError):
    """The Accept header allows no representation of the response we can give."""

    status_code = 406
    code = "not_acceptable"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(AppError):
    status_code = 415
    code = "unsupported_media_type"


class Unprocessable(AppError):
    status_code = 422
    code = "unprocessable"


class TooManyRequests(AppError):
    status_code = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int, **kw: Any):
        super().__init__(message, **kw)
        self.headers = {"Retry-After": str(retry_after)}


class ServiceUnavailable(AppError):
    """A dependency (database, storage, queue) is down: the client should retry later."""

    status_code = 503
    code = "service_unavailable"
