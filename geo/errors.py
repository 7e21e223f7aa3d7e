"""Domain errors raised by ``geo`` and ``db``.

They know nothing of HTTP; ``api.errors`` maps each class to a status code.
Every message is meant to be shown to a person as it is.
"""

from __future__ import annotations

from typing import Any


class WanggeError(Exception):
    """Base of every error Wangge reports to its users.

    ``extra`` carries machine-readable detail (for example a validation
    report) that adapters add to the error body as it is.
    """

    title = "Wangge error"

    def __init__(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.extra: dict[str, Any] = extra or {}


class InvalidInput(WanggeError):
    """The input is malformed or violates a documented rule."""

    title = "Invalid input"


class UnknownCRS(InvalidInput):
    """A coordinate reference system name or code Wangge does not know."""

    title = "Unknown coordinate reference system"


class LimitExceeded(InvalidInput):
    """The input is larger than a configured cap (bytes, vertices, features)."""

    title = "Limit exceeded"


class NotFound(WanggeError):
    """A named object (area code, …) does not exist."""

    title = "Not found"


class Conflict(WanggeError):
    """The request conflicts with what is stored (duplicate code, …)."""

    title = "Conflict"


class PreconditionFailed(WanggeError):
    """A conditional write whose ETag is no longer current: someone else saved first."""

    title = "Precondition failed"


class PreconditionRequired(WanggeError):
    """A write that must name the version it changes (If-Match) did not."""

    title = "Precondition required"


class Unavailable(WanggeError):
    """A component Wangge needs (database, binaries) is missing or down."""

    title = "Service unavailable"


class Unauthenticated(WanggeError):
    """No valid login: no token, a forged or expired one, or a revoked one."""

    title = "Not logged in"


class Forbidden(WanggeError):
    """The account's role may not do this (whatever the object)."""

    title = "Not allowed"


class TooManyRequests(WanggeError):
    """A rate or lock-out limit; ``retry_after_s`` says when to try again."""

    title = "Too many requests"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message, extra={"retry_after_s": retry_after_s})
        self.retry_after_s = retry_after_s
