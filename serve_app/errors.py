"""Domain errors to HTTP responses, in one place.

Errors raised inside the orchestrator actor reach us wrapped by Ray; they are unwrapped
here so a ``JobNotFound`` from the actor is a 404 like one raised locally.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from ray.exceptions import RayActorError, RayTaskError

from domain.errors import (
    AlreadyExists,
    Conflict,
    Forbidden,
    IdempotencyKeyReused,
    InvalidRequest,
    NotFound,
    PipelineError,
    ServiceUnavailable,
    TooManyRequests,
    TrainingError,
    Unauthorized,
)

RETRY_AFTER_SECONDS = "5"

_STATUS: tuple[tuple[type[TrainingError], int], ...] = (
    (NotFound, 404),
    (InvalidRequest, 422),
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
        # The shape FastAPI uses for its own validation errors, so clients parse one format.
        detail = [
            {"loc": ["body", *error.field.split(".")], "msg": error.message, "type": "value_error"}
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


async def _training_error(_request: Request, exc: Exception) -> JSONResponse:
    cause = exc.cause if isinstance(exc, RayTaskError) else exc
    if isinstance(cause, TrainingError):
        return error_response(cause)
    raise exc


async def _orchestrator_unavailable(_request: Request, _exc: Exception) -> JSONResponse:
    return error_response(ServiceUnavailable("the orchestrator is restarting; try again shortly"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TrainingError, _training_error)
    app.add_exception_handler(RayTaskError, _training_error)
    app.add_exception_handler(RayActorError, _orchestrator_unavailable)
