"""What a job's failure says: its message and the log lines that explain it (with any URL's
password masked: an exception may quote a connection string)."""

from __future__ import annotations

from datetime import datetime

from ray.exceptions import NodeDiedError, RayTaskError, TaskCancelledError, WorkerCrashedError

from actors.recorder import service_log, to_new_log
from db.records import NewLog
from domain.errors import TrainingError
from domain.jobs import LogLevel
from domain.redaction import redact
from pipeline.stages import StageFailed


def describe_failure(
    job_id: str, exc: BaseException, stage_attempts: int, now: datetime
) -> tuple[str, list[NewLog]]:
    """The job's error message for ``exc`` and the log lines to write with it (at ``now``):
    a failed stage's own lines and trace, then the message."""
    cause = exc.cause if isinstance(exc, RayTaskError) else exc
    if isinstance(exc, TaskCancelledError):
        message = "a pipeline task was cancelled"
    elif isinstance(cause, TrainingError):
        message = cause.message
    else:
        message = f"{type(cause).__name__}: {cause}"
    if isinstance(cause, NodeDiedError | WorkerCrashedError):
        message = f"a stage lost its worker node in each of {stage_attempts} attempt(s): {message}"
    message = redact(message)
    lines = []
    if isinstance(cause, StageFailed):
        lines = [to_new_log(job_id, line) for line in cause.logs]
        trace = redact(cause.trace)
        lines.append(service_log(job_id, trace, now, LogLevel.ERROR, stage=cause.stage))
    lines.append(service_log(job_id, f"failed: {message}", now, LogLevel.ERROR))
    return message, lines
