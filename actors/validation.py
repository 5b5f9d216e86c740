"""Whether a job could ever run here (its feature set, target, backtest and CPUs, against
the most the cluster can grow to), and how: a job on a large feature set trains
data-parallel."""

from __future__ import annotations

from actors.capacity import Capacity
from domain.errors import InvalidRequest
from pipeline.config import TrainingConfig
from pipeline.evaluation.backtest import check_fits as check_backtest_fits
from pipeline.store.feature_store import FeatureStore


def check_per_series(config: TrainingConfig, series_column: str | None) -> None:
    """Raises: InvalidRequest when the feature set has one series only (the config
    itself refuses per_series with HPO or a backtest)."""
    if series_column is None:
        raise InvalidRequest(
            "config.per_series",
            f"feature set {config.feature_set!r} has no series column: per_series needs "
            "several series (upload it with series_column)",
        )


class JobValidator:
    """Checks a job's config against the feature store and the cluster's size: a job
    that fits the cluster's configured maximum is fine (it waits for the CPUs), one
    beyond it could never run. It reads the feature store (a file system, or S3): call it
    off the actor's event loop."""

    def __init__(
        self, features: FeatureStore, capacity: Capacity, distributed_min_rows: int
    ) -> None:
        self._features = features
        self._capacity = capacity
        self._distributed_min_rows = distributed_min_rows

    def check(self, tenant_id: str, config: TrainingConfig) -> TrainingConfig:
        """The config to queue: ``config``, data-parallel if its feature set is large
        (``TrainingConfig.sized_for``).

        Raises: InvalidRequest naming the ``config.*`` field at fault."""
        features = self._features.for_tenant(tenant_id)
        if not features.exists(config.feature_set):
            known = [s.name for s in features.list()]
            raise InvalidRequest(
                "config.feature_set", f"unknown feature set {config.feature_set!r}; known: {known}"
            )
        schema = features.schema(config.feature_set)
        if config.target_variable != schema.target_column:
            raise InvalidRequest(
                "config.target_variable",
                f"feature set {schema.name!r} has target {schema.target_column!r}, "
                f"not {config.target_variable!r}",
            )
        if config.per_series:
            check_per_series(config, schema.series_column)
        if config.backtest is not None:
            check_backtest_fits(config, schema, features.step_seconds(config.feature_set))
        size = self._capacity.size
        most = f"the cluster's maximum of {size.max_cpus} CPUs ({size.cpus} now)"
        if not config.enable_hpo and config.train_cpus > size.max_cpus:
            raise InvalidRequest(
                "config.n_workers",
                f"n_workers={config.n_workers} exceeds {most}; the job could never run",
            )
        if config.distributed is not None:
            cpus = config.distributed.workers * config.train_cpus
            if cpus > size.max_cpus:
                raise InvalidRequest(
                    "config.distributed.workers",
                    f"{config.distributed.workers} workers x {config.train_cpus} CPU(s) exceed "
                    f"{most}; the job could never run",
                )
        return config.sized_for(schema.rows, self._distributed_min_rows, size.max_cpus)
