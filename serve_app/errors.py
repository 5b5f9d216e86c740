"""Domain errors to HTTP responses, in one place.

Errors raised inside the orchestrator actor or a deployment are unwrapped from Ray's where
they are called (``actors.client.translated_ray_errors``), so a ``JobNotFound`` from the
actor is a 404 like one raised locally.
"""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from domain.errors import (
    AlreadyExists,
    Conflict,
    Forbidden,
    IdempotencyKeyReused,
    InvalidColumns,
    InvalidRequest,
    NotFound,
    PipelineError,
    ServiceUnavailable,
    TooLarge,
    TooManyRequests,
    TrainingError,
    Unauthorized,
)
from domain.promotions import NothingToRollBack

RETRY_AFTER_SECONDS = "5"


class ErrorDetail(BaseModel):
    """The body of every error response except validation errors (422)."""

    detail: str


#: Error responses any operation may give, documented once for the OpenAPI schema.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorDetail, "description": description}
    for code, description in (
        (400, "The resource's state forbids the request (e.g. cancelling a finished job)."),
        (401, "No API key, or a wrong, expired or revoked one."),
        (403, "The key's role or tenant does not allow the request."),
        (404, "No such resource (or another tenant's)."),
        (
            409,
            "A name already taken, an Idempotency-Key reused with another body, or a "
            "rollback with no earlier champion to restore.",
        ),
        (413, "The request body, or an upload once decompressed, is too large."),
        (429, "The tenant's queue is full; retry after Retry-After seconds."),
        (
            503,
            "The database or the orchestrator is unavailable, or the replica takes no more "
            "uploads now; retry after Retry-After.",
        ),
    )
}

_STATUS: tuple[tuple[type[TrainingError], int], ...] = (
    (NotFound, 404),
    (InvalidRequest, 422),
    (TooLarge, 413),
    (NothingToRollBack, 409),
    (Conflict, 400),
    (IdempotencyKeyReused, 409),
    (AlreadyExists, 409),
    (Unauthorized, 401),
    (Forbidden, 403),
    (TooManyRequests, 429),
    (PipelineError, 422),
    (ServiceUnavailable, 503),
)


def status_of(error: TrainingError) -> int:
    return next((code for kind, code in _STATUS if isinstance(error, kind)), 500)


def error_response(error: TrainingError) -> JSONResponse:
    status = status_of(error)
    if isinstance(error, InvalidRequest):
        # The shape FastAPI uses for its own validation errors, so clients parse one format;
        # a field is in the body unless it names the query, the path or a header, and a
        # request row's index is a number, as in FastAPI's own.
        names = error.field.split(".")
        parts: list[str | int] = [
            int(p) if i > 0 and names[i - 1] == "rows" and p.isascii() and p.isdigit() else p
            for i, p in enumerate(names)
        ]
        loc = parts if parts[0] in ("query", "path", "header") else ["body", *parts]
        detail = [{"loc": loc, "msg": error.message, "type": "value_error"}]
        if isinstance(error, InvalidColumns):  # one entry per column, named as it is
            detail = [
                {"loc": ["body", column], "msg": problem, "type": "value_error"}
                for column, problem in error.problems.items()
            ]
        return JSONResponse({"detail": detail}, status_code=status)
    headers = None
    if isinstance(error, TooManyRequests):
        headers = {"Retry-After": str(error.retry_after)}
    elif isinstance(error, Unauthorized):
        headers = {"WWW-Authenticate": "Bearer"}
    elif status == 503:
        headers = {"Retry-After": RETRY_AFTER_SECONDS}
    return JSONResponse({"detail": error.message}, status_code=status, headers=headers)


async def _training_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TrainingError)
    if isinstance(exc, ServiceUnavailable) and exc.message.startswith("database"):
        _count_database_error(request)
    return error_response(exc)


def _count_database_error(request: Request) -> None:
    """Tell the orchestrator, which keeps the metrics (fire and forget)."""
    with contextlib.suppress(Exception):
        request.app.state.services.orchestrator.count_database_error()


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TrainingError, _training_error)
