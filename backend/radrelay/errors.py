"""Typed errors. Each carries the HTTP status and a message a user can act on.

Services raise these; only the app turns them into responses (``app.py``), so a service never
knows about HTTP and a caller never sees an opaque 500 for a mistake it can fix.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import InterfaceError, OperationalError


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


class DatabaseUnavailable(ServiceUnavailable):
    """The database cannot be reached: nothing was committed, so nothing of the request was
    kept."""

    def __init__(
        self,
        message: str = "The database is unavailable, so nothing was stored. Try again shortly.",
        **kw: Any,
    ):
        super().__init__(message, headers={"Retry-After": "5"}, **kw)


class QueueUnavailable(ServiceUnavailable):
    """The job queue (Redis) cannot be reached. Ingest checks it before receiving, because what
    it received now could be neither routed nor announced; when it fails after a commit, what
    was committed is kept and sending it again is harmless (a resend is a duplicate)."""

    def __init__(
        self,
        message: str = "The job queue is unavailable. Try again shortly; anything of this "
        "request that was already stored is kept, and sending it again is harmless.",
        **kw: Any,
    ):
        super().__init__(message, headers={"Retry-After": "5"}, **kw)


class InsufficientStorage(ServiceUnavailable):
    """Our disk is full (the receive area, the receive cache or file storage): nothing of the
    request was kept. Temporary, as a 503 is, so the sender keeps what it has and retries."""

    status_code = 507
    code = "insufficient_storage"

    def __init__(
        self,
        message: str = "The server's disk is full, so nothing of this request was stored. "
        "Try again later; the administrator must free space.",
        **kw: Any,
    ):
        super().__init__(message, headers={"Retry-After": "60"}, **kw)


# A dependency away for a moment (our own typed errors, the database driver, redis-py): the
# work goes again later, and anything else attempted against it now would fail the same way.
TEMPORARY = (
    ServiceUnavailable,
    OperationalError,
    InterfaceError,
    RedisConnectionError,
    RedisTimeoutError,
    ConnectionError,
)
