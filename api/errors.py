"""The one table that maps domain errors to HTTP statuses, and the
``application/problem+json`` (RFC 9457) body every error response carries."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from geo.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    LimitExceeded,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    TooManyRequests,
    Unauthenticated,
    Unavailable,
    UnknownCRS,
    WanggeError,
)

PROBLEM_JSON = "application/problem+json"

# Most specific first: the first class an error is an instance of wins.
STATUS_BY_ERROR: tuple[tuple[type[WanggeError], int], ...] = (
    (LimitExceeded, 413),
    (UnknownCRS, 400),
    (InvalidInput, 422),
    (NotFound, 404),
    (Unauthenticated, 401),
    (Forbidden, 403),
    (TooManyRequests, 429),
    (Conflict, 409),
    (PreconditionFailed, 412),
    (PreconditionRequired, 428),
    (Unavailable, 503),
    (WanggeError, 400),
)


def status_for(error: WanggeError) -> int:
    return next(status for cls, status in STATUS_BY_ERROR if isinstance(error, cls))


def problem(
    *, status: int, title: str, detail: str, instance: str | None = None, **extra: Any
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def install_error_handlers(app: FastAPI) -> None:
    """Every error leaves as problem+json; a domain error's ``extra`` (for
    example an import report) becomes members of the body."""

    @app.exception_handler(WanggeError)
    async def _domain(request: Request, exc: WanggeError) -> JSONResponse:
        response = problem(
            status=status_for(exc), title=exc.title, detail=str(exc),
            instance=request.url.path, **exc.extra,
        )  # fmt: skip
        if isinstance(exc, Unauthenticated):
            response.headers["WWW-Authenticate"] = "Bearer"
        if isinstance(exc, TooManyRequests):
            response.headers["Retry-After"] = str(exc.retry_after_s)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"where": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['where']}: {e['message']}" for e in errors)
        return problem(
            status=422, title="Invalid request", detail=detail,
            instance=request.url.path, errors=errors,
        )  # fmt: skip

    @app.exception_handler(OperationalError)
    async def _database_down(request: Request, exc: OperationalError) -> JSONResponse:
        return problem(
            status=503, title="Database unavailable",
            detail="the database cannot be reached; start it with `wangge db start` or check DATABASE_URL",
            instance=request.url.path,
        )  # fmt: skip

    @app.exception_handler(DataError)
    async def _unstorable(request: Request, exc: DataError) -> JSONResponse:
        # A value the database refuses to store or compare (out of range, bad
        # encoding): the input's fault, never a server error. Routes check
        # their inputs first; this is the net under them.
        reason = str(getattr(exc, "orig", exc)).splitlines()[0]
        return problem(
            status=422, title="Invalid input",
            detail=f"a value cannot be stored: {reason}", instance=request.url.path,
        )  # fmt: skip

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(
            status=exc.status_code, title=_reason(exc.status_code), detail=str(exc.detail),
            instance=request.url.path,
        )  # fmt: skip


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
