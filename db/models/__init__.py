"""The tables, one module per group: ``jobs`` (jobs, their logs, idempotency keys),
``experiments``, ``registry`` (models, aliases, promotions, the MLflow mirror's ledger),
``forecasts`` (batch forecasts and their evaluations), ``automation`` (schedules, retrain
policies) and ``keys``, all on ``base.Base``.

Every table is importable from here, and importing this package maps them all: Alembic
(``db.migrations.env``) compares the database with ``Base.metadata`` as a whole, and a
table's foreign keys name tables of other groups.
"""

from db.models.automation import RetrainPolicy, RetrainTrigger, Schedule
from db.models.base import Base
from db.models.experiments import Experiment, ExperimentMetric, ExperimentParam
from db.models.forecasts import BatchForecast, MonitorEvaluation
from db.models.jobs import IdempotencyKey, TrainingJob, TrainingLog
from db.models.keys import ApiKey
from db.models.registry import MirroredItem, ModelAlias, Promotion, RegisteredModel

__all__ = [
    "ApiKey",
    "Base",
    "BatchForecast",
    "Experiment",
    "ExperimentMetric",
    "ExperimentParam",
    "IdempotencyKey",
    "MirroredItem",
    "ModelAlias",
    "MonitorEvaluation",
    "Promotion",
    "RegisteredModel",
    "RetrainPolicy",
    "RetrainTrigger",
    "Schedule",
    "TrainingJob",
    "TrainingLog",
]
