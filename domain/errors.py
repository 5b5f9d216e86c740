"""The service's one error hierarchy.

Business code raises these; ``serve_app.errors`` maps them to HTTP in one place::

    TrainingError
    ├── NotFound                  404
    │   ├── JobNotFound
    │   ├── FeatureSetNotFound
    │   ├── ExperimentNotFound
    │   ├── ModelNotFound
    │   ├── AliasNotFound
    │   ├── ForecastNotFound
    │   ├── KeyNotFound
    │   ├── ScheduleNotFound
    │   ├── EvaluationNotFound
    │   └── PolicyNotFound
    ├── InvalidRequest            422 (names the offending field)
    │   └── InvalidFeatureSet
    │       └── InvalidColumns    (one entry per column at fault)
    ├── TooLarge                  413 (an upload beyond a size limit; names the limit)
    ├── Conflict                  400 (the request is well formed but the state forbids it)
    │   └── IllegalTransition
    ├── AlreadyExists             409 (a resource of that name exists)
    ├── IdempotencyKeyReused      409 (the key was used with a different request)
    ├── Unauthorized              401 (no key, or a wrong, expired or revoked one)
    ├── Forbidden                 403 (the key's role or tenant does not allow it)
    ├── TooManyRequests           429 (a tenant's queue is full; says when to retry)
    ├── PipelineError             a stage could not do its work (the job fails)
    │   └── TrainingStopped       (its job was cancelled while it trained)
    └── ServiceUnavailable        503
"""

from __future__ import annotations


class TrainingError(Exception):
    """Base of every error this service raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.message,))


class NotFound(TrainingError):
    """The addressed resource does not exist."""


class JobNotFound(NotFound):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"training job {job_id!r} not found")
        self.job_id = job_id

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.job_id,))


class TenantNotFound(NotFound):
    """A tenant the caller cannot see (whether or not it exists)."""

    def __init__(self, tenant_id: str) -> None:
        super().__init__(f"tenant {tenant_id!r} not found")
        self.tenant_id = tenant_id

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.tenant_id,))


class FeatureSetNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"feature set {name!r} not found")
        self.name = name

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.name,))


class ModelNotFound(NotFound):
    def __init__(self, model_id: str) -> None:
        super().__init__(f"model {model_id!r} not found")
        self.model_id = model_id

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.model_id,))


class SeriesMetricsNotFound(NotFound):
    """The model was trained on a single series: it has no per-series metrics."""

    def __init__(self, model_id: str) -> None:
        super().__init__(f"model {model_id!r} has no per-series metrics (one series)")
        self.model_id = model_id

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.model_id,))


class ExperimentNotFound(NotFound):
    def __init__(self, experiment_id: str) -> None:
        super().__init__(f"experiment {experiment_id!r} not found")
        self.experiment_id = experiment_id

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.experiment_id,))


class AliasNotFound(NotFound):
    def __init__(self, model_name: str, alias: str) -> None:
        super().__init__(f"model {model_name!r} has no alias {alias!r}")
        self.model_name = model_name
        self.alias = alias

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.model_name, self.alias))


class ForecastNotFound(NotFound):
    def __init__(self, forecast_id: str) -> None:
        super().__init__(f"forecast {forecast_id!r} not found")
        self.forecast_id = forecast_id

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.forecast_id,))


class EvaluationNotFound(NotFound):
    def __init__(self, forecast_id: str) -> None:
        super().__init__(f"no scored forecast {forecast_id!r} for this model")
        self.forecast_id = forecast_id

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.forecast_id,))


class KeyNotFound(NotFound):
    def __init__(self, key_id: str) -> None:
        super().__init__(f"API key {key_id!r} not found")
        self.key_id = key_id

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.key_id,))


class PolicyNotFound(NotFound):
    def __init__(self, policy_id: str) -> None:
        super().__init__(f"retrain policy {policy_id!r} not found")
        self.policy_id = policy_id

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.policy_id,))


class ScheduleNotFound(NotFound):
    def __init__(self, schedule_id: str) -> None:
        super().__init__(f"schedule {schedule_id!r} not found")
        self.schedule_id = schedule_id

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.schedule_id,))


class InvalidRequest(TrainingError):
    """The request is malformed; ``field`` is the dotted path of the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.field, self.message))


class InvalidFeatureSet(InvalidRequest):
    """An uploaded feature set cannot be stored (bad file, column or type)."""


class InvalidColumns(InvalidFeatureSet):
    """Rows that do not fit a set's columns: ``problems`` says, per column at fault, what
    is wrong (missing, not the set's, of another type)."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("body", "; ".join(f"{c!r}: {m}" for c, m in problems.items()))
        self.problems = problems

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.problems,))


class TooLarge(TrainingError):
    """An upload exceeds a size limit (the message names it)."""


class Conflict(TrainingError):
    """The request is well formed, but the resource's state forbids it."""


class IllegalTransition(Conflict):
    """A job cannot take this event in its current status."""


class AlreadyExists(TrainingError):
    """A resource with that name exists already."""


class IdempotencyKeyReused(TrainingError):
    """An ``Idempotency-Key`` came back with a different request body."""


class Unauthorized(TrainingError):
    """The request carries no valid API key."""


class Forbidden(TrainingError):
    """The key is valid, but its role or tenant does not allow the request."""


class TooManyRequests(TrainingError):
    """A limit is reached; ``retry_after`` is a hint in seconds."""

    def __init__(self, message: str, retry_after: int = 30) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.message, self.retry_after))


class PipelineError(TrainingError):
    """A pipeline stage could not do its work with the data it was given."""


class TrainingStopped(PipelineError):
    """A training stopped because its job was cancelled."""


class ServiceUnavailable(TrainingError):
    """A backing service (database, cluster) cannot be reached right now."""
